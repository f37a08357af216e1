"""The in-process trainer: a `transformers.Trainer` (or, for train.method = "dpo", TRL's DPOTrainer, which is
one; studio.methods says what differs) on a background thread, driven by method calls.

    run = TrainingRun(cfg, run_dir)   # writes config.toml; events go to run_dir/events.jsonl
    run.start(); run.pause(); run.resume(); run.checkpoint_now(); run.stop(); run.join()

Every control takes effect at a step boundary; evaluation and sampling give way at once. The same
controls arrive from other processes through RUN/control.jsonl (`studio control`), so a run can
be paused from a new SSH session. The trainer only talks outward through events on its bus.

On several processes (`studio train --gpus N`, torchrun) every rank runs this same code: rank 0
alone writes the run directory's shared files, measures (eval, samples) and reads the control
file; `Controls.take` makes every rank act on the same step.

The studio observes the HF loop through one TrainerCallback (`_Hooks`) and keeps its metrics on
the device: one host read per optimizer step (the non-finite guard), which also carries the
loss, token count and gradient norm, instead of transformers' per-micro-batch syncs.
"""

from __future__ import annotations

import functools
import threading
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import psutil
import torch
import transformers
from transformers import TrainerCallback

from studio import checkpoints, distributed, heldout, lr_range, methods, models, runs, sampling, templates
from studio.batching import TokenBudgetBatches
from studio.config import AUTO, RunConfig, schedule_options
from studio.controls import Controls, Interrupted
from studio.data import PreparationCancelled
from studio.errors import StudioError
from studio.events import EventBus, JsonlWriter
from studio.judge_curve import JudgeCurve
from studio.packed_attention import use_packed_attention
from studio.run_state import RunState
from studio.runs import RunPaths

# Keys that only shape what is observed or kept, not what is learned: changing them does not block resume.
OBSERVATION_KEYS = {"name", "train.eval_every", "train.sample_every", "train.save_every", "train.sample_prompts",
                    "train.sample_max_new_tokens", "train.sample_temperature", "train.nan_pause_after",
                    "train.keep_checkpoints", "train.observe_budget", "train.judge_every", "train.judge_prompt",
                    "model.device"}

OOM_HINT = ("out of memory: lower train.batch_size (raise train.grad_accum to keep the effective batch), "
            "lower data.max_length, set model.gradient_checkpointing = true, or model.quantization = \"4bit\"; "
            "the last checkpoint is kept, resume with `studio resume RUN`")


class ResumeRefused(StudioError):
    """The checkpoint was trained on something else; the message lists every difference."""


class TrainError(StudioError):
    """Training cannot go on as configured; the message says what to change."""


def resume_relevant(cfg: RunConfig) -> dict[str, Any]:
    flat = {f"{section}.{key}": value for section, values in asdict(cfg).items() if isinstance(values, dict)
            for key, value in values.items()}
    return {k: v for k, v in flat.items() if k not in OBSERVATION_KEYS}


def memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return psutil.Process().memory_info().rss / 2**20


@torch.no_grad()
def packing_keeps_rows_apart(model) -> bool:
    """Whether this model, with its attention implementation, keeps packed rows apart: two short rows
    packed into one sequence must give the logits each gives alone. Checked on the real model, since
    not every architecture reads row boundaries from position_ids."""
    rows = [[11, 12, 13, 14, 15], [21, 22, 23]]
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        alone = [model(input_ids=torch.tensor([row], device=device), use_cache=False).logits[0].float()
                 for row in rows]
        positions = [p for row in rows for p in range(len(row))]
        packed = model(input_ids=torch.tensor([rows[0] + rows[1]], device=device),
                       position_ids=torch.tensor([positions], device=device), use_cache=False).logits[0].float()
    finally:
        model.train(was_training)
    expected = torch.cat(alone)
    return bool((packed - expected).abs().max() <= 2e-2 * expected.abs().max() + 1e-4)


def trainable_weights_finite(model) -> bool:
    """NaN weights are never saved: checked before every checkpoint and the adapter."""
    return all(bool(torch.isfinite(p).all()) for p in model.parameters() if p.requires_grad)


class StepTotals:
    """The loss, real tokens and loss finiteness of one optimizer step's micro-batches, kept on the device."""

    def __init__(self) -> None:
        self.loss: torch.Tensor | None = None
        self.tokens: torch.Tensor | None = None
        self.loss_finite: torch.Tensor | None = None

    def add(self, loss: torch.Tensor, inputs: dict[str, torch.Tensor]) -> None:
        mask = inputs.get("attention_mask")  # packed rows have none: every token is real
        tokens = mask.sum() if mask is not None else torch.tensor(inputs["input_ids"].numel())
        tokens = tokens.to(loss.device, torch.float32)
        finite = torch.isfinite(loss)
        loss = torch.nan_to_num(loss.float(), nan=0.0, posinf=0.0, neginf=0.0)
        if self.loss is None:
            self.loss, self.tokens, self.loss_finite = loss, tokens, finite
        else:
            self.loss, self.tokens, self.loss_finite = self.loss + loss, self.tokens + tokens, self.loss_finite & finite

    def take(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        taken = self.loss, self.tokens, self.loss_finite
        self.__init__()
        return taken


class StudioTrainer:
    """What the studio adds to a library trainer (transformers.Trainer, or TRL's trainers built on it):
    atomic, manifest-checked checkpoints and on-device step totals. `studio_trainer` mixes it in."""

    def __init__(self, *args, studio_run: TrainingRun, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.studio_run = studio_run
        self.step_totals = StepTotals()

    def get_train_dataloader(self):
        """Batches by token budget when train.batch_tokens is set; else transformers' own (batch_size rows)."""
        t = self.studio_run.cfg.train
        if not t.batch_tokens:
            return super().get_train_dataloader()
        batches = TokenBudgetBatches(self.train_dataset["length"], t.batch_tokens, self.studio_run.packing, t.seed)
        return self.accelerator.prepare(torch.utils.data.DataLoader(
            self.train_dataset, batch_sampler=batches, collate_fn=self.data_collator, num_workers=0))

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        self.step_totals.add(loss, inputs)
        return loss

    # The one private override: transformers has no public hook around a checkpoint's writing, and
    # atomicity needs one (write into the staging folder, then hash, manifest and rename). Every rank
    # writes its shards and RNG state; rank 0 finalizes once all have. tests/test_train.py checks the
    # method still exists and is what the save path calls.
    def _save_checkpoint(self, model, trial) -> None:
        run = self.studio_run
        step = self.state.global_step
        if not trainable_weights_finite(model):
            run._emit("error", message=f"step {step}: weights are not finite; checkpoint NOT saved")
            return
        super()._save_checkpoint(model, trial)
        distributed.barrier()  # every rank's files are in the staging folder
        if distributed.is_main():
            final = checkpoints.finalize(checkpoints.staged(run.paths.checkpoints, step), run.paths.checkpoints,
                                         step, run.fingerprints, distributed.world_size())
            checkpoints.prune(run.paths.checkpoints, run.cfg.train.keep_checkpoints, final)
            run._emit("checkpoint", path=str(final))
        distributed.barrier()  # nobody goes on (or saves again) before the rename


@functools.cache
def studio_trainer(base: type) -> type:
    """`base` (the run's method's trainer class) with the studio's additions."""
    return type(f"Studio{base.__name__}", (StudioTrainer, base), {})


class _Hooks(TrainerCallback):
    """The studio's hooks into the HF loop; all the work is the run's."""

    def __init__(self, run: TrainingRun) -> None:
        self.run = run

    def on_step_begin(self, args, state, control, **kwargs):
        self.run._step_started = time.perf_counter()

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        self.run._guard(model)

    def on_step_end(self, args, state, control, **kwargs):
        self.run._after_step(state, control)

    def on_save(self, args, state, control, **kwargs):
        self.run._after_save(control)


class TrainingRun:
    """One fine-tune, trained on a background thread of this process."""

    def __init__(self, cfg: RunConfig, run_dir: str | Path, bus: EventBus | None = None,
                 resume: bool = False) -> None:
        self.cfg = cfg if resume else cfg.with_local_paths_resolved()
        self.paths = RunPaths(Path(run_dir))
        self.method = methods.method(self.cfg.train.method)  # what SFT and DPO do differently
        self.main_process = distributed.is_main()
        self.resume_requested = resume
        self.bus = bus or EventBus()
        self._writer: JsonlWriter | None = None
        if self.main_process:
            self.paths.root.mkdir(parents=True, exist_ok=True)
            if not resume:
                self.cfg.save(self.paths.config)
            self._writer = JsonlWriter(self.paths.events)
            self.bus.subscribe(self._writer)
        self.controls = Controls(self.paths.root, read_file=self.main_process)
        self.state = RunState.NEW
        self.step = 0
        self.error: str | None = None
        self._thread: threading.Thread | None = None
        # Set once the model and data are loaded (on the run's thread).
        self.tokenizer = None
        self.hf: StudioTrainer | None = None
        self.device: torch.device | None = None
        self.evaluator: heldout.HeldOutEvaluator | None = None
        self.sample_chats: list[list[dict]] = []
        self.packing = False  # padding-free batches (train.packing, where the model keeps packed rows apart)
        self.fingerprints: checkpoints.Fingerprints | None = None
        # Time: training (between step begin and end, less pauses) and observing (evals, samples).
        self._step_started = 0.0
        self._first_step = 0  # the step this process started (or resumed) from
        self._train_s = 0.0
        self._observe_s = 0.0
        self._observe_cost = {"eval": 0.0, "sample": 0.0}  # seconds the last one took
        self._step_values: dict[str, float] = {}  # the guard's host read of this step: loss, tokens, grad norm, lr
        self._method_values: dict[str, float] = {}  # the method's own metrics of this step (DPO: its rewards)
        self._non_finite_in_a_row = 0
        self._pause_reason = ""
        self._pause_after_save = False
        self._stopping = False

    # -- controls (any thread) ------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("this run was already started")
        if self.main_process:
            runs.mark_alive(self.paths.root)
        self._thread = threading.Thread(target=self._main, name=f"train:{self.paths.root.name}", daemon=True)
        self._thread.start()

    def pause(self) -> None:
        self.controls.request("pause")

    def resume(self) -> None:
        self.controls.request("resume")

    def stop(self) -> None:
        self.controls.request("stop")

    def checkpoint_now(self) -> None:
        self.controls.request("checkpoint")

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the run to end; True when it has."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- events -----------------------------------------------------------------------------------

    def _emit(self, type: str, **values: Any) -> None:
        self.bus.emit(type, self.step, **values)

    def _set_state(self, state: RunState, reason: str = "") -> None:
        self.state = state
        self._emit("status", state=state, reason=reason)

    # -- the thread -------------------------------------------------------------------------------

    def _main(self) -> None:
        judge_curve = None
        try:
            self._set_state(RunState.LOADING, reason=f"loading {self.cfg.model.name} and {self.cfg.data.dataset}")
            resume_from = self._build()
            judge_curve = self._judge_curve()
            if resume_from is None and not self._measure_base_model():
                self._set_state(RunState.STOPPED, reason="stopped before the first step: nothing trained or saved")
                return
            self._set_state(RunState.RUNNING, reason=f"resumed from step {self.step}" if resume_from else "started")
            self.hf.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
            self._save_adapter(self.hf.model)
            self._set_state(RunState.STOPPED if self._stopping else RunState.FINISHED,
                            reason="stopped on request" if self._stopping else f"reached {self.cfg.train.max_steps} steps")
        except PreparationCancelled:
            self._set_state(RunState.STOPPED, reason="stopped while preparing the data: nothing trained or saved")
        except torch.cuda.OutOfMemoryError:
            self.error = OOM_HINT
            self._emit("error", message=self.error)
            self._set_state(RunState.FAILED, reason="CUDA out of memory")
        except Exception as exc:  # the run ends, the app does not: say what broke
            self.error = str(exc) if isinstance(exc, StudioError) else f"{type(exc).__name__}: {exc}"
            self._emit("error", message=self.error)
            self._set_state(RunState.FAILED, reason=self.error)
        finally:
            if judge_curve is not None:
                judge_curve.close()
            if self.main_process:
                runs.mark_gone(self.paths.root)
            if self._writer is not None:
                self._writer.close()
                self.bus.unsubscribe(self._writer)

    def _build(self) -> Path | None:
        """Load the tokenizer, data and model and make the trainer; returns the checkpoint to resume from."""
        cfg = self.cfg
        transformers.logging.disable_progress_bar()  # the studio shows its own progress
        tokenizer = models.load_tokenizer(cfg.model.name, trust_remote_code=cfg.model.trust_remote_code)
        added = templates.apply_template(tokenizer, cfg.template)
        method = self.method
        data = method.prepare(cfg, tokenizer, progress=self._preparation_progress(),
                              should_stop=lambda: self.controls.pending("stop"))
        self.fingerprints = checkpoints.Fingerprints(
            config=resume_relevant(cfg), dataset=data.fingerprint,
            template=templates.template_fingerprint(tokenizer), tokenizer=_tokenizer_fingerprint(tokenizer))
        resume_from = self._checkpoint_to_resume() if self.resume_requested else None
        if not self.resume_requested:
            self._emit("status", state=RunState.LOADING, reason=data.report.summary())

        # Seeded before the model is made: LoRA's initial weights come from the global generator.
        transformers.set_seed(cfg.train.seed)
        model = models.load_model(cfg.model)
        # No KV cache while training: it is of no use there, and with one transformers stops reading packed
        # rows' boundaries from position_ids, so packed rows would attend to each other. Generation asks
        # for the cache itself.
        model.config.use_cache = False
        trainable_tokens = None
        if added:
            model.resize_token_embeddings(len(tokenizer))
            trainable_tokens = tokenizer.convert_tokens_to_ids(added)
        if cfg.model.adapter:
            model = models.continue_adapter(model, cfg.model.adapter)
        else:
            model = models.add_lora(model, cfg.lora, trainable_token_indices=trainable_tokens)
        device, dtype = models.choose_device_dtype(cfg.model.device, cfg.model.dtype)
        precision = models.precision(device, dtype)
        packs = cfg.train.packing and method.packs
        switched = packs and use_packed_attention(model)
        self.packing = packing = packs and packing_keeps_rows_apart(model)
        if switched and not packing:
            model.set_attn_implementation("sdpa")
        if packs and not packing:
            self._emit("status", state=RunState.LOADING, reason=(
                f"packing is off: with {type(model.get_base_model()).__name__} and its attention, packed rows "
                "would attend to each other; training on length-grouped padded batches instead"))
        self.device, self.tokenizer = device, tokenizer
        self.sample_chats = data.eval_questions[: cfg.train.sample_prompts]
        style = heldout.style_batch(tokenizer, data.style_text, cfg.data.max_length) if data.style_text else None
        if data.style_text and style is None:  # said, not silently missing from the chart
            self._emit("status", state=RunState.LOADING, reason=(
                f"no style loss: the held-out style paragraph does not fit data.max_length = {cfg.data.max_length} "
                "(raise it to about 300 to see it)"))
        self.evaluator = method.evaluator(data, tokenizer, cfg, style)
        self._emit("setup", method=method.name, device=str(device), dtype=str(dtype).removeprefix("torch."),
                   precision=precision, quantization=f"{bits}bit" if (bits := models.quantization_bits(cfg.model.quantization, device))
                   else "none", processes=distributed.world_size(),
                   trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
                   total_params=sum(p.numel() for p in model.parameters()))

        t = cfg.train
        args = method.arguments(
            cfg, device,
            output_dir=str(self.paths.checkpoints / checkpoints.STAGING),
            max_steps=t.max_steps,
            per_device_train_batch_size=t.batch_size,
            gradient_accumulation_steps=t.grad_accum,
            learning_rate=t.learning_rate,
            lr_scheduler_type=t.scheduler,
            lr_scheduler_kwargs=schedule_options(t.scheduler, t.max_steps),
            warmup_steps=t.warmup_steps,
            weight_decay=t.weight_decay,
            max_grad_norm=0.0,  # the guard clips (it needs the norm first); see _guard
            optim=t.optimizer,
            seed=t.seed,
            data_seed=t.seed,
            # The studio logs from its own on-device totals: transformers' logging, token counting and
            # NaN filter would each read the device once per micro-batch.
            logging_strategy="no",
            logging_nan_inf_filter=False,
            include_num_input_tokens_seen="no",
            save_strategy="steps" if t.save_every else "no",
            save_steps=t.save_every or 500,
            eval_strategy="no",
            report_to="none",
            disable_tqdm=True,
            dataloader_num_workers=0,  # never fork from a multi-threaded app
            remove_unused_columns=False,
            train_sampling_strategy="group_by_length" if t.group_by_length or t.packing != packing else "random",
            length_column_name="length",
            use_cpu=device.type == "cpu",
            bf16=precision == "bf16",
            fp16=precision == "fp16",
            ddp_find_unused_parameters=False,
        )
        self.hf = studio_trainer(method.trainer_class())(
            model=model, args=args, train_dataset=data.train, processing_class=tokenizer, callbacks=[_Hooks(self)],
            studio_run=self, **method.trainer_options(model, tokenizer, device, packing))
        method.ready(self.hf, cfg)
        self.hf.remove_callback(transformers.trainer_callback.PrinterCallback)  # our events replace its prints
        if t.learning_rate == AUTO:
            self._choose_learning_rate(method.auto_learning_rate)
        return resume_from

    def _choose_learning_rate(self, fixed: float | None) -> None:
        """train.learning_rate = "auto": the method's `fixed` rate, or else rank 0 runs the range test
        (studio.lr_range) on the run's first batches and every rank trains at the rate it picked; config.toml
        keeps the number (resume and rerun use it)."""
        hf = self.hf
        if fixed is not None:
            self._use_learning_rate(fixed)
            self._set_state(RunState.LOADING, reason=f"learning rate {fixed:g}: the usual rate for "
                                                     f"{self.cfg.train.method.upper()} with LoRA (train.learning_rate = auto)")
            return
        test = None
        if self.main_process:
            def say(done: int, steps: int, rate: float, loss: float) -> None:
                self._set_state(RunState.MEASURING, reason=(
                    f"learning-rate range test: step {done}/{steps} (lr {rate:.1e}, loss {loss:.3f}), from "
                    f"{lr_range.START:g} to {lr_range.END:g} on a throwaway copy of the adapter"))

            self._set_state(RunState.MEASURING, reason=(
                f"learning-rate range test: {lr_range.STEPS} steps from {lr_range.START:g} to {lr_range.END:g} on a "
                "throwaway copy of the adapter"))

            def loss_of(batch: dict) -> torch.Tensor:
                with hf.accelerator.autocast():
                    return hf.compute_loss(hf.model, hf._prepare_inputs(batch))

            test = lr_range.range_test(hf.model, hf.get_train_dataloader, loss_of, max_grad_norm=self.cfg.train.max_grad_norm,
                                       should_stop=lambda: self.controls.pending("stop"), progress=say)
        test = distributed.broadcast(test)
        if test is None:
            if self.controls.pending("stop"):
                return  # the run stops before its first step
            raise TrainError("the learning-rate range test gave no finite loss: set train.learning_rate to a number "
                             "(e.g. 2e-4) and check the data")
        self._use_learning_rate(test.chosen)
        if self.main_process:
            test.save(self.paths.lr_range)
        self._emit("lr_range", chosen=test.chosen, rule=test.rule, minimum_tenth=test.minimum_tenth,
                   steepest=test.steepest, rates=test.rates, losses=test.losses)

    def _use_learning_rate(self, rate: float) -> None:
        """Train at `rate` and write it into config.toml in place of "auto"."""
        self.cfg = replace(self.cfg, train=replace(self.cfg.train, learning_rate=rate))
        self.hf.args.learning_rate = rate
        self.fingerprints = replace(self.fingerprints, config=resume_relevant(self.cfg))
        if self.main_process:
            self.cfg.save(self.paths.config)

    def _judge_curve(self) -> JudgeCurve | None:
        """The judge score curve (train.judge_every), on rank 0, scoring the greedy and sampled answers."""
        t = self.cfg.train
        if not (t.judge_every and t.sample_every and self.sample_chats and self.main_process):
            return None
        return JudgeCurve(self.bus, t.judge_prompt, t.judge_every, t.max_steps, 2 * len(self.sample_chats))

    def _preparation_progress(self):
        """A `prepare` progress callback that writes `prepare` events, at most twice a second and at the end."""
        started = time.perf_counter()
        last = 0.0

        def progress(done: int, total: int) -> None:
            nonlocal last
            now = time.perf_counter()
            if now - last < 0.5 and done < total:
                return
            last = now
            rate = done / max(now - started, 1e-9)
            self._emit("prepare", done=done, total=total, rows_per_s=rate,
                       eta_s=(total - done) / rate if rate else None)

        return progress

    def _checkpoint_to_resume(self) -> Path | None:
        root = self.paths.checkpoints
        if self.main_process:
            checkpoints.recover(root)
        distributed.barrier()
        found = checkpoints.list_checkpoints(root)
        latest = checkpoints.latest_valid(root)
        if latest is None:
            # Never start over silently: the event says why, and readers drop the old steps.
            why = (f"none of the {len(found)} checkpoints is valid ({', '.join(p.name for p in found)}): "
                   if found else "no checkpoint was saved before it stopped: ")
            self._emit("error", message=f"cannot resume: {why}training again from step 0")
            self._emit("resume", from_step=0)
            return None
        path, manifest = latest
        diffs = checkpoints.manifest_fingerprints(manifest).differences(self.fingerprints)
        if manifest.get("world_size", 1) != distributed.world_size():
            diffs.append(f"processes: {manifest.get('world_size', 1)} -> {distributed.world_size()} "
                         f"(resume with train.gpus = {manifest.get('world_size', 1)})")
        if diffs:
            raise ResumeRefused(f"{path} was trained on something else:\n  " + "\n  ".join(diffs)
                                + "\nput the old values back, or start a new run")
        self.step = self._first_step = manifest["step"]
        self._emit("resume", from_step=self.step)
        return path

    # -- observing: evals and samples --------------------------------------------------------------

    def _measure_base_model(self) -> bool:
        """Step 0 is the base model: every curve starts there. False when a stop came first."""
        t = self.cfg.train
        if t.eval_every or t.sample_every:
            self._set_state(RunState.MEASURING, reason="measuring the base model (step 0): held-out loss and "
                                                       "sampled answers")
            self._measure(evaluate=bool(t.eval_every), sample=bool(t.sample_every))
        requests = self.controls.take()
        if "pause" in requests and "stop" not in requests:
            requests = self._pause(saved=None, can_save=False)
        return "stop" not in requests

    def _measure(self, evaluate: bool, sample: bool) -> None:
        """Rank 0 evaluates and samples; a pause or stop request cuts it short (the others wait at the
        next collective)."""
        if not self.main_process:
            return
        model = self.hf.model
        should_stop = lambda: self.controls.pending("pause", "stop")  # noqa: E731
        started = time.perf_counter()
        try:
            if evaluate:
                self._emit("eval", **self.evaluator(model, should_stop))
                self._observe_cost["eval"] = time.perf_counter() - started
            if sample and self.sample_chats:
                begun = time.perf_counter()
                self._sample(model, should_stop)
                self._observe_cost["sample"] = time.perf_counter() - begun
        except Interrupted:
            self._emit("error", message=f"step {self.step}: evaluation and sampling cut short by a pause or "
                                        "stop request (what was cut is not shown)")
        finally:
            self._observe_s += time.perf_counter() - started

    def _sample(self, model, should_stop) -> None:
        t = self.cfg.train
        greedy, sampled = sampling.greedy_and_sampled(model, self.tokenizer, self.sample_chats,
                                                      t.sample_max_new_tokens, t.sample_temperature, t.seed,
                                                      should_stop)
        for mode, answers in (("greedy", greedy), ("sampled", sampled)):
            for index, (chat, answer) in enumerate(zip(self.sample_chats, answers)):
                self._emit("sample", prompt=chat[-1]["content"], response=answer, mode=mode, index=index,
                           repeats=sampling.repeats(answer))

    def _observation_due(self, kind: str, every: int, step: int) -> bool:
        """At its interval, unless it would push observation past its share of the wall time; the
        last step is always measured, so every curve ends where training did."""
        if not every:
            return False
        if step >= self.cfg.train.max_steps:
            return True
        if step % every:
            return False
        cost = self._observe_cost[kind]
        share = (self._observe_s + cost) / max(self._observe_s + cost + self._train_s, 1e-9)
        if share <= self.cfg.train.observe_budget:
            return True
        self._emit("status", state=self.state, reason=f"{'held-out loss' if kind == 'eval' else 'samples'} at step "
                   f"{step} skipped: it would take observation to {share:.0%} of the time (train.observe_budget "
                   f"{self.cfg.train.observe_budget:.0%})")
        return False

    # -- hooks called from the HF loop (training thread) ------------------------------------------

    def _guard(self, model) -> None:
        """Before the optimizer step: clip, read the step's totals in one device sync, and skip a step
        whose loss or gradient is NaN/inf, leaving the weights untouched.

        With fp16 loss scaling an inf gradient is an overflow: the scaler skips that step and lowers
        its scale by itself, and it is not counted as a non-finite step."""
        hf = self.hf
        params = [p for p in model.parameters() if p.requires_grad and p.grad is not None]
        grad_norm = torch.nn.utils.clip_grad_norm_(params, self.cfg.train.max_grad_norm, foreach=True)
        loss, tokens, loss_finite = hf.step_totals.take()
        loss_ok, grads_ok, loss, tokens, grad_norm = torch.stack([
            loss_finite.float(), torch.isfinite(grad_norm).float(), loss, tokens,
            torch.nan_to_num(grad_norm.float(), nan=-1.0, posinf=-1.0)]).tolist()  # the step's one host read
        loss_sum, tokens, bad_loss = distributed.all_reduce([loss, tokens, 1.0 - loss_ok])
        self._step_values = {"loss": loss_sum / distributed.world_size(), "tokens": tokens,
                             "grad_norm": grad_norm if grads_ok else float("nan"),
                             "lr": hf.lr_scheduler.get_last_lr()[0]}
        self._method_values = self.method.step_metrics(hf)
        if not bad_loss and (grads_ok or self.loss_scaling()):
            self._non_finite_in_a_row = 0
            return
        for p in model.parameters():
            p.grad = None  # torch optimizers leave parameters without a gradient alone
        self._non_finite_in_a_row += 1
        self.step = hf.state.global_step + 1
        self._step_values["loss"] = float("nan")
        self._emit("error", message=f"step {self.step}: loss or gradient norm is not finite; step skipped, "
                                    f"weights untouched ({self._non_finite_in_a_row} in a row)")
        if self._non_finite_in_a_row >= self.cfg.train.nan_pause_after:
            self.controls.request("pause")
            self._pause_reason = (f"{self._non_finite_in_a_row} non-finite steps in a row: lower "
                                  f"train.learning_rate or check the data, then resume")

    def loss_scaling(self) -> bool:
        """fp16 training: a GradScaler skips overflowing steps and lowers its scale by itself."""
        return self.hf.accelerator.scaler is not None

    def _after_step(self, state, control) -> None:
        self.step = step = state.global_step
        step_seconds = time.perf_counter() - self._step_started
        self._train_s += step_seconds
        self._emit_step(state, step_seconds)
        t = self.cfg.train
        evaluate = self._observation_due("eval", t.eval_every, step)
        sample = self._observation_due("sample", t.sample_every, step)
        if evaluate or sample:
            self._set_state(RunState.MEASURING, reason=f"held-out loss and sampled answers at step {step}")
            self._measure(evaluate, sample)
            self._set_state(RunState.RUNNING, reason="training")
        self._obey(self.controls.take(), control)

    def _emit_step(self, state, seconds: float) -> None:
        values = self._step_values
        memory = memory_mb(self.device)
        memory_sum, = distributed.all_reduce([memory])
        memory_max, = distributed.all_reduce([memory], op="max")
        wall = self._train_s + self._observe_s
        self._emit("step", loss=values.get("loss"), lr=values.get("lr"), grad_norm=values.get("grad_norm"),
                   tokens_per_s=values.get("tokens", 0.0) / max(seconds, 1e-9), memory_mb=memory_sum,
                   memory_max_mb=memory_max, epoch=state.epoch, step_time_s=seconds,
                   eta_s=wall / max(state.global_step - self._first_step, 1) * (self.cfg.train.max_steps
                                                                               - state.global_step),
                   observe_share=self._observe_s / wall if wall else 0.0, **self._method_values)

    def _obey(self, requests: set[str], control) -> None:
        """Act on the requests taken at the end of a step: checkpoint and stop through the trainer's own save
        (it runs right after this hook), pause here, or after that save when one is due."""
        if "checkpoint" in requests or "stop" in requests:
            control.should_save = True
        if "stop" in requests:
            self._begin_stop(control)
        elif "pause" in requests:
            if control.should_save:
                self._pause_after_save = True  # the save of this step first, then the pause
            else:
                self._act_on_pause(self._pause(saved=None), control)

    def _after_save(self, control) -> None:
        if self._pause_after_save:
            self._pause_after_save = False
            saved = self.paths.checkpoints / f"{checkpoints.PREFIX}{self.step}"
            self._act_on_pause(self._pause(saved=saved if saved.exists() else None), control)

    def _act_on_pause(self, requests: set[str], control) -> None:
        if "stop" in requests:
            control.should_save = True
            self._begin_stop(control)
        elif "checkpoint" in requests:
            control.should_save = True
            self._pause_after_save = "resume" not in requests  # save, then go on pausing

    def _begin_stop(self, control) -> None:
        self._stopping = True
        control.should_training_stop = True
        self._set_state(RunState.RUNNING, reason="stopping: saving a checkpoint and the adapter")

    def _pause(self, saved: Path | None, can_save: bool = True) -> set[str]:
        """Wait for resume, stop or checkpoint; returns the requests that ended the pause.

        A checkpoint asked for while this step's checkpoint exists (`saved`) is that checkpoint: nothing
        changes while paused. Before the first step there is nothing to save."""
        self._set_state(RunState.PAUSED, reason=self._pause_reason or "paused on request")
        self._pause_reason = ""
        while True:
            self.controls.wait(0.25)
            requests = self.controls.take()
            if "checkpoint" in requests and not requests & {"stop", "resume"}:
                if saved is not None:
                    self._emit("checkpoint", path=str(saved))
                    continue
                if not can_save:
                    self._emit("error", message="nothing to checkpoint before the first step")
                    continue
            if requests & {"stop", "resume", "checkpoint"}:
                break
        if "resume" in requests and "stop" not in requests:
            self._non_finite_in_a_row = 0
            self._set_state(RunState.RUNNING, reason="resumed")
        return requests

    def _save_adapter(self, model) -> None:
        if not trainable_weights_finite(model):
            self._emit("error", message="adapter weights are not finite; adapter NOT saved")
            return
        if self.main_process:  # the trained adapter alone (DPO's frozen reference copy stays out)
            model.save_pretrained(str(self.paths.adapter), selected_adapters=[model.active_adapter])
            self.tokenizer.save_pretrained(str(self.paths.adapter))


def _tokenizer_fingerprint(tokenizer) -> str:
    vocab = sorted(tokenizer.get_vocab().items())
    return checkpoints.text_sha256(repr((vocab, tokenizer.all_special_tokens)))
