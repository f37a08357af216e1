"""The headless `studio` commands: train with signals, runs, control, export."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from studio.events import read_events

QA = [(f"Name a colour number {i}.", f"Colour {i}, blue it is. Hmm.") for i in range(24)]


@pytest.fixture(scope="module")
def qa_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli-data") / "qa.jsonl"
    path.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in QA))
    return path


def studio_args(model: Path, data: Path, steps: int) -> list[str]:
    sets = [f"model.name={json.dumps(str(model))}", f"data.dataset={json.dumps(str(data))}",
            "data.response_column=answer", "data.max_length=48", f"train.max_steps={steps}", "train.batch_size=4",
            "train.eval_every=0", "train.sample_every=0", "train.save_every=0", "train.sample_prompts=1"]
    return [arg for s in sets for arg in ("--set", s)]


def run_cli(*args: str, timeout: int = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "studio.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_train_then_runs_then_export_round_trip(tiny_model_dir, qa_file, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    run_dir = tmp_path / "runs" / "r1"
    done = run_cli("train", *studio_args(tiny_model_dir, qa_file, 3), "--run-dir", str(run_dir))
    assert done.returncode == 0, done.stderr
    assert "finished" in done.stdout

    listed = subprocess.run([sys.executable, "-m", "studio.cli", "runs", "--root", str(tmp_path / "runs")],
                            capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert listed.returncode == 0 and "r1" in listed.stdout and "finished" in listed.stdout and "3/3" in listed.stdout

    out = tmp_path / "merged"
    exported = run_cli("export", str(run_dir), "--merge", str(out))
    assert exported.returncode == 0, exported.stderr
    merged = AutoModelForCausalLM.from_pretrained(out)
    assert not any("lora" in name for name, _ in merged.named_parameters())

    from studio.runs import load_adapted_model

    adapted, tokenizer = load_adapted_model(run_dir, device="cpu")
    ids = tokenizer("Name a colour.", return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.allclose(merged(ids).logits, adapted(ids).logits, atol=1e-4)


def test_push_to_hub_without_network_says_why(tiny_model_dir, qa_file, tmp_path):
    run_dir = tmp_path / "r"
    assert run_cli("train", *studio_args(tiny_model_dir, qa_file, 1), "--run-dir", str(run_dir)).returncode == 0
    online = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}  # really try the network
    pushed = run_cli("export", str(run_dir), "--merge", str(tmp_path / "m"), "--push-to-hub", "me/yoda", env=online)
    assert pushed.returncode == 1
    assert "export failed" in pushed.stderr
    assert "no network" in pushed.stderr or "log in" in pushed.stderr, pushed.stderr
    assert (tmp_path / "m" / "config.json").exists()  # the merged model stays on disk


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_signal_checkpoints_saves_the_adapter_and_exits_0(signum, tiny_model_dir, qa_file, tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "studio.cli", "train", *studio_args(tiny_model_dir, qa_file, 10_000),
                             "--run-dir", str(run_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 180
    while not any(e["type"] == "step" for e in read_events(run_dir / "events.jsonl")):
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "no step within 180 s"
        time.sleep(0.2)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    events = read_events(run_dir / "events.jsonl")
    assert events[-1]["type"] == "status" and events[-1]["state"] == "stopped"
    last_step = max(e["step"] for e in events if e["type"] == "step")
    assert any(e["type"] == "checkpoint" and e["path"].endswith(f"step-{last_step}") for e in events)
    assert (run_dir / "adapter" / "adapter_model.safetensors").exists()


def test_resume_after_sigkill_continues_from_the_last_checkpoint(tiny_model_dir, qa_file, tmp_path):
    run_dir = tmp_path / "run"
    args = studio_args(tiny_model_dir, qa_file, 40) + ["--set", "train.save_every=2"]
    proc = subprocess.Popen([sys.executable, "-m", "studio.cli", "train", *args, "--run-dir", str(run_dir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while not any(e["type"] == "checkpoint" for e in read_events(run_dir / "events.jsonl")):
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.1)
    proc.kill()
    proc.wait()

    from studio.runs import summarize

    assert summarize(run_dir).status == "killed"
    resumed = run_cli("resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr
    events = read_events(run_dir / "events.jsonl")
    assert events[-1]["state"] == "finished"
    assert max(e["step"] for e in events if e["type"] == "step") == 40


def test_control_command_reaches_a_live_run_and_refuses_a_dead_one(tiny_model_dir, qa_file, tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "studio.cli", "train", *studio_args(tiny_model_dir, qa_file, 10_000),
                             "--run-dir", str(run_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 180
    while not any(e["type"] == "step" for e in read_events(run_dir / "events.jsonl")):
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.2)
    assert run_cli("control", str(run_dir), "stop").returncode == 0
    proc.communicate(timeout=120)
    assert proc.returncode == 0
    refused = run_cli("control", str(run_dir), "pause")
    assert refused.returncode == 1 and "studio resume" in refused.stderr


def adapter_sha256(run_dir: Path) -> str:
    import hashlib

    return hashlib.sha256((run_dir / "adapter" / "adapter_model.safetensors").read_bytes()).hexdigest()


def test_one_seed_gives_the_same_run_in_two_processes(tiny_model_dir, qa_file, tmp_path):
    """Before: LoRA's initial weights came from an unseeded generator, so losses differed from step 2 on."""
    runs = []
    for name in ("first", "second"):
        done = run_cli("train", *studio_args(tiny_model_dir, qa_file, 3), "--set", "train.seed=42",
                       "--run-dir", str(tmp_path / name))
        assert done.returncode == 0, done.stderr
        runs.append(tmp_path / name)
    losses = [[e["loss"] for e in read_events(r / "events.jsonl") if e["type"] == "step"] for r in runs]
    assert len(losses[0]) == 3 and losses[0] == losses[1]
    assert adapter_sha256(runs[0]) == adapter_sha256(runs[1])


@pytest.fixture(scope="module")
def trained_run(tiny_model_dir, qa_file, tmp_path_factory) -> Path:
    """A finished run, trained from its own folder with relative model and data paths."""
    home = tmp_path_factory.mktemp("relative")
    shutil.copytree(tiny_model_dir, home / "tiny")
    shutil.copy(qa_file, home / "qa.jsonl")
    args = [a.replace(str(tiny_model_dir), "tiny").replace(str(qa_file), "qa.jsonl")
            for a in studio_args(tiny_model_dir, qa_file, 2)]
    done = subprocess.run([sys.executable, "-m", "studio.cli", "train", *args, "--run-dir", "run"], cwd=home,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return home / "run"


def test_a_run_trained_with_relative_paths_exports_from_anywhere(trained_run, tmp_path):
    """Before: config.toml kept "tiny" and "qa.jsonl" as typed; from another directory they looked like hub ids."""
    exported = subprocess.run([sys.executable, "-m", "studio.cli", "export", str(trained_run), "--merge",
                               str(tmp_path / "merged")], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert exported.returncode == 0, exported.stderr
    assert "merged into float32 base weights" in exported.stdout


def test_a_qlora_run_merges_into_its_dequantized_half_precision_base(trained_run, tmp_path):
    """Before: export kept the run's 4-bit quantization on the CPU and failed ("4-bit QLoRA needs a CUDA GPU")."""
    from safetensors import safe_open

    run = tmp_path / "qlora-run"
    shutil.copytree(trained_run, run)
    config = run / "config.toml"
    config.write_text(config.read_text().replace('quantization = "none"', 'quantization = "4bit"'))
    events = run / "events.jsonl"  # as the run recorded it on its GPU
    events.write_text(events.read_text().replace('"dtype": "float32", "precision": "fp32", "quantization": "none"',
                                                 '"dtype": "bfloat16", "precision": "bf16", "quantization": "4bit"'))
    exported = run_cli("export", str(run), "--merge", str(tmp_path / "merged"))
    assert exported.returncode == 0, exported.stderr
    assert "bfloat16" in exported.stdout and "dequantized" in exported.stdout
    with safe_open(tmp_path / "merged" / "model.safetensors", "pt") as weights:
        assert weights.get_tensor(next(iter(weights.keys()))).dtype.is_floating_point
        assert {str(weights.get_tensor(k).dtype) for k in weights.keys()} == {"torch.bfloat16"}


def test_mistakes_are_one_line_errors_not_tracebacks(trained_run, tmp_path):
    """Before: a run whose model is gone, or a pickled adapter, ended `studio chat`/`export` in a traceback."""
    import torch

    moved = tmp_path / "moved-model"
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    config = run / "config.toml"
    config.write_text(config.read_text().replace(str(trained_run.parent / "tiny"), str(moved)))
    for command in (["chat", str(run)], ["export", str(run), "--merge", str(tmp_path / "m")]):
        failed = run_cli(*command)
        assert failed.returncode == 1 and failed.stderr.startswith("error:"), failed.stderr
        assert "Traceback" not in failed.stderr and str(moved) in failed.stderr

    pickled = tmp_path / "pickled"
    shutil.copytree(trained_run, pickled)
    (pickled / "adapter" / "adapter_model.safetensors").unlink()
    torch.save({"weights": torch.nn.Linear(2, 2)}, pickled / "adapter" / "adapter_model.bin")  # not weights-only
    failed = run_cli("export", str(pickled), "--merge", str(tmp_path / "m2"))
    assert failed.returncode == 1 and "pickled" in failed.stderr and "Traceback" not in failed.stderr


def test_torch_threads_sleep_while_waiting_unless_the_user_chose(monkeypatch):
    import subprocess
    import sys

    from studio.terminal import threads_sleep_while_waiting

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    threads_sleep_while_waiting()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    threads_sleep_while_waiting()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
    # The commands set it before torch loads: a run's process sees it.
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    code = "import os, studio.cli as c; c.build_parser = None\ntry: c.main(['runs'])\nexcept TypeError: pass\n" \
           "print(os.environ.get('OMP_WAIT_POLICY'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.stdout.strip().endswith("PASSIVE"), out.stderr
