"""The Judge pane's two small screens: what prompt B changes from prompt A (a diff of their TOML
files), and the question asked before a run that would send many requests."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Static

DIFF_STYLES = (("+++", "bold"), ("---", "bold"), ("@@", "cyan"), ("+", "green"), ("-", "red"))


def coloured_diff(diff: str) -> Text:
    text = Text()
    for line in diff.splitlines():
        style = next((style for start, style in DIFF_STYLES if line.startswith(start)), "")
        text.append(line + "\n", style=style)
    return text


class PromptDiff(ModalScreen[None]):
    BINDINGS = [Binding("escape,d,q", "dismiss(None)", "Close")]

    def __init__(self, diff: str) -> None:
        super().__init__()
        self.diff = diff

    def compose(self) -> ComposeResult:
        with Vertical(id="diff-dialog"):
            yield Static("prompt A → prompt B, as their TOML files (- A only, + B only)", id="diff-title")
            with VerticalScroll():
                yield Static(coloured_diff(self.diff) if self.diff else Text("A and B are the same prompt."),
                             id="diff-text")
        yield Footer()


class ConfirmRun(ModalScreen[bool]):
    """A yes/no question: dismisses with True (y, the first button) or False."""

    BINDINGS = [
        Binding("y", "dismiss(True)", "Yes"),
        Binding("n,escape", "dismiss(False)", "Not now"),
    ]

    def __init__(self, question: str, yes: str = "Send") -> None:
        super().__init__()
        self.question = question
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-dialog"):
            yield Static(self.question, id="confirm-question", markup=False)
            with Horizontal(id="confirm-buttons"):
                yield Button(f"{self.yes} (y)", id="send", variant="primary", compact=True)
                yield Button("Not now (n)", id="cancel", compact=True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "send")
