"""The app's two modal screens: the key help, and the question asked when quitting during a run."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

KeySection = tuple[str, list[tuple[str, str]]]  # (pane title, [(key, what it does)])


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss(None)", "Close")]

    def __init__(self, sections: list[KeySection]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        with Vertical(id="help-dialog"):
            yield Static("Keys  (ctrl+p: every action by name · esc closes)", id="help-title")
            with VerticalScroll():
                for title, keys in self.sections:
                    table = Table(box=None, show_header=False, padding=(0, 1), expand=True)
                    table.add_column(width=10, style="bold cyan", no_wrap=True)
                    table.add_column(ratio=1)
                    for key, description in keys:
                        table.add_row(key, description)
                    yield Static(Text(title, style="bold underline"), classes="help-section")
                    yield Static(table)


class QuitDialog(ModalScreen[str | None]):
    """Dismisses with "stop", "keep" or None (stay)."""

    BINDINGS = [
        Binding("s", "dismiss('stop')", "Stop the run"),
        Binding("k", "dismiss('keep')", "Keep training"),
        Binding("escape", "dismiss(None)", "Cancel"),
    ]

    def __init__(self, run_dir: Path) -> None:
        super().__init__()
        self.run_dir = run_dir

    def compose(self) -> ComposeResult:
        with Vertical(id="quit-dialog"):
            yield Static(f"A run is training: {self.run_dir}\n\n"
                         "Stop it (a checkpoint and the adapter are saved), or keep it training headless in "
                         "this process and reattach later with `studio watch`?", id="quit-question")
            with Horizontal(id="quit-buttons"):
                yield Button("Stop run (s)", id="stop", variant="error", compact=True)
                yield Button("Keep training (k)", id="keep", variant="primary", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "cancel" else event.button.id)
