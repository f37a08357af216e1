"""One run on two processes (torchrun, gloo on the CPU): one record, every rank's state in each
checkpoint, controls that stop every rank at the same step, and a resume equal to no interruption."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from studio import checkpoints
from studio.config import RunConfig
from studio.events import read_events

STEPS = 30
QA = [(f"What is {a} times {b}?", f"{a} times {b} is {a * b}, hmm. Yes.") for a in range(1, 9) for b in range(1, 9)]


@pytest.fixture(scope="module")
def qa_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ddp-data") / "qa.jsonl"
    path.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in QA))
    return path


def train_args(model: Path, data: Path, run_dir: Path, *sets: str) -> list[str]:
    sets = (f"model.name={json.dumps(str(model))}", f"data.dataset={json.dumps(str(data))}",
            "data.response_column=answer", "data.max_length=96", f"train.max_steps={STEPS}", "train.batch_size=2",
            "train.learning_rate=0.02", "train.warmup_steps=0", "train.eval_every=0", "train.sample_every=0", *sets)
    return ["train", *[arg for s in sets for arg in ("--set", s)], "--gpus", "2", "--run-dir", str(run_dir)]


def studio(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "studio.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def finish(proc: subprocess.Popen, timeout: float = 300) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out + err
    return out


def losses(run_dir: Path) -> dict[int, float]:
    return {e["step"]: e["loss"] for e in read_events(run_dir / "events.jsonl") if e["type"] == "step"}


def wait_for_step(run_dir: Path, proc: subprocess.Popen, step: int) -> None:
    deadline = time.time() + 240
    while max(losses(run_dir), default=0) < step:
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, f"no step {step} within 240 s"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def straight(tiny_model_dir, qa_file, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("ddp") / "straight"
    finish(studio(*train_args(tiny_model_dir, qa_file, run_dir, "train.save_every=15")))
    return run_dir


def test_two_processes_write_one_record_and_every_rank_state(straight):
    raw = [json.loads(line) for line in (straight / "events.jsonl").read_text().splitlines()]
    assert [e["step"] for e in raw if e["type"] == "step"] == list(range(1, STEPS + 1))  # once each, not twice
    assert [e["processes"] for e in raw if e["type"] == "setup"] == [2]
    assert RunConfig.load(straight / "config.toml").train.gpus == 2
    for step in (15, 30):
        manifest = checkpoints.verify(straight / "checkpoints" / f"step-{step}")
        assert manifest["world_size"] == 2
        assert {"rng_state_0.pth", "rng_state_1.pth", "adapter_model.safetensors"} <= set(manifest["files"])
    assert (straight / "adapter" / "adapter_model.safetensors").exists()
    assert not (straight / "process.json").exists()


def test_a_stop_through_the_control_file_then_resume_equals_no_interruption(straight, tiny_model_dir, qa_file,
                                                                              tmp_path):
    run_dir = tmp_path / "stopped"
    proc = studio(*train_args(tiny_model_dir, qa_file, run_dir))
    wait_for_step(run_dir, proc, 3)
    assert subprocess.run([sys.executable, "-m", "studio.cli", "control", str(run_dir), "stop"]).returncode == 0
    finish(proc)
    states = [e["state"] for e in read_events(run_dir / "events.jsonl") if e["type"] == "status"]
    assert states[-1] == "stopped"
    stopped_at = max(losses(run_dir))
    assert stopped_at < STEPS
    manifest = checkpoints.verify(run_dir / "checkpoints" / f"step-{stopped_at}")  # every rank stopped there
    assert {"rng_state_0.pth", "rng_state_1.pth"} <= set(manifest["files"])

    finish(studio("resume", str(run_dir)))
    expected, got = losses(straight), losses(run_dir)
    assert sorted(got) == list(range(1, STEPS + 1))
    for step in range(stopped_at + 1, STEPS + 1):
        assert got[step] == pytest.approx(expected[step], rel=1e-5, abs=1e-6), f"step {step}"


def test_sigterm_to_the_launcher_stops_every_rank_cleanly(tiny_model_dir, qa_file, tmp_path):
    run_dir = tmp_path / "terminated"
    proc = studio(*train_args(tiny_model_dir, qa_file, run_dir))
    wait_for_step(run_dir, proc, 2)
    proc.send_signal(signal.SIGTERM)
    finish(proc)
    events = read_events(run_dir / "events.jsonl")
    assert events[-1]["type"] == "status" and events[-1]["state"] == "stopped"
    assert (run_dir / "adapter" / "adapter_model.safetensors").exists()


def test_a_dpo_run_on_two_processes_writes_one_record_and_learns(tiny_model_dir, tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"question": q, "chosen": a, "rejected": a.split(",")[0] + "."}) + "\n"
                             for q, a in QA))
    run_dir = tmp_path / "dpo"
    finish(studio(*train_args(tiny_model_dir, pairs, run_dir, 'train.method="dpo"', "train.max_steps=12",
                              "train.learning_rate=0.01")))
    raw = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    steps = [e for e in raw if e["type"] == "step"]
    assert [e["step"] for e in steps] == list(range(1, 13))  # once each, not once a rank
    assert [e["processes"] for e in raw if e["type"] == "setup"] == [2]
    assert steps[-1]["reward_margin"] > steps[0]["reward_margin"]
    assert (run_dir / "adapter" / "adapter_model.safetensors").exists()


async def test_the_app_starts_a_run_on_two_processes_and_its_keys_reach_every_rank(tiny_model_dir, qa_file,
                                                                                   tmp_path, monkeypatch):
    from helpers import wait_for

    from screens.app import StudioApp
    from screens.monitor import MonitorPane

    monkeypatch.setenv("STUDIO_RUNS", str(tmp_path / "runs"))
    cfg = RunConfig().with_overrides([a for a in train_args(tiny_model_dir, qa_file, tmp_path)[1:-4] if a != "--set"]
                                     + ["train.max_steps=400", "train.gpus=2"])
    app = StudioApp()
    async with app.run_test(size=(120, 40)) as pilot:
        app.change(config=cfg)
        monitor = app.query_one(MonitorPane)
        await pilot.pause()
        await pilot.press("s")
        await wait_for(pilot, lambda: monitor.following and monitor.history.status.step >= 2, timeout=240,
                       what="steps of the two processes")
        assert "x2 processes" in str(monitor.history.status.setup)
        await pilot.press("x")  # through the control file: rank 0 reads it, every rank stops at the same step
        await wait_for(pilot, lambda: monitor.history.status.state == "stopped", timeout=180, what="stopped")
    run_dir = monitor.run_dir
    assert (run_dir / "adapter" / "adapter_model.safetensors").exists()
    manifest = checkpoints.verify(checkpoints.list_checkpoints(run_dir / "checkpoints")[-1])
    assert {"rng_state_0.pth", "rng_state_1.pth"} <= set(manifest["files"])
