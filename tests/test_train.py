"""The in-process trainer on a tiny random Llama: loss, events, controls, checkpoints, resume."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import torch
from helpers import tiny_config

from studio import checkpoints
from studio.config import RunConfig
from studio.events import read_events
from studio.train import TrainingRun

QA = [(f"What is {a} plus {b}?", f"{a} plus {b} is {a + b}, hmm. Yes.") for a in range(1, 7) for b in range(1, 7)]


@pytest.fixture(scope="module")
def qa_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "qa.jsonl"
    path.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in QA))
    return path


def run_to_end(cfg: RunConfig, run_dir: Path, resume: bool = False) -> TrainingRun:
    run = TrainingRun(cfg, run_dir, resume=resume)
    run.start()
    assert run.join(timeout=300), "run did not end"
    return run


def events_of(run_dir: Path, kind: str) -> list[dict]:
    return [e for e in read_events(run_dir / "events.jsonl") if e["type"] == kind]


def test_loss_goes_down_and_every_event_is_recorded(tiny_model_dir, qa_file, tmp_path):
    cfg = tiny_config(tiny_model_dir, qa_file, max_steps=20, eval_every=10, sample_every=10, save_every=0)
    run = run_to_end(cfg, tmp_path / "run")
    assert run.state == "finished", run.error

    steps = events_of(run.paths.root, "step")
    assert [e["step"] for e in steps] == list(range(1, 21))
    assert all(e["tokens_per_s"] > 0 and e["memory_mb"] > 0 for e in steps)
    evals = events_of(run.paths.root, "eval")
    assert [e["step"] for e in evals] == [0, 10, 20]
    assert evals[-1]["eval_loss"] < evals[0]["eval_loss"] - 0.2
    samples = events_of(run.paths.root, "sample")
    assert {(e["step"], e["mode"], e["index"]) for e in samples} == {
        (s, m, i) for s in (0, 10, 20) for m in ("greedy", "sampled") for i in (0, 1)}
    states = [e["state"] for e in events_of(run.paths.root, "status")]
    assert states[0] == "loading" and "running" in states and states[-1] == "finished"
    assert (run.paths.adapter / "adapter_model.safetensors").exists()
    assert RunConfig.load(run.paths.config) == cfg


def test_lora_changes_adapter_weights_only(tiny_model_dir, qa_file, tmp_path):
    from safetensors.torch import load_file

    cfg = tiny_config(tiny_model_dir, qa_file, max_steps=4, eval_every=0, sample_every=0, save_every=0)
    run = TrainingRun(cfg, tmp_path / "run")
    before: dict[str, torch.Tensor] = {}

    def snapshot(event):
        if event["type"] == "status" and event["state"] == "running" and not before:
            before.update({n: p.detach().clone() for n, p in run.hf.model.named_parameters()})

    run.bus.subscribe(snapshot)
    run.start()
    assert run.join(300) and run.state == "finished", run.error
    after = dict(run.hf.model.named_parameters())
    changed = {n for n, p in after.items() if not torch.equal(p.detach(), before[n])}
    assert changed and all("lora_" in n for n in changed)
    assert any("lora_B" in n for n in changed)
    saved = load_file(run.paths.adapter / "adapter_model.safetensors")
    assert saved and all("lora_" in k for k in saved)


def wait_for(predicate, timeout=120.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_pause_resume_stop_at_step_boundaries(tiny_model_dir, qa_file, tmp_path):
    cfg = tiny_config(tiny_model_dir, qa_file, max_steps=500, eval_every=0, sample_every=0, save_every=0)
    run = TrainingRun(cfg, tmp_path / "run")
    run.start()
    wait_for(lambda: run.step >= 2)
    run.pause()
    wait_for(lambda: run.state == "paused")
    paused_at = run.step
    time.sleep(0.8)
    assert run.step == paused_at, "steps ran while paused"

    run.checkpoint_now()  # works while paused
    wait_for(lambda: (run.paths.checkpoints / f"step-{paused_at}").exists())
    run.resume()
    wait_for(lambda: run.step >= paused_at + 2)
    run.stop()
    assert run.join(120)
    assert run.state == "stopped"
    last = checkpoints.latest_valid(run.paths.checkpoints)
    assert last is not None and last[1]["step"] == run.step
    assert (run.paths.adapter / "adapter_model.safetensors").exists()
    assert events_of(run.paths.root, "status")[-1]["state"] == "stopped"


def test_control_file_commands_from_another_process(tiny_model_dir, qa_file, tmp_path):
    from studio.runs import is_alive, send_command

    cfg = tiny_config(tiny_model_dir, qa_file, max_steps=500, eval_every=0, sample_every=0, save_every=0)
    run = TrainingRun(cfg, tmp_path / "run")
    run.start()
    wait_for(lambda: run.step >= 1)
    assert is_alive(run.paths.root)
    send_command(run.paths.root, "pause")
    wait_for(lambda: run.state == "paused")
    send_command(run.paths.root, "stop")
    assert run.join(120) and run.state == "stopped"
    assert not is_alive(run.paths.root)


def test_resume_gives_the_same_losses_as_an_uninterrupted_run(tiny_model_dir, qa_file, tmp_path):
    cfg = tiny_config(tiny_model_dir, qa_file, max_steps=12, eval_every=0, sample_every=0, save_every=6)
    straight = run_to_end(cfg, tmp_path / "straight")
    expected = {e["step"]: e["loss"] for e in events_of(straight.paths.root, "step")}

    # The interrupted run: copy the straight run's step-6 checkpoint as if it had been stopped there.
    broken = tmp_path / "broken"
    broken.mkdir()
    shutil.copy(straight.paths.config, broken / "config.toml")
    shutil.copytree(straight.paths.checkpoints / "step-6", broken / "checkpoints" / "step-6")
    resumed = run_to_end(RunConfig.load(broken / "config.toml"), broken, resume=True)
    assert resumed.state == "finished", resumed.error
    got = {e["step"]: e["loss"] for e in events_of(broken, "step")}
    assert sorted(got) == list(range(7, 13))
    for step, loss in got.items():
        assert loss == pytest.approx(expected[step], rel=1e-5, abs=1e-6), f"step {step}"


def test_resume_refuses_changed_data_and_shows_the_difference(tiny_model_dir, qa_file, tmp_path):
    data = tmp_path / "qa.jsonl"
    shutil.copy(qa_file, data)
    cfg = tiny_config(tiny_model_dir, data, max_steps=3, eval_every=0, sample_every=0, save_every=3)
    first = run_to_end(cfg, tmp_path / "run")
    assert (first.paths.checkpoints / "step-3").exists()

    data.write_text(data.read_text() + json.dumps({"question": "new?", "answer": "new, it is."}) + "\n")
    again = run_to_end(cfg, first.paths.root, resume=True)
    assert again.state == "failed"
    assert "dataset changed" in again.error and "start a new run" in again.error


def test_resume_skips_a_half_written_checkpoint(tmp_path):
    root = tmp_path / "checkpoints"
    staged = checkpoints.staging_dir(root, 4)
    staged.mkdir(parents=True)
    (staged / "adapter_model.safetensors").write_bytes(b"weights")
    checkpoints.finalize(staged, root, 4, checkpoints.Fingerprints({}, "d", "t", "k"))
    (root / ".tmp-step-8-123").mkdir()  # killed mid-save: never renamed
    corrupt = root / "step-6"
    shutil.copytree(root / "step-4", corrupt)
    (corrupt / "adapter_model.safetensors").write_bytes(b"torn")  # does not match its manifest

    path, manifest = checkpoints.latest_valid(root)
    assert path.name == "step-4" and manifest["step"] == 4
    checkpoints.remove_stale_staging(root)
    assert not (root / ".tmp-step-8-123").exists()


def test_non_finite_steps_are_skipped_then_the_run_pauses(tiny_model_dir, qa_file, tmp_path):
    cfg = tiny_config(tiny_model_dir, qa_file, max_steps=200, eval_every=0, sample_every=0, save_every=0,
                      nan_pause_after=3)
    run = TrainingRun(cfg, tmp_path / "run")
    poisoned: dict[str, torch.Tensor] = {}

    def poison(event):
        # After step 2, every forward pass returns NaN: the loss and every gradient go non-finite.
        if event["type"] == "step" and event["step"] == 2 and not poisoned:
            model = run.hf.model
            poisoned.update({n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad})
            model.get_input_embeddings().register_forward_hook(lambda m, i, out: out * float("nan"))

    run.bus.subscribe(poison)
    run.start()
    wait_for(lambda: run.state == "paused")
    errors = events_of(run.paths.root, "error")
    assert len(errors) == 3 and all("skipped" in e["message"] for e in errors)
    status = events_of(run.paths.root, "status")[-1]
    assert status["state"] == "paused" and "non-finite" in status["reason"]
    for name, p in run.hf.model.named_parameters():
        if p.requires_grad:
            assert torch.equal(p.detach(), poisoned[name]), f"{name} changed on a skipped step"
    run.stop()
    assert run.join(120)


def test_failed_setup_is_reported_not_raised(qa_file, tmp_path):
    cfg = tiny_config(tmp_path / "no-such-model", qa_file, max_steps=2)
    run = run_to_end(cfg, tmp_path / "run")
    assert run.state == "failed" and "no-such-model" in run.error
    assert events_of(run.paths.root, "status")[-1]["state"] == "failed"


@pytest.mark.parametrize("option", ["train.packing=true", "train.group_by_length=true", "template.preset=\"human-bot\""])
def test_training_options_run_end_to_end(option, tiny_model_dir, qa_file, tmp_path):
    cfg = tiny_config(tiny_model_dir, qa_file, max_steps=3, eval_every=3, sample_every=0, save_every=0)
    run = run_to_end(cfg.with_overrides([option]), tmp_path / "run")
    assert run.state == "finished", run.error
    evals = events_of(run.paths.root, "eval")
    assert all(e["eval_loss"] is not None for e in evals)


def test_new_template_tokens_are_trained(tiny_model_dir, qa_file, tmp_path):
    cfg = tiny_config(tiny_model_dir, qa_file, max_steps=3, eval_every=0, sample_every=0, save_every=0)
    run = run_to_end(cfg.with_overrides(["template.preset=\"human-bot\""]), tmp_path / "run")
    assert run.state == "finished", run.error
    stop_id = run.tokenizer.convert_tokens_to_ids("###STOP###")
    assert stop_id >= 49152  # added to SmolLM2's vocabulary
    trainable = [n for n, p in run.hf.model.named_parameters() if p.requires_grad and "token" in n]
    assert trainable, "the new tokens' embeddings are not trainable"
