"""DPO throughput: the studio's DPO run vs trl.DPOTrainer driven directly, in one run.

Same model, LoRA, demo pairs (chosen = the Yoda answer, rejected = the plain one) and settings, one after
the other, each in its own spawned process so peak memory is its own. Throughput counts the real (non-pad)
tokens of both chats of every pair per second of optimizer steps, after warm-up steps:

    python bench/dpo_throughput.py [--model NAME] [--steps 10] [--batch 4] [--max-length 256]

Target: studio/TRL >= 0.95 (the studio's machinery costs at most 5%).
"""

from __future__ import annotations

import argparse
import tempfile

import train_throughput
from train_throughput import WARMUP, StepTimer, _cuda, measure


def settings(args) -> dict:
    return {"model": args.model, "steps": args.steps + WARMUP, "batch": args.batch, "max_length": args.max_length,
            "lr": 5e-5, "r": 16, "alpha": 32, "seed": 0, "quantization": "none", "beta": 0.1, "dataset": "demo",
            "packing": True}


def run_studio(s: dict) -> dict:
    return train_throughput.run_studio(s, ("train.method=\"dpo\"", f"dpo.beta={s['beta']}"))


def run_trl(s: dict) -> dict:
    from peft import LoraConfig
    from transformers.trainer_callback import PrinterCallback
    from trl import DPOConfig, DPOTrainer

    from studio import models, preferences, templates
    from studio.config import DataConfig, ModelConfig, TemplateConfig

    tokenizer = models.load_tokenizer(s["model"])
    templates.apply_template(tokenizer, TemplateConfig())
    pairs = preferences.prepare(DataConfig(max_length=s["max_length"]), tokenizer).train  # the pairs the studio trains
    timer = StepTimer()

    config = DPOConfig(output_dir=tempfile.mkdtemp(), max_steps=s["steps"], per_device_train_batch_size=s["batch"],
                       learning_rate=s["lr"], lr_scheduler_type="cosine", warmup_steps=0, max_length=s["max_length"],
                       beta=s["beta"], logging_steps=1, save_strategy="no", report_to="none", seed=s["seed"],
                       disable_tqdm=True, dataloader_num_workers=0, use_cpu=not _cuda(), bf16=_cuda(),
                       gradient_checkpointing=False)
    # TRL's own way to a new LoRA adapter: a peft_config (its reference is then the adapter switched off).
    lora = LoraConfig(r=s["r"], lora_alpha=s["alpha"], lora_dropout=0.0, target_modules="all-linear",
                      task_type="CAUSAL_LM")
    trainer = DPOTrainer(model=models.load_model(ModelConfig(name=s["model"])), args=config, train_dataset=pairs,
                         processing_class=tokenizer, callbacks=[timer.callback()], peft_config=lora)
    trainer.remove_callback(PrinterCallback)
    collate = trainer.data_collator

    def counting(batch):
        out = collate(batch)
        timer.batch(out["attention_mask"])
        return out

    trainer.data_collator = counting
    result = trainer.train()
    return {"tokens_per_s": timer.tokens / timer.seconds, "loss": result.training_loss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="HuggingFaceTB/SmolLM2-135M-Instruct")
    parser.add_argument("--steps", type=int, default=10, help="timed steps (after warm-up)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=256)
    args = parser.parse_args()
    s = settings(args)
    results = {}
    for name, run in (("studio", run_studio), ("trl", run_trl)):
        results[name] = r = measure(run, s)
        print(f"{name:7s} {r['tokens_per_s']:9.1f} tok/s   peak {r['peak_mb']:8.0f} MB   loss {r['loss']:.3f}",
              flush=True)
    speed = results["studio"]["tokens_per_s"] / results["trl"]["tokens_per_s"]
    memory = results["studio"]["peak_mb"] / results["trl"]["peak_mb"]
    print(f"studio/trl: throughput x{speed:.2f} (target >= 0.95) {'OK' if speed >= 0.95 else 'BELOW TARGET'}, "
          f"peak memory x{memory:.2f}")


if __name__ == "__main__":
    main()
