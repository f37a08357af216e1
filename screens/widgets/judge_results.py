"""Where the workbench leaves its results for the Scores pane: on the app, keyed by prompt label.

    app.judge_results  {"A": [JudgeResult, ...], "B": [...]}   the latest run of each prompt
    app.judge_prompts  {"A": JudgePrompt, "B": JudgePrompt}      the prompt each list was scored with

The prompt travels with its results because the histogram needs its scale and the export its
name; the label ("A", "B") stays fixed while the user edits the prompt behind it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import App
from textual.message import Message

if TYPE_CHECKING:
    from studio.judge import JudgePrompt, JudgeResult

LABELS = ("A", "B")


class JudgeResultsChanged(Message, bubble=False):
    """The workbench stored new results on the app: the Scores pane reloads."""


def store_results(app: App, prompts: dict[str, JudgePrompt], results: dict[str, list[JudgeResult]]) -> None:
    app.judge_prompts = dict(prompts)
    app.judge_results = dict(results)


def stored_results(app: App) -> tuple[dict[str, JudgePrompt], dict[str, list[JudgeResult]]]:
    """(prompts, results) for the labels that have both; empty before the first run."""
    prompts = getattr(app, "judge_prompts", None) or {}
    results = getattr(app, "judge_results", None) or {}
    labels = [label for label in results if label in prompts]
    return {label: prompts[label] for label in labels}, {label: results[label] for label in labels}
