"""The Judge pane in the real app, against a real OpenAI-compatible server on loopback (llm-katan's
echo backend: it answers with the request, so each text carries its own `Score: N`).

Prompt A is the Yoda preset (scale 1-10), prompt B the faithfulness preset (scale 1-5). The echo
gives both the same number, but mapped onto 0-1 by different scales the two verdicts disagree by a
known amount, and a 6 or more is out of B's range: kept unparsed, never clamped. That makes the
order "disagreements first" and every counter exact.
"""

from __future__ import annotations

import time

from helpers import imported_after, record_notifications, text_of, wait_for
from judge_fixtures import (ROWS, echo_katan, open_judge, own_cache, run_over, texts_file,  # noqa: F401 (fixtures)
                            verdict_text)
from katan import Katan
from textual.widgets import Input, Static

from screens.app import StudioApp
from screens.widgets.judge_table import JudgeTable
from studio.judge import load_prompt

SIZE = (120, 40)


def gap(score: int) -> float | None:
    """|A - B| on 0-1 when both judges scored: A on 1-10, B on 1-5."""
    return abs((score - 1) / 9 - (score - 1) / 4) if score <= 5 else None


def test_the_panes_import_no_heavy_engine():
    # The app opens in under 2 s: the judge's HTTP client, torch and matplotlib load on workers.
    modules = imported_after("import screens.judge, screens.histogram")
    assert not modules & {"torch", "transformers", "openai", "matplotlib", "httpx"}


async def test_probe_shows_both_judges_scores(echo_katan):
    async with StudioApp().run_test(size=SIZE) as pilot:
        await open_judge(pilot, echo_katan, a="yoda", b="leprechaun")
        await pilot.press("p")
        assert pilot.app.focused.id == "probe"
        await pilot.press(*"Strong you are. Score: 7", "enter")
        await wait_for(pilot, lambda: all(not text_of(pilot.app, f"#probe-{s}").startswith("asking") for s in "ab"))
        assert text_of(pilot.app, "#probe-a").startswith("7 ")
        assert text_of(pilot.app, "#probe-b").startswith("7 ")


async def test_a_probe_the_prompt_cannot_render_says_why(echo_katan):
    async with StudioApp().run_test(size=SIZE) as pilot:
        await open_judge(pilot, echo_katan, a="yoda", b="faithfulness")
        pilot.app.query_one("#probe", Input).value = "Score: 4"
        await pilot.press("p", "enter")
        await wait_for(pilot, lambda: not text_of(pilot.app, "#probe-b").startswith("asking"))
        assert text_of(pilot.app, "#probe-a").startswith("4 ")
        assert "no question" in text_of(pilot.app, "#probe-b")  # faithfulness judges an answer to a question


async def test_run_fills_the_table_disagreements_first_and_counts(echo_katan, texts_file):
    async with StudioApp().run_test(size=SIZE) as pilot:
        pane = await open_judge(pilot, echo_katan)
        await run_over(pilot, pane, texts_file)
        table = pane.query_one(JudgeTable)
        assert table.row_count == len(ROWS)
        shown = [table.get_row_at(i) for i in range(table.row_count)]
        known = sorted((gap(s) for _, s in ROWS if gap(s) is not None), reverse=True)
        assert [row[0] for row in shown] == [f"{g:.2f}" for g in known] + [""] * (len(ROWS) - len(known))
        assert shown[0][1:4] == ["5", "5", "generated"]  # the largest gap
        assert [row[2] for row in shown[len(known):]] == ["?"] * (len(ROWS) - len(known))  # out of B's range
        assert text_of(pilot.app, "#judge-counters") == \
            "requests 24 · retries 0 · errors 0 · unparsed 5 · cache hits 0"
        assert "Spearman" in text_of(pilot.app, "#run-status")

        # The results wait on the app for the Scores pane.
        results = pilot.app.state.judge_results
        assert [r.score for r in results["A"]] == [s for _, s in ROWS]
        assert [r.score for r in results["B"]] == [s if s <= 5 else None for _, s in ROWS]
        assert pilot.app.state.judge_prompts["B"].id == "B-faithfulness"

        # Unchanged prompts and texts: everything comes from the cache, no request is made.
        before = echo_katan.requests()
        await run_over(pilot, pane, texts_file)
        assert echo_katan.requests() == before
        assert text_of(pilot.app, "#judge-counters") == \
            "requests 0 · retries 0 · errors 0 · unparsed 5 · cache hits 24"


async def test_sorting_by_key_and_by_header(echo_katan, texts_file):
    async with StudioApp().run_test(size=SIZE) as pilot:
        pane = await open_judge(pilot, echo_katan)
        await run_over(pilot, pane, texts_file)
        table = pane.query_one(JudgeTable)

        def column(index: int) -> list[str]:
            return [table.get_row_at(i)[index] for i in range(table.row_count)]

        await pilot.press("s")  # by A, highest first
        assert column(1) == [str(s) for s in sorted((s for _, s in ROWS), reverse=True)]
        await pilot.click("#judge-table", offset=(16, 0))  # B's header: by B, highest first, unscored last
        assert table.sort_column == "B"
        b_scores = sorted(s for _, s in ROWS if s <= 5)
        assert column(2) == [str(s) for s in reversed(b_scores)] + ["?"] * 5
        await pilot.click("#judge-table", offset=(16, 0))  # again: lowest first
        assert column(2) == [str(s) for s in b_scores] + ["?"] * 5


async def test_the_highlighted_row_shows_the_whole_text_and_both_verdicts(echo_katan, texts_file):
    async with StudioApp().run_test(size=SIZE) as pilot:
        pane = await open_judge(pilot, echo_katan)
        await run_over(pilot, pane, texts_file)
        pane.query_one(JudgeTable).focus()
        await pilot.press("down", "up")
        detail = text_of(pilot.app, "#judge-detail")
        assert detail.startswith(f"[generated] {verdict_text(5, 5)}")
        assert "\nA 5: " in detail and "\nB 5: " in detail


async def test_without_a_texts_file_it_judges_the_demo_control_groups(echo_katan):
    async with StudioApp().run_test(size=SIZE) as pilot:
        pane = await open_judge(pilot, echo_katan, a="yoda", b="leprechaun")
        pane.query_one("#questions", Input).value = "3"
        pane.focus()
        await pilot.press("r")
        await wait_for(pilot, lambda: text_of(pilot.app, "#run-status").startswith("done"))
        table = pane.query_one(JudgeTable)
        assert table.row_count == 6  # three questions, each with its plain (base) and Yoda (target) answer
        assert sorted(item.group for item in table.items) == ["base"] * 3 + ["target"] * 3
        assert "errors 0" in text_of(pilot.app, "#judge-counters")


async def test_cancel_stops_the_run_and_keeps_what_was_judged(tmp_path, texts_file):
    with Katan(tmp_path, "--latency-ms", "1500") as slow:
        async with StudioApp().run_test(size=SIZE) as pilot:
            pane = await open_judge(pilot, slow)
            pane.query_one("#texts-file", Input).value = str(texts_file)
            pane.focus()
            started = time.monotonic()
            await pilot.press("r")
            await wait_for(pilot, lambda: pane.has_class("-running"))
            await pilot.press("x")
            await wait_for(pilot, lambda: text_of(pilot.app, "#run-status").startswith("cancelled"))
            assert time.monotonic() - started < 3  # 24 requests of 1.5 s, 8 + 8 at a time, take 3 s or more
            assert not pane.has_class("-running")
            results = pilot.app.state.judge_results["A"] + pilot.app.state.judge_results["B"]
            assert len(results) == 2 * len(ROWS)
            assert any(r.error == "cancelled" for r in results)
            assert "errors 0" in text_of(pilot.app, "#judge-counters")  # cancelled is not an error


async def test_a_texts_file_that_cannot_be_read_is_told_once_and_in_the_status(tmp_path, monkeypatch):
    async with StudioApp().run_test(size=SIZE) as pilot:
        toasts = record_notifications(pilot.app)
        pane = await open_judge(pilot)
        for side in "AB":  # a loopback server without a key: usable, and never asked (the file fails first)
            pane.side(side).set_prompt(load_prompt("yoda").with_endpoint(base_url="http://127.0.0.1:9/v1"))
        pane.query_one("#texts-file", Input).value = str(tmp_path / "missing.jsonl")
        pane.focus()
        await pilot.press("r")
        await wait_for(pilot, lambda: pilot.app.query_one("#run-status").has_class("-error"))
        await pilot.pause()
        assert len(toasts) == 1 and "missing.jsonl" in toasts[0]
        assert text_of(pilot.app, "#run-status") == toasts[0] and not pane.has_class("-running")


async def test_keys_go_to_the_fields_and_escape_comes_back():
    async with StudioApp().run_test(size=SIZE) as pilot:
        pane = await open_judge(pilot)
        for key, field in (("a", "system-a"), ("b", "system-b"), ("t", "texts-file"), ("p", "probe")):
            pane.focus()
            await pilot.press(key)
            assert pilot.app.focused.id == field
            await pilot.press("escape")  # out of the field, or out of the prompt editor (a, b)
            assert pilot.app.focused is pane


async def test_a_missing_api_key_is_named_with_how_to_set_it(monkeypatch):
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    async with StudioApp().run_test(size=SIZE) as pilot:
        pane = await open_judge(pilot)
        for side in "AB":
            pane.side(side).set_prompt(load_prompt("yoda"))  # the presets' endpoint: OpenRouter
        for side in "ab":
            status = pilot.app.query_one(f"#key-{side}", Static)
            assert "OPENROUTER_API_KEY is not set" in str(status.content)
            assert "export OPENROUTER_API_KEY=" in str(status.content)
            assert status.has_class("-error")
        await pilot.press("r")
        assert text_of(pilot.app, "#run-status") == "fix the judge endpoints above first"
        assert not pane.workers  # nothing was sent anywhere
        assert "OPENROUTER_API_KEY" not in text_of(pilot.app, "#probe-a")  # said once, on the key line


async def test_the_key_itself_is_never_shown(echo_katan, monkeypatch, texts_file):
    secret = "sk-test-do-not-show-4242"
    monkeypatch.setenv("STUDIO_TEST_JUDGE_KEY", secret)
    async with StudioApp().run_test(size=SIZE) as pilot:
        pane = await open_judge(pilot, echo_katan)
        for side in "AB":
            pane.side(side).set_prompt(pane.side(side).prompt().with_endpoint(api_key_env="STUDIO_TEST_JUDGE_KEY"))
        await pilot.pause()
        assert text_of(pilot.app, "#key-a") == "API key from $STUDIO_TEST_JUDGE_KEY (set)"
        await run_over(pilot, pane, texts_file)
        await pilot.press("p", *"Score: 3", "enter")
        await wait_for(pilot, lambda: not text_of(pilot.app, "#probe-a").startswith("asking"))
        screen = pilot.app.export_screenshot()
        assert secret not in screen
        assert all(secret not in str(s.content) for s in pilot.app.query(Static))
