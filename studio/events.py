"""Typed training events, a thread-safe bus that fans them out, and the JSONL record on disk.

An event is a plain dict with at least `type`, `step` and `time`, so the stream on disk
(`RUN/events.jsonl`) and the stream the UI sees are the same thing.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from studio.run_state import EMITTED

# type -> fields it carries besides type/step/time
EVENT_FIELDS = {
    # tokens_per_s and memory_mb are summed over processes; memory_max_mb is the largest one's.
    "step": ("loss", "lr", "grad_norm", "tokens_per_s", "memory_mb", "memory_max_mb", "epoch", "step_time_s",
             "eta_s", "observe_share"),
    "eval": ("eval_loss", "perplexity", "style_loss"),
    "sample": ("prompt", "response", "mode", "index", "repeats"),  # mode: greedy | sampled; repeats: a loop's count
    "checkpoint": ("path",),
    "status": ("state", "reason"),  # state: one of run_state.EMITTED
    "error": ("message",),
    "prepare": ("done", "total", "rows_per_s", "eta_s"),  # rows of the dataset encoded so far
    "setup": ("device", "dtype", "precision", "quantization", "processes", "trainable_params", "total_params"),
    "resume": ("from_step",),  # events of later steps written before this one are superseded
    # The sampled answers of a step, scored by a judge off the training thread (studio.judge_curve).
    "judge": ("prompt", "mean", "std", "scored", "failed", "skipped", "note"),
}

Event = dict[str, Any]
Subscriber = Callable[[Event], None]


def make_event(type: str, step: int, **values: Any) -> Event:
    if type not in EVENT_FIELDS:
        raise ValueError(f"unknown event type {type!r}; known: {', '.join(EVENT_FIELDS)}")
    if type == "status" and values.get("state") not in EMITTED:
        raise ValueError(f"unknown status state {values.get('state')!r}; known: {', '.join(EMITTED)}")
    return {"type": type, "step": int(step), "time": time.time(), **values}


class EventBus:
    """Fans events out to subscribers. Publishing is safe from any thread.

    Subscribers run on the publishing thread, so they must be quick and must not block: the
    app's subscriber only posts a message; the disk writer appends a line.
    """

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        with self._lock:
            self._subscribers.append(subscriber)
        return lambda: self.unsubscribe(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

    def publish(self, event: Event) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            subscriber(event)

    def emit(self, type: str, step: int, **values: Any) -> Event:
        event = make_event(type, step, **values)
        self.publish(event)
        return event


def _json_safe(value: Any) -> Any:
    # NaN/inf are not JSON; keep them readable and reversible as strings.
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class JsonlWriter:
    """Appends each event to a file as one JSON line, flushed so a watcher sees it at once."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        line = json.dumps({k: _json_safe(v) for k, v in event.items()}, ensure_ascii=False)
        with self._lock:
            if self._file.closed:
                return
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.flush()
                os.fsync(self._file.fileno())
                self._file.close()


def _parse_line(line: str) -> Event | None:
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return None  # a line cut short by a kill; the rest of the log is still good
    return event if isinstance(event, dict) and "type" in event else None


def read_events(path: str | Path) -> list[Event]:
    """The run's record as it stands: the steps a resume rolled back are left out (see `current`)."""
    path = Path(path)
    if not path.exists():
        return []
    with open(path, encoding="utf-8") as f:
        return current([e for e in map(_parse_line, f) if e is not None])


def current(events: list[Event]) -> list[Event]:
    """Drop what a resume superseded: the events of steps after the checkpoint it resumed from,
    written before the resume (a resumed run trains those steps again and writes them anew)."""
    kept: list[Event] = []
    for event in events:
        if event["type"] == "resume":
            kept = [e for e in kept if e.get("step", 0) <= event["from_step"]]
        kept.append(event)
    return kept


class EventFollower:
    """Reads new complete lines of an events.jsonl as they are appended (for `studio watch`)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._offset = 0
        self._partial = ""

    def skip_existing(self) -> None:
        """Start from the end of what the file holds now."""
        self._offset = self.path.stat().st_size if self.path.exists() else 0

    def poll(self) -> list[Event]:
        if not self.path.exists():
            return []
        with open(self.path, encoding="utf-8") as f:
            f.seek(self._offset)
            chunk = f.read()
            self._offset = f.tell()
        text = self._partial + chunk
        lines = text.split("\n")
        self._partial = lines.pop()  # an unfinished last line waits for its end
        return [e for e in map(_parse_line, lines) if e is not None]

    def __iter__(self) -> Iterator[Event]:
        return iter(self.poll())
