"""Messages between the panes, and the hand-off from the trainer thread to the UI.

The trainer thread only ever calls `post_message(RunEvents(...))`: about a microsecond, never
blocks, touches no widget. Everything else happens on the UI's event loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:
    from studio.config import RunConfig
    from studio.train import TrainingRun


class ConfigChanged(Message, bubble=False):
    """The config being edited changed (`app.update_config`); every pane gets its own copy."""

    def __init__(self, config: RunConfig) -> None:
        super().__init__()
        self.config = config


class RunChanged(Message, bubble=False):
    """The run the studio shows changed: started here, resumed, or opened from its directory.

    `in_process` is True when this process trains it (controls go to the run object), False when
    it is read from events.jsonl (controls go through the run directory's control channel).
    """

    def __init__(self, run_dir: Path, in_process: bool) -> None:
        super().__init__()
        self.run_dir = run_dir
        self.in_process = in_process


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


class TaskFailed(Message, bubble=False):
    """A worker started with `app.run_task` raised; the app has shown a toast, panes may say more."""

    def __init__(self, name: str, error: str) -> None:
        super().__init__()
        self.name = name
        self.error = error
