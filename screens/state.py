"""What the panes share, in one typed object; `StudioApp.change` is the one way to change it.

The app holds one `StudioState` and replaces it whole on every change, then tells every pane
with one `StateChanged` message that names the fields that changed. A pane reads the state it
needs from `app.state` and reacts to the message; it never reaches into another pane.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from textual.message import Message

from studio.config import RunConfig

if TYPE_CHECKING:
    from studio.judge import JudgePrompt, JudgeResult
    from studio.train import TrainingRun

JUDGE_LABELS = ("A", "B")  # the workbench's two prompts; a label stays while the prompt behind it is edited


@dataclass(frozen=True)
class StudioState:
    config: RunConfig = field(default_factory=RunConfig)  # being edited: the embedded default model on the demo
    training_run: TrainingRun | None = None  # the run this process trains (App.run is taken: it starts the app)
    run_dir: Path | None = None  # the run the panes show: trained here, or opened from its directory
    # The Judge pane's latest run, by label: the results and the prompt they were scored with (its scale
    # for the histogram, its name for the export).
    judge_results: dict[str, list[JudgeResult]] = field(default_factory=dict)
    judge_prompts: dict[str, JudgePrompt] = field(default_factory=dict)

    def judged(self) -> tuple[dict[str, JudgePrompt], dict[str, list[JudgeResult]]]:
        """(prompts, results) for the labels that have both; empty before the first judge run."""
        labels = [label for label in self.judge_results if label in self.judge_prompts]
        return ({label: self.judge_prompts[label] for label in labels},
                {label: self.judge_results[label] for label in labels})


class StateChanged(Message, bubble=False):
    """`app.state` changed; `changed` names the fields. Every pane gets its own copy of the news."""

    def __init__(self, state: StudioState, changed: frozenset[str]) -> None:
        super().__init__()
        self.state = state
        self.changed = changed
