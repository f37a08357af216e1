"""Training throughput: the studio's trainer vs TRL's SFTTrainer vs a naive pad-to-max loop.

Same model, data and hyperparameters, one after another in this run, each in its own spawned
process so peak memory is its own. Throughput counts real (non-pad) tokens per second of
optimizer steps, after warm-up steps. Prints each figure and the ratios:

    python bench/train_throughput.py [--model NAME] [--steps 12] [--batch 8] [--max-length 256]

Targets (CPU, embedded model): studio/TRL >= 1.0, studio/naive > 1.0.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

WARMUP = 2  # steps left out of the timing: allocator and kernel warm-up


def peak_memory_mb() -> float:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def settings(args) -> dict:
    return {"model": args.model, "steps": args.steps + WARMUP, "batch": args.batch, "max_length": args.max_length,
            "lr": 2e-4, "r": 16, "alpha": 32, "seed": 0, "quantization": args.quantization}


def chats(max_length: int):
    """The demo's question/Yoda-answer chats."""
    from studio.config import DataConfig
    from studio.data import load_rows, to_messages

    cfg = DataConfig(max_length=max_length)
    return [to_messages(row, cfg) for row in load_rows(cfg)]


def run_studio(s: dict, extra: tuple[str, ...] = ()) -> dict:
    """The studio's run with the settings `s`; `extra`: more config overrides (bench/dpo_throughput.py's method)."""
    from studio.config import RunConfig
    from studio.events import read_events
    from studio.train import TrainingRun

    cfg = RunConfig().with_overrides([
        f"model.name={json.dumps(s['model'])}", f"model.quantization={json.dumps(s['quantization'])}",
        f"data.max_length={s['max_length']}", f"train.max_steps={s['steps']}", f"train.batch_size={s['batch']}",
        f"train.learning_rate={s['lr']}", f"lora.r={s['r']}", f"lora.alpha={s['alpha']}", "lora.dropout=0.0",
        "train.eval_every=0", "train.sample_every=0", "train.save_every=0", "train.warmup_steps=0",
        f"train.seed={s['seed']}", *extra])
    with tempfile.TemporaryDirectory() as tmp:
        run = TrainingRun(cfg, Path(tmp) / "run")
        run.start()
        run.join()
        if run.state != "finished":
            raise RuntimeError(run.error)
        steps = [e for e in read_events(run.paths.events) if e["type"] == "step"][WARMUP:]
    seconds = sum(e["step_time_s"] for e in steps)
    tokens = sum(e["tokens_per_s"] * e["step_time_s"] for e in steps)
    return {"tokens_per_s": tokens / seconds, "loss": steps[-1]["loss"]}


def _lora_model(s: dict):
    from studio import models
    from studio.config import LoraConfig, ModelConfig

    model = models.load_model(ModelConfig(name=s["model"], quantization=s["quantization"]))
    return models.add_lora(model, LoraConfig(r=s["r"], alpha=s["alpha"], dropout=0.0))


class StepTimer:
    """Times optimizer steps and counts the real tokens their batches carried."""

    def __init__(self) -> None:
        self.seconds, self.tokens, self.steps, self._t0, self._pending = 0.0, 0, 0, 0.0, 0

    def batch(self, attention_mask) -> None:
        self._pending += int(attention_mask.sum())

    def begin(self) -> None:
        self._t0 = time.perf_counter()

    def end(self) -> None:
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.steps += 1
        if self.steps > WARMUP:
            self.seconds += time.perf_counter() - self._t0
            self.tokens += self._pending
        self._pending = 0


def run_trl(s: dict) -> dict:
    from datasets import Dataset
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    from studio import models

    tokenizer = models.load_tokenizer(s["model"])
    rows = [{"prompt": c[:-1], "completion": c[-1:]} for c in chats(s["max_length"])]
    timer = StepTimer()

    class Timing(TrainerCallback):
        def on_step_begin(self, *a, **k):
            timer.begin()

        def on_step_end(self, *a, **k):
            timer.end()

    config = SFTConfig(output_dir=tempfile.mkdtemp(), max_steps=s["steps"], per_device_train_batch_size=s["batch"],
                       learning_rate=s["lr"], lr_scheduler_type="cosine", warmup_steps=0, max_length=s["max_length"],
                       logging_steps=1, save_strategy="no", report_to="none", seed=s["seed"], disable_tqdm=True,
                       dataloader_num_workers=0, use_cpu=not _cuda(), bf16=_cuda(), completion_only_loss=True)
    trainer = SFTTrainer(model=_lora_model(s), args=config, train_dataset=Dataset.from_list(rows),
                         processing_class=tokenizer, callbacks=[Timing()])
    trainer.remove_callback(PrinterCallback)
    collate = trainer.data_collator

    def counting(batch):
        out = collate(batch)
        timer.batch(out["attention_mask"] if "attention_mask" in out else (out["input_ids"] >= 0))
        return out

    trainer.data_collator = counting
    result = trainer.train()
    return {"tokens_per_s": timer.tokens / timer.seconds, "loss": result.training_loss}


def run_naive(s: dict) -> dict:
    """The loop people write first: every row padded to max_length, plain AdamW."""
    import torch

    from studio import models, templates

    tokenizer = models.load_tokenizer(s["model"])
    encoded = [e for e in (templates.encode(tokenizer, c, s["max_length"]) for c in chats(s["max_length"])) if e]
    model = _lora_model(s)
    device = next(model.parameters()).device
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=s["lr"])
    generator = torch.Generator().manual_seed(s["seed"])
    timer = StepTimer()
    pad = tokenizer.pad_token_id
    model.train()
    for _ in range(s["steps"]):
        picked = torch.randint(len(encoded), (s["batch"],), generator=generator).tolist()
        width = s["max_length"]
        ids = torch.tensor([encoded[i].input_ids + [pad] * (width - len(encoded[i].input_ids)) for i in picked])
        labels = torch.tensor([encoded[i].labels + [-100] * (width - len(encoded[i].labels)) for i in picked])
        mask = (torch.arange(width)[None, :] < torch.tensor([len(encoded[i].input_ids) for i in picked])[:, None])
        timer.batch(mask)
        timer.begin()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=_cuda()):
            loss = model(input_ids=ids.to(device), attention_mask=mask.long().to(device), labels=labels.to(device)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        timer.end()
    return {"tokens_per_s": timer.tokens / timer.seconds, "loss": float(loss)}


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def quiet() -> None:
    """No hub, and none of datasets' and transformers' progress bars in the bench's output."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.logging.disable_progress_bar()


def _child(run, s: dict, queue) -> None:
    quiet()
    result = run(s)
    result["peak_mb"] = peak_memory_mb()
    queue.put(result)


def measure(run, s: dict) -> dict:
    """`run(s)` (a module-level function) in a spawned process of its own, with its peak memory."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(run, s, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="HuggingFaceTB/SmolLM2-135M-Instruct")
    parser.add_argument("--steps", type=int, default=10, help="timed steps (after warm-up)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--quantization", default="none", help="none | 4bit (CUDA only)")
    parser.add_argument("--only", nargs="*", default=["studio", "trl", "naive"])
    args = parser.parse_args()
    s = settings(args)
    results = {}
    for name in args.only:
        results[name] = measure({"studio": run_studio, "trl": run_trl, "naive": run_naive}[name], s)
        r = results[name]
        print(f"{name:7s} {r['tokens_per_s']:9.1f} tok/s   peak {r['peak_mb']:8.0f} MB   last loss {r['loss']:.3f}",
              flush=True)
    if "studio" in results:
        for other in ("trl", "naive"):
            if other in results:
                speed = results["studio"]["tokens_per_s"] / results[other]["tokens_per_s"]
                memory = results["studio"]["peak_mb"] / results[other]["peak_mb"]
                print(f"studio/{other}: throughput x{speed:.2f}, peak memory x{memory:.2f}")


if __name__ == "__main__":
    main()
