"""Held-out metrics measured during training: eval loss, perplexity, the style-paragraph loss, and for
preference pairs the log-probability margin of the chosen answer over the rejected one."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from studio import templates
from studio.controls import Interrupted

STYLE_PROMPT = "Tell me something wise."  # the neutral question the style paragraph answers


@torch.no_grad()
def mean_token_loss(model, batches: Sequence[dict[str, torch.Tensor]],
                    should_stop: Callable[[], bool] | None = None) -> float | None:
    """Cross-entropy averaged over every label token of every batch (not a mean of batch means).

    Raises Interrupted between batches when `should_stop` says a pause or stop waits."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    try:
        for batch in batches:
            if should_stop is not None and should_stop():
                raise Interrupted()
            batch = {k: v.to(device) for k, v in batch.items()}
            # The model averages over its shifted label tokens; weight it back by their count.
            n = int((batch["labels"][:, 1:] != -100).sum())
            if n == 0:
                continue
            total += float(model(**batch, use_cache=False).loss) * n
            count += n
    finally:
        model.train(was_training)
    return total / count if count else None


def style_batch(tokenizer, text: str, max_length: int) -> dict[str, torch.Tensor] | None:
    """The style paragraph as an assistant answer: loss falls on the paragraph's tokens only."""
    chat = [{"role": "user", "content": STYLE_PROMPT}, {"role": "assistant", "content": text}]
    encoded = templates.encode(tokenizer, chat, max_length, overlong="truncate_prompt")
    if encoded is None:
        return None
    return {"input_ids": torch.tensor([encoded.input_ids]), "labels": torch.tensor([encoded.labels]),
            "attention_mask": torch.ones(1, len(encoded.input_ids), dtype=torch.long)}


class HeldOutEvaluator:
    """Measures eval loss, perplexity and style loss on fixed, pre-collated batches."""

    def __init__(self, eval_rows: Sequence[dict], collate: Callable[[list[dict]], dict], batch_size: int,
                 style: dict[str, torch.Tensor] | None) -> None:
        rows = list(eval_rows)  # the collator keeps only input_ids and labels
        self.batches = [collate(rows[i:i + batch_size]) for i in range(0, len(rows), batch_size)]
        self.style = style

    def __call__(self, model, should_stop: Callable[[], bool] | None = None) -> dict[str, float | None]:
        eval_loss = mean_token_loss(model, self.batches, should_stop)
        style_loss = mean_token_loss(model, [self.style], should_stop) if self.style is not None else None
        perplexity = math.exp(min(eval_loss, 50.0)) if eval_loss is not None else None
        return {"eval_loss": eval_loss, "perplexity": perplexity, "style_loss": style_loss}


@torch.no_grad()
def answer_log_probs(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's summed log-probability of its label tokens (its answer), and how many there are."""
    device = next(model.parameters()).device
    batch = {k: v.to(device) for k, v in batch.items()}
    logits = model(input_ids=batch["input_ids"], attention_mask=batch.get("attention_mask"), use_cache=False).logits
    labels = batch["labels"][:, 1:]
    mask = labels != -100
    logps = torch.log_softmax(logits[:, :-1].float(), dim=-1).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (logps * mask).sum(-1), mask.sum(-1)


class PairEvaluator:
    """Held-out preference pairs: the chosen answers' loss and perplexity (what HeldOutEvaluator measures on
    SFT rows), the style loss, and how much more likely the model finds the chosen answer than the rejected
    one (pair_margin, in nats, the mean over pairs; pair_accuracy: the share where chosen is likelier)."""

    def __init__(self, pairs: Sequence[dict], collate: Callable[[list[dict]], dict], batch_size: int,
                 style: dict[str, torch.Tensor] | None) -> None:
        rows = list(pairs)

        def side(name: str, start: int) -> dict:
            return collate([{"input_ids": r[f"{name}_input_ids"], "labels": r[f"{name}_labels"]}
                            for r in rows[start:start + batch_size]])

        self.batches = [(side("chosen", i), side("rejected", i)) for i in range(0, len(rows), batch_size)]
        self.style = style

    def __call__(self, model, should_stop: Callable[[], bool] | None = None) -> dict[str, float | None]:
        was_training = model.training
        model.eval()
        margins, chosen_logp, chosen_tokens = [], 0.0, 0
        try:
            for chosen, rejected in self.batches:
                if should_stop is not None and should_stop():
                    raise Interrupted()
                logp, tokens = answer_log_probs(model, chosen)
                margins += (logp - answer_log_probs(model, rejected)[0]).tolist()
                chosen_logp += float(logp.sum())
                chosen_tokens += int(tokens.sum())
        finally:
            model.train(was_training)
        eval_loss = -chosen_logp / chosen_tokens if chosen_tokens else None
        return {"eval_loss": eval_loss, "perplexity": math.exp(min(eval_loss, 50.0)) if eval_loss is not None else None,
                "style_loss": mean_token_loss(model, [self.style], should_stop) if self.style is not None else None,
                "pair_margin": sum(margins) / len(margins) if margins else None,
                "pair_accuracy": sum(m > 0 for m in margins) / len(margins) if margins else None}
