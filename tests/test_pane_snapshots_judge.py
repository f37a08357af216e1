"""SVG snapshots of the Judge and Scores panes at 80x24 and 160x48 (regenerate: pytest --snapshot-update).

Only deterministic states: the workbench as it opens (no API key in the environment, so the
missing-key line shows), and the Scores pane on fixed results in the app's state.
"""

from __future__ import annotations

from helpers import at_both_sizes
from judge_fixtures import studio_with_results

from screens.app import StudioApp


@at_both_sizes
def test_judge_pane_fresh(snap_compare, monkeypatch, size):
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    assert snap_compare(StudioApp(), terminal_size=size, press=["4"])


@at_both_sizes
def test_scores_pane_both_prompts_overlaid(snap_compare, size):
    assert snap_compare(studio_with_results(), terminal_size=size, press=["5"])


@at_both_sizes
def test_scores_pane_prompt_a_side_by_side_on_a_chosen_bar(snap_compare, size):
    assert snap_compare(studio_with_results(), terminal_size=size, press=["5", "p", "o", "right", "right"])
