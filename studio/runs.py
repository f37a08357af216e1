"""The run directory: its layout, the control channel into a live run, and listing past runs.

    RUN/config.toml     the fully resolved config (no secrets)
    RUN/events.jsonl    every event, one JSON object per line
    RUN/control.jsonl   commands for the live trainer (pause, resume, stop, checkpoint)
    RUN/process.json    pid and host of the process training it, while it lives
    RUN/checkpoints/    step-N folders with manifests
    RUN/adapter/        the PEFT adapter, written when the run stops or finishes
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from studio.config import RunConfig
from studio.errors import StudioError
from studio.events import Event, read_events
from studio.run_state import RunState

COMMANDS = ("pause", "resume", "stop", "checkpoint")


class RunError(StudioError):
    """A run directory is missing or unusable; the message says what to do."""


@dataclass(frozen=True)
class RunPaths:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    @property
    def events(self) -> Path:
        return self.root / "events.jsonl"

    @property
    def control(self) -> Path:
        return self.root / "control.jsonl"

    @property
    def lr_range(self) -> Path:
        return self.root / "lr_range.json"  # the learning-rate range test's curve (train.learning_rate = "auto")

    @property
    def process(self) -> Path:
        return self.root / "process.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def adapter(self) -> Path:
        return self.root / "adapter"


def new_run_dir(cfg: RunConfig, root: Path) -> Path:
    """A fresh folder under root named after the run (or the model and time)."""
    base = cfg.name or f"{Path(cfg.model.name).name}-{Path(cfg.data.dataset).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip("-") or "run"
    path, n = root / base, 1
    while path.exists():
        n += 1
        path = root / f"{base}-{n}"
    return path


def load_config(run_dir: Path) -> RunConfig:
    paths = RunPaths(Path(run_dir))
    if not paths.config.exists():
        raise RunError(f"{run_dir}: not a run directory (no config.toml)")
    return RunConfig.load(paths.config)


# -- the control channel ---------------------------------------------------------------------


def send_command(run_dir: Path, command: str) -> None:
    """Ask the process training this run to pause/resume/stop/checkpoint (any process, any terminal)."""
    if command not in COMMANDS:
        raise ValueError(f"unknown command {command!r}; known: {', '.join(COMMANDS)}")
    paths = RunPaths(Path(run_dir))
    with open(paths.control, "a", encoding="utf-8") as f:
        f.write(json.dumps({"command": command, "time": time.time()}) + "\n")


class CommandReader:
    """Reads commands appended to control.jsonl since the reader was made."""

    def __init__(self, run_dir: Path) -> None:
        self.path = RunPaths(Path(run_dir)).control
        self._offset = self.path.stat().st_size if self.path.exists() else 0

    def poll(self) -> list[str]:
        try:
            if self.path.stat().st_size <= self._offset:
                return []
        except FileNotFoundError:
            return []
        with open(self.path, encoding="utf-8") as f:
            f.seek(self._offset)
            lines = f.readlines()
        complete = [line for line in lines if line.endswith("\n")]
        self._offset += sum(len(line.encode("utf-8")) for line in complete)
        commands = []
        for line in complete:
            try:
                command = json.loads(line).get("command")
            except (json.JSONDecodeError, AttributeError):
                continue
            if command in COMMANDS:
                commands.append(command)
        return commands


# -- liveness -----------------------------------------------------------------------------------


def mark_alive(run_dir: Path) -> None:
    RunPaths(Path(run_dir)).process.write_text(
        json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}), encoding="utf-8")


def mark_gone(run_dir: Path) -> None:
    RunPaths(Path(run_dir)).process.unlink(missing_ok=True)


def is_alive(run_dir: Path) -> bool:
    """True while a process on this host is training the run (a killed one leaves a stale file)."""
    try:
        info = json.loads(RunPaths(Path(run_dir)).process.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return False
    if info.get("host") != socket.gethostname():
        return True  # another machine's process: we cannot tell, so trust the file
    try:
        os.kill(int(info["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- summaries ----------------------------------------------------------------------------------


@dataclass
class RunSummary:
    path: Path
    name: str
    model: str
    dataset: str
    step: int
    max_steps: int
    last_loss: float | None
    eval_loss: float | None
    style_loss: float | None
    status: RunState
    alive: bool


def summarize(run_dir: Path, events: list[Event] | None = None) -> RunSummary:
    run_dir = Path(run_dir)
    cfg = load_config(run_dir)
    events = read_events(RunPaths(run_dir).events) if events is None else events
    last = {kind: next((e for e in reversed(events) if e["type"] == kind), None) for kind in ("step", "eval", "status")}
    alive = is_alive(run_dir)
    status = RunState(last["status"]["state"]) if last["status"] else RunState.NEW
    if not alive and not status.terminal and status != RunState.NEW:
        status = RunState.KILLED  # the process died without saying so (SIGKILL, power loss): resumable
    return RunSummary(
        path=run_dir, name=run_dir.name, model=cfg.model.name, dataset=cfg.data.dataset,
        step=max((e["step"] for e in events), default=0), max_steps=cfg.train.max_steps,
        last_loss=_float(last["step"], "loss"), eval_loss=_float(last["eval"], "eval_loss"),
        style_loss=_float(last["eval"], "style_loss"), status=status, alive=alive,
    )


def _float(event: Event | None, key: str) -> float | None:
    if not event or event.get(key) is None:
        return None
    return float(event[key])


def list_runs(root: Path) -> list[RunSummary]:
    """Every run directory under root, newest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if (p / "config.toml").exists()]
    found.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    return [summarize(p) for p in found]


# -- the trained model --------------------------------------------------------------------------


def load_adapted_model(run_dir: Path, **model_overrides):
    """The run's base model with its adapter (the final one, else the newest checkpoint), in eval mode.
    `model_overrides` replace fields of the run's model config (device, dtype, quantization)."""
    import dataclasses
    import pickle

    from peft import PeftModel

    from studio import checkpoints, models, templates

    run_dir = Path(run_dir)
    cfg = load_config(run_dir)
    paths = RunPaths(run_dir)
    adapter = paths.adapter
    if not (adapter / "adapter_config.json").exists():
        latest = checkpoints.latest_valid(paths.checkpoints)
        if latest is None:
            raise RunError(f"{run_dir}: no adapter and no valid checkpoint yet; train it first (studio resume {run_dir})")
        adapter = latest[0]
    tokenizer = models.load_tokenizer(cfg.model.name, trust_remote_code=cfg.model.trust_remote_code)
    added = templates.apply_template(tokenizer, cfg.template)
    model = models.load_model(dataclasses.replace(cfg.model, **model_overrides))
    if added:
        model.resize_token_embeddings(len(tokenizer))
    try:
        model = PeftModel.from_pretrained(model, str(adapter))
    except pickle.UnpicklingError:
        raise RunError(f"{adapter}: the adapter is a pickled .bin file, which torch refuses to load (weights_only: "
                       "it could run code). Save it again as adapter_model.safetensors, or train the run "
                       "again") from None
    model.eval()
    return model, tokenizer


def trained_dtype(run_dir: Path) -> tuple[str, str]:
    """The dtype the run's base weights were in while it trained, and its quantization, from its setup
    event (runs older than that event: from the config; a quantized run computed in bfloat16)."""
    cfg = load_config(run_dir)
    setups = [e for e in read_events(RunPaths(Path(run_dir)).events) if e["type"] == "setup"]
    if setups:
        return setups[-1]["dtype"], setups[-1]["quantization"]
    quantized = cfg.model.quantization in ("4bit", "8bit")
    dtype = cfg.model.dtype if cfg.model.dtype != "auto" else "bfloat16" if quantized else "float32"
    return dtype, cfg.model.quantization if quantized else "none"
