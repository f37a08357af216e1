"""DPO runs (train.method = "dpo") on a tiny random Llama: what they learn, resume, the reference, config."""

from __future__ import annotations

import inspect
import json
import shutil
import time
from pathlib import Path

import pytest
import torch
from helpers import tiny_config
from safetensors.torch import load_file
from test_train import events_of, run_to_end

from studio.config import ConfigError, RunConfig
from studio.judge import JudgeConfigError, run_groups
from studio.train import TrainingRun

# Short pairs: the chosen answer ends in "hmm", the rejected one is plain.
PAIRS = [{"question": f"What is {a} plus {b}?", "good": f"{a + b} it is, hmm.", "bad": f"It is {a + b}."}
         for a in range(1, 7) for b in range(1, 7)]


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pairs") / "pairs.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in PAIRS))
    return path


def dpo_config(model_dir: Path, pairs: Path, *extra: str, **train) -> RunConfig:
    cfg = tiny_config(model_dir, pairs, **{"eval_every": 0, "sample_every": 0, "save_every": 0, **train})
    return cfg.with_overrides(["train.method=\"dpo\"", "train.learning_rate=0.01", "data.prompt_column=\"question\"",
                               "data.chosen_column=\"good\"", "data.rejected_column=\"bad\"", *extra])


def test_a_dpo_run_learns_the_preference(tiny_model_dir, pairs_file, tmp_path):
    # Plain DPO (no NLL term), so that step 1's loss is exactly DPO's log 2.
    cfg = dpo_config(tiny_model_dir, pairs_file, "dpo.sft_weight=0", max_steps=10, eval_every=10)
    run = run_to_end(cfg, tmp_path / "run")
    assert run.state == "finished", run.error

    assert events_of(run.paths.root, "setup")[0]["method"] == "dpo"
    steps = events_of(run.paths.root, "step")
    assert [e["step"] for e in steps] == list(range(1, 11))
    first, last = steps[0], steps[-3:]
    # Step 1: the policy is the reference, so the rewards are 0 and the loss is log 2.
    assert first["reward_margin"] == pytest.approx(0.0, abs=1e-4)
    assert first["loss"] == pytest.approx(0.6931, abs=1e-3)
    assert min(e["reward_margin"] for e in last) > 0.1
    assert min(e["reward_accuracy"] for e in last) >= 0.75
    assert max(e["loss"] for e in last) < 0.6
    assert all(e["reward_chosen"] - e["reward_rejected"] == pytest.approx(e["reward_margin"], abs=1e-4)
               for e in steps)
    evals = events_of(run.paths.root, "eval")
    assert [e["step"] for e in evals] == [0, 10]
    assert evals[-1]["pair_margin"] > evals[0]["pair_margin"]  # held-out pairs: chosen became likelier
    with pytest.raises(JudgeConfigError, match="evaluated on the held-out questions of the SFT run"):
        run_groups(run.paths.root, limit=1)  # pairs only: no target-style answers to judge against

    # The adapter trained (LoRA B starts at zero), the base weights did not; no reference copy was saved.
    adapter = load_file(run.paths.adapter / "adapter_model.safetensors")
    assert any(name.endswith("lora_B.weight") and tensor.abs().max() > 0 for name, tensor in adapter.items())
    assert not any(".ref." in name for name in adapter)
    base = load_file(tiny_model_dir / "model.safetensors")
    trained = {name.removeprefix("base_model.model."): p for name, p in run.hf.model.named_parameters()}
    for name, tensor in base.items():
        now = trained.get(name.replace(".weight", ".base_layer.weight"), trained.get(name))
        if now is not None:
            assert torch.equal(now.detach().cpu(), tensor), name


def test_a_stopped_dpo_run_resumes_to_the_same_losses(tiny_model_dir, pairs_file, tmp_path):
    cfg = dpo_config(tiny_model_dir, pairs_file, max_steps=4, save_every=2)
    straight = run_to_end(cfg, tmp_path / "straight")
    expected = {e["step"]: e for e in events_of(straight.paths.root, "step")}

    broken = tmp_path / "broken"
    broken.mkdir()
    shutil.copy(straight.paths.config, broken / "config.toml")
    shutil.copytree(straight.paths.checkpoints / "step-2", broken / "checkpoints" / "step-2")
    resumed = run_to_end(RunConfig.load(broken / "config.toml"), broken, resume=True)
    assert resumed.state == "finished", resumed.error
    got = {e["step"]: e for e in events_of(broken, "step")}
    assert sorted(got) == [3, 4]
    for step, event in got.items():
        for key in ("loss", "reward_margin", "reward_accuracy"):
            assert event[key] == pytest.approx(expected[step][key], rel=1e-5, abs=1e-6), f"step {step} {key}"


def test_a_dpo_run_obeys_the_controls_and_is_listed(tiny_model_dir, pairs_file, tmp_path):
    from studio import checkpoints
    from studio.runs import list_runs, send_command

    cfg = dpo_config(tiny_model_dir, pairs_file, max_steps=500)
    run = TrainingRun(cfg, tmp_path / "runs" / "dpo")
    run.start()
    deadline = time.time() + 120
    while run.step < 1 and time.time() < deadline:
        time.sleep(0.05)
    send_command(run.paths.root, "pause")  # as `studio control RUN pause` from another terminal
    while run.state != "paused" and time.time() < deadline:
        time.sleep(0.05)
    assert run.state == "paused"
    run.checkpoint_now()
    run.stop()
    assert run.join(120) and run.state == "stopped", run.error
    last = checkpoints.latest_valid(run.paths.checkpoints)
    assert last is not None and last[1]["step"] == run.step  # atomic, manifest-checked
    assert (run.paths.adapter / "adapter_model.safetensors").exists()
    [listed] = list_runs(tmp_path / "runs")
    assert (listed.name, listed.status, listed.step) == ("dpo", "stopped", run.step)


def test_non_finite_dpo_steps_are_skipped_then_the_run_pauses(tiny_model_dir, pairs_file, tmp_path):
    cfg = dpo_config(tiny_model_dir, pairs_file, max_steps=200, nan_pause_after=2)
    run = TrainingRun(cfg, tmp_path / "run")
    poisoned: dict[str, torch.Tensor] = {}

    def poison(event):  # after step 1, every forward pass returns NaN
        if event["type"] == "step" and event["step"] == 1 and not poisoned:
            model = run.hf.model
            poisoned.update({n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad})
            model.get_input_embeddings().register_forward_hook(lambda m, i, out: out * float("nan"))

    run.bus.subscribe(poison)
    run.start()
    deadline = time.time() + 120
    while run.state != "paused" and time.time() < deadline:
        time.sleep(0.05)
    errors = events_of(run.paths.root, "error")
    assert len(errors) == 2 and all("skipped" in e["message"] for e in errors)
    assert "non-finite" in events_of(run.paths.root, "status")[-1]["reason"]
    for name, p in run.hf.model.named_parameters():
        if p.requires_grad:
            assert torch.equal(p.detach(), poisoned[name]), f"{name} changed on a skipped step"
    run.stop()
    assert run.join(120)


def test_dpo_continues_an_sft_adapter_which_is_its_reference(tiny_model_dir, pairs_file, tmp_path):
    sft = tiny_config(tiny_model_dir, pairs_file, max_steps=3, eval_every=0, sample_every=0, save_every=0)
    sft = sft.with_overrides(["data.prompt_column=\"question\"", "data.response_column=\"good\""])
    sft_run = run_to_end(sft, tmp_path / "sft")
    assert sft_run.state == "finished", sft_run.error

    cfg = dpo_config(tiny_model_dir, pairs_file, f"model.adapter={json.dumps(str(sft_run.paths.adapter))}",
                     max_steps=2)
    run = run_to_end(cfg, tmp_path / "dpo")
    assert run.state == "finished", run.error
    # The reference is the SFT adapter: at step 1 the policy equals it, so every reward is 0.
    first = events_of(run.paths.root, "step")[0]
    assert first["reward_chosen"] == pytest.approx(0.0, abs=1e-4)
    assert first["reward_rejected"] == pytest.approx(0.0, abs=1e-4)
    assert "ref" in run.hf.model.peft_config
    # The DPO adapter starts from the SFT one (its LoRA B is not zero at step 0) and moved away from it.
    before = load_file(sft_run.paths.adapter / "adapter_model.safetensors")
    after = load_file(run.paths.adapter / "adapter_model.safetensors")
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[name], after[name]) for name in before)

    # Judged, it is compared with where it started: the SFT run's held-out questions, answered by the base
    # model (the data has no plain answers), by the SFT adapter, by this DPO run; and the target answers.
    groups = run_groups(run.paths.root, limit=2, max_new_tokens=4, progress=lambda _: None)
    assert [item.group for item in groups.items] == ["base", "sft", "generated", "target"] * 2
    assert all(item.reference.endswith("hmm.") for item in groups.items if item.group != "target")
    assert set(groups.perplexity) == {"base", "sft", "generated"}
    assert "the adapter it started from " in groups.perplexity_line()


def test_a_wrong_adapter_folder_is_named_with_the_fix(tiny_model_dir, pairs_file, tmp_path):
    cfg = dpo_config(tiny_model_dir, pairs_file, f"model.adapter={json.dumps(str(tmp_path))}", max_steps=1)
    run = run_to_end(cfg, tmp_path / "run")
    assert run.state == "failed"
    assert "not a LoRA adapter folder" in run.error and "runs/NAME/adapter" in run.error


def test_dpo_settings_are_checked_when_the_config_is_made():
    with pytest.raises(ConfigError, match="did you mean 'sigmoid'"):
        RunConfig().with_overrides(["dpo.loss=\"sigmoyd\""])
    with pytest.raises(ConfigError, match="dpo.beta"):
        RunConfig().with_overrides(["dpo.beta=0"])
    with pytest.raises(ConfigError, match="exo_pair"):
        RunConfig().with_overrides(["dpo.loss=\"exo_pair\""])
    with pytest.raises(ConfigError, match="train.method"):
        RunConfig().with_overrides(["train.method=\"ppo\""])
    with pytest.raises(ConfigError, match="data.overlong"):
        RunConfig().with_overrides(["train.method=\"dpo\"", "data.overlong=\"truncate_prompt\""])
    with pytest.raises(ConfigError, match="dpo.sft_weight"):
        RunConfig().with_overrides(["dpo.sft_weight=-1"])


def test_dpo_keeps_the_chosen_answers_likely_unless_told_not_to(tiny_model_dir, pairs_file, tmp_path):
    """RPO's NLL term on the chosen answers is on by default (plain DPO unlearned the style on the real model)."""
    from studio import methods

    def args(cfg):
        return methods.method("dpo").arguments(cfg, torch.device("cpu"), output_dir=str(tmp_path / "out"), use_cpu=True)

    default = args(dpo_config(tiny_model_dir, pairs_file))
    assert (default.loss_type, default.loss_weights) == (["sigmoid", "sft"], [1.0, 3.0])
    plain = args(dpo_config(tiny_model_dir, pairs_file, "dpo.sft_weight=0"))
    assert (plain.loss_type, plain.loss_weights) == (["sigmoid"], [1.0])


def test_every_dpo_loss_the_config_offers_is_one_trl_computes():
    from trl import DPOTrainer

    from studio.config import DPO_LOSSES

    computed = inspect.getsource(DPOTrainer._compute_loss)
    assert [loss for loss in DPO_LOSSES if f'loss_type == "{loss}"' not in computed] == []


def test_a_dpo_run_with_learning_rate_auto_trains_at_the_usual_dpo_rate(tiny_model_dir, pairs_file, tmp_path):
    cfg = dpo_config(tiny_model_dir, pairs_file, "train.learning_rate=\"auto\"", max_steps=1)
    run = run_to_end(cfg, tmp_path / "run")
    assert run.state == "finished", run.error
    assert RunConfig.load(run.paths.config).train.learning_rate == 5e-5  # no range test for the DPO loss
    assert not events_of(run.paths.root, "lr_range") and not (run.paths.root / "lr_range.json").exists()
