"""Preference pairs made in the app (Scores pane, `m`): the run's adapter answers its training questions,
the prompt shown judges them, the pairs are written, and the Train pane's form is set for DPO on them."""

from __future__ import annotations

import json

from helpers import record_notifications, text_of, tiny_config, wait_for
from judge_fixtures import studio_with_results
from textual.widgets import Input

from screens.app import StudioApp
from screens.config_form import ConfigForm
from screens.state import StudioState
from screens.widgets.judge_dialogs import ConfirmRun
from screens.widgets.pairs_maker import PairsDialog

SIZE = (120, 40)


def dialog_text(app, selector: str) -> str:
    return str(app.screen.query_one(selector).content)


async def test_without_a_run_or_a_judged_prompt_it_says_what_to_do_first(tmp_path):
    async with studio_with_results().run_test(size=SIZE) as pilot:  # scores, but no run shown
        notes = record_notifications(pilot.app)
        await pilot.press("5", "m")
        assert "train a run, or open one" in notes[-1]
    (tmp_path / "run" / "adapter").mkdir(parents=True)
    async with StudioApp(state=StudioState(run_dir=tmp_path / "run")).run_test(size=SIZE) as pilot:
        notes = record_notifications(pilot.app)
        await pilot.press("5", "m")
        assert "run the judge first (Judge pane, r)" in notes[-1]


async def test_the_dialog_names_a_wrong_number_and_escape_makes_nothing(tmp_path):
    (tmp_path / "run" / "adapter").mkdir(parents=True)
    async with studio_with_results(run_dir=tmp_path / "run").run_test(size=SIZE) as pilot:
        await pilot.press("5", "m")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, PairsDialog))
        margin = pilot.app.screen.query_one("#pairs-margin", Input).placeholder
        assert len(margin) <= 4, margin  # 0.11, not 0.111111
        pilot.app.screen.query_one("#pairs-answers", Input).value = "1"
        await pilot.click("#make")
        assert "at least 2 answers" in dialog_text(pilot.app, "#pairs-error")
        await pilot.press("escape")
        assert not isinstance(pilot.app.screen, PairsDialog)
        assert not (tmp_path / "run" / "pairs.jsonl").exists()


async def test_pairs_from_the_run_set_up_a_dpo_run_that_continues_its_adapter(tiny_model_dir, tmp_path):
    import dataclasses

    from studio.judge import load_prompt
    from studio.judge.offline import OFFLINE_PROMPT, local_prompt
    from studio.train import TrainingRun

    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps({"question": f"What is {i} plus {i}?", "answer": f"{2 * i}, it is."}) + "\n"
                            for i in range(6)))
    run = TrainingRun(tiny_config(tiny_model_dir, data, max_steps=1, eval_every=0, sample_every=0, save_every=0),
                      tmp_path / "run")
    run.start()
    assert run.join(120) and run.state == "finished", run.error

    # The local judge on the tiny model itself: every answer gets a score in [0, 1].
    prompt = local_prompt(load_prompt(OFFLINE_PROMPT), model=str(tiny_model_dir))
    app = studio_with_results(run_dir=run.paths.root)
    app.state = dataclasses.replace(app.state, judge_prompts={"A": prompt, "B": prompt})
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5", "m")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, PairsDialog))
        dialog = pilot.app.screen
        for key, value in (("answers", "2"), ("questions", "3"), ("margin", "0")):
            dialog.query_one(f"#pairs-{key}", Input).value = value
        await pilot.click("#make")
        assert "making pairs" in text_of(pilot.app, "#pairs-maker")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmRun), timeout=240, what="the pairs")
        assert "from 3 questions (6 answers)" in dialog_text(pilot.app, "#confirm-question")
        await pilot.press("y")
        await wait_for(pilot, lambda: pilot.app.state.config.train.method == "dpo")
        assert pilot.app.query_one("#panes").active == "train"
        config = pilot.app.query_one(ConfigForm).config
        assert config.train.method == "dpo" and config.model.adapter == str(run.paths.adapter)
        assert config.data.dataset == str(run.paths.root / "pairs.jsonl")
        assert "preference pairs in" in text_of(pilot.app, "#pairs-maker")
        pilot.app.change(run_dir=None)  # another run shown (the DPO run, once it starts): the line was about this one
        await pilot.pause()
        assert text_of(pilot.app, "#pairs-maker") == ""
    written = [json.loads(line) for line in (run.paths.root / "pairs.jsonl").read_text().splitlines()]
    assert written and all(p["chosen_score"] > p["rejected_score"] for p in written)


async def test_a_key_typed_in_the_judge_pane_goes_with_the_pairs_judge(tmp_path, monkeypatch):
    from studio import pairs

    sent = {}

    def making(run_dir, prompt, settings, **kwargs):
        sent.update(kwargs, endpoint=prompt.endpoint)
        raise pairs.PairsCancelled("stopped: nothing written")

    monkeypatch.setattr(pairs, "make_pairs", making)
    (tmp_path / "run" / "adapter").mkdir(parents=True)
    app = studio_with_results(run_dir=tmp_path / "run")
    async with app.run_test(size=SIZE) as pilot:
        endpoint = app.state.judge_prompts["A"].endpoint
        assert endpoint.backend != "local"
        app.query_one("JudgePane").keys.set(endpoint, "sk-typed-in-the-editor")  # what the prompt editor does
        await pilot.press("5", "m")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, PairsDialog))
        await pilot.click("#make")
        await wait_for(pilot, lambda: "api_key" in sent, what="the pairs worker")
    assert sent["api_key"] == "sk-typed-in-the-editor" and sent["endpoint"] == endpoint
