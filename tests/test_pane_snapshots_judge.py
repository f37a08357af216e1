"""SVG snapshots of the Judge and Scores panes at 80x24 and 160x48 (regenerate: pytest --snapshot-update).

Only deterministic states: the workbench as it opens (no API key in the environment: the weak local
judge), the workbench after a run (fixed results put in its table, both prompts rated, two texts
labelled), and the Scores pane on fixed results in the app's state.
"""

from __future__ import annotations

from helpers import at_both_sizes
from judge_fixtures import fixed_results, studio_with_results

from screens.app import StudioApp
from screens.judge import JudgePane
from screens.widgets.judge_table import JudgeTable


@at_both_sizes
def test_judge_pane_fresh(snap_compare, monkeypatch, size):
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    assert snap_compare(StudioApp(), terminal_size=size, press=["4"])


async def after_a_run(pilot) -> None:
    """The table as a run leaves it (A's and B's fixed results on the same texts), rated, two texts labelled."""
    await pilot.press("4")
    pane = pilot.app.query_one(JudgePane)
    prompts, results = fixed_results()
    for label, prompt in prompts.items():
        pane.side(label).set_prompt(prompt)
    table = pane.query_one(JudgeTable)
    table.start([r.item for r in results["A"]], {label: p.scale for label, p in prompts.items()})
    table.add_results([(label, i, r) for label, rs in results.items() for i, r in enumerate(rs)])
    pilot.app.change(judge_prompts=prompts, judge_results=results)
    pane.focus()
    await pilot.press("l", "y", "down", "n")
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


@at_both_sizes
def test_judge_pane_after_a_run_rated_and_labelled(snap_compare, monkeypatch, tmp_path, size):
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)  # the labels file goes to ./studio-exports
    assert snap_compare(StudioApp(), terminal_size=size, run_before=after_a_run)


@at_both_sizes
def test_scores_pane_both_prompts_overlaid(snap_compare, size):
    assert snap_compare(studio_with_results(), terminal_size=size, press=["5"])


@at_both_sizes
def test_scores_pane_prompt_a_side_by_side_on_a_chosen_bar(snap_compare, size):
    assert snap_compare(studio_with_results(), terminal_size=size, press=["5", "p", "o", "right", "right"])


@at_both_sizes
def test_scores_pane_asks_how_to_make_preference_pairs(snap_compare, tmp_path, size):
    (tmp_path / "yoda-sft" / "adapter").mkdir(parents=True)
    assert snap_compare(studio_with_results(run_dir=tmp_path / "yoda-sft"), terminal_size=size, press=["5", "m"])
