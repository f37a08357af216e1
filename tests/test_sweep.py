"""Sweeps: a grid of runs, one run directory each, stoppable and resumable, ended by the compare table."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import tiny_config

from studio.config import ConfigError
from studio.events import read_events
from studio.runs import summarize
from studio.sweep import grid, split_values

QA = [(f"Name a colour number {i}.", f"Colour {i}, blue it is. Hmm.") for i in range(24)]


def test_values_with_commas_inside_lists_split_right():
    assert split_values('1e-4,3e-4') == ["1e-4", "3e-4"]
    assert split_values('["q_proj","v_proj"],["all-linear"]') == ['["q_proj","v_proj"]', '["all-linear"]']
    assert split_values('"a,b",c') == ['"a,b"', "c"]


def test_the_grid_is_every_combination_of_the_swept_keys():
    fixed, points = grid(["train.learning_rate=1e-4,3e-4", "lora.r=8,16", "train.max_steps=5"])
    assert fixed == ["train.max_steps=5"]
    assert [p.name for p in points] == ["learning_rate=0.0001_r=8", "learning_rate=0.0001_r=16",
                                        "learning_rate=0.0003_r=8", "learning_rate=0.0003_r=16"]
    with pytest.raises(ConfigError, match="nothing to sweep"):
        grid(["train.max_steps=5"])


def test_a_sweep_of_four_runs_stops_and_continues(tiny_model_dir, tmp_path):
    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in QA))
    config = tmp_path / "base.toml"
    tiny_config(tiny_model_dir, data, max_steps=12, eval_every=0, sample_every=0, save_every=4).save(config)
    sweep_dir = tmp_path / "sweep"
    command = [sys.executable, "-m", "studio.cli", "sweep", str(config), "--set", "train.learning_rate=0.01,0.05",
               "--set", "lora.r=4,8", "--sweep-dir", str(sweep_dir)]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    second_run = sweep_dir / "learning_rate=0.01_r=8"
    deadline = time.time() + 240
    while not any(e["type"] == "step" for e in read_events(second_run / "events.jsonl")):
        assert first.poll() is None and time.time() < deadline, first.communicate()[0]
        time.sleep(0.2)
    first.send_signal(signal.SIGINT)
    out, _ = first.communicate(timeout=120)
    assert first.returncode == 0, out
    assert summarize(sweep_dir / "learning_rate=0.01_r=4").status == "finished"
    assert summarize(second_run).status == "stopped"
    assert not (sweep_dir / "learning_rate=0.05_r=4").exists()  # no run starts after the stop

    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "finished before, kept" in again.stdout and "resume" in again.stdout
    for run in sweep_dir.iterdir():
        if run.is_dir():
            assert summarize(run).status == "finished", run
    assert sum(run.is_dir() for run in sweep_dir.iterdir()) == 4
    assert "lora.r" in again.stdout and "train.learning_rate" in again.stdout  # the compare table's differences
    assert (sweep_dir / "compare.png").exists()
