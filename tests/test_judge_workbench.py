"""The Judge pane as a workbench (issue 10): the local judge without a key, keys bound to their host and
typed keys kept in memory, the whole prompt edited, saved and loaded, the diff of A and B, probes with a
question and a reference, pairwise mode, the cost before a run, human labels, and each prompt's AUC with
its interval and its agreement with the labels.

Judges answer from loopback servers: llm-katan's echo (each text carries its own `Score: N`) or a
scripted server that records the key each request carried.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
import time

from helpers import record_notifications, text_of, wait_for
from judge_fixtures import ROWS, echo_katan, open_judge, own_cache, run_over, texts_file  # noqa: F401 (fixtures)
from judge_server import ScriptedServer, completion
from textual.widgets import Input, Select, Static, TextArea

import screens.judge
from screens.app import StudioApp
from screens.histogram import HistogramPane
from screens.state import StudioState
from screens.widgets.judge_dialogs import ConfirmRun, PromptDiff
from screens.widgets.judge_editor import PromptEditor
from screens.widgets.judge_table import JudgeTable
from studio.judge import LocalJudge, load_prompt, save_prompt
from studio.judge.offline import LOCAL_LABEL, LOCAL_MODEL, local_prompt
from studio.judge.rating import CANNOT_SEPARATE

SIZE = (120, 40)


def echo(body: dict) -> dict:
    """An answer that repeats the request's last message: the judged text's own `Score: N` is the verdict."""
    return completion(body["messages"][-1]["content"])


async def edit(pilot, key: str) -> PromptEditor:
    pilot.app.query_one(screens.judge.JudgePane).focus()
    await pilot.press(key)
    await pilot.pause()
    assert isinstance(pilot.app.screen, PromptEditor)
    return pilot.app.screen


def said(editor: PromptEditor) -> str:
    return str(editor.query_one("#editor-message", Static).content)


async def set_field(pilot, editor: PromptEditor, selector: str, value: str) -> None:
    editor.query_one(selector, Input).value = value
    await pilot.pause()


async def probe(pilot, text: str) -> None:
    pane = pilot.app.query_one(screens.judge.JudgePane)
    pane.query_one("#probe", Input).value = text
    pane.focus()
    await pilot.press("p", "enter")
    await wait_for(pilot, lambda: all(not text_of(pilot.app, f"#probe-{s}").startswith("asking") for s in "ab"))


def write_texts(path, rows: list[tuple[str, int]]) -> str:
    path.write_text("".join(json.dumps({"text": f"Answer {i}. Score: {score}", "group": group}) + "\n"
                            for i, (group, score) in enumerate(rows)))
    return str(path)


# -- the judge with no key ---------------------------------------------------------------------------------


async def test_without_a_key_both_judges_start_as_the_weak_local_judge(monkeypatch):
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    async with StudioApp().run_test(size=SIZE) as pilot:
        pane = await open_judge(pilot)
        for label in "AB":
            prompt = pane.side(label).prompt()
            assert (prompt.endpoint.backend, prompt.endpoint.model, prompt.parse) == ("local", LOCAL_MODEL, "yesno")
            assert text_of(pilot.app, f"#key-{label.lower()}") == LOCAL_LABEL
            assert not pilot.app.query_one(f"#key-{label.lower()}").has_class("-error")


async def test_r_scores_the_demo_controls_with_the_local_judge(tiny_model_dir):
    async with StudioApp().run_test(size=SIZE) as pilot:
        pane = await open_judge(pilot)
        for label in "AB":  # the offline prompt on a tiny model, so the test takes seconds
            pane.side(label).set_prompt(local_prompt(model=str(tiny_model_dir)))
        pane.query_one("#questions", Input).value = "2"
        pane.focus()
        await pilot.press("r")
        await wait_for(pilot, lambda: text_of(pilot.app, "#run-status").startswith("done"), timeout=120)
        table = pane.query_one(JudgeTable)
        assert sorted(item.group for item in table.items) == ["base", "base", "target", "target"]
        assert all(r.score is not None for r in table.finished())
        # One model in this process: A first, then B asks the same and is answered from the cache.
        assert text_of(pilot.app, "#judge-counters").endswith("cache hits 4")
        await wait_for(pilot, lambda: "AUC" in text_of(pilot.app, "#rating-a"))


async def test_the_status_says_it_waits_for_the_local_model_and_x_stops_there(tiny_model_dir, monkeypatch):
    loading = threading.Event()
    monkeypatch.setattr(LocalJudge, "load", lambda self: loading.wait(30))  # a model that takes its time
    async with StudioApp().run_test(size=SIZE) as pilot:
        pane = await open_judge(pilot)
        for label in "AB":
            pane.side(label).set_prompt(local_prompt(model=str(tiny_model_dir)))
        pane.query_one("#questions", Input).value = "2"
        pane.focus()
        await pilot.press("r")
        await wait_for(pilot, lambda: text_of(pilot.app, "#run-status").startswith("loading the local judge's model"))
        await pilot.press("x")
        loading.set()
        await wait_for(pilot, lambda: text_of(pilot.app, "#run-status").startswith("cancelled"))


async def test_a_judge_whose_interval_holds_one_half_says_it_cannot_separate(echo_katan, tmp_path, texts_file):
    mixed = write_texts(tmp_path / "mixed.jsonl", [("base", 3), ("base", 6), ("base", 4), ("base", 7),
                                                   ("target", 5), ("target", 4), ("target", 6), ("target", 3)])
    async with StudioApp().run_test(size=SIZE) as pilot:
        pane = await open_judge(pilot, echo_katan, a="yoda", b="leprechaun")
        await run_over(pilot, pane, mixed)
        await wait_for(pilot, lambda: "AUC" in text_of(pilot.app, "#rating-a"))
        for side in "ab":
            assert CANNOT_SEPARATE in text_of(pilot.app, f"#rating-{side}")
        await run_over(pilot, pane, texts_file)  # base 1-3, target 7-10: apart
        await wait_for(pilot, lambda: "1.00" in text_of(pilot.app, "#rating-a"))
        assert text_of(pilot.app, "#rating-a").startswith("AUC 1.00 (95% CI 1.00..1.00)")
        assert CANNOT_SEPARATE not in text_of(pilot.app, "#rating-a")


# -- keys ------------------------------------------------------------------------------------------------


async def test_a_key_variable_stays_with_the_host_it_was_named_for(monkeypatch):
    """Defect 7: moving prompt A to another URL must not take OPENROUTER_API_KEY along."""
    secret = "sk-or-test-do-not-send-4242"
    monkeypatch.setenv("OPENROUTER_API_KEY", secret)
    with ScriptedServer(echo) as server:
        async with StudioApp().run_test(size=SIZE) as pilot:
            pane = await open_judge(pilot)
            assert pane.side("A").prompt().endpoint.api_key_env == "OPENROUTER_API_KEY"  # the key is set: OpenRouter
            pane.side("B").set_prompt(load_prompt("yoda").with_endpoint(base_url=server.base_url, model="m"))
            editor = await edit(pilot, "a")
            await set_field(pilot, editor, "#url-a", server.base_url)
            assert editor.query_one("#keyenv-a", Input).value == ""  # the variable did not follow the URL
            await pilot.press("escape")
            assert pane.side("A").prompt().endpoint.api_key_env == ""
            await probe(pilot, "Score: 5")
            assert server.keys == ["Bearer no-key", "Bearer no-key"]
            # Naming the variable again, for this host, is the user's own choice: then it goes there.
            editor = await edit(pilot, "a")
            await set_field(pilot, editor, "#keyenv-a", "OPENROUTER_API_KEY")
            await pilot.press("escape")
            await probe(pilot, "Score: 6")
            assert sorted(server.keys[2:]) == sorted([f"Bearer {secret}", "Bearer no-key"])


async def test_a_key_typed_in_goes_only_to_its_host_and_is_written_nowhere(tmp_path, monkeypatch, texts_file):
    secret = "sk-typed-in-memory-only-9191"
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STUDIO_TEST_UNSET_KEY", raising=False)
    with ScriptedServer(echo) as mine, ScriptedServer(echo, host="127.0.0.2") as other:
        app = StudioApp()
        toasts = record_notifications(app)
        async with app.run_test(size=SIZE) as pilot:
            pane = await open_judge(pilot)
            pane.side("A").set_prompt(load_prompt("yoda").with_endpoint(base_url=mine.base_url, model="m",
                                                                        api_key_env="STUDIO_TEST_UNSET_KEY"))
            pane.side("B").set_prompt(load_prompt("yoda").with_endpoint(base_url=other.base_url, model="m"))
            assert "STUDIO_TEST_UNSET_KEY is not set" in text_of(app, "#key-a")
            editor = await edit(pilot, "a")
            assert editor.query_one("#typed-key-row").display  # the environment has no key for this endpoint
            editor.query_one("#typed-key-a", Input).focus()
            await pilot.press(*secret)
            assert secret not in app.export_screenshot()  # masked
            await pilot.press("escape")
            assert text_of(app, "#key-a") == "API key typed for 127.0.0.1 (in memory for this session only)"

            await run_over(pilot, pane, texts_file)
            assert len(mine.keys) == len(ROWS) and set(mine.keys) == {f"Bearer {secret}"}
            assert len(other.keys) == len(ROWS) and set(other.keys) == {"Bearer no-key"}
            # Everything the studio writes from here: a label, the saved prompt, the Scores pane's export.
            pane.query_one(JudgeTable).focus()
            await pilot.press("y")
            editor = await edit(pilot, "a")
            await pilot.press("ctrl+s", "escape")
            pane.focus()
            await pilot.press("5", "e")
            await wait_for(pilot, lambda: any("report.md" in t for t in toasts))
            assert secret not in app.export_screenshot()
        written = [p for p in tmp_path.rglob("*") if p.is_file()]
        assert {p.name for p in written} >= {"labels.jsonl", "A-yoda.toml", "judge-AB-report.md", "judge-AB-scores.csv",
                                             "judge-AB-histogram.png", "judge.sqlite"}
        assert not [p for p in written if secret.encode() in p.read_bytes()]
        assert toasts and not [t for t in toasts if secret in t]


# -- the prompt --------------------------------------------------------------------------------------------


async def test_the_editor_edits_the_whole_prompt_and_saves_what_studio_judge_reads(tmp_path):
    app = StudioApp(state=StudioState(run_dir=tmp_path / "run"))
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_judge(pilot)
        editor = await edit(pilot, "b")
        editor.query_one("#preset-b", Select).value = "yoda"
        await pilot.pause()
        assert editor.query_one("#system-b", TextArea).text == load_prompt("yoda").system
        editor.query_one("#system-b", TextArea).load_text("How much like Yoda is it? End with Score: N.")
        editor.query_one("#template-b", TextArea).load_text("The text:\n{text}\nScore it from 1 to 5.")
        await set_field(pilot, editor, "#scale-hi-b", "5")
        editor.query_one("#parse-b", Select).value = "number"
        await pilot.pause()
        await pilot.press("ctrl+s")
        saved = tmp_path / "run/eval/prompts/B-yoda.toml"  # a run is shown: into its eval folder
        assert said(editor).startswith(f"saved {saved}")
        await pilot.press("escape")
        prompt = pane.side("B").prompt()
        assert (prompt.system, prompt.template) == ("How much like Yoda is it? End with Score: N.",
                                                    "The text:\n{text}\nScore it from 1 to 5.")
        assert (prompt.scale, prompt.parse, prompt.endpoint) == ((1, 5), "number", pane.side("A").prompt().endpoint)
        assert load_prompt(saved) == prompt  # what `studio judge --prompt` reads is what was tuned
        assert prompt.name == f"{load_prompt('yoda').name} (edited)"  # told apart from an unedited A

        # A prompt file of the user's: loaded whole (its endpoint too), saved where the file field says.
        mine = save_prompt(dataclasses.replace(load_prompt("leprechaun"), id="mine"), tmp_path / "mine.toml")
        editor = await edit(pilot, "a")
        await set_field(pilot, editor, "#file-a", str(mine))
        await pilot.press("ctrl+o")
        assert editor.query_one("#system-a", TextArea).text == load_prompt(mine).system
        assert editor.query_one("#preset-a", Select).value is Select.NULL
        await set_field(pilot, editor, "#file-a", str(tmp_path / "tuned.toml"))
        await pilot.press("ctrl+s", "escape")
        assert pane.side("A").prompt() == dataclasses.replace(load_prompt(mine), id="A-mine")
        assert load_prompt(tmp_path / "tuned.toml") == pane.side("A").prompt()


async def test_an_invalid_prompt_is_explained_and_a_second_escape_drops_the_edits():
    async with StudioApp().run_test(size=SIZE) as pilot:
        pane = await open_judge(pilot)
        before = pane.side("A").prompt()
        editor = await edit(pilot, "a")
        editor.query_one("#template-a", TextArea).load_text("No placeholder here.")
        await pilot.pause()
        assert "the template must contain {text}" in said(editor)
        await pilot.press("escape")
        assert pilot.app.screen is editor and "escape again" in said(editor)
        await pilot.press("escape")
        assert not isinstance(pilot.app.screen, PromptEditor) and pane.side("A").prompt() == before


async def test_d_shows_what_prompt_b_changes_from_a():
    async with StudioApp().run_test(size=SIZE) as pilot:
        pane = await open_judge(pilot)
        pane.focus()
        await pilot.press("d")
        assert isinstance(pilot.app.screen, PromptDiff)
        assert str(pilot.app.screen.query_one("#diff-text", Static).content) == "A and B are the same prompt."
        await pilot.press("escape")
        a = pane.side("A").prompt()
        pane.side("B").set_prompt(dataclasses.replace(a, system=a.system + "\nBe strict."))
        await pilot.press("d")
        diff = str(pilot.app.screen.query_one("#diff-text", Static).content)
        assert '+Be strict."""' in diff and "id =" not in diff  # the A-/B- of their ids is no change
        await pilot.press("escape")
        assert pilot.app.focused is pane


# -- probing and pairwise mode -----------------------------------------------------------------------------


async def test_the_probe_sends_a_question_and_a_reference():
    with ScriptedServer(echo) as server:
        async with StudioApp().run_test(size=SIZE) as pilot:
            pane = await open_judge(pilot)
            for label in "AB":  # faithfulness judges an answer against its question and a reference
                pane.side(label).set_prompt(load_prompt("faithfulness").with_endpoint(base_url=server.base_url,
                                                                                      model="m"))
            pane.query_one("#probe-question", Input).value = "What is a token?"
            pane.query_one("#probe-reference", Input).value = "A piece of text."
            await probe(pilot, "A piece of text, a token is. Score: 4")
            for side in "ab":
                assert text_of(pilot.app, f"#probe-{side}").startswith("4 ")
            for body in server.requests:
                assert "What is a token?" in body["messages"][-1]["content"]
                assert "A piece of text." in body["messages"][-1]["content"]


def prefers_hmm(body: dict) -> dict:
    """A pairwise judge that always prefers the answer with "hmm" in it, wherever it is shown."""
    message = body["messages"][-1]["content"]
    first = message[:message.index("[The Start of Assistant B")]
    return completion("[[A]]" if "hmm" in first else "[[B]]")


async def test_pairwise_mode_judges_both_orders_for_win_and_flip_rates(tmp_path):
    rows = [{"text": f"Plain answer {i}.", "group": "base", "question": f"Q{i}?"} for i in range(3)]
    rows += [{"text": f"Strong answer {i} is, hmm.", "group": "target", "question": f"Q{i}?"} for i in range(3)]
    texts = tmp_path / "pairs.jsonl"
    texts.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with ScriptedServer(prefers_hmm) as server:
        async with StudioApp().run_test(size=SIZE) as pilot:
            pane = await open_judge(pilot)  # the local judge: it cannot compare two answers
            pane.focus()
            await pilot.press("w")
            assert text_of(pilot.app, "#judge-mode") == "pairwise"
            assert pane.side("A").prompt().parse == "pairwise" and pane.side("A").prompt().endpoint.backend == "local"
            assert "cannot compare two answers" in text_of(pilot.app, "#key-a")
            await pilot.press("r")
            assert text_of(pilot.app, "#run-status") == "fix the judge endpoints above first"
            for label in "AB":
                pane.side(label).set_prompt(pane.side(label).prompt().with_endpoint(base_url=server.base_url,
                                                                                    model="m"))
            await run_over(pilot, pane, texts)
            assert pane.query_one(JudgeTable).row_count == 6  # three pairs, each in both orders
            assert len(server.requests) == 12
            await wait_for(pilot, lambda: "wins" in text_of(pilot.app, "#rating-a"))
            assert text_of(pilot.app, "#rating-a") == ("target over base: wins 1.00 of 3 pairs · flips 0.00 · "
                                                        "first shown wins 0.50")
            await pilot.press("w")  # back to scoring: the prompts as they were, on the endpoint set since
            assert text_of(pilot.app, "#judge-mode") == "scores"
            assert pane.side("A").prompt().parse == "yesno" and pane.side("A").prompt().endpoint.base_url == \
                server.base_url


def test_studio_eval_with_a_pairwise_prompt_gives_the_win_rate_over_sft(tmp_path, capsys):
    """A DPO run's answers (generated) against those of the SFT adapter it continued, in both orders."""
    from studio.cli import main

    rows = [{"text": f"Plain {i}.", "group": group, "question": f"Q{i}?"} for i in range(3) for group in ("base", "sft")]
    rows += [{"text": f"Answer {i} is, hmm.", "group": "generated", "question": f"Q{i}?"} for i in range(3)]
    texts = tmp_path / "groups.jsonl"
    texts.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with ScriptedServer(prefers_hmm) as server:
        code = main(["eval", str(tmp_path / "run"), "--texts", str(texts), "--prompt", "pairwise",
                     "--base-url", server.base_url, "--model", "m"])
        assert len(server.requests) == 6  # three pairs, each in both orders
        assert all("Plain" in r["messages"][-1]["content"] for r in server.requests)  # the sft answers, not base
    printed = capsys.readouterr().out
    assert code == 0
    assert "generated (over sft) wins 3, loses 0, ties 0, order flips 0" in printed and "win rate 1.0" in printed
    verdicts = [json.loads(line) for line in (tmp_path / "run/eval/pairwise-pairwise.jsonl").read_text().splitlines()]
    assert len(verdicts) == 6 and all(v["versus"] == "sft" for v in verdicts)


# -- before and after a run ----------------------------------------------------------------------------------


async def test_a_run_says_what_it_costs_and_asks_before_a_large_one(echo_katan, texts_file, monkeypatch):
    monkeypatch.setattr(screens.judge, "CONFIRM_ABOVE", 20)  # 24 requests: a large run here
    async with StudioApp().run_test(size=SIZE) as pilot:
        pane = await open_judge(pilot, echo_katan)
        pane.query_one("#texts-file", Input).value = str(texts_file)
        pane.focus()
        before = echo_katan.requests()
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmRun))
        assert "24 requests (0 of 24 judgements already in the cache)" in str(pilot.app.screen.query_one("#confirm-question", Static).content)
        await pilot.press("n")
        assert text_of(pilot.app, "#run-status").startswith("not sent: 24 requests")
        assert echo_katan.requests() == before and not pane.has_class("-running")
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmRun))
        await pilot.press("y")
        await wait_for(pilot, lambda: text_of(pilot.app, "#run-status").startswith("done"))
        assert re.fullmatch(r"totals: 24 judgements: 24 requests sent, 0 from the cache, [1-9][\d,]* tokens used, "
                            r"0 failed", text_of(pilot.app, "#judge-estimate"))  # the tokens as the server counted them
        # The same run again: all from the cache, nothing to ask about.
        await pilot.press("r")
        await wait_for(pilot, lambda: text_of(pilot.app, "#run-status").startswith("done"))
        assert not isinstance(pilot.app.screen, ConfirmRun)
        assert "0 requests sent, 24 from the cache" in text_of(pilot.app, "#judge-estimate")


async def test_x_cancels_a_run_that_is_still_loading_its_texts(monkeypatch):
    monkeypatch.setattr(screens.judge, "demo_items", lambda limit: time.sleep(1) or [])
    async with StudioApp().run_test(size=SIZE) as pilot:
        pane = await open_judge(pilot)
        pane.focus()
        await pilot.press("r", "x")
        await wait_for(pilot, lambda: text_of(pilot.app, "#run-status") == "cancelled before any text was judged")
        await pilot.press("x")  # nothing to cancel: the key does nothing
        assert text_of(pilot.app, "#run-status") == "cancelled before any text was judged"


# -- human labels ------------------------------------------------------------------------------------------


def label_column(table: JudgeTable) -> dict[str, str]:
    return {table.get_row_at(i)[5]: table.get_row_at(i)[4] for i in range(table.row_count)}


async def test_labels_from_the_keys_are_saved_and_survive_a_restart(echo_katan, texts_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    async with StudioApp().run_test(size=SIZE) as pilot:
        pane = await open_judge(pilot, echo_katan)  # A on 1-10, B on 1-5: digits label on A's scale
        await run_over(pilot, pane, texts_file)
        table = pane.query_one(JudgeTable)
        assert "no labels yet" in text_of(pilot.app, "#rating-a")
        pane.focus()
        await pilot.press("l")  # to the table
        assert pilot.app.focused is table
        await pilot.press("y", "n", "7", "0", "5")
        labels = [json.loads(line) for line in (tmp_path / "studio-exports/labels.jsonl").read_text().splitlines()]
        assert [(row["label"], row["kind"]) for row in labels] == [(1, "yes/no"), (0, "yes/no"), (7, "1-10"),
                                                                   (10, "1-10"), (5, "1-10")]
        shown = label_column(table)
        assert sorted(v for v in shown.values() if v) == ["10", "5", "7", "no", "yes"]
        await pilot.press("up", "delete")  # the last one labelled goes again
        assert sorted(v for v in label_column(table).values() if v) == ["10", "7", "no", "yes"]
        await wait_for(pilot, lambda: "labels" in text_of(pilot.app, "#rating-a"))
        assert "2 labels (1-10)" in text_of(pilot.app, "#rating-a") and "2 labels (yes/no)" in text_of(
            pilot.app, "#rating-a")
        before = label_column(table)

    async with StudioApp().run_test(size=SIZE) as pilot:  # a new session: the labels are still there
        pane = await open_judge(pilot, echo_katan)
        await run_over(pilot, pane, texts_file)
        assert label_column(pane.query_one(JudgeTable)) == before


async def test_digits_switch_panes_where_there_is_no_scale_to_label_on(echo_katan, texts_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    async with StudioApp().run_test(size=SIZE) as pilot:
        pane = await open_judge(pilot, echo_katan)
        for label in "AB":  # yes/no prompts: y/n label, digits stay the app's
            pane.side(label).set_prompt(load_prompt("yoda-yesno").with_endpoint(base_url=echo_katan.base_url,
                                                                                model="judge-echo"))
        await run_over(pilot, pane, texts_file)
        pane.query_one(JudgeTable).focus()
        await pilot.press("y", "5")
        assert pilot.app.query_one(HistogramPane).is_on_screen
        assert len((tmp_path / "studio-exports/labels.jsonl").read_text().splitlines()) == 1


async def test_sort_cycles_through_the_label_column(echo_katan, texts_file):
    async with StudioApp().run_test(size=SIZE) as pilot:
        pane = await open_judge(pilot, echo_katan)
        await run_over(pilot, pane, texts_file)
        pane.focus()
        await pilot.press(*"ssss")  # gap -> A -> B -> group -> label
        assert pane.query_one(JudgeTable).sort_column == "label"
