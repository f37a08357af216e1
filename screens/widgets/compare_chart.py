"""Several runs' curves on one chart: each run one colour, each curve one mark, the judge's score on
its own axis (right), since it is not a loss. The legend is text beside the chart (`legend`):
plotext draws its own over the lines."""

from __future__ import annotations

from rich.text import Text
from textual.app import RenderResult
from textual_plotext import PlotextPlot

from screens.widgets.loss_chart import Series, downsample, tick_label, ticks

# curve -> the mark its line is drawn with; the order is the legend's
MARKS = {"train": "braille", "held-out": "•", "style": "×", "judge": "*"}
LEGEND_MARKS = {"braille": "⠤⠤"}  # how a mark reads in the legend, where it differs from the mark


def legend(runs: list[tuple[str, str]], curves: list[str]) -> Text:
    """A line naming each run in its colour, then the mark of each curve drawn."""
    text = Text()
    for name, colour in runs:
        text.append("■ ", style=colour).append(name, style=f"bold {colour}").append("  ")
    for curve in curves:
        mark = MARKS[curve]
        text.append(f" {LEGEND_MARKS.get(mark, mark)} {curve}" + (" (right)" if curve == "judge" else ""),
                    style="dim")
    return text


class CompareChart(PlotextPlot):
    """Redraws only when told (`show`); each curve is cut to about twice the widget's width at draw time."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.runs: list[tuple[str, dict[str, Series]]] = []  # (colour, curve -> points), one per run, as shown
        self.x_label = "step"
        self.placeholder = "reading the runs…"

    def show(self, runs: list[tuple[str, dict[str, Series]]], x_label: str) -> None:
        self.runs = [(colour, {name: points for name, points in curves.items() if points})
                      for colour, curves in runs]
        self.x_label = x_label
        self.refresh()

    def render(self) -> RenderResult:
        if not any(curves for _, curves in self.runs):
            return Text(self.placeholder, style="dim", justify="center")
        plt = self.plt
        plt.clear_figure()  # the right axis comes and goes with the judge curve
        plt.xlabel(self.x_label)
        limit = 2 * max(self.size.width, 10)
        high = max(x for _, curves in self.runs for points in curves.values() for x, _ in points)
        xs = ticks(high)
        plt.xticks(xs, [tick_label(x) for x in xs])
        for colour, curves in self.runs:
            rgb = tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
            for name, mark in MARKS.items():
                points = downsample(curves.get(name, []), limit)
                if points:
                    xs, ys = zip(*points)
                    plt.plot(xs, ys, color=rgb, marker=mark, yside="right" if name == "judge" else "left")
        return super().render()
