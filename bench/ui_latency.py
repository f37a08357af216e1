"""While a tiny-model run trains inside the app: keypress -> screen update latency, and the run's
tokens/s in the app against the same run headless in this process (a ratio; targets: p95 < 100 ms,
ratio >= 0.9).

    python bench/ui_latency.py [--steps 400] [--presses 50] [--dataset demo]

The key pressed is `[`/`]` (older/newer sample): it changes what the samples view shows. The
headless baseline runs before and after the app, and their mean is the denominator, so a machine
that warms up or slows down during the bench does not favour either side.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the studio, and the tests' helpers (tiny_config)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from helpers import tiny_config  # noqa: E402

from screens.app import StudioApp  # noqa: E402
from screens.monitor import MonitorPane  # noqa: E402
from screens.widgets.samples_view import SamplesView  # noqa: E402
from studio.config import RunConfig  # noqa: E402
from studio.events import read_events  # noqa: E402

WARMUP_STEPS = 3  # the first steps pay for allocation and autotuning


def bench_config(model_dir: Path, steps: int, dataset: str) -> RunConfig:
    data = None if dataset == "demo" else Path(dataset)
    return tiny_config(model_dir, data, max_length=128, learning_rate=2e-4, batch_size=8, max_steps=steps,
                       eval_every=10, sample_every=10, save_every=0)


def tokens_per_s(run_dir: Path) -> float:
    """Tokens over training seconds of the steps after warm-up (evaluation and sampling excluded)."""
    steps = [e for e in read_events(run_dir / "events.jsonl") if e["type"] == "step" and e["step"] > WARMUP_STEPS]
    return statistics.median(e["tokens_per_s"] for e in steps)


def headless(cfg: RunConfig, run_dir: Path) -> float:
    from studio.train import TrainingRun

    run = TrainingRun(cfg, run_dir)
    run.start()
    run.join()
    assert run.state == "finished", run.error
    return tokens_per_s(run_dir)


async def in_app(cfg: RunConfig, presses: int) -> tuple[list[float], int, float]:
    """Latencies of `presses` keypresses while the run trains; how many landed while it trained; its tokens/s."""
    app = StudioApp()
    async with app.run_test(size=(120, 40)) as pilot:
        app.change(config=cfg)
        monitor = app.query_one(MonitorPane)
        await pilot.pause()
        await pilot.press("s")
        while monitor.query_one(SamplesView).steps < 2:  # something to step through
            await pilot.pause(0.05)
        shown = app.query_one("#sample-now-box")
        latencies, while_training = [], 0
        for i in range(presses):
            before = shown.border_title
            started = time.perf_counter()
            # The key goes in as the terminal driver would post it; the clock stops when the samples view
            # shows the other step (the compositor paints it on the same turn of the loop).
            app.simulate_key("left_square_bracket" if i % 2 == 0 else "right_square_bracket")
            while shown.border_title == before:
                await asyncio.sleep(0.001)
            latencies.append(time.perf_counter() - started)
            while_training += app.state.training_run.state == "running"
            await asyncio.sleep(0.05)  # a person's pace, not a key-repeat storm
        app.state.training_run.join()
        return latencies, while_training, tokens_per_s(app.state.training_run.paths.root)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--presses", type=int, default=50)
    parser.add_argument("--dataset", default="demo", help="demo, or a .jsonl with question/answer columns")
    args = parser.parse_args()

    from studio.models import tiny_model_dir

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["STUDIO_RUNS"] = str(tmp / "runs")
        model_dir = tiny_model_dir(tmp / "tiny")
        cfg = bench_config(model_dir, args.steps, args.dataset)
        headless(bench_config(model_dir, 20, args.dataset), tmp / "warm-up")  # first-run costs, measured by no one
        before = headless(cfg, tmp / "headless-1")
        latencies, while_training, app_tps = asyncio.run(in_app(cfg, args.presses))
        after = headless(cfg, tmp / "headless-2")

    latencies_ms = sorted(1000 * s for s in latencies)
    p95 = latencies_ms[min(len(latencies_ms) - 1, round(0.95 * (len(latencies_ms) - 1)))]
    baseline = (before + after) / 2
    print(f"keypress -> screen update over {len(latencies_ms)} presses ({while_training} while training): "
          f"median {statistics.median(latencies_ms):.1f} ms, p95 {p95:.1f} ms (target < 100 ms)")
    print(f"tokens/s: in the app {app_tps:,.0f}; headless {before:,.0f} before, {after:,.0f} after "
          f"-> ratio {app_tps / baseline:.2f} (target >= 0.9)")


if __name__ == "__main__":
    main()
