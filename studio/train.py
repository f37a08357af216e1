"""The in-process trainer: a `transformers.Trainer` on a background thread, driven by method calls.

    run = TrainingRun(cfg, run_dir)   # writes config.toml; events go to run_dir/events.jsonl
    run.start(); run.pause(); run.resume(); run.checkpoint_now(); run.stop(); run.join()

Every control takes effect at a step boundary. The same controls arrive from other processes
through RUN/control.jsonl (`studio.runs.send_command`), so a run can be paused from a new SSH
session. The trainer only talks outward through events on its bus.
"""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import psutil
import torch
import transformers
from transformers import TrainerCallback

from studio import checkpoints, heldout, models, runs, sampling, templates
from studio.config import RunConfig
from studio.data import prepare
from studio.errors import StudioError
from studio.events import EventBus, JsonlWriter
from studio.run_state import RunState
from studio.runs import RunPaths

# Keys that only shape what is observed, not what is learned: changing them does not block resume.
OBSERVATION_KEYS = {"name", "train.eval_every", "train.sample_every", "train.save_every", "train.sample_prompts",
                    "train.sample_max_new_tokens", "train.sample_temperature", "train.nan_pause_after",
                    "model.device"}

OOM_HINT = ("out of memory: lower train.batch_size (raise train.grad_accum to keep the effective batch), "
            "lower data.max_length, set model.gradient_checkpointing = true, or model.quantization = \"4bit\"; "
            "the last checkpoint is kept, resume with `studio resume RUN`")


class ResumeRefused(StudioError):
    """The checkpoint was trained on something else; the message lists every difference."""


def resume_relevant(cfg: RunConfig) -> dict[str, Any]:
    flat = {f"{section}.{key}": value for section, values in asdict(cfg).items() if isinstance(values, dict)
            for key, value in values.items()}
    return {k: v for k, v in flat.items() if k not in OBSERVATION_KEYS}


def memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return psutil.Process().memory_info().rss / 2**20


def trainable_weights_finite(model) -> bool:
    """NaN weights are never saved: checked before every checkpoint and the adapter."""
    return all(bool(torch.isfinite(p).all()) for p in model.parameters() if p.requires_grad)


class Collator:
    """Pads a batch to its longest row (or packs it), from the input_ids and labels columns only."""

    def __init__(self, tokenizer, packing: bool, pad_to_multiple_of: int | None) -> None:
        if packing:
            # Padding-free packing: rows concatenated, position_ids restart per row; transformers'
            # masks keep the rows from attending to each other.
            self._collate = transformers.DataCollatorWithFlattening(return_position_ids=True)
        else:
            self._collate = transformers.DataCollatorForSeq2Seq(
                tokenizer, padding=True, label_pad_token_id=-100, pad_to_multiple_of=pad_to_multiple_of)

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        return self._collate([{"input_ids": r["input_ids"], "labels": r["labels"]} for r in rows])


class _HFTrainer(transformers.Trainer):
    """transformers.Trainer with atomic, manifest-checked checkpoints and a hook after each step."""

    def __init__(self, *args, studio_run: TrainingRun, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.studio_run = studio_run
        self.loss_finite = torch.tensor(True)
        self._staging_root: Path | None = None

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        # Kept on the device; read once per optimizer step together with the gradient check.
        self.loss_finite = self.loss_finite.to(loss.device) & torch.isfinite(loss.detach())
        return loss

    def _maybe_log_save_evaluate(self, *args, **kwargs) -> None:
        super()._maybe_log_save_evaluate(*args, **kwargs)
        self.studio_run._after_step(self)

    def _get_output_dir(self, trial) -> str:
        return str(self._staging_root) if self._staging_root is not None else super()._get_output_dir(trial)

    def _save_checkpoint(self, model, trial) -> None:
        run = self.studio_run
        step = self.state.global_step
        if not trainable_weights_finite(model):
            run._emit("error", message=f"step {step}: weights are not finite; checkpoint NOT saved")
            return
        root = run.paths.checkpoints
        root.mkdir(parents=True, exist_ok=True)
        self._staging_root = checkpoints.staging_dir(root, step)
        try:
            super()._save_checkpoint(model, trial)
            staged = self._staging_root / f"checkpoint-{step}"
            final = checkpoints.finalize(staged, root, step, run.fingerprints)
        finally:
            if self._staging_root.exists():
                shutil.rmtree(self._staging_root, ignore_errors=True)
            self._staging_root = None
        run._emit("checkpoint", path=str(final))


class _StudioCallback(TrainerCallback):
    def __init__(self, run: TrainingRun) -> None:
        self.run = run

    def on_train_begin(self, args, state, control, **kwargs):
        self.run._on_train_begin(state)

    def on_step_begin(self, args, state, control, **kwargs):
        self.run._step_started = time.perf_counter()

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        self.run._guard_non_finite(model)

    def on_step_end(self, args, state, control, **kwargs):
        self.run._train_seconds += time.perf_counter() - self.run._step_started

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.run._on_log(state, logs)


class TrainingRun:
    """One fine-tune, trained on a background thread of this process."""

    def __init__(self, cfg: RunConfig, run_dir: str | Path, bus: EventBus | None = None,
                 resume: bool = False) -> None:
        self.cfg = cfg
        self.paths = RunPaths(Path(run_dir))
        self.paths.root.mkdir(parents=True, exist_ok=True)
        self.resume_requested = resume
        if not resume:
            cfg.save(self.paths.config)
        self.bus = bus or EventBus()
        self._writer = JsonlWriter(self.paths.events)
        self.bus.subscribe(self._writer)
        self.state = RunState.NEW
        self.step = 0
        self.error: str | None = None
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._requests: set[str] = set()
        self._lock = threading.Lock()
        self._commands = runs.CommandReader(self.paths.root)
        self._hooked_step = -1
        self._train_seconds = 0.0
        self._step_started = 0.0
        self._last_log = (0.0, 0, 0)  # train seconds, tokens, step at the previous step event
        self._non_finite_in_a_row = 0
        self._pause_reason = ""
        self._stopping = False
        self.fingerprints: checkpoints.Fingerprints | None = None

    # -- controls (any thread) ------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("this run was already started")
        runs.mark_alive(self.paths.root)
        self._thread = threading.Thread(target=self._main, name=f"train:{self.paths.root.name}", daemon=True)
        self._thread.start()

    def pause(self) -> None:
        self._request("pause")

    def resume(self) -> None:
        self._request("resume")

    def stop(self) -> None:
        self._request("stop")

    def checkpoint_now(self) -> None:
        self._request("checkpoint")

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the run to end; True when it has."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _request(self, command: str) -> None:
        with self._lock:
            if command == "resume":
                self._requests.discard("pause")
            self._requests.add(command)
        self._wake.set()

    def _take_requests(self) -> set[str]:
        for command in self._commands.poll():
            self._request(command)
        with self._lock:
            taken, self._requests = self._requests, set()
        self._wake.clear()
        return taken

    # -- events -----------------------------------------------------------------------------------

    def _emit(self, type: str, **values: Any) -> None:
        self.bus.emit(type, self.step, **values)

    def _set_state(self, state: RunState, reason: str = "") -> None:
        self.state = state
        self._emit("status", state=state, reason=reason)

    # -- the thread -------------------------------------------------------------------------------

    def _main(self) -> None:
        try:
            self._set_state(RunState.LOADING, reason=f"loading {self.cfg.model.name} and {self.cfg.data.dataset}")
            trainer, resume_from = self._build()
            trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
            self._save_adapter(trainer.model)
            self._set_state(RunState.STOPPED if self._stopping else RunState.FINISHED,
                            reason="stopped on request" if self._stopping else f"reached {self.cfg.train.max_steps} steps")
        except torch.cuda.OutOfMemoryError:
            self.error = OOM_HINT
            self._emit("error", message=self.error)
            self._set_state(RunState.FAILED, reason="CUDA out of memory")
        except Exception as exc:  # the run ends, the app does not: say what broke
            self.error = f"{type(exc).__name__}: {exc}"
            self._emit("error", message=self.error)
            self._set_state(RunState.FAILED, reason=self.error)
        finally:
            runs.mark_gone(self.paths.root)
            self._writer.close()
            self.bus.unsubscribe(self._writer)

    def _build(self) -> tuple[_HFTrainer, Path | None]:
        cfg = self.cfg
        transformers.logging.disable_progress_bar()  # the studio shows its own progress
        tokenizer = models.load_tokenizer(cfg.model.name, trust_remote_code=cfg.model.trust_remote_code)
        added = templates.apply_template(tokenizer, cfg.template)
        data = prepare(cfg.data, tokenizer)
        self.fingerprints = checkpoints.Fingerprints(
            config=resume_relevant(cfg), dataset=data.fingerprint,
            template=templates.template_fingerprint(tokenizer), tokenizer=_tokenizer_fingerprint(tokenizer))
        resume_from = self._checkpoint_to_resume() if self.resume_requested else None
        if not self.resume_requested:
            self._emit("status", state=RunState.LOADING, reason=data.report.summary())

        model = models.load_model(cfg.model)
        trainable_tokens = None
        if added:
            model.resize_token_embeddings(len(tokenizer))
            trainable_tokens = tokenizer.convert_tokens_to_ids(added)
        model = models.add_lora(model, cfg.lora, trainable_token_indices=trainable_tokens)
        device = next(model.parameters()).device
        self.device = device
        self.tokenizer = tokenizer
        self.sample_chats = data.eval_questions[: cfg.train.sample_prompts]

        collator = Collator(tokenizer, cfg.train.packing, 8 if device.type == "cuda" else None)
        eval_collate = Collator(tokenizer, False, None)
        style = heldout.style_batch(tokenizer, data.style_text, cfg.data.max_length) if data.style_text else None
        self.evaluator = heldout.HeldOutEvaluator(data.eval, eval_collate, cfg.train.batch_size, style)

        t = cfg.train
        dtype = next(p.dtype for p in model.parameters())
        args = transformers.TrainingArguments(
            output_dir=str(self.paths.checkpoints),
            max_steps=t.max_steps,
            per_device_train_batch_size=t.batch_size,
            gradient_accumulation_steps=t.grad_accum,
            learning_rate=t.learning_rate,
            lr_scheduler_type=t.scheduler,
            warmup_steps=t.warmup_steps,
            weight_decay=t.weight_decay,
            max_grad_norm=t.max_grad_norm,
            optim=t.optimizer,
            seed=t.seed,
            data_seed=t.seed,
            logging_steps=1,
            include_num_input_tokens_seen="non_padding",  # tokens/s counts real tokens, not padding
            save_strategy="steps" if t.save_every else "no",
            save_steps=t.save_every or 500,
            eval_strategy="no",
            report_to="none",
            disable_tqdm=True,
            dataloader_num_workers=0,  # never fork from a multi-threaded app
            remove_unused_columns=False,
            train_sampling_strategy="group_by_length" if t.group_by_length else "random",
            length_column_name="length",
            use_cpu=device.type == "cpu",
            bf16=dtype == torch.bfloat16,
            fp16=dtype == torch.float16,
        )
        trainer = _HFTrainer(model=model, args=args, train_dataset=data.train, data_collator=collator,
                             processing_class=tokenizer, callbacks=[_StudioCallback(self)], studio_run=self)
        trainer.remove_callback(transformers.trainer_callback.PrinterCallback)  # our events replace its prints
        self.hf = trainer
        return trainer, resume_from

    def _checkpoint_to_resume(self) -> Path | None:
        checkpoints.remove_stale_staging(self.paths.checkpoints)
        latest = checkpoints.latest_valid(self.paths.checkpoints)
        if latest is None:
            return None  # nothing saved yet: start over from step 0
        path, manifest = latest
        diffs = checkpoints.manifest_fingerprints(manifest).differences(self.fingerprints)
        if diffs:
            raise ResumeRefused(f"{path} was trained on something else:\n  " + "\n  ".join(diffs)
                                + "\nput the old values back, or start a new run")
        return path

    # -- hooks called by the HF trainer (training thread) -----------------------------------------

    def _on_train_begin(self, state) -> None:
        self.step = state.global_step
        self._last_log = (0.0, state.num_input_tokens_seen, state.global_step)
        if state.global_step == 0:  # step 0 is the base model: every curve starts there
            self._measure(self.hf.model, evaluate=bool(self.cfg.train.eval_every),
                          sample=bool(self.cfg.train.sample_every))
        self._set_state(RunState.RUNNING, reason="resumed" if state.global_step else "started")

    def _guard_non_finite(self, model) -> None:
        """Skip an optimizer step whose loss or gradient is NaN/inf: weights stay untouched."""
        grads = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
        norms = torch.stack([g.detach().float().norm() for g in grads]) if grads else torch.zeros(1)
        finite = bool(torch.isfinite(norms).all() & self.hf.loss_finite.to(norms.device).all())
        self.hf.loss_finite = torch.tensor(True)
        if finite:
            self._non_finite_in_a_row = 0
            return
        for p in model.parameters():
            p.grad = None  # torch optimizers leave parameters without a gradient alone
        self._non_finite_in_a_row += 1
        self.step = self.hf.state.global_step + 1
        self._emit("error", message=f"step {self.step}: loss or gradient norm is not finite; step skipped, "
                                    f"weights untouched ({self._non_finite_in_a_row} in a row)")
        if self._non_finite_in_a_row >= self.cfg.train.nan_pause_after:
            self._request("pause")
            self._pause_reason = (f"{self._non_finite_in_a_row} non-finite steps in a row: lower "
                                  f"train.learning_rate or check the data, then resume")

    def _on_log(self, state, logs: dict[str, float]) -> None:
        self.step = state.global_step
        seconds, tokens, step = self._last_log
        elapsed = max(self._train_seconds - seconds, 1e-9)
        step_time = elapsed / max(state.global_step - step, 1)
        self._last_log = (self._train_seconds, state.num_input_tokens_seen, state.global_step)
        self._emit("step", loss=logs["loss"], lr=logs.get("learning_rate"), grad_norm=logs.get("grad_norm"),
                   tokens_per_s=(state.num_input_tokens_seen - tokens) / elapsed, memory_mb=memory_mb(self.device),
                   epoch=logs.get("epoch"), step_time_s=step_time,
                   eta_s=step_time * (self.cfg.train.max_steps - state.global_step))

    def _after_step(self, trainer: _HFTrainer) -> None:
        step = trainer.state.global_step
        if step == self._hooked_step:
            return  # transformers calls this again at epoch end for the same step
        self._hooked_step = step
        self.step = step
        t = self.cfg.train
        last = step >= t.max_steps  # the curves end at the last step, whatever the interval
        evaluate = bool(t.eval_every) and (last or step % t.eval_every == 0)
        sample = bool(t.sample_every) and (last or step % t.sample_every == 0)
        if evaluate or sample:
            self._measure(trainer.model, evaluate=evaluate, sample=sample)
        self._obey(trainer, self._take_requests())

    def _obey(self, trainer: _HFTrainer, requests: set[str]) -> None:
        if "checkpoint" in requests and "stop" not in requests:
            trainer._save_checkpoint(trainer.model, None)
        if "pause" in requests and "stop" not in requests:
            requests = self._wait_while_paused(trainer)
        if "stop" in requests:
            self._stopping = True
            self._set_state(RunState.RUNNING, reason="stopping: saving a checkpoint and the adapter")
            trainer._save_checkpoint(trainer.model, None)
            trainer.control.should_training_stop = True

    def _wait_while_paused(self, trainer: _HFTrainer) -> set[str]:
        self._set_state(RunState.PAUSED, reason=self._pause_reason or "paused on request")
        self._pause_reason = ""
        started = time.perf_counter()
        while True:
            self._wake.wait(0.25)
            requests = self._take_requests()
            if "checkpoint" in requests:
                trainer._save_checkpoint(trainer.model, None)
            if "stop" in requests or "resume" in requests:
                break
        self._step_started += time.perf_counter() - started
        if "stop" not in requests:
            self._non_finite_in_a_row = 0
            self._set_state(RunState.RUNNING, reason="resumed")
        return requests

    def _measure(self, model, evaluate: bool = True, sample: bool = True) -> None:
        if evaluate:
            self._emit("eval", **self.evaluator(model))
        if sample and self.sample_chats:
            t = self.cfg.train
            modes = {"greedy": None, "sampled": t.sample_temperature}
            for mode, temperature in modes.items():
                answers = sampling.generate(model, self.tokenizer, self.sample_chats, t.sample_max_new_tokens,
                                            temperature, seed=t.seed)
                for index, (chat, answer) in enumerate(zip(self.sample_chats, answers)):
                    self._emit("sample", prompt=chat[-1]["content"], response=answer, mode=mode, index=index)

    def _save_adapter(self, model) -> None:
        if not trainable_weights_finite(model):
            self._emit("error", message="adapter weights are not finite; adapter NOT saved")
            return
        model.save_pretrained(str(self.paths.adapter))
        self.tokenizer.save_pretrained(str(self.paths.adapter))


def _tokenizer_fingerprint(tokenizer) -> str:
    vocab = sorted(tokenizer.get_vocab().items())
    return checkpoints.text_sha256(repr((vocab, tokenizer.all_special_tokens)))
