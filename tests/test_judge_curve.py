"""The judge score curve during training: answers sampled at judge steps are scored off the training
thread; a slow, failing or absent judge is counted, never waited for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import tiny_config
from katan import Katan, free_port

from studio.events import read_events
from studio.train import TrainingRun

QA = [(f"Name a colour number {i}.", f"Colour {i}, blue it is. Hmm.") for i in range(24)]
ANSWERS_PER_STEP = 4  # two prompts, greedy and sampled


def judge_prompt(tmp_path: Path, base_url: str) -> Path:
    """The echo server repeats the user message, which ends with a fixed verdict: every parsed score is 7."""
    path = tmp_path / "echo-judge.toml"
    path.write_text(f'''name = "echo"
scale = [1, 10]
parse = "score"
system = "Rate the text between <text-{{nonce}}> tags."
template = """{{text}}

Score: 7"""

[endpoint]
base_url = "{base_url}"
model = "judge-echo"
''')
    return path


def run_with_judge(tiny_model_dir, tmp_path, prompt: Path) -> tuple[TrainingRun, list[dict]]:
    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in QA))
    cfg = tiny_config(tiny_model_dir, data, max_steps=12, eval_every=0, sample_every=3, save_every=0,
                      judge_every=3, judge_prompt=str(prompt))
    run = TrainingRun(cfg, tmp_path / "run")
    run.start()
    assert run.join(300) and run.state == "finished", run.error
    return run, [e for e in read_events(run.paths.events) if e["type"] == "judge"]


def test_sampled_answers_are_judged_at_their_steps_and_failures_counted(tiny_model_dir, tmp_path):
    with Katan(tmp_path, "--error-rate", "0.3", "--latency-ms", "200") as server:
        run, judged = run_with_judge(tiny_model_dir, tmp_path, judge_prompt(tmp_path, server.base_url))
    assert sorted(e["step"] for e in judged) == [0, 3, 6, 9, 12]  # every judge step: judged, or skipped as busy
    scored = [e for e in judged if not e["note"]]
    assert len(scored) >= 2
    for event in scored:
        assert event["scored"] + event["failed"] == ANSWERS_PER_STEP
        assert event["mean"] == pytest.approx(7.0) or event["scored"] == 0
    assert all(e["note"].startswith("skipped") for e in judged if e["note"])


def test_a_judge_that_is_down_never_fails_the_run(tiny_model_dir, tmp_path):
    run, judged = run_with_judge(tiny_model_dir, tmp_path, judge_prompt(tmp_path, f"http://127.0.0.1:{free_port()}/v1"))
    assert judged and all(e["scored"] == 0 and e["mean"] is None for e in judged)
    assert any(e["failed"] == ANSWERS_PER_STEP for e in judged)
