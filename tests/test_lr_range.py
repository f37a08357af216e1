"""train.learning_rate = "auto": the range test picks a rate, the run trains at it exactly as if it had
been typed, and config.toml keeps the number."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest
from helpers import tiny_config
from test_train import QA, events_of, run_to_end

from studio.config import ConfigError, RunConfig
from studio.formatting import format_range_test
from studio.lr_range import choose


def test_the_rules_read_the_curve():
    rates = list(np.logspace(-6, -1, 11))  # half a decade apart
    losses = [5.0, 5.0, 4.9, 4.5, 3.5, 2.0, 1.8, 1.7, 3.0, 9.0, 20.0]
    test = choose(rates, losses)
    assert test.chosen == pytest.approx(rates[7] / 30) and test.minimum_tenth == pytest.approx(rates[7] / 10)
    assert test.steepest == pytest.approx(rates[4])  # the fastest fall per decade, between 4.5 and 2.0
    assert test.rule == "minimum/30"
    assert format_range_test(asdict(test)) == (f"lr {rates[7] / 30:.1e} chosen by range test (minimum/30, steepest "
                                               f"descent at {rates[4]:.1e}; 11 steps)")


def test_auto_is_the_default_and_a_number_still_overrides_it():
    assert RunConfig().train.learning_rate == "auto"
    assert RunConfig().with_overrides(["train.learning_rate=3e-4"]).train.learning_rate == 3e-4
    with pytest.raises(ConfigError, match="train.learning_rate"):
        RunConfig().with_overrides(["train.learning_rate=fast"])


@pytest.fixture
def qa_file(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in QA))
    return path


def test_an_auto_run_trains_exactly_as_a_run_given_the_chosen_rate(tiny_model_dir, qa_file, tmp_path):
    settings = dict(max_steps=4, eval_every=0, sample_every=0, save_every=0)
    auto = run_to_end(tiny_config(tiny_model_dir, qa_file, **settings).with_overrides(["train.learning_rate=\"auto\""]),
                      tmp_path / "auto")
    assert auto.state == "finished", auto.error
    [found] = events_of(auto.paths.root, "lr_range")
    chosen = found["chosen"]
    assert 1e-6 <= chosen <= 1e-1 and len(found["rates"]) == len(found["losses"]) >= 3
    saved = RunConfig.load(auto.paths.config)
    assert saved.train.learning_rate == chosen  # resume and rerun use the number, not a new test
    assert json.loads((auto.paths.root / "lr_range.json").read_text())["chosen"] == chosen
    said = [e["reason"] for e in events_of(auto.paths.root, "status") if "range test" in e.get("reason", "")]
    assert f"step {len(found['rates'])}/30" in said[-1]  # a slow test says how far it is, step by step

    # The test ran on a throwaway copy: the same config with the number typed trains identically.
    typed = run_to_end(tiny_config(tiny_model_dir, qa_file, **settings, learning_rate=chosen), tmp_path / "typed")
    losses = lambda run: [e["loss"] for e in events_of(run.paths.root, "step")]  # noqa: E731
    assert losses(auto) == losses(typed)
    assert [e["lr"] for e in events_of(auto.paths.root, "step")] == [e["lr"] for e in events_of(typed.paths.root, "step")]
