"""The real embedded model (SmolLM2-135M-Instruct) learns Yoda's speech from the demo data."""

import pytest

from studio.config import RunConfig
from studio.events import read_events
from studio.train import TrainingRun


@pytest.mark.slow
def test_twenty_steps_on_the_demo_lower_held_out_and_style_loss(tmp_path):
    cfg = RunConfig().with_overrides([
        "train.max_steps=20", "train.eval_every=20", "train.sample_every=20", "train.save_every=0", "train.batch_size=4",
        "train.learning_rate=1e-3", "train.sample_prompts=2", "train.sample_max_new_tokens=32",
        "data.max_length=256", "data.eval_max_rows=16"])
    run = TrainingRun(cfg, tmp_path / "run")
    run.start()
    assert run.join(900), "20 steps took over 15 minutes"
    assert run.state == "finished", run.error

    events = read_events(run.paths.events)
    evals = {e["step"]: e for e in events if e["type"] == "eval"}
    assert set(evals) == {0, 20}
    assert evals[20]["eval_loss"] < evals[0]["eval_loss"] - 0.3
    assert evals[20]["style_loss"] < evals[0]["style_loss"] - 0.2
    greedy = {(e["step"], e["index"]): e["response"] for e in events if e["type"] == "sample" and e["mode"] == "greedy"}
    assert all(greedy.values()), "an empty sampled answer"
    assert any(greedy[(0, i)] != greedy[(20, i)] for i in range(2)), "the answers did not change"
