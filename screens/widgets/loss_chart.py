"""The loss chart: train, held-out and style-paragraph loss against the step, and the judge's mean score
of the sampled answers (train.judge_every) on an axis of its own, on the right."""

from __future__ import annotations

import math

from rich.text import Text
from textual.app import RenderResult
from textual_plotext import PlotextPlot

Series = list[tuple[float, float]]

# label -> plotext colour; the order is the legend's
CURVES = {"train": "cyan", "held-out": "orange", "style": "magenta"}
JUDGE = ("judge", "green")  # a score, not a loss: drawn against the right-hand axis


def downsample(points: Series, limit: int) -> Series:
    """At most `limit` points: the mean of equal buckets, so a long noisy curve stays cheap to draw.

    A 20k-point redraw took 131 ms, a 200-point one 13 ms (see DESIGN.md), and the GIL is shared
    with the trainer: the chart never draws more than about twice its width.
    """
    if len(points) <= limit:
        return points
    out = []
    for i in range(limit):
        bucket = points[i * len(points) // limit: (i + 1) * len(points) // limit]
        out.append((sum(x for x, _ in bucket) / len(bucket), sum(y for _, y in bucket) / len(bucket)))
    out[-1] = points[-1]  # the newest value is the one the user is waiting for
    return out


def ticks(high: float, count: int = 5) -> list[float]:
    """About `count` round ticks from 0 to `high` (steps and tokens count from 0): 1, 2 or 5 times a power
    of ten apart, never less than 1 (half a step or a token means nothing)."""
    raw = max(high, 1) / count
    power = 10 ** math.floor(math.log10(raw))
    spacing = max(1, next(m * power for m in (1, 2, 5, 10) if m * power >= raw))
    return [i * spacing for i in range(int(high // spacing) + 1)]


def tick_label(value: float) -> str:
    """12, 1.5k, 20k, 3M: a tick's label, short enough for a narrow chart."""
    for size, suffix in ((1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:g}"


class LossChart(PlotextPlot):
    """Redraws only when told (`show`); the points are cut to the widget's width at draw time."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._curves: dict[str, Series] = {}
        self.placeholder = "no steps yet"

    def show(self, curves: dict[str, Series]) -> None:
        self._curves = {name: list(points) for name, points in curves.items() if points}
        self.refresh()

    def render(self) -> RenderResult:
        if not self._curves:
            return Text(self.placeholder, style="dim", justify="center")
        plt = self.plt
        plt.clear_data()
        plt.xlabel("step")
        limit = 2 * max(self.size.width, 10)
        xs = ticks(max(x for points in self._curves.values() for x, _ in points))
        plt.xticks(xs, [tick_label(x) for x in xs])  # whole steps: plotext's own ticks read 14.2 at step 57
        for name, colour in CURVES.items():
            points = downsample(self._curves.get(name, []), limit)
            if points:
                xs, ys = zip(*points)
                plt.plot(xs, ys, label=name, color=colour, marker="braille")
        name, colour = JUDGE
        points = downsample(self._curves.get(name, []), limit)
        if points:
            xs, ys = zip(*points)
            plt.plot(xs, ys, label=f"{name} (right)", color=colour, marker="dot", yside="right")
        return super().render()
