"""Helpers the tests share (imported by them; fixtures live in conftest.py)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imported_after(statement: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running `statement` in the repository."""
    code = f"import sys; {statement}; print(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def record_notifications(app) -> list[str]:
    """Every message the app shows as a toast from now on, in order (a spy on the public `App.notify`)."""
    seen: list[str] = []
    notify = app.notify

    def spy(message, **options):
        seen.append(str(message))
        return notify(message, **options)

    app.notify = spy
    return seen


async def wait_for(pilot, condition, timeout: float = 60.0, what: str = "condition") -> None:
    """Let the app run until `condition()` holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)
