"""One judge prompt's score histograms, one per control group: grouped bars in one chart
(overlaid, to compare the groups bin by bin) or one chart per group (side by side, to see each
shape), with the chosen bin's label marked [like this]. The legend is left to the text beside the
chart (GROUP_STYLES): plotext draws its legend over the bars."""

from __future__ import annotations

import math

from rich.text import Text
from textual.app import RenderResult
from textual_plotext import PlotextPlot

# plotext colours in the hues of the PNG export (studio.judge.report.COLORS): blue, orange, green
GROUP_COLOURS = {"base": "blue", "few-shot": "magenta", "sft": "cyan", "generated": "orange", "target": "green"}
# the same terminal colours as Rich styles, for the legend (plotext's "orange" is ANSI colour 3)
GROUP_STYLES = {"base": "blue", "few-shot": "magenta", "sft": "cyan", "generated": "yellow", "target": "green"}
AXIS_WIDTH = 6  # the columns of a chart that are not its bars: the y axis with its ticks, and the frame
CHART_FRAME = 3  # the rows of a chart that are not its bars: the frame and the x axis's labels


def legible(labels: list[str], width: int, chosen: int | None) -> list[str]:
    """The bin labels that fit side by side in `width` cells, the chosen one first; the others blank.

    plotext drops labels that would overlap, but in an order that changes from run to run (it
    de-duplicates ticks through a set), so a narrow chart would show different labels each time.
    """
    spacing = width / max(1, len(labels))
    kept = [] if chosen is None else [chosen]
    for i in range(len(labels)):
        if all(abs(i - j) * spacing >= (len(labels[i]) + len(labels[j])) / 2 + 1 for j in kept):
            kept.append(i)
    return [label if i in kept else "" for i, label in enumerate(labels)]


class ScorePlot(PlotextPlot):
    """Redraws only when told (`show`); a histogram has a dozen bars, so a redraw is cheap."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._labels: list[str] = []  # one per bin: its centre
        self._counts: dict[str, list[int]] = {}  # group -> texts per bin
        self._side_by_side = False
        self._chosen: int | None = None

    def show(self, labels: list[str], counts: dict[str, list[int]], side_by_side: bool, chosen: int | None) -> None:
        self._labels, self._counts = labels, counts
        self._side_by_side, self._chosen = side_by_side, chosen
        self.refresh()

    def render(self) -> RenderResult:
        if not self._counts:
            return Text("no scores yet: run A and B in the Judge pane (4, then r)", style="dim", justify="center")
        plt = self.plt
        plt.clear_figure()  # the layout (one chart or several) may have changed since the last draw
        top = max(1, max(max(counts) for counts in self._counts.values()))
        # Whole texts (not 0.83 of one), at most one a row: plotext would drop clashing ones in no set order.
        rows = self.size.height - (CHART_FRAME + self._side_by_side)  # a side-by-side chart has a title line
        ticks = list(range(0, top + 1, max(1, math.ceil(top / 4), math.ceil(top / max(1, rows - 1)))))
        labels = [f"[{label}]" if i == self._chosen else label for i, label in enumerate(self._labels)]
        charts = len(self._counts) if self._side_by_side else 1
        labels = legible(labels, self.size.width // charts - AXIS_WIDTH, self._chosen)
        if self._side_by_side:
            plt.subplots(1, len(self._counts))
            for column, (group, counts) in enumerate(self._counts.items(), 1):
                chart = plt.subplot(1, column)
                chart.bar(labels, counts, color=GROUP_COLOURS.get(group, "gray"), width=0.6)
                chart.title(group)
                chart.ylim(0, top)
                chart.yticks(ticks)
        else:
            plt.multiple_bar(labels, list(self._counts.values()),
                             color=[GROUP_COLOURS.get(group, "gray") for group in self._counts])
            plt.ylim(0, top)
            plt.yticks(ticks)
        return super().render()
