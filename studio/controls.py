"""Requests to a live run (pause, resume, stop, checkpoint) and the one place they are taken.

They come from any thread of this process (the app's keys, a signal handler) and from other
processes through RUN/control.jsonl (`studio control`, `studio watch`). The trainer takes them
at step boundaries; generation and evaluation peek at them to give way mid-way. When several
processes train the run, rank 0 reads the control file and every rank takes the union of all
ranks' requests, so each acts on the same step.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from studio import distributed
from studio.runs import COMMANDS, CommandReader

_POLL_EVERY_S = 0.2  # how often a peek may read control.jsonl (a stat, then a read when it grew)


class Interrupted(Exception):
    """Generation or evaluation gave way to a pause or stop request; `partial` holds texts cut short."""

    def __init__(self, partial: list[str] | None = None) -> None:
        super().__init__("cut short by a pause or stop request")
        self.partial = partial or []


class Controls:
    def __init__(self, run_dir: Path, read_file: bool) -> None:
        self._requests: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._file = CommandReader(run_dir) if read_file else None
        self._polled = 0.0

    def request(self, command: str) -> None:
        """Any thread: ask the run to act at its next step boundary."""
        with self._lock:
            if command == "resume":
                self._requests.discard("pause")
            self._requests.add(command)
        self._wake.set()

    def pending(self, *commands: str) -> bool:
        """Whether one of `commands` waits, without taking it (this rank only; cheap enough for every token)."""
        if time.monotonic() - self._polled >= _POLL_EVERY_S:
            self._read_file()
        with self._lock:
            return bool(self._requests.intersection(commands))

    def take(self) -> set[str]:
        """The requests waiting, now taken; on several processes, the union over every rank (a collective)."""
        self._read_file()
        with self._lock:
            taken, self._requests = self._requests, set()
            self._wake.clear()
        flags = distributed.any_rank([command in taken for command in COMMANDS])
        return {command for command, flag in zip(COMMANDS, flags) if flag}

    def wait(self, timeout: float) -> None:
        """Sleep until a request arrives in this process, or `timeout` seconds."""
        self._wake.wait(timeout)

    def _read_file(self) -> None:
        self._polled = time.monotonic()
        if self._file is not None:
            for command in self._file.poll():
                self.request(command)
