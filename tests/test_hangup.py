"""An SSH connection that drops: the app runs in a pseudo-terminal, starts a run, the terminal hangs up
(SIGHUP), the run keeps training, and `studio watch` in a new terminal reattaches and steers it."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import sys
import termios
import threading
import time
from pathlib import Path

from helpers import tiny_config

from studio.events import read_events

QA = [(f"Name a colour number {i}.", f"Colour {i}, blue it is. Hmm.") for i in range(24)]


class Terminal:
    """A program in a pseudo-terminal of its own (its controlling terminal), as an SSH session runs it."""

    def __init__(self, args: list[str], env: dict[str, str], size: tuple[int, int] = (120, 40)) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: become the program
            os.execvpe(sys.executable, [sys.executable, *args], env)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
        self.output = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.output += chunk

    def wait_for_output(self, text: str, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while text.encode() not in self.output:
            assert time.time() < deadline, f"{text!r} never appeared"
            time.sleep(0.1)

    def press(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def hang_up(self) -> None:
        """Close the terminal's master side: the kernel sends SIGHUP to the program, as sshd does."""
        os.close(self.fd)

    def exit_status(self, timeout: float) -> int | None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.2)
        return None


def steps(run_dir: Path) -> list[int]:
    return [e["step"] for e in read_events(run_dir / "events.jsonl") if e["type"] == "step"]


def states(run_dir: Path) -> list[str]:
    return [e["state"] for e in read_events(run_dir / "events.jsonl") if e["type"] == "status"]


def wait_until(condition, what: str, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_the_run_outlives_a_dropped_terminal_and_studio_watch_steers_it(tiny_model_dir, tmp_path):
    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in QA))
    config = tmp_path / "tiny.toml"
    tiny_config(tiny_model_dir, data, max_steps=100_000, eval_every=0, sample_every=0, save_every=0).save(config)
    runs = tmp_path / "runs"
    env = {**os.environ, "STUDIO_RUNS": str(runs), "TERM": "xterm-256color", "OMP_NUM_THREADS": "1"}

    app = Terminal(["-m", "screens.launcher", "--config", str(config)], env)
    app.wait_for_output("Train")
    time.sleep(1.0)  # the first frame is up: keys reach the Train pane
    app.press("s")
    wait_until(lambda: runs.is_dir() and any(steps(r) for r in runs.iterdir()), "the run's first steps")
    run_dir = next(runs.iterdir())

    app.hang_up()
    seen = max(steps(run_dir))
    wait_until(lambda: max(steps(run_dir)) > seen + 3, "steps after the hang-up")

    watcher = Terminal(["-m", "screens.launcher", "watch", str(run_dir)], env)
    watcher.wait_for_output("Train")
    time.sleep(2.0)  # its follower has read the run's events: the run is live there
    watcher.press("p")
    wait_until(lambda: states(run_dir)[-1] == "paused", "the pause from the new terminal")
    paused_at = max(steps(run_dir))
    time.sleep(1.0)
    assert max(steps(run_dir)) == paused_at
    watcher.press("x")
    wait_until(lambda: states(run_dir)[-1] == "stopped", "the stop from the new terminal")
    assert app.exit_status(timeout=60) == 0  # the hung-up process saved and ended
    assert (run_dir / "adapter" / "adapter_model.safetensors").exists()
    watcher.press("q")
    assert watcher.exit_status(timeout=30) == 0
