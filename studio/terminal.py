"""The process's terminal: what a process does when its terminal hangs up (SSH dropped)."""

from __future__ import annotations

import os


def detach_terminal() -> None:
    """The terminal is gone (SIGHUP): point stdin/stdout/stderr at /dev/null so no read or write fails."""
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
