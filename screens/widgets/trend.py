"""A small trend line with its name and latest value (learning rate, grad norm, a DPO run's rewards)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.events import Resize
from textual.widget import Widget
from textual.widgets import Label, Sparkline

from screens.widgets.loss_chart import downsample


class Trend(Widget):
    """`title value` above the line. Where one of a row's trends has no room for that (five side by side at
    80 columns), the whole row shows short titles above the values, without lines: a cut label ("reward r")
    said nothing."""

    def __init__(self, title: str, fmt: str, *, short: str | None = None, id: str | None = None) -> None:
        super().__init__(id=id)
        self.title = title
        self.short = short or title
        self.fmt = fmt
        self._points: list[tuple[float, float]] = []

    def compose(self) -> ComposeResult:
        yield Label(f"{self.title} -", classes="trend-label")
        yield Sparkline([], classes="trend-line")
        yield Label("-", classes="trend-value")

    @property
    def value(self) -> str:
        return f"{self._points[-1][1]:{self.fmt}}" if self._points else "-"

    def show(self, points: list[tuple[float, float]]) -> None:
        self._points = points
        self.query_one(".trend-value", Label).update(self.value)
        line = self.query_one(Sparkline)
        line.data = [y for _, y in downsample(points, max(line.size.width, 10))] if points else []
        self._fit_row()

    def on_resize(self, _event: Resize) -> None:
        self.show(self._points)

    def _has_room(self) -> bool:
        return self.content_size.width == 0 or len(f"{self.title} {self.value}") <= self.content_size.width

    def _fit_row(self) -> None:
        row = list(self.parent.query_children(Trend)) if self.parent is not None else [self]
        compact = not all(trend._has_room() for trend in row)
        for trend in row if compact != self.has_class("-compact") else [self]:  # the others' labels are current
            trend.set_class(compact, "-compact")
            trend.query_one(".trend-label", Label).update(trend.short if compact else f"{trend.title} {trend.value}")
