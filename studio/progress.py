"""The headless progress line: step, loss, tokens/s and ETA, with evals, samples and errors above it."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from studio.events import Event
from studio.formatting import format_duration
from studio.run_state import RunState


def _number(value, spec: str) -> str:
    """A value of an event formatted, or "-" (missing, or NaN written as text in the log)."""
    return format(value, spec) if isinstance(value, (int, float)) else "-"


class ProgressView:
    """Subscribes to a run's bus; rich keeps the line live from its own refresh thread. A view that is
    not `shown` (a rank other than 0, a process whose launcher shows the progress) prints nothing."""

    def __init__(self, bus, max_steps: int, shown: bool = True, console: Console | None = None) -> None:
        self.bus = bus
        self.shown = shown
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.fields[state]}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss [cyan]{task.fields[loss]}"), TextColumn("{task.fields[tps]}"),
            TextColumn("ETA {task.fields[eta]}"), TextColumn("[dim]observing {task.fields[observe]}"),
            console=self.console, transient=False,
        )
        self.task = self.progress.add_task("train", total=max_steps, state="loading", loss="-",
                                           tps="-", eta="--:--", observe="-")
        self._detached = not shown
        self.preparing = None  # the data preparation's task, while rows are encoded

    def __enter__(self) -> ProgressView:
        if self.shown:
            self.progress.start()
            self._unsubscribe = self.bus.subscribe(self.on_event)
        return self

    def __exit__(self, *exc) -> None:
        if self.shown:
            self._unsubscribe()
        if not self._detached:
            self.progress.stop()

    def detach(self) -> None:
        """The terminal went away: stop drawing, keep training."""
        if not self._detached:
            self._detached = True
            self.progress.live.auto_refresh = False

    def note(self, text: str) -> None:
        if not self._detached:
            self.progress.console.print(text)

    def on_event(self, event: Event) -> None:
        kind = event["type"]
        if kind == "prepare":
            if self.preparing is None:
                self.preparing = self.progress.add_task("prepare", total=event["total"], state="preparing data",
                                                        loss="-", tps="-", eta="--:--", observe="-")
            self.progress.update(self.preparing, completed=event["done"], tps=f"{_number(event.get('rows_per_s'), ',.0f')} rows/s",
                                 eta=format_duration(event.get("eta_s")))
            if event["done"] >= event["total"]:
                self.progress.remove_task(self.preparing)
        elif kind == "step":
            self.progress.update(self.task, completed=event["step"], loss=_number(event.get("loss"), ".4f"),
                                 tps=f"{_number(event.get('tokens_per_s'), ',.0f')} tok/s", eta=format_duration(event.get("eta_s")),
                                 observe=_number(event.get("observe_share"), ".0%"))
        elif kind == "status":
            self.progress.update(self.task, state=event["state"])
            routine = event["reason"] == "training" or (event["state"] == RunState.MEASURING and event["step"])
            if event.get("reason") and not routine:  # not the measurements at every interval
                self.note(f"[dim]{event['state']}:[/] {event['reason']}")
        elif kind == "eval":
            parts = [f"{k} {event[k]:.4f}" for k in ("eval_loss", "perplexity", "style_loss") if event.get(k) is not None]
            self.note(f"[green]eval @ {event['step']}[/]: " + ", ".join(parts))
        elif kind == "sample" and event.get("mode") == "greedy":
            self.note(f"[magenta]sample @ {event['step']}[/] {event['prompt'][:60]!r} -> {event['response'][:100]!r}")
        elif kind == "judge":
            score = _number(event.get("mean"), ".2f")
            failed = f", {event['failed']} failed" if event.get("failed") else ""
            self.note(f"[green]judge @ {event['step']}[/]: {score}{failed} {event.get('note') or ''}".rstrip())
        elif kind == "checkpoint":
            self.note(f"[blue]checkpoint[/] {event['path']}")
        elif kind == "error":
            self.note(f"[red]error[/] {event['message']}")
