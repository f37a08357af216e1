"""Thread workers: one pattern, and one place their errors go.

Every worker is a pane's (or screen's) method decorated with
`@work(thread=True, exclusive=True, exit_on_error=False, group=..., description=...)` that only
posts result messages back. When one raises, the app shows the error once (`StudioApp.on_worker_failed`):
an engine error's own message, which says what to fix.

Textual tells only the node that started a worker how it ended (`Worker.StateChanged` does not
bubble), so every node that starts workers mixes in `ReportsWorkerErrors`: it turns a failed
worker into a `WorkerFailed` message, which bubbles through the node itself (a pane that wants to
say it inline handles it there, and lets it go on) up to the app.
"""

from __future__ import annotations

from textual.message import Message
from textual.worker import Worker, WorkerState

from screens.shared import describe_error


class WorkerFailed(Message):
    """A worker raised. `text` is what the user reads; `worker.group` says which work it was."""

    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self.worker = worker
        self.text = describe_error(worker.error)


class ReportsWorkerErrors:
    """Mixed into every node that starts workers, so their errors reach the app's one handler."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            self.post_message(WorkerFailed(event.worker))
