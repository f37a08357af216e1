"""llm-katan, a real OpenAI-compatible server, on a free loopback port for the judge's tests.

Started as a child process (host 127.0.0.1 only), waited for on /health, asked for its request
count on /stats (server side, so "the cache made no request" is measured, not assumed), and
stopped by its own pid.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

KATAN = shutil.which("llm-katan") or str(Path(sys.executable).parent / "llm-katan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Katan:
    def __init__(self, workdir: Path, *args: str, model: str = "judge-echo", backend: str = "echo",
                 ready_timeout: float = 30.0) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.stats_file = workdir / f"katan-{self.port}-stats.json"
        self.log = workdir / f"katan-{self.port}.log"
        command = [KATAN, "--model", model, "--backend", backend, "--host", "127.0.0.1", "--port", str(self.port),
                   "--stats-file", str(self.stats_file), "--log-level", "WARNING", *args]
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self._wait_ready(ready_timeout)

    def _get(self, path: str) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as response:
            return json.loads(response.read())

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llm-katan exited with {self.process.returncode}:\n{self.log.read_text()[-2000:]}")
            try:
                self._get("/health")
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"llm-katan not ready after {timeout:.0f} s:\n{self.log.read_text()[-2000:]}")

    def requests(self) -> int:
        """Chat requests the server has received (including the ones it failed on purpose)."""
        return int(self._get("/stats")["total"])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Katan:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
