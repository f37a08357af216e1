"""The learning-rate range test (Smith 2015; fastai's `lr_find`), for `train.learning_rate = "auto"`.

A few dozen optimizer steps on the run's own first batches, with the rate growing geometrically from
START to END, on a throwaway copy of the adapter: the trainable weights and the random generators are
put back afterwards, so the run itself starts exactly as it would have. The loss curve (smoothed)
names the rate:

  minimum/30  a thirtieth of the rate at the lowest smoothed loss (the default, with a constant rate after
              warm-up: measured by bench/style_benchmark.py, see train.scheduler)
  minimum/10  a tenth of it (fastai's classic rule): with cosine it won the held-out answers but lost the
              held-out style paragraph to the plain loop; at a constant rate it lost the paragraph by more
  steepest    the rate where the smoothed loss falls fastest per decade (noisy: 1e-6 on the benchmark's curves)

All three are recorded; the chosen one goes into config.toml so a resume or a rerun uses the same number.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

START, END = 1e-6, 1e-1
STEPS = 30
SMOOTHING = 0.9  # exponential moving average of the loss (bias-corrected); the curve is noisy at one batch a step
DIVERGED = 4.0  # stop once the smoothed loss exceeds this multiple of its best


@dataclass
class RangeTest:
    rates: list[float]
    losses: list[float]  # smoothed
    chosen: float
    rule: str
    minimum_tenth: float
    steepest: float | None

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)) + "\n", encoding="utf-8")


def choose(rates: list[float], losses: list[float]) -> RangeTest:
    """The rate by each rule from a smoothed curve (rates ascending)."""
    lowest = int(np.argmin(losses))
    minimum_tenth = rates[lowest] / 10
    steepest = None
    if lowest >= 2:  # the slope before the minimum, per decade of the rate
        slope = np.gradient(np.asarray(losses[: lowest + 1]), np.log10(rates[: lowest + 1]))
        steepest = rates[int(np.argmin(slope))]
    chosen = max(rates[lowest] / 30, rates[0])
    return RangeTest(rates, losses, chosen, "minimum/30", minimum_tenth, steepest)


def _cycle(batches: Callable[[], Iterable[dict]]) -> Iterator[dict]:
    while True:
        yield from batches()


def range_test(model: torch.nn.Module, batches: Callable[[], Iterable[dict]], loss_of: Callable[[dict], torch.Tensor],
               *, max_grad_norm: float, steps: int = STEPS, should_stop: Callable[[], bool] | None = None,
               progress: Callable[[int, int, float, float], None] | None = None) -> RangeTest | None:
    """Run the test; None when a stop came first or no step gave a finite loss. `batches()` gives the
    run's batches from the start (called again if the test outlasts them); `loss_of(batch)` the training
    loss of one batch, with gradients; `progress(done, steps, rate, smoothed loss)` after each step."""
    params = [p for p in model.parameters() if p.requires_grad]
    saved = [p.detach().clone() for p in params]
    rng = torch.get_rng_state(), torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    optimizer = torch.optim.AdamW(params, lr=START, weight_decay=0.0)
    growth = (END / START) ** (1 / max(steps - 1, 1))
    rates, losses, average, best = [], [], 0.0, math.inf
    was_training = model.training
    model.train()
    try:
        for i, batch in zip(range(steps), _cycle(batches)):
            if should_stop is not None and should_stop():
                return None
            rate = START * growth**i
            for group in optimizer.param_groups:
                group["lr"] = rate
            loss = loss_of(batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            value = float(loss.detach())
            if not math.isfinite(value):
                break
            average = SMOOTHING * average + (1 - SMOOTHING) * value
            smoothed = average / (1 - SMOOTHING ** (i + 1))
            rates.append(rate)
            losses.append(smoothed)
            best = min(best, smoothed)
            if progress is not None:
                progress(i + 1, steps, rate, smoothed)
            if smoothed > DIVERGED * best:
                break
    finally:
        with torch.no_grad():
            for param, original in zip(params, saved):
                param.copy_(original)
                param.grad = None
        torch.set_rng_state(rng[0])
        if rng[1] is not None:
            torch.cuda.set_rng_state_all(rng[1])
        model.train(was_training)
    return choose(rates, losses) if rates else None
