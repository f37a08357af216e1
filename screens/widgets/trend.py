"""A small trend line with its name and latest value (learning rate, grad norm)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Label, Sparkline

from screens.widgets.loss_chart import downsample


class Trend(Widget):
    def __init__(self, title: str, fmt: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.title = title
        self.fmt = fmt

    def compose(self) -> ComposeResult:
        yield Label(f"{self.title} -", classes="trend-label")
        yield Sparkline([], classes="trend-line")

    def show(self, points: list[tuple[float, float]]) -> None:
        label = self.query_one(".trend-label", Label)
        if not points:
            label.update(f"{self.title} -")
            self.query_one(Sparkline).data = []
            return
        label.update(f"{self.title} {points[-1][1]:{self.fmt}}")
        width = max(self.query_one(Sparkline).size.width, 10)
        self.query_one(Sparkline).data = [y for _, y in downsample(points, width)]
