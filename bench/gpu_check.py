"""The GPU check: one command that measures the training engine on a real GPU and prints one table.

    python bench/gpu_check.py                 # on a GPU machine (under 8 minutes on one H100/H200)
    python bench/gpu_check.py --small         # end to end on a CPU, tiny sizes (what the tests run)

For each model (a ~1.5B-parameter Llama built from a config with random weights, since a GPU machine
may have no hub and throughput needs no trained weights; and the embedded 135M model) and mode
(bf16 LoRA; 4-bit QLoRA where bitsandbytes and CUDA exist): real tokens/s, peak memory, MFU, host
syncs per optimizer step, and the studio's tokens/s over plain TRL SFTTrainer on the same settings.

MFU counts real tokens only: LoRA FLOPs/token = 4*N_frozen (forward, and the backward's activation
gradients) + 6*N_lora + causal attention 12*layers*hidden*(mean position in its row). Peak FLOP/s
is the device's dense bf16 figure (H100/H200 989e12, A100 312e12; --peak-tflops for others).

Goals printed beside the figures: MFU >= 40% for bf16 LoRA at the best batch that fits, 4-bit peak
memory <= 0.6x bf16, studio >= 1.0x TRL. Every measurement runs in its own spawned process, so peak
memory is its own.

On the project's lent H200 (no hub, no PyPI): carry wheels of datasets, trl, tomli-w, gguf and
bitsandbytes as the device tool's README says, then `PYTHONPATH=.:/tmp/site python3 bench/gpu_check.py`.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import train_throughput  # noqa: E402  (the TRL side of the comparison, shared with the CPU bench)

WARMUP = train_throughput.WARMUP
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "4090": 165.0}
BIG = {"hidden_size": 2048, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 4,
       "intermediate_size": 5632, "tie_word_embeddings": True}  # ~1.5B parameters with SmolLM2's vocabulary
SMALL = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
         "intermediate_size": 128}


def build_random_model(dest: Path, shape: dict) -> Path:
    from studio.models import tiny_model_dir

    if not (dest / "config.json").exists():
        tiny_model_dir(dest, **shape)
    return dest


def lora_flops_per_token(model, mean_position: float) -> float:
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    lora = sum(p.numel() for p in model.parameters() if p.requires_grad)
    c = model.config
    return 4 * frozen + 6 * lora + 12 * c.num_hidden_layers * c.hidden_size * mean_position


def peak_flops(override: float | None) -> float | None:
    import torch

    if override:
        return override * 1e12
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    return next((tflops * 1e12 for key, tflops in PEAK_TFLOPS.items() if key in name), None)


def studio_run(s: dict) -> dict:
    """The studio's TrainingRun at each batch size in turn (largest that fits wins); syncs counted."""
    import torch

    from studio.config import RunConfig
    from studio.events import read_events
    from studio.train import TrainingRun

    best = None
    for batch in s["batches"]:
        cfg = RunConfig().with_overrides([
            f"model.name={json.dumps(s['model'])}", f"model.quantization={json.dumps(s['quantization'])}",
            f"data.max_length={s['max_length']}", f"train.max_steps={s['steps']}", f"train.batch_size={batch}",
            f"train.packing={json.dumps(s['packing'])}", "lora.dropout=0.0", "train.eval_every=0",
            "train.sample_every=0", "train.save_every=0", "train.warmup_steps=0", "train.seed=0",
            "train.learning_rate=2e-4"])
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            torch.cuda.set_sync_debug_mode("warn")
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run = TrainingRun(cfg, Path(tmp) / "run")
            run.start()
            run.join()
            events = read_events(run.paths.events)
        if torch.cuda.is_available():
            torch.cuda.set_sync_debug_mode(0)
        if run.state != "finished":
            if "out of memory" in (run.error or "") and best is not None:
                break
            raise RuntimeError(run.error)
        steps = [e for e in events if e["type"] == "step"][WARMUP:]
        seconds = sum(e["step_time_s"] for e in steps)
        tokens = sum(e["tokens_per_s"] * e["step_time_s"] for e in steps)
        syncs = sum("synchroniz" in str(w.message) for w in caught) / max(len(steps) + WARMUP, 1)
        result = {"batch": batch, "tokens_per_s": tokens / seconds, "peak_mb": max(e["memory_mb"] for e in steps),
                  "syncs_per_step": syncs if torch.cuda.is_available() else None,
                  "flops_per_token": lora_flops_per_token(run.hf.model, s["mean_position"])}
        if best is None or result["tokens_per_s"] > best["tokens_per_s"]:
            best = result
        del run
    return best


def _child(name: str, s: dict, queue) -> None:
    train_throughput.quiet()
    try:
        result = studio_run(s) if name == "studio" else train_throughput.run_trl(
            {**s, "batch": s["batches"][0], "lr": 2e-4, "r": 16, "alpha": 32, "seed": 0, "dataset": "demo",
             "padding_free": False})
        result.setdefault("peak_mb", train_throughput.peak_memory_mb())
    except Exception as exc:  # reported in the table, the other rows still run
        result = {"error": f"{type(exc).__name__}: {str(exc)[:120]}"}
    queue.put(result)


def measure(name: str, s: dict) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(name, s, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def mean_position(max_length: int) -> float:
    """The mean position of a real token in its row on the demo data (the attention term of the FLOPs)."""
    from studio import models, templates
    from studio.config import DEFAULT_MODEL

    tokenizer = models.load_tokenizer(DEFAULT_MODEL)
    lengths = [len(e.input_ids) for e in (templates.encode(tokenizer, c, max_length)
                                          for c in train_throughput.chats({"dataset": "demo", "max_length": max_length}))
               if e]
    return sum(n * (n + 1) / 2 for n in lengths) / sum(lengths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="tiny sizes, to check the script end to end on a CPU")
    parser.add_argument("--peak-tflops", type=float, help="the device's dense bf16 peak, when not in the table")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "studio-gpu-check")
    args = parser.parse_args()

    import torch

    cuda = torch.cuda.is_available()
    started = time.perf_counter()
    args.work.mkdir(parents=True, exist_ok=True)
    big = build_random_model(args.work / ("small-llama" if args.small else "llama-1.5b"), SMALL if args.small else BIG)
    max_length = 64 if args.small else 512
    common = {"steps": WARMUP + (2 if args.small else 6), "max_length": max_length, "packing": True,
              "mean_position": mean_position(max_length)}
    batches = [4] if args.small else [16, 32, 64, 128]
    models = [(f"random Llama {'tiny' if args.small else '1.5B'}", str(big)),
              ("SmolLM2-135M (embedded)", "HuggingFaceTB/SmolLM2-135M-Instruct")]
    quantized = cuda and _has_bitsandbytes()
    peak = peak_flops(args.peak_tflops)

    rows = []
    for label, model in models:
        settings = {**common, "model": model, "batches": batches, "quantization": "none"}
        bf16 = measure("studio", settings)
        trl = measure("trl", {**settings, "batches": [bf16.get("batch", batches[0])], "packing": False}) \
            if "error" not in bf16 else {"error": "skipped"}
        studio_same = measure("studio", {**settings, "batches": [bf16.get("batch", batches[0])], "packing": False}) \
            if "error" not in bf16 else {"error": "skipped"}
        rows.append((label, "bf16 LoRA" if cuda else "fp32 LoRA (CPU)", bf16, trl, studio_same))
        if quantized:
            four = measure("studio", {**settings, "batches": [bf16.get("batch", batches[0])], "quantization": "4bit"})
            rows.append((label, "4-bit QLoRA", four, None, None))

    print(f"\n{'model':26s} {'mode':16s} {'batch':>5s} {'tok/s':>9s} {'peak GB':>8s} {'MFU':>6s} "
          f"{'syncs/step':>10s} {'studio/TRL':>10s}")
    for label, mode, r, trl, same in rows:
        if "error" in r:
            print(f"{label:26s} {mode:16s} {r['error']}")
            continue
        mfu = r["tokens_per_s"] * r["flops_per_token"] / peak if peak else None
        ratio = (same["tokens_per_s"] / trl["tokens_per_s"]) if trl and same and "error" not in trl \
            and "error" not in same else None
        print(f"{label:26s} {mode:16s} {r['batch']:5d} {r['tokens_per_s']:9.0f} {r['peak_mb'] / 1024:8.2f} "
              f"{_pct(mfu):>6s} {_num(r['syncs_per_step'], '.1f'):>10s} {_num(ratio, '.2f'):>10s}")
    print("\ngoals: MFU >= 40% for bf16 LoRA at its best batch; 4-bit peak <= 0.6x bf16; studio/TRL >= 1.0 "
          "(same batch, padded, no packing on either side)")
    bf16_by_model = {label: r for label, mode, r, _, _ in rows if mode.endswith("LoRA") and "error" not in r}
    for label, mode, r, _, _ in rows:
        if mode == "4-bit QLoRA" and "error" not in r and label in bf16_by_model:
            print(f"{label}: 4-bit peak / bf16 peak = {r['peak_mb'] / bf16_by_model[label]['peak_mb']:.2f}")
    if not peak:
        print("MFU: no peak FLOP/s known for this device (CPU, or pass --peak-tflops)")
    print(f"took {time.perf_counter() - started:.0f} s")


def _has_bitsandbytes() -> bool:
    import importlib.util

    return importlib.util.find_spec("bitsandbytes") is not None


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


if __name__ == "__main__":
    main()
