"""The learning-rate range test's curve (train.learning_rate = "auto"): the smoothed loss against the
rate on a log axis, with the rate the run chose marked. Opened with `l` in the Train pane."""

from __future__ import annotations

import math

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static
from textual_plotext import PlotextPlot

from studio.formatting import format_range_test


class RangeTestChart(PlotextPlot):
    def __init__(self, event: dict) -> None:
        super().__init__(id="range-test-chart")
        self.event = event

    def on_mount(self) -> None:
        plt, e = self.plt, self.event
        plt.xlabel("log10 learning rate")
        plt.ylabel("loss (smoothed)")
        plt.plot([math.log10(r) for r in e["rates"]], e["losses"], color="cyan", marker="braille", label="loss")
        plt.vline(math.log10(e["chosen"]), "green")
        if e.get("steepest"):
            plt.vline(math.log10(e["steepest"]), "orange")


class RangeTestScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,l,q", "dismiss(None)", "Close")]

    def __init__(self, event: dict) -> None:
        super().__init__()
        self.event = event

    def compose(self) -> ComposeResult:
        with Vertical(id="range-test-dialog"):
            yield Static(format_range_test(self.event), id="range-test-title")
            yield Static("green: the rate chosen · orange: steepest descent · esc closes", id="range-test-hint")
            yield RangeTestChart(self.event)
