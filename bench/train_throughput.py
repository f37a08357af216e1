"""Training throughput: the studio's trainer vs TRL's SFTTrainer vs a naive pad-to-max loop.

Same model, data and hyperparameters, one after another in this run, each in its own spawned
process so peak memory is its own. Throughput counts real (non-pad) tokens per second of
optimizer steps, after warm-up steps. On two datasets: the demo (short rows of even length) and a
varied one made from the demo's text (log-normal lengths, 20-1000 tokens, like real instruction
data: bench/varied_data.py). For each: the studio's default (padding-free packing), the studio with
padded batches, TRL's SFTTrainer default, TRL with padding_free (its bfd packing), and the naive loop. Prints each
figure and the ratios:

    python bench/train_throughput.py [--model NAME] [--steps 10] [--batch 8] [--max-length 512]
                                     [--data demo varied] [--only studio trl ...]

Targets (CPU, embedded model): on the demo studio/TRL >= 1.0 and studio/naive > 1.0; on the varied
set studio >= 1.5x TRL's default, >= 1.0x TRL's best option, and >= 0.85x the studio on the demo.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import queue
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


VARIANTS = {  # name -> (trainer, what it changes)
    "studio": ("studio", {"packing": True}),
    "studio-padded": ("studio", {"packing": False}),
    "trl": ("trl", {"padding_free": False}),
    "trl-padding-free": ("trl", {"padding_free": True}),
    "naive": ("naive", {}),
}
VARIED_ROWS = 600


def settings(args, dataset: str) -> dict:
    return {"model": args.model, "steps": args.steps + WARMUP, "batch": args.batch, "max_length": args.max_length,
            "lr": 2e-4, "r": 16, "alpha": 32, "seed": 0, "quantization": args.quantization, "dataset": dataset}


def varied_file(model: str, folder: Path) -> Path:
    """VARIED_ROWS varied-length question/yoda rows as a .jsonl the studio reads like any dataset."""
    from bench.varied_data import varied_rows
    from studio import models

    path = folder / "varied.jsonl"
    rows = varied_rows(VARIED_ROWS, models.load_tokenizer(model))
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def chats(s: dict):
    """The dataset's question/Yoda-answer chats."""
    from studio.config import DataConfig
    from studio.data import load_rows, to_messages

    cfg = DataConfig(dataset=s["dataset"], max_length=s["max_length"])
    return [to_messages(row, cfg) for row in load_rows(cfg)]


@contextlib.contextmanager
def trained(cfg):
    """The run of `cfg` trained to the end in a folder that is gone afterwards; RuntimeError when it fails."""
    from studio.train import TrainingRun

    with tempfile.TemporaryDirectory() as tmp:
        run = TrainingRun(cfg, Path(tmp) / "run")
        run.start()
        run.join()
        if run.state != "finished":
            raise RuntimeError(run.error)
        yield run


def run_studio(s: dict, extra: tuple[str, ...] = ()) -> dict:
    """The studio's run with the settings `s`; `extra`: more config overrides (bench/dpo_throughput.py's method)."""
    from studio.config import RunConfig
    from studio.events import read_events

    cfg = RunConfig().with_overrides([
        f"model.name={json.dumps(s['model'])}", f"model.quantization={json.dumps(s['quantization'])}",
        f"data.dataset={json.dumps(s['dataset'])}", f"train.packing={json.dumps(s['packing'])}",
        f"data.max_length={s['max_length']}", f"train.max_steps={s['steps']}", f"train.batch_size={s['batch']}",
        f"train.learning_rate={s['lr']}", f"lora.r={s['r']}", f"lora.alpha={s['alpha']}", "lora.dropout=0.0",
        "train.eval_every=0", "train.sample_every=0", "train.save_every=0", "train.warmup_steps=0",
        f"train.seed={s['seed']}", *extra])
    with trained(cfg) as run:
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

    def callback(self):
        """A TrainerCallback that times the trainer's optimizer steps with this timer."""
        from transformers import TrainerCallback

        timer = self

        class Timing(TrainerCallback):
            def on_step_begin(self, *a, **k):
                timer.begin()

            def on_step_end(self, *a, **k):
                timer.end()

        return Timing()

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
    from transformers.trainer_callback import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    from studio import models

    tokenizer = models.load_tokenizer(s["model"])
    rows = [{"prompt": c[:-1], "completion": c[-1:]} for c in chats(s)]
    timer = StepTimer()

    config = SFTConfig(output_dir=tempfile.mkdtemp(), max_steps=s["steps"], per_device_train_batch_size=s["batch"],
                       learning_rate=s["lr"], lr_scheduler_type="cosine", warmup_steps=0, max_length=s["max_length"],
                       logging_steps=1, save_strategy="no", report_to="none", seed=s["seed"], disable_tqdm=True,
                       dataloader_num_workers=0, use_cpu=not _cuda(), bf16=_cuda(), completion_only_loss=True,
                       # TRL's padding-free path must pack (bfd: whole rows, no cross-row attention) to keep max_length
                       padding_free=s["padding_free"], packing=s["padding_free"], packing_strategy="bfd")
    trainer = SFTTrainer(model=_lora_model(s), args=config, train_dataset=Dataset.from_list(rows),
                         processing_class=tokenizer, callbacks=[timer.callback()])
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
    encoded = [e for e in (templates.encode(tokenizer, c, s["max_length"]) for c in chats(s)) if e]
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


TRAINERS = {"studio": run_studio, "trl": run_trl, "naive": run_naive}


def _child(run, s: dict, queue) -> None:
    quiet()
    result = run(s)
    result["peak_mb"] = peak_memory_mb()
    queue.put(result)


def measure(run, s: dict) -> dict | None:
    """`run(s)` (a module-level function) in a spawned process of its own, with its peak memory; None when
    the process died (its traceback is above)."""
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    proc = ctx.Process(target=_child, args=(run, s, results))
    proc.start()
    while True:
        try:
            result = results.get(timeout=5)
            break
        except queue.Empty:
            if not proc.is_alive():
                return None
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="HuggingFaceTB/SmolLM2-135M-Instruct")
    parser.add_argument("--steps", type=int, default=10, help="timed steps (after warm-up)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--quantization", default="none", help="none | 4bit (CUDA only)")
    parser.add_argument("--data", nargs="*", default=["demo", "varied"], choices=["demo", "varied"])
    parser.add_argument("--only", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    speed: dict[tuple[str, str], float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for data in args.data:
            s = settings(args, "demo" if data == "demo" else str(varied_file(args.model, Path(tmp))))
            print(f"-- {data}", flush=True)
            results = {}
            for name in args.only:
                trainer, changes = VARIANTS[name]
                r = measure(TRAINERS[trainer], {**s, **changes})
                if r is None:
                    print(f"{name:17s} failed (its error is above)", flush=True)
                    continue
                results[name] = r
                speed[data, name] = r["tokens_per_s"]
                print(f"{name:17s} {r['tokens_per_s']:9.1f} tok/s   peak {r['peak_mb']:8.0f} MB   last loss "
                      f"{r['loss']:.3f}", flush=True)
            if "studio" in results:
                for other in (n for n in results if n != "studio"):
                    print(f"studio/{other}: throughput x{results['studio']['tokens_per_s'] / results[other]['tokens_per_s']:.2f}, "
                          f"peak memory x{results['studio']['peak_mb'] / results[other]['peak_mb']:.2f}")
    if ("varied", "studio") in speed:
        goals = [("TRL default", "trl", 1.5), ("TRL's best option", None, 1.0)]
        for label, other, goal in goals:
            others = [speed["varied", n] for n in ("trl", "trl-padding-free") if ("varied", n) in speed]
            base = speed.get(("varied", other)) if other else (max(others) if others else None)
            if base:
                ratio = speed["varied", "studio"] / base
                print(f"varied: studio / {label} x{ratio:.2f} (goal >= {goal}: {'met' if ratio >= goal else 'NOT met'})")
        if ("demo", "studio") in speed:
            ratio = speed["varied", "studio"] / speed["demo", "studio"]
            print(f"varied / demo (studio): x{ratio:.2f} (goal >= 0.85: {'met' if ratio >= 0.85 else 'NOT met'})")


if __name__ == "__main__":
    main()
