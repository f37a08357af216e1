"""The Scores pane in the real app: fixed results in the app's state (as the Judge pane leaves them),
then its keys, its numbers, its bar listing and its export; and once end to end, fed by a real
A/B run against llm-katan's echo server."""

from __future__ import annotations

import csv

from helpers import record_notifications, text_of, wait_for
from judge_fixtures import (ROWS, echo_katan, open_judge, own_cache, run_over,  # noqa: F401 (fixtures)
                            studio_with_results, texts_file)
from textual.widgets import DataTable

from screens.app import StudioApp
from screens.histogram import HistogramPane

SIZE = (120, 40)


def bin_rows(app) -> list[tuple[str, str, str]]:
    table = app.query_one("#bin-texts", DataTable)
    return [tuple(table.get_row_at(i)[:3]) for i in range(table.row_count)]


async def test_before_any_run_it_says_what_to_do():
    async with StudioApp().run_test(size=SIZE) as pilot:
        await pilot.press("5")
        assert "press r to run A and B" in text_of(pilot.app, "#scores-head")


async def test_groups_spread_and_separation_are_shown():
    async with studio_with_results().run_test(size=SIZE) as pilot:
        await pilot.press("5")
        stats = text_of(pilot.app, "#score-stats-a")
        assert "base       n 4    mean 2.00  sd 0.82" in stats
        assert "generated  n 4    mean 5.25" in stats and "target     n 4    mean 9.00" in stats
        assert "AUC base/target    1.00  (the judge's quality)" in stats
        assert "AUC base/generated 0.88  (the fine-tune's progress)" in stats
        assert "AUC base/target    1.00" in text_of(pilot.app, "#score-stats-b")


async def test_intervals_length_bias_and_b_against_a_in_words_and_in_the_report(tmp_path):
    app = studio_with_results(run_dir=tmp_path / "run")
    async with app.run_test(size=(80, 24)) as pilot:  # the small terminal: the pane scrolls to them
        await pilot.press("5")
        await wait_for(pilot, lambda: "95% CI" in text_of(pilot.app, "#score-stats-b"))
        stats = text_of(pilot.app, "#score-stats-a")
        assert "95% CI 1.00..1.00 · Cohen's d" in stats and "length bias ρ: base " in stats
        assert text_of(pilot.app, "#score-compare").startswith("B vs A, same texts: no detectable difference (+0.00")
        await pilot.press("e")
        report = tmp_path / "run/eval/judge-AB-report.md"
        await wait_for(pilot, report.exists)
    text = report.read_text()
    assert "(95% CI 1.000..1.000, n=4+4)" in text and "length bias (Spearman of score vs length" in text
    assert "no detectable difference (+0.00" in text


async def test_choosing_a_bar_lists_its_texts():
    async with studio_with_results().run_test(size=SIZE) as pilot:
        await pilot.press("5", "p")  # prompt A only
        pane = pilot.app.query_one(HistogramPane)
        assert pane.query_one("#score-col-b").has_class("-hidden")
        # The fullest bar first: score 2 (two base texts and one generated) ties with 9; the first wins.
        assert text_of(pilot.app, "#bin-title") == "bar 2 of 10: scores 1.5 to 2.5, 3 texts"
        assert bin_rows(pilot.app) == [("A", "base", "2"), ("A", "base", "2"), ("A", "generated", "2")]
        await pilot.press(*["right"] * 7)
        assert text_of(pilot.app, "#bin-title").startswith("bar 9 of 10")
        assert bin_rows(pilot.app) == [("A", "generated", "9"), ("A", "target", "9"), ("A", "target", "9")]
        await pilot.press("right", "right")  # stops at the last bar
        assert text_of(pilot.app, "#bin-title") == "bar 10 of 10: scores 9.5 to 10.5, 1 texts"
        await pilot.click("#score-bins", offset=(12 * 4 + 3, 0))  # the fifth of ten cells: score 5
        assert bin_rows(pilot.app) == [("A", "generated", "5"), ("A", "generated", "5")]


async def test_prompt_and_layout_keys():
    async with studio_with_results().run_test(size=SIZE) as pilot:
        await pilot.press("5")
        pane = pilot.app.query_one(HistogramPane)
        assert "A (Yoda-speak) and B (Leprechaun) · groups overlaid" in text_of(pilot.app, "#scores-head")
        await pilot.press("o")
        assert pane.side_by_side and "groups side by side" in text_of(pilot.app, "#scores-head")
        await pilot.press("p", "p")  # both -> A -> B
        assert pane.query_one("#score-col-a").has_class("-hidden")
        assert not pane.query_one("#score-col-b").has_class("-hidden")
        assert {row[0] for row in bin_rows(pilot.app)} == {"B"}


async def test_export_writes_png_and_csv_into_the_run(tmp_path):
    app = studio_with_results(run_dir=tmp_path / "run")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5", "e")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
    png, table = tmp_path / "run/eval/judge-AB-histogram.png", tmp_path / "run/eval/judge-AB-scores.csv"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == 24 and {r["prompt"] for r in rows} == {"A-yoda", "B-leprechaun"}
    assert rows[0]["score"] == "1" and rows[0]["group"] == "base"


async def test_export_without_a_run_goes_to_studio_exports(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    async with studio_with_results().run_test(size=SIZE) as pilot:
        await pilot.press("5", "p", "e")  # prompt A only
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
    assert (tmp_path / "studio-exports/judge-A-histogram.png").stat().st_size > 1000
    assert len(list(csv.DictReader((tmp_path / "studio-exports/judge-A-scores.csv").open()))) == 12


async def test_an_export_that_cannot_be_written_is_told_once(tmp_path):
    (tmp_path / "not-a-folder").write_text("")
    app = studio_with_results(run_dir=tmp_path / "not-a-folder" / "run")
    toasts = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        await pilot.pause()
        await pilot.press("e")
        await wait_for(pilot, lambda: toasts)
        assert len(toasts) == 1 and toasts[0].startswith(("NotADirectoryError", "FileExistsError"))
        assert pilot.app.is_running


async def test_a_run_in_the_judge_pane_shows_up_here(echo_katan, texts_file):
    async with StudioApp().run_test(size=SIZE) as pilot:
        pane = await open_judge(pilot, echo_katan)
        await run_over(pilot, pane, texts_file)
        await pilot.press("5")
        stats = text_of(pilot.app, "#score-stats-a")
        assert "base       n 4    mean 1.75" in stats and "target     n 4    mean 8.50" in stats
        assert "AUC base/target    1.00" in stats
        assert "5 unparsed" not in stats and "1 unparsed" in text_of(pilot.app, "#score-stats-b")  # a 6 on 1-5
        assert [r.score for r in pilot.app.state.judge_results["A"]] == [s for _, s in ROWS]


async def test_a_few_shot_group_and_reference_metrics_are_shown_beside_the_judge():
    import dataclasses

    from screens.state import StudioState
    from studio.judge import JudgeItem, JudgeResult, load_prompt

    prompt = dataclasses.replace(load_prompt("yoda"), id="A-yoda")
    reference = "Strong with the Force, this one is."
    answers = {"base": ("This one is strong with the Force.", [1, 2, 2, 3]),
               "few-shot": ("Strong, this one is.", [3, 4, 4, 5]),
               "generated": ("Strong with the Force, this one is.", [8, 9, 9, 10])}
    results = [JudgeResult(JudgeItem(f"{text} ({i})", group, question=f"q{i}", reference=reference), prompt.id,
                           "openai", "m", score=score, raw=f"Score: {score}")
               for group, (text, scores) in answers.items() for i, score in enumerate(scores)]
    results += [JudgeResult(JudgeItem(reference + f" ({i})", "target"), prompt.id, "openai", "m", score=9, raw="Score: 9")
                for i in range(4)]
    app = StudioApp(state=StudioState(judge_prompts={"A": prompt}, judge_results={"A": results}))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        await wait_for(pilot, lambda: "ROUGE-L" in text_of(pilot.app, "#score-stats-a"), what="the figures")
        stats = text_of(pilot.app, "#score-stats-a")
        assert "few-shot   n 4    mean 4.00" in stats
        assert "the fine-tune beats the few-shot baseline (AUC few-shot vs generated 1.00" in stats
        assert "against the target-style answers: base: ROUGE-L " in stats and "generated: ROUGE-L 0.9" in stats
