"""Sweeps: a grid of runs that differ in a few config values, trained one after another (or one per GPU
at once), each a normal run directory under one sweep folder, ended by the compare table.

    studio sweep my.toml --set train.learning_rate=1e-4,3e-4,1e-3 --set lora.r=8,16 --sweep-dir runs/lr-r

Running the same command again continues the sweep: finished runs are kept, stopped or killed ones
resume from their last checkpoint, the rest start. Ctrl-C stops the runs in flight cleanly (a
checkpoint and the adapter each) and starts no more.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from studio.config import ConfigError, RunConfig, parse_value
from studio.run_state import RunState
from studio.runs import RunPaths, send_command, summarize


@dataclass(frozen=True)
class SweepPoint:
    name: str  # the run directory's name: the swept values, e.g. "learning_rate=0.0003_r=8"
    overrides: tuple[str, ...]  # section.key=value for each swept key


def split_values(text: str) -> list[str]:
    """Comma-separated values, where a TOML list or string may itself hold commas: `1e-4,3e-4` or
    `["q_proj","v_proj"],["all-linear"]`."""
    values, depth, quoted, start = [], 0, "", 0
    for i, char in enumerate(text):
        if quoted:
            quoted = "" if char == quoted else quoted
        elif char in "\"'":
            quoted = char
        elif char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        elif char == "," and depth == 0:
            values.append(text[start:i].strip())
            start = i + 1
    values.append(text[start:].strip())
    return [v for v in values if v]


def grid(assignments: list[str]) -> tuple[list[str], list[SweepPoint]]:
    """The fixed overrides (one value) and the grid's points (every combination of the swept keys)."""
    fixed, swept = [], []
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        if not sep:
            raise ConfigError(f"{assignment}: a sweep value is section.key=value1,value2,...")
        values = split_values(text)
        if len(values) == 1:
            fixed.append(f"{key.strip()}={values[0]}")
        else:
            swept.append((key.strip(), values))
    if not swept:
        raise ConfigError("nothing to sweep: give at least one --set section.key=value1,value2")
    points = []
    for combination in itertools.product(*[values for _, values in swept]):
        overrides = tuple(f"{key}={value}" for (key, _), value in zip(swept, combination))
        label = "_".join(f"{key.split('.')[-1]}={_slug(value)}" for (key, _), value in zip(swept, combination))
        points.append(SweepPoint(label, overrides))
    return fixed, points


def _slug(value: str) -> str:
    shown = parse_value(value)
    text = f"{shown:g}" if isinstance(shown, float) else str(shown)
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", text).strip("-") or "x"


def run_sweep(base: RunConfig, assignments: list[str], sweep_dir: Path, parallel: int = 1) -> list[Path]:
    """Train every point of the grid (see the module doc); returns the run directories in grid order."""
    fixed, points = grid(assignments)
    base = base.with_overrides(fixed).with_local_paths_resolved()
    configs = {point.name: base.with_overrides([*point.overrides, f"name={point.name}"]) for point in points}
    sweep_dir.mkdir(parents=True, exist_ok=True)
    gpus = _gpu_ids(parallel)
    pending = [point.name for point in points]
    running: dict[str, tuple[subprocess.Popen, str | None]] = {}
    stopping = False

    def on_signal(signum, _frame) -> None:
        nonlocal stopping
        if stopping and signum == signal.SIGINT:
            for proc, _ in running.values():
                os.killpg(proc.pid, signal.SIGTERM)
            return
        stopping = True
        print(f"{signal.Signals(signum).name}: stopping the runs in flight (checkpoint and adapter each), "
              "starting no more; run the same command to continue", flush=True)
        for name in running:
            send_command(sweep_dir / name, "stop")

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    while (pending and not stopping) or running:
        while pending and not stopping and len(running) < max(parallel, 1):
            name = pending.pop(0)
            run_dir = sweep_dir / name
            command = _command(run_dir, configs[name])
            if command is None:
                print(f"{name}: finished before, kept", flush=True)
                continue
            gpu = next((g for g in gpus if g not in {device for _, device in running.values()}), None)
            env = {**os.environ, **({"CUDA_VISIBLE_DEVICES": gpu} if gpu is not None else {})}
            print(f"{name}: {command[3]} {run_dir}" + (f" on GPU {gpu}" if gpu is not None else ""), flush=True)
            # Its own session: a Ctrl-C reaches the sweep, which stops the runs through their control files.
            with open(run_dir / "run.log", "ab") as log:
                proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
            running[name] = (proc, gpu)
        for name, (proc, _) in list(running.items()):
            if proc.poll() is not None:
                del running[name]
                print(f"{name}: {summarize(sweep_dir / name).status}", flush=True)
        time.sleep(0.5)
    return [sweep_dir / point.name for point in points]


def _command(run_dir: Path, cfg: RunConfig) -> list[str] | None:
    """How to bring this point to its end: train it, resume it, or nothing when it has finished."""
    studio = [sys.executable, "-m", "studio.cli"]
    paths = RunPaths(run_dir)
    if not paths.config.exists():
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg.save(paths.config)
        return [*studio, "train", str(paths.config), "--run-dir", str(run_dir)]
    if summarize(run_dir).status == RunState.FINISHED:
        return None
    return [*studio, "resume", str(run_dir)]


def _gpu_ids(parallel: int) -> list[str]:
    """The GPUs runs are spread over, one run each, when more than one run trains at once."""
    if parallel <= 1:
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [d.strip() for d in visible.split(",") if d.strip()] if visible else [str(i) for i in range(parallel)]
    return ids[:parallel]
