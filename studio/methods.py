"""Training methods: what a supervised (SFT) run and a preference (DPO) run do differently, in one place.

Everything else is one run (studio.train): the thread, the controls, the events, the checkpoints and exact
resume, the non-finite guard. A method says
  - how the data is prepared (chats with completion-only labels; prompt/chosen/rejected pairs),
  - which library trainer trains it, with which arguments (transformers.Trainer; trl.DPOTrainer),
  - which of the trainer's own metrics each step event carries (DPO: its rewards),
  - how the held-out set is measured.
"""

from __future__ import annotations

from typing import Any

import torch
import transformers

from studio import data, heldout, preferences
from studio.config import RunConfig


class Collator:
    """Pads a batch to its longest row (or packs it), from the input_ids and labels columns only."""

    def __init__(self, tokenizer, packing: bool, pad_to_multiple_of: int | None, flash: bool = False) -> None:
        if packing:
            # Padding-free packing: rows concatenated, position_ids restart per row; transformers'
            # masks (flash attention: the sequence boundaries) keep the rows from attending to each other.
            self._collate = transformers.DataCollatorWithFlattening(return_position_ids=True,
                                                                    return_flash_attn_kwargs=flash)
        else:
            self._collate = transformers.DataCollatorForSeq2Seq(
                tokenizer, padding=True, label_pad_token_id=-100, pad_to_multiple_of=pad_to_multiple_of)

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        return self._collate([{"input_ids": r["input_ids"], "labels": r["labels"]} for r in rows])


def _pad_multiple(device: torch.device) -> int | None:
    return 8 if device.type == "cuda" else None  # tensor cores like multiples of 8; the CPU gains nothing


class SFT:
    """Supervised fine-tuning: the answers' tokens are the labels; rows may be packed."""

    name = "sft"
    packs = True
    auto_learning_rate = None  # train.learning_rate = "auto": a range test picks it (studio.lr_range)

    def prepare(self, cfg: RunConfig, tokenizer, progress=None, should_stop=None) -> data.Prepared:
        return data.prepare(cfg.data, tokenizer, progress=progress, should_stop=should_stop)

    def trainer_class(self) -> type:
        return transformers.Trainer

    def arguments(self, cfg: RunConfig, device: torch.device, **common: Any) -> transformers.TrainingArguments:
        return transformers.TrainingArguments(**common)

    def trainer_options(self, model, tokenizer, device: torch.device, packing: bool) -> dict[str, Any]:
        flash = str(getattr(model.config, "_attn_implementation", "")).startswith("flash")
        return {"data_collator": Collator(tokenizer, packing, _pad_multiple(device), flash)}

    def ready(self, trainer, cfg: RunConfig) -> None:
        pass

    def evaluator(self, prepared, tokenizer, cfg: RunConfig, style) -> heldout.HeldOutEvaluator:
        return heldout.HeldOutEvaluator(prepared.eval, Collator(tokenizer, False, None), cfg.train.batch_size, style)

    def step_metrics(self, trainer) -> dict[str, float]:
        return {}


# TRL's per-micro-batch metrics -> the step event's fields (the mean over the step's micro-batches).
DPO_METRICS = {"rewards/chosen": "reward_chosen", "rewards/rejected": "reward_rejected",
               "rewards/margins": "reward_margin", "rewards/accuracies": "reward_accuracy",
               "logps/chosen": "logp_chosen", "logps/rejected": "logp_rejected"}


class DPO:
    """Direct preference optimization with trl.DPOTrainer on prompt/chosen/rejected pairs. The reference
    is the starting policy: the base model (the adapter switched off), or model.adapter as it was loaded."""

    name = "dpo"
    packs = False  # TRL pads each pair's two chats; train.packing does not apply
    # train.learning_rate = "auto": no range test (the DPO loss starts at ln 2 and falls at any rate that
    # moves the policy, so its curve names no rate); the usual rate for LoRA DPO instead.
    auto_learning_rate = 5e-5

    def prepare(self, cfg: RunConfig, tokenizer, progress=None, should_stop=None) -> preferences.PreferenceData:
        import datasets

        datasets.disable_progress_bars()  # TRL tokenizes with datasets.map; the studio shows its own progress
        return preferences.prepare(cfg.data, tokenizer, progress=progress, should_stop=should_stop)

    def trainer_class(self) -> type:
        import trl

        return trl.DPOTrainer

    def arguments(self, cfg: RunConfig, device: torch.device, **common: Any):
        import trl

        losses, weights = [cfg.dpo.loss], [1.0]
        if cfg.dpo.sft_weight and cfg.dpo.loss != "sft":
            losses, weights = [*losses, "sft"], [*weights, cfg.dpo.sft_weight]
        return trl.DPOConfig(
            **common, beta=cfg.dpo.beta, loss_type=losses, loss_weights=weights, label_smoothing=cfg.dpo.label_smoothing,
            max_length=cfg.data.max_length, pad_to_multiple_of=_pad_multiple(device),
            # The studio's model loading already set gradient checkpointing as model.gradient_checkpointing says
            # (DPOConfig would turn it on by default).
            gradient_checkpointing=False)

    def trainer_options(self, model, tokenizer, device: torch.device, packing: bool) -> dict[str, Any]:
        return {}  # TRL's own preference collator

    def ready(self, trainer, cfg: RunConfig) -> None:
        """DPOTrainer copies any adapter it is given into a frozen "ref" adapter, the reference. A new
        adapter's copy computes the base model's answers the long way (LoRA starts at zero), so it is
        dropped: with no "ref", TRL switches the adapter off for the reference, as for a peft_config."""
        model = trainer.model
        if not cfg.model.adapter and "ref" in model.peft_config:
            model.delete_adapter("ref")

    def evaluator(self, prepared, tokenizer, cfg: RunConfig, style) -> heldout.PairEvaluator:
        return heldout.PairEvaluator(prepared.eval, Collator(tokenizer, False, None), cfg.train.batch_size, style)

    def step_metrics(self, trainer) -> dict[str, float]:
        """The step's rewards, read from where DPOTrainer keeps them for its `log()` (which the studio, logging
        from its own step totals, never calls), then cleared as `log()` would."""
        logged = trainer._metrics["train"]
        values = {name: sum(logged[key]) / len(logged[key]) for key, name in DPO_METRICS.items() if logged.get(key)}
        logged.clear()
        return values


METHODS = {method.name: method for method in (SFT(), DPO())}


def method(name: str) -> SFT | DPO:
    return METHODS[name]
