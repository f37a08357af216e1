"""The process and its terminal: how its CPU threads wait, and what it does when its terminal hangs up (SSH dropped)."""

from __future__ import annotations

import os


def detach_terminal() -> None:
    """The terminal is gone (SIGHUP): point stdin/stdout/stderr at /dev/null so no read or write fails."""
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)


def threads_sleep_while_waiting() -> None:
    """OpenMP threads that sleep while they wait (OMP_WAIT_POLICY=PASSIVE) unless the user chose otherwise.

    Call before torch loads. With the default, spinning threads collapse when another busy process shares
    the cores: step-0 sampling took 153.6 s with a busy neighbour against 25.4 s passive, and 17.0 s vs
    18.1 s alone (bench/sampling_contention.py, 2 cores).
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
