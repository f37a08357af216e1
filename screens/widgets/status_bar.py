"""The run's status line: state, step, speed, ETA, memory, and the last error or reason."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static

from studio.formatting import format_duration
from studio.run_state import RunState

STATE_STYLES = {
    RunState.IDLE: "dim", RunState.STARTING: "yellow", RunState.LOADING: "yellow", RunState.MEASURING: "yellow",
    RunState.RUNNING: "bold green", RunState.PAUSED: "bold yellow", RunState.STOPPED: "bold",
    RunState.FINISHED: "bold green", RunState.FAILED: "bold red", RunState.KILLED: "bold red",
}


@dataclass
class Status:
    state: RunState = RunState.IDLE
    step: int = 0
    max_steps: int | None = None
    tokens_per_s: float | None = None
    eta_s: float | None = None
    memory_mb: float | None = None
    observe_share: float | None = None  # the share of wall time evals and samples took so far
    setup: str = ""  # device, precision, quantization, processes
    judge: str = ""  # the judge's latest score of the sampled answers (train.judge_every), and its failures
    source: str = ""  # "" | the run dir, with "(watching)" when read from disk
    reason: str = ""
    error: str = ""


class StatusBar(Static):
    def show(self, status: Status) -> None:
        line = Text()  # two lines, cut rather than wrapped (studio.tcss), so the chart below never jumps
        line.append(f" {status.state} ", style=STATE_STYLES.get(status.state, "bold"))
        if status.max_steps:
            line.append(f" step {status.step}/{status.max_steps}")
        if status.tokens_per_s is not None:
            line.append(f" · {status.tokens_per_s:,.0f} tok/s")
        if status.state in (RunState.RUNNING, RunState.PAUSED) and status.eta_s is not None:
            line.append(f" · ETA {format_duration(status.eta_s)}")
        if status.memory_mb is not None:
            line.append(f" · mem {status.memory_mb:,.0f} MB")
        if status.observe_share is not None:
            line.append(f" · observing {status.observe_share:.0%}")
        if status.setup:
            line.append(f" · {status.setup}", style="dim")
        if status.judge:
            line.append(f" · {status.judge}", style="green")
        if status.source:
            line.append(f" · {status.source}", style="dim")
        line.append("\n")
        if status.error:
            line.append(f" {status.error}", style="red")
        elif status.reason:
            line.append(f" {status.reason}", style="dim")
        self.update(line)
