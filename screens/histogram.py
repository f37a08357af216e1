"""Being written by a helper; replaced whole."""

from textual.containers import Container
from textual.widgets import Static


class HistogramPane(Container):
    def compose(self):
        yield Static("HistogramPane")
