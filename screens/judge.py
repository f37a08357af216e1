"""Being written by a helper; replaced whole."""

from textual.containers import Container
from textual.widgets import Static


class JudgePane(Container):
    def compose(self):
        yield Static("JudgePane")
