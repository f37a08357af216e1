"""Batches by a token budget: long rows do not blow up memory, short rows do not waste steps.

A batch holds rows while its size in tokens stays within the budget: the sum of the rows' lengths
when they are packed (padding-free), rows x the longest row when they are padded. Rows are sorted
by length within large shuffled chunks before batching, so padded batches hold rows of similar
length. The batches are formed once per run from its seed, and each epoch visits them in another
seeded order, so every epoch has the same number of steps and a resume replays them exactly.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

from torch.utils.data import Sampler

CHUNK_BATCHES = 64  # batches' worth of rows sorted together: similar lengths, still well mixed


class TokenBudgetBatches(Sampler[list[int]]):
    def __init__(self, lengths: Sequence[int], budget: int, packed: bool, seed: int) -> None:
        self.seed = seed
        self.epoch = 0
        self.batches = _form(list(lengths), budget, packed, random.Random(seed))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[int]]:
        order = list(range(len(self.batches)))
        random.Random(self.seed * 1_000_003 + self.epoch).shuffle(order)
        return (self.batches[i] for i in order)


def _form(lengths: list[int], budget: int, packed: bool, rng: random.Random) -> list[list[int]]:
    indices = list(range(len(lengths)))
    rng.shuffle(indices)
    mean = max(sum(lengths) / max(len(lengths), 1), 1.0)
    chunk = max(int(CHUNK_BATCHES * budget / mean), 1)
    batches: list[list[int]] = []
    for start in range(0, len(indices), chunk):
        rows = sorted(indices[start:start + chunk], key=lambda i: lengths[i])  # ascending: the newest is the longest
        batch: list[int] = []
        tokens = 0
        for i in rows:
            size = tokens + lengths[i] if packed else (len(batch) + 1) * lengths[i]
            if batch and size > budget:
                batches.append(batch)
                batch, tokens = [], 0
            batch.append(i)  # a row longer than the budget is a batch of its own
            tokens += lengths[i]
        if batch:
            batches.append(batch)
    return batches
