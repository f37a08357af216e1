"""Fixtures and helpers shared by the judge tests (the engine's, the Judge and Scores panes', their snapshots)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from helpers import text_of, wait_for
from katan import Katan
from textual.widgets import Input

from screens.app import StudioApp
from screens.judge import JudgePane
from screens.state import StudioState
from studio.judge import JudgeCache, JudgeItem, JudgeResult, load_prompt


@pytest.fixture(scope="module")
def echo_katan(tmp_path_factory):
    """A fault-free echo server: it answers with the user message, so a text's own `Score: N` is the verdict."""
    with Katan(tmp_path_factory.mktemp("katan")) as server:
        yield server


def echo_prompt(server: Katan, prompt: str = "yoda"):
    return load_prompt(prompt).with_endpoint(base_url=server.base_url, model="judge-echo")


def numbered_items(n: int, group: str = "g") -> list[JudgeItem]:
    """Texts that carry their own score (1-10) and a unique id, so losses and duplicates show."""
    return [JudgeItem(f"text {i}. Score: {i % 10 + 1}", group, fields={"id": i}) for i in range(n)]


@pytest.fixture
def cache(tmp_path):
    c = JudgeCache(tmp_path / "judge.sqlite")
    yield c
    c.close()


# -- the Judge pane: texts whose verdict is their own `Score: N` ---------------------------------------

ROWS = [("base", 1), ("base", 2), ("base", 3), ("base", 1),
        ("generated", 4), ("generated", 5), ("generated", 6), ("generated", 5),
        ("target", 9), ("target", 8), ("target", 10), ("target", 7)]


def verdict_text(index: int, score: int) -> str:
    return f"Answer {index}. Score: {score}"


@pytest.fixture
def texts_file(tmp_path):
    path = tmp_path / "texts.jsonl"
    path.write_text("".join(json.dumps({"text": verdict_text(i, s), "group": g, "question": f"Question {i}?",
                                        "reference": "A reference answer."}) + "\n"
                            for i, (g, s) in enumerate(ROWS)))
    return path


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Each test starts with an empty judge cache."""
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path / "cache"))


async def open_judge(pilot, server: Katan | None = None, a: str = "yoda", b: str = "faithfulness") -> JudgePane:
    """Show the Judge pane; with a server, point both judges at it (no API key: a loopback server)."""
    await pilot.press("4")
    pane = pilot.app.query_one(JudgePane)
    if server is not None:
        for label, preset in (("A", a), ("B", b)):
            pane.side(label).set_prompt(echo_prompt(server, preset))
    await pilot.pause()
    return pane


async def run_over(pilot, pane: JudgePane, texts_file) -> None:
    pane.query_one("#texts-file", Input).value = str(texts_file)
    pane.focus()
    await pilot.press("r")
    await wait_for(pilot, lambda: text_of(pilot.app, "#run-status").startswith(("done", "cancelled")))


# -- the Scores pane: fixed results, as the Judge pane leaves them in the app's state -------------------

# Scores per group: base and target apart (AUC 1.00), generated half way (AUC base/generated 0.875)
SCORES = {"A": {"base": [1, 2, 2, 3], "generated": [2, 5, 5, 9], "target": [8, 9, 9, 10]},
          "B": {"base": [2, 3, 3, 4], "generated": [3, 4, 6, 7], "target": [6, 7, 9, 9]}}


def fixed_results() -> tuple[dict, dict]:
    prompts, results = {}, {}
    for label, preset in (("A", "yoda"), ("B", "leprechaun")):
        prompt = dataclasses.replace(load_prompt(preset), id=f"{label}-{preset}")
        prompts[label] = prompt
        results[label] = [
            JudgeResult(JudgeItem(f"{group} answer {i}: {'hmm, ' * i}a text of that style", group), prompt.id,
                        "openai", "judge-model", score=score, reason="fixed", raw=f"Score: {score}", attempts=1)
            for group, scores in SCORES[label].items() for i, score in enumerate(scores)]
    return prompts, results


def studio_with_results(run_dir: Path | None = None) -> StudioApp:
    prompts, results = fixed_results()
    return StudioApp(state=StudioState(judge_prompts=prompts, judge_results=results, run_dir=run_dir))
