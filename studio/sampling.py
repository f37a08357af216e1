"""Chats sampled from a model: every prompt in one batched `generate`, KV cache on."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from studio import templates

Messages = list[dict[str, str]]


@torch.no_grad()
def generate(
    model,
    tokenizer,
    chats: Sequence[Messages],
    max_new_tokens: int = 64,
    temperature: float | None = None,
    seed: int | None = None,
) -> list[str]:
    """Answer each chat (its last turn is the user's); greedy when temperature is None.

    Prompts are left-padded into one batch: batch 8 gave ~4x the throughput of one at a time,
    and the cache stays on even when training uses gradient checkpointing.
    """
    if not chats:
        return []
    prompts = [templates.generation_prompt_ids(tokenizer, chat) for chat in chats]
    width = max(map(len, prompts))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    input_ids = torch.tensor([[pad_id] * (width - len(p)) + p for p in prompts])
    attention_mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    device = next(model.parameters()).device

    was_training = model.training
    model.eval()
    # A seeded generator keeps sampled answers reproducible without touching the training RNG.
    rng_state = torch.random.get_rng_state()
    cuda_state = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    if seed is not None:
        torch.manual_seed(seed)
    try:
        sampling = {"do_sample": True, "temperature": temperature, "top_p": 0.95} if temperature else {"do_sample": False}
        output = model.generate(
            input_ids=input_ids.to(device),
            attention_mask=attention_mask.to(device),
            max_new_tokens=max_new_tokens,
            eos_token_id=templates.eot_token_ids(tokenizer),
            pad_token_id=pad_id,
            use_cache=True,
            **sampling,
        )
    finally:
        torch.random.set_rng_state(rng_state)
        if cuda_state is not None:
            torch.cuda.set_rng_state_all(cuda_state)
        model.train(was_training)
    new_tokens = output[:, width:].tolist()
    return [tokenizer.decode(tokens, skip_special_tokens=True).strip() for tokens in new_tokens]
