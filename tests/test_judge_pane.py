"""The Judge and Scores panes against a real OpenAI-compatible echo server on loopback.

The echo judge answers with the request's text, so each text carries its own `Score: N`.
"""

from __future__ import annotations

import csv
import json

import pytest
from judge_fixtures import echo_katan  # noqa: F401  (a fixture)
from textual.widgets import DataTable, Input, Static

from screens.app import StudioApp

SIZE = (120, 40)
SCORES = {"base": [2, 3, 2, 4, 1, 3], "target": [8, 9, 7, 9, 8, 6]}


@pytest.fixture
def texts_file(tmp_path, monkeypatch):
    path = tmp_path / "texts.jsonl"
    rows = [{"text": f"{group} text {i}. Score: {score}", "group": group}
            for group, scores in SCORES.items() for i, score in enumerate(scores)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.setenv("STUDIO_JUDGE_TEXTS", str(path))
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    return path


async def open_judge(pilot, server) -> None:
    await pilot.press("4")
    await pilot.pause()
    for side in "AB":
        pilot.app.query_one(f"#url-{side}", Input).value = server.base_url
        pilot.app.query_one(f"#model-{side}", Input).value = "judge-echo"
        pilot.app.query_one(f"#key-{side}", Input).value = ""


def text_of(app, selector: str) -> str:
    return str(app.query_one(selector, Static).render())


async def test_probe_scores_with_both_judges(echo_katan, texts_file):  # noqa: F811
    app = StudioApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_judge(pilot, echo_katan)
        app.query_one("#probe", Input).value = "Strong with the Force, you are. Score: 8"
        app.query_one("#probe", Input).focus()
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        shown = text_of(app, "#probe-result")
        assert "A: 8" in shown and "B: 8" in shown


async def test_run_a_and_b_fills_the_table_and_the_histogram(echo_katan, texts_file):  # noqa: F811
    app = StudioApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_judge(pilot, echo_katan)
        app.query_one("JudgePane").focus()
        await pilot.press("r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.query_one(DataTable)
        assert table.row_count == 12
        assert set(app.judge_results) == {"A:yoda", "B:leprechaun"}
        assert all(r.score is not None for rs in app.judge_results.values() for r in rs)
        assert "24 judged" in text_of(app, "#counters") and "0 errors" in text_of(app, "#counters")

        await pilot.press("5")
        await pilot.pause()
        stats = text_of(app, "#stats")
        assert "AUC base/target 1.00" in stats
        app.query_one("HistogramPane").focus()
        for _ in range(7):  # from the bar of score 1 to the bar of score 8
            await pilot.press("right")
        await pilot.pause()
        assert "2 texts scored 7.5 to 8.5" in text_of(app, "#bar-texts")
        await pilot.press("e")
        await pilot.pause()
        assert (texts_file.parent / "studio-exports" / "judge-histogram.png").stat().st_size > 0
        with open(texts_file.parent / "studio-exports" / "judge-scores.csv", newline="") as f:
            assert len(list(csv.DictReader(f))) == 24


async def test_a_second_run_is_answered_from_the_cache(echo_katan, texts_file):  # noqa: F811
    app = StudioApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_judge(pilot, echo_katan)
        app.query_one("JudgePane").focus()
        await pilot.press("r")
        await app.workers.wait_for_complete()
        before = echo_katan.requests()
        await pilot.press("r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert echo_katan.requests() == before
        assert "24 cache hits" in text_of(app, "#counters")


async def test_a_missing_api_key_names_its_variable(echo_katan, texts_file, monkeypatch):  # noqa: F811
    monkeypatch.delenv("NO_SUCH_JUDGE_KEY", raising=False)
    app = StudioApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_judge(pilot, echo_katan)
        app.query_one("#key-A", Input).value = "NO_SUCH_JUDGE_KEY"
        app.query_one("JudgePane").focus()
        await pilot.press("r")
        await pilot.pause()
        problem = text_of(app, "#problem")
        assert "NO_SUCH_JUDGE_KEY" in problem and "export NO_SUCH_JUDGE_KEY=" in problem
        assert app.query_one(DataTable).row_count == 0


async def test_scores_pane_says_what_to_do_before_any_run(texts_file):
    app = StudioApp()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        await pilot.pause()
        assert "run A and B on the Judge pane" in text_of(app, "#stats")
        app.query_one("HistogramPane").focus()
        await pilot.press("e")
        await pilot.pause()
        assert not (texts_file.parent / "studio-exports").exists()


def test_judge_pane_snapshot(snap_compare, texts_file):
    async def fresh(pilot):
        await pilot.press("4")
        await pilot.pause()

    assert snap_compare(StudioApp(), terminal_size=SIZE, run_before=fresh)


def test_scores_pane_snapshot(snap_compare, texts_file):
    from studio.judge import JudgeItem, JudgeResult, load_prompt

    prompt = load_prompt("yoda")
    results = [JudgeResult(JudgeItem(f"{g} text {i}", g), prompt.id, "openai", "judge-echo", score=float(s),
                           raw=f"Score: {s}", attempts=1)
               for g, scores in SCORES.items() for i, s in enumerate(scores)]

    async def with_results(pilot):
        pilot.app.judge_results = {prompt.id: results}
        pilot.app.judge_prompts = [prompt]
        await pilot.press("5")
        await pilot.pause()

    assert snap_compare(StudioApp(), terminal_size=SIZE, run_before=with_results)
