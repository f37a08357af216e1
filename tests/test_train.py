"""The in-process trainer on a tiny random Llama: loss, events, controls, checkpoints, resume."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import torch
from helpers import tiny_config
from transformers import DataCollatorWithFlattening

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
    assert all(isinstance(e["repeats"], int) for e in samples)
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


@pytest.mark.parametrize("option", ["train.packing=false", "train.group_by_length=true", "train.batch_tokens=200",
                                    "template.preset=\"human-bot\""])
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


def test_a_resume_supersedes_the_steps_it_rolls_back(tiny_model_dir, qa_file, tmp_path):
    """Before: events.jsonl kept the rolled-back steps (1,2,3,4,3,4,5), so charts got two values per step."""
    from studio.runs import summarize

    cfg = tiny_config(tiny_model_dir, qa_file, max_steps=8, eval_every=4, sample_every=0, save_every=4)
    killed = run_to_end(cfg, tmp_path / "run")
    shutil.rmtree(killed.paths.checkpoints / "step-8")  # as if killed at step 8 before its save
    (killed.paths.adapter / "adapter_model.safetensors").unlink()
    resumed = run_to_end(RunConfig.load(killed.paths.config), killed.paths.root, resume=True)
    assert resumed.state == "finished", resumed.error

    raw = [json.loads(line) for line in (killed.paths.events).read_text().splitlines()]
    assert [e["step"] for e in raw if e["type"] == "step"] == [*range(1, 9), *range(5, 9)]
    assert [e["from_step"] for e in raw if e["type"] == "resume"] == [4]
    assert [e["step"] for e in events_of(killed.paths.root, "step")] == list(range(1, 9))
    assert [e["step"] for e in events_of(killed.paths.root, "eval")] == [0, 4, 8]
    assert summarize(killed.paths.root).step == 8


def test_resume_never_starts_over_silently(tiny_model_dir, qa_file, tmp_path):
    cfg = tiny_config(tiny_model_dir, qa_file, max_steps=4, eval_every=0, sample_every=0, save_every=2)
    first = run_to_end(cfg, tmp_path / "run")
    for checkpoint in checkpoints.list_checkpoints(first.paths.checkpoints):
        (checkpoint / "adapter_model.safetensors").write_bytes(b"torn")
    again = run_to_end(cfg, first.paths.root, resume=True)
    assert again.state == "finished", again.error
    errors = [e["message"] for e in events_of(first.paths.root, "error")]
    assert any("none of the 2 checkpoints is valid" in m and "step 0" in m for m in errors), errors
    assert [e["step"] for e in events_of(first.paths.root, "step")] == [1, 2, 3, 4]


def test_old_checkpoints_are_pruned(tiny_model_dir, qa_file, tmp_path):
    cfg = tiny_config(tiny_model_dir, qa_file, max_steps=8, eval_every=0, sample_every=0, save_every=2,
                      keep_checkpoints=2)
    run = run_to_end(cfg, tmp_path / "run")
    assert [p.name for p in checkpoints.list_checkpoints(run.paths.checkpoints)] == ["step-6", "step-8"]
    assert [e["path"].rsplit("/", 1)[1] for e in events_of(run.paths.root, "checkpoint")] == \
        ["step-2", "step-4", "step-6", "step-8"]


def slow_forward(run: TrainingRun, seconds: float) -> None:
    """Each forward pass of the run's model sleeps: a generation or eval that would take minutes."""
    run.hf.model.get_input_embeddings().register_forward_pre_hook(lambda module, args: time.sleep(seconds))


@pytest.mark.parametrize("command, measuring", [("stop", "sample"), ("pause", "sample"), ("stop", "eval")])
def test_controls_cut_evaluation_and_sampling_short(command, measuring, tiny_model_dir, qa_file, tmp_path):
    """Before: a stop or pause during the step-0 samples waited for all of them (minutes on a CPU)."""
    cfg = tiny_config(tiny_model_dir, qa_file, max_steps=20, save_every=0, sample_max_new_tokens=400,
                      eval_every=1 if measuring == "eval" else 0, sample_every=1 if measuring == "sample" else 0)
    if measuring == "eval":  # 29 held-out rows, one per batch: about 9 s of evaluation
        cfg = cfg.with_overrides(["data.eval_fraction=0.8", "train.batch_size=1"])
    run = TrainingRun(cfg, tmp_path / "run")
    run.bus.subscribe(lambda e: e["type"] == "status" and e["state"] == "measuring" and slow_forward(run, 0.3))
    run.start()
    wait_for(lambda: run.state == "measuring")
    time.sleep(0.5)
    asked = time.monotonic()
    getattr(run, command)()
    wait_for(lambda: run.state in ("stopped", "paused"), timeout=30)
    assert time.monotonic() - asked < 3, "the request waited for the measurement to finish"
    assert run.step == 0 and not events_of(run.paths.root, "sample") and not events_of(run.paths.root, "eval")
    assert any("cut short" in e["message"] for e in events_of(run.paths.root, "error"))
    if command == "pause":
        run.stop()
    assert run.join(60) and run.state == "stopped"


def test_observation_keeps_to_its_share_of_the_time(tiny_model_dir, qa_file, tmp_path):
    cfg = tiny_config(tiny_model_dir, qa_file, max_steps=30, save_every=0, eval_every=2, sample_every=2,
                      observe_budget=0.1)
    run = TrainingRun(cfg, tmp_path / "run")
    run.bus.subscribe(lambda e: e["type"] == "status" and e["state"] == "measuring" and e["step"] == 0
                      and slow_forward(run, 0.01))
    run.start()
    assert run.join(300) and run.state == "finished", run.error
    measured = sorted({e["step"] for e in events_of(run.paths.root, "eval")})
    assert measured[0] == 0 and measured[-1] == 30 and len(measured) < 16, measured
    reasons = [e["reason"] for e in events_of(run.paths.root, "status")]
    assert any("skipped" in r and "observe_budget" in r for r in reasons)
    last = events_of(run.paths.root, "step")[-1]
    assert 0 < last["observe_share"] < 1


def test_mixed_precision_comes_from_the_dtype_chosen_not_from_a_parameter(tiny_model_dir, qa_file, tmp_path,
                                                                         monkeypatch):
    """Before: QLoRA's preparation leaves every unquantized parameter in fp32, and the trainer read its
    precision from the first parameter, so a bf16 QLoRA run trained in fp32."""
    from studio import models

    real_load = models.load_model

    def prepared_like_qlora(cfg):
        return real_load(type(cfg)(**{**cfg.__dict__, "dtype": "float32"}))  # every parameter fp32

    monkeypatch.setattr(models, "load_model", prepared_like_qlora)
    cfg = tiny_config(tiny_model_dir, qa_file, max_steps=1, eval_every=0, sample_every=0, save_every=0)
    run = run_to_end(cfg.with_overrides(['model.dtype="bfloat16"']), tmp_path / "run")
    assert run.state == "finished", run.error
    assert run.hf.args.bf16 and not run.hf.args.fp16
    assert events_of(run.paths.root, "setup")[0]["precision"] == "bf16"


def test_fp16_overflow_steps_are_left_to_the_loss_scaler(tiny_model_dir, qa_file, tmp_path, monkeypatch):
    """An inf gradient under fp16 loss scaling is an overflow the scaler skips; it never pauses the run."""
    real_step = torch.optim.AdamW.step

    def step_like_a_grad_scaler(self, *args, **kwargs):  # GradScaler.step: no update when a gradient overflowed
        grads = [p.grad for group in self.param_groups for p in group["params"] if p.grad is not None]
        if all(torch.isfinite(g).all() for g in grads):
            return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", step_like_a_grad_scaler)
    cfg = tiny_config(tiny_model_dir, qa_file, max_steps=6, eval_every=0, sample_every=0, save_every=0,
                      nan_pause_after=2)
    run = TrainingRun(cfg, tmp_path / "run")

    def overflow(event):
        if event["type"] == "status" and event["state"] == "running" and event["reason"] == "started":
            run.loss_scaling = lambda: True
            lora = next(p for n, p in run.hf.model.named_parameters() if "lora_B" in n)
            lora.register_hook(lambda grad: grad * float("inf") if run.step in (1, 2, 3) else grad)

    run.bus.subscribe(overflow)
    run.start()
    assert run.join(120) and run.state == "finished", run.error
    assert not events_of(run.paths.root, "error")


def test_the_checkpoint_override_still_matches_transformers():
    """The one private method the trainer overrides: fail loudly when transformers renames or stops calling it."""
    import inspect

    import transformers

    assert list(inspect.signature(transformers.Trainer._save_checkpoint).parameters) == ["self", "model", "trial"]
    assert "self._save_checkpoint(model, trial)" in inspect.getsource(transformers.Trainer._maybe_log_save_evaluate)


def test_sampling_keeps_the_kv_cache_with_gradient_checkpointing(tiny_model_dir, smol_tokenizer):
    from studio import models, sampling
    from studio.config import ModelConfig

    model = models.load_model(ModelConfig(name=str(tiny_model_dir), gradient_checkpointing=True))
    model.train()
    widths = []
    model.get_input_embeddings().register_forward_hook(lambda m, args, out: widths.append(args[0].shape[1]))
    sampling.generate(model, smol_tokenizer, [[{"role": "user", "content": "Hello there, how are you?"}]], 6)
    assert widths[0] > 1 and set(widths[1:]) == {1}, widths  # one token a step after the prompt
    assert model.training


@pytest.mark.parametrize("attention", ["sdpa", "sdpa_packed"])
def test_a_packed_batch_gives_each_row_the_loss_it_has_padded(tiny_model_dir, smol_tokenizer, attention):
    import torch.nn.functional as F

    from studio import models
    from studio.config import DataConfig, ModelConfig
    from studio.data import prepare
    from studio.methods import Collator
    from studio.packed_attention import use_packed_attention
    from studio.train import packing_keeps_rows_apart

    model = models.load_model(ModelConfig(name=str(tiny_model_dir))).eval()
    model.config.use_cache = False  # as the trainer sets it
    assert use_packed_attention(model) if attention == "sdpa_packed" else True
    assert model.config._attn_implementation == attention
    assert packing_keeps_rows_apart(model)
    rows = list(prepare(DataConfig(), smol_tokenizer).train.select(range(5)))  # the demo: varied lengths
    assert len({len(r["input_ids"]) for r in rows}) > 1  # rows of different lengths: padding matters

    def row_losses(batch) -> list[float]:
        with torch.no_grad():
            logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits.float()
        labels = batch["labels"]
        losses = F.cross_entropy(logits[:, :-1].transpose(1, 2), labels[:, 1:], reduction="none", ignore_index=-100)
        return losses, labels[:, 1:] != -100

    padded_losses, padded_mask = row_losses(Collator(smol_tokenizer, False, None)(rows))
    padded = [float(padded_losses[i][padded_mask[i]].mean()) for i in range(len(rows))]
    packed_losses, packed_mask = row_losses(Collator(smol_tokenizer, True, None)(rows))
    starts = [0]
    for r in rows:
        starts.append(starts[-1] + len(r["input_ids"]))
    packed = [float(packed_losses[0][a:b - 1][packed_mask[0][a:b - 1]].mean()) for a, b in zip(starts, starts[1:])]
    assert packed == pytest.approx(padded, abs=1e-5)


def test_packed_attention_costs_each_row_its_own_length(tiny_model_dir, smol_tokenizer, monkeypatch):
    """With "sdpa_packed" no attention call spans two rows: the cost is the rows' lengths squared, not the
    packed length squared (and no mask, so sdpa may take its flash kernel)."""
    from studio import models
    from studio.config import DataConfig, ModelConfig
    from studio.data import prepare
    from studio.methods import Collator
    from studio.packed_attention import use_packed_attention

    model = models.load_model(ModelConfig(name=str(tiny_model_dir)))
    model.config.use_cache = False
    assert use_packed_attention(model)
    rows = list(prepare(DataConfig(), smol_tokenizer).train.select(range(4)))
    calls = []
    sdpa = torch.nn.functional.scaled_dot_product_attention
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention",
                        lambda q, k, v, attn_mask=None, **kw: calls.append((q.shape[2], attn_mask)) or sdpa(
                            q, k, v, attn_mask=attn_mask, **kw))
    batch = Collator(smol_tokenizer, True, None)(rows)
    model(**batch).loss.backward()
    lengths = [len(r["input_ids"]) for r in rows]
    layers = model.config.num_hidden_layers
    assert sorted(length for length, _ in calls) == sorted(lengths * layers)
    assert all(mask is None for _, mask in calls)


def test_packing_is_the_default_and_falls_back_where_rows_would_mix(tiny_model_dir, qa_file, tmp_path,
                                                                     monkeypatch):
    from studio import train

    cfg = tiny_config(tiny_model_dir, qa_file, max_steps=2, eval_every=0, sample_every=0, save_every=0)
    assert cfg.train.packing
    packed = run_to_end(cfg, tmp_path / "packed")
    assert packed.packing and isinstance(packed.hf.data_collator._collate, DataCollatorWithFlattening)
    assert packed.hf.model.config._attn_implementation == "sdpa_packed"  # each row's attention on its own
    assert packed.hf.model.config.use_cache is False  # with a cache, transformers lets packed rows mix

    monkeypatch.setattr(train, "packing_keeps_rows_apart", lambda model: False)
    fallback = run_to_end(cfg, tmp_path / "fallback")
    assert fallback.state == "finished" and not fallback.packing
    assert fallback.hf.args.train_sampling_strategy == "group_by_length"
    assert any("packing is off" in e["reason"] for e in events_of(fallback.paths.root, "status"))


def test_token_budget_batches_hold_their_budget_and_every_row_once():
    from studio.batching import TokenBudgetBatches

    lengths = [int(20 + (i * 37) % 400) for i in range(300)]
    for packed in (True, False):
        batches = TokenBudgetBatches(lengths, budget=1024, packed=packed, seed=3)
        first = list(batches)
        batches.set_epoch(1)
        second = list(batches)
        assert len(first) == len(second) == len(batches) and first != second
        assert sorted(i for b in first for i in b) == list(range(300))
        for batch in first:
            size = sum(lengths[i] for i in batch) if packed else len(batch) * max(lengths[i] for i in batch)
            assert size <= 1024 or len(batch) == 1
        assert list(TokenBudgetBatches(lengths, 1024, packed, seed=3)) == first  # same seed, same batches


@pytest.mark.parametrize("text, count", [
    ("Tools, they are, they are, they are, they are.", 4),
    ("Water, it is. Water, it is. Water, it is.", 3),
    ("Strong with the Force, this one is. Patience you must learn, young one.", 0),
    ("very very good", 0),
    (".,.,.,.,.,.,.,.,.,.,.,.,", 12),  # a loop of punctuation alone (a tiny model's answer, seen in the app)
    ("Wait for it... and then.... go!", 0),  # an ellipsis is one mark, not a loop of dots
])
def test_a_looping_answer_is_counted(text, count):
    from studio.sampling import repeats

    assert repeats(text) == count


def test_preparation_reports_progress_and_a_stop_cancels_it(tiny_model_dir, qa_file, tmp_path, monkeypatch):
    from studio import data as data_module

    cfg = tiny_config(tiny_model_dir, qa_file, max_steps=2, eval_every=0, sample_every=0, save_every=0)
    run = run_to_end(cfg, tmp_path / "run")
    prepared = events_of(run.paths.root, "prepare")
    assert prepared and prepared[-1]["done"] == prepared[-1]["total"] > 0

    def slow_prepare(cfg, tokenizer, progress=None, should_stop=None, cache=True):
        deadline = time.monotonic() + 30
        while not should_stop():  # a big dataset still encoding when the user presses stop
            assert time.monotonic() < deadline, "the stop never reached the preparation"
            time.sleep(0.05)
        raise data_module.PreparationCancelled()

    monkeypatch.setattr(data_module, "prepare", slow_prepare)
    stopped = TrainingRun(cfg, tmp_path / "stopped")
    stopped.start()
    wait_for(lambda: stopped.state == "loading")
    stopped.stop()
    assert stopped.join(30) and stopped.state == "stopped"
    assert "preparing the data" in events_of(stopped.paths.root, "status")[-1]["reason"]


def test_a_style_paragraph_too_long_for_max_length_is_said_not_silently_dropped(tiny_model_dir, tmp_path):
    run = run_to_end(tiny_config(tiny_model_dir, max_length=128, max_steps=1, eval_every=1, sample_every=0,
                                 save_every=0), tmp_path / "run")  # the demo, whose paragraph is ~220 tokens
    assert run.state == "finished", run.error
    reasons = [e["reason"] for e in events_of(run.paths.root, "status")]
    assert any(r.startswith("no style loss: the held-out style paragraph does not fit data.max_length = 128")
               for r in reasons)
    assert all(e.get("style_loss") is None for e in events_of(run.paths.root, "eval"))
