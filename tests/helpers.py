"""Helpers the tests (and bench/) share; fixtures live in conftest.py and judge_fixtures.py."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from textual.widgets import Static

from studio.config import RunConfig
from studio.events import EventBus, JsonlWriter, make_event

ROOT = Path(__file__).resolve().parent.parent
BROKEN_TEMPLATE = "{% for m in messages %}\n{{ m.content }\n{% endfor %}"  # line 2 never closes its tag


def imported_after(statement: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running `statement` in the repository."""
    code = f"import sys; {statement}; print(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def record_notifications(app) -> list[str]:
    """Every message the app shows as a toast from now on, in order (a spy on the public `App.notify`)."""
    seen: list[str] = []
    notify = app.notify

    def spy(message, **options):
        seen.append(str(message))
        return notify(message, **options)

    app.notify = spy
    return seen


async def wait_for(pilot, condition, timeout: float = 60.0, what: str = "condition") -> None:
    """Let the app run until `condition()` holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


async def settle(pilot, condition=lambda: True, timeout: float = 30.0) -> None:
    """Until the workers are done, a debounce has passed, and `condition` holds."""
    deadline = time.monotonic() + timeout
    while True:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.3)
        if condition():
            return
        assert time.monotonic() < deadline, "timed out waiting for the pane"


def text_of(app, selector: str) -> str:
    """The text a Static shows."""
    return str(app.query_one(selector, Static).content)


def tiny_config(model_dir: Path, data: Path | None = None, max_length: int = 64, **train) -> RunConfig:
    """A run a tiny random model trains in seconds: short rows in batches of 4, a high learning rate
    without warm-up, two prompts sampled for 8 tokens. On `data` (a .jsonl of question/answer rows),
    or on the demo (give max_length=128: its chats are longer); `train` sets train.* values on top."""
    overrides = [f"model.name={json.dumps(str(model_dir))}", f"data.max_length={max_length}", "lora.dropout=0.1",
                 "train.learning_rate=0.05", "train.batch_size=4", "train.warmup_steps=0",
                 "train.sample_prompts=2", "train.sample_max_new_tokens=8",
                 "train.observe_budget=1.0"]  # every eval and sample at its interval, as tests expect
    if data is not None:
        overrides += [f"data.dataset={json.dumps(str(data))}", "data.response_column=answer"]
    return RunConfig().with_overrides(overrides + [f"train.{key}={json.dumps(value)}" for key, value in train.items()])


def write_run(run_dir: Path, *, steps: int, final: str | None, max_steps: int = 6, slope: float = 0.2,
              overrides: tuple[str, ...] = (), judged: bool = False) -> Path:
    """A run directory as the trainer leaves it: config.toml and events.jsonl (written with the engine's writer).

    Losses fall by `slope` a step (held-out and style by half that), one step a second at 1000 tokens/s,
    an eval and two greedy answers every 3 steps; `overrides` (key=value) change its config. `judged` adds
    sampled answers, a `judge` event (score 4 + step, out of 10) at each eval, and RUN/eval/scores.jsonl.
    """
    run_dir.mkdir(parents=True)
    RunConfig().with_overrides([f"train.max_steps={max_steps}", *overrides]).save(run_dir / "config.toml")
    writer = JsonlWriter(run_dir / "events.jsonl")
    start = 1_700_000_000.0  # a fixed clock: the wall time a comparison shows is the same on every machine

    def emit(type: str, step: int, **values) -> None:
        writer({**make_event(type, step, **values), "time": start + step})

    def observe(step: int, **evaluation) -> None:
        emit("eval", step, **evaluation)
        for mode in ("greedy", "sampled") if judged else ("greedy",):
            for index in range(2):
                answer = f"answer {index} at {step}" if step else f"base answer {index}"
                emit("sample", step, prompt=f"question {index}", response=answer if mode == "greedy" else
                     f"{answer} ({mode})", mode=mode, index=index)
        if judged:
            emit("judge", step, prompt="yoda", mean=4.0 + step, std=1.0, scored=4, failed=0, skipped=0, note="")

    emit("status", 0, state="loading", reason="loading")
    observe(0, eval_loss=3.0, perplexity=20.0, style_loss=3.5)
    emit("status", 0, state="running", reason="started")
    for step in range(1, steps + 1):
        emit("step", step, loss=3.0 - step * slope, lr=1e-4, grad_norm=1.0 + step, tokens_per_s=1000.0,
             memory_mb=500.0, epoch=0.1 * step, step_time_s=1.0, eta_s=1.0)
        if step % 3 == 0:
            observe(step, eval_loss=3.0 - step * slope / 2, perplexity=10.0, style_loss=3.5 - step * slope / 2)
    if final:
        emit("status", steps, state=final, reason=final)
    writer.close()
    if judged:
        rows = [{"prompt": "yoda", "group": group, "score": score}
                for group, scores in (("base", [2, 3, 4]), ("generated", [5, 6, 7])) for score in scores]
        (run_dir / "eval").mkdir()
        (run_dir / "eval" / "scores.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return run_dir


def append_events(run_dir: Path, *events: tuple[str, int, dict]) -> None:
    """(type, step, fields) events added to a run's record, as the trainer appends them."""
    writer = JsonlWriter(run_dir / "events.jsonl")
    for type, step, fields in events:
        writer(make_event(type, step, **fields))
    writer.close()


# Every pane's SVG snapshots are taken at the smallest terminal the studio supports and at a roomy one.
at_both_sizes = pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])


def add_dpo_steps(run_dir, steps: int) -> None:
    """A DPO run's next `steps` steps after `write_run`'s: TRL's rewards, held-out pair margins, finished."""
    bus, writer = EventBus(), JsonlWriter(run_dir / "events.jsonl")
    bus.subscribe(writer)
    bus.emit("setup", steps, method="dpo", device="cpu", dtype="float32", precision="fp32", quantization="none",
             processes=1, trainable_params=10, total_params=100)
    for step in range(steps + 1, 2 * steps + 1):
        bus.emit("step", step, loss=0.7 - 0.05 * step, lr=1e-4, grad_norm=1.0, tokens_per_s=100.0, memory_mb=1.0,
                 reward_chosen=0.1 * step, reward_rejected=-0.05 * step, reward_margin=0.15 * step,
                 reward_accuracy=min(1.0, 0.2 * step))
        bus.emit("eval", step, eval_loss=0.7 - 0.04 * step, pair_margin=0.5 * step, pair_accuracy=0.75)
    bus.emit("status", 2 * steps, state="finished", reason="done")
    writer.close()
