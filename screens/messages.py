"""The hand-off from the trainer thread to the UI.

What panes share travels as `screens.state.StateChanged`.

The trainer thread only ever calls `post_message(RunEvents(...))`: about a microsecond, never
blocks, touches no widget. Everything else happens on the UI's event loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:
    from studio.train import TrainingRun


class RunLaunched(Message, bubble=False):
    """A TrainingRun was built on a worker thread and is about to start (posted before its first event)."""

    def __init__(self, run: TrainingRun) -> None:
        super().__init__()
        self.run = run


class RunEvents(Message, bubble=False):
    """Events of a run: one at a time from the in-process bus, or a batch read from events.jsonl."""

    def __init__(self, run_dir: Path, events: list[dict[str, Any]]) -> None:
        super().__init__()
        self.run_dir = run_dir
        self.events = events
