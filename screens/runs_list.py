"""The runs list: every run under the runs folder with its state; open one, resume a killed one, or mark
several and compare them (screens.compare)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Static

from screens.compare import CompareScreen
from screens.workers import ReportsWorkerErrors, WorkerFailed
from studio.formatting import format_number

HINT = "enter open · r resume (a killed, stopped or failed run) · space mark · c compare the marked · esc close"


class RunsList(ReportsWorkerErrors, ModalScreen[tuple[str, Path] | None]):
    """Dismisses with ("open", dir), ("resume", dir), or None."""

    BINDINGS = [
        ("escape", "dismiss(None)", "Close"),
        ("r", "resume", "Resume"),
        ("space", "mark", "Mark/unmark"),
        ("c", "compare", "Compare marked"),
    ]

    class Loaded(Message):
        def __init__(self, runs: list[Any]) -> None:
            super().__init__()
            self.runs = runs

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        self._runs: dict[str, Any] = {}
        self.marked: dict[str, None] = {}  # the marked runs' keys, in the order they were marked

    def compose(self) -> ComposeResult:
        with Vertical(id="runs-dialog"):
            yield Static(f"Runs in {self.root}/", id="runs-title")
            yield DataTable(cursor_type="row", zebra_stripes=True, id="runs-table")
            yield Static(HINT, id="runs-hint")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        # What tells runs apart first: at 80 columns the model and dataset are the ones cut off.
        table.add_column("", width=1, key="mark")
        table.add_columns("name", "status", "steps", "loss", "held-out", "style", "model", "dataset")
        table.loading = True
        self._load()

    # Summaries read every events.jsonl: off the event loop.
    @work(thread=True, exclusive=True, exit_on_error=False, group="runs-list", description="reading the runs")
    def _load(self) -> None:
        from studio.runs import list_runs

        self.post_message(self.Loaded(list_runs(self.root)))

    def on_runs_list_loaded(self, message: Loaded) -> None:
        table = self.query_one(DataTable)
        table.loading = False
        self._runs = {str(r.path): r for r in message.runs}
        for r in message.runs:
            status = r.status + (" (live)" if r.alive else "")
            table.add_row("", r.name, status, f"{r.step}/{r.max_steps}", format_number(r.last_loss, 3),
                          format_number(r.eval_loss, 3), format_number(r.style_loss, 3), Path(r.model).name,
                          Path(r.dataset).name, key=str(r.path))
        if not message.runs:
            self.query_one("#runs-hint", Static).update(f"no runs in {self.root}/ yet: press s on the Train pane "
                                                        "to start one · esc close")
        table.focus()

    def on_worker_failed(self, message: WorkerFailed) -> None:
        self.query_one(DataTable).loading = False
        self.query_one("#runs-hint", Static).update(f"cannot list the runs: {message.text} · esc close")

    def _selected(self):
        table = self.query_one(DataTable)
        if not self._runs or table.cursor_row < 0:
            return None
        key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
        return self._runs.get(key)

    def action_mark(self) -> None:
        run = self._selected()
        if run is None:
            return
        key = str(run.path)
        if key in self.marked:
            del self.marked[key]
        else:
            self.marked[key] = None
        self.query_one(DataTable).update_cell(key, "mark", "✓" if key in self.marked else "")
        count = f" · {len(self.marked)} marked" if self.marked else ""
        self.query_one("#runs-title", Static).update(f"Runs in {self.root}/{count}")

    def action_compare(self) -> None:
        if len(self.marked) < 2:
            self.notify(f"mark two or more runs with space to compare them ({len(self.marked)} marked)",
                        severity="warning")
            return
        self.app.push_screen(CompareScreen([self._runs[key].path for key in self.marked]))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        run = self._runs.get(event.row_key.value)
        if run is not None:
            self.dismiss(("open", run.path))

    def action_resume(self) -> None:
        run = self._selected()
        if run is None:
            return
        if run.alive or not run.status.resumable:
            self.notify(f"{run.name} is {run.status}{' and alive' if run.alive else ''}: only a killed, stopped "
                        "or failed run can be resumed", severity="warning")
            return
        self.dismiss(("resume", run.path))
