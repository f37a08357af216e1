"""Training without the app: a run in this process with a live progress line, or a run on several
processes launched under torchrun and followed through its event log.

Ctrl-C, SIGTERM and SIGHUP stop a run cleanly (the current step finishes, then a checkpoint and the
adapter are saved); a second Ctrl-C aborts at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from studio import distributed
from studio.events import EventBus, EventFollower, read_events
from studio.progress import ProgressView
from studio.run_state import RunState
from studio.runs import RunPaths, send_command
from studio.terminal import detach_terminal

# Set for the processes `launch` starts: their parent shows the progress, they stay quiet.
_LAUNCHED = "STUDIO_LAUNCHED"


def drive(run) -> int:
    """Train `run` in this process in the foreground; returns the exit status."""
    several = distributed.world_size() > 1
    shown = distributed.is_main() and not os.environ.get(_LAUNCHED)

    def on_signal(signum, _frame):
        if signum == signal.SIGHUP:
            view.detach()
            detach_terminal()
        else:
            view.note(f"{signal.Signals(signum).name}: finishing the current step, then saving")
        run.stop()
        if not several:  # under torchrun the launcher forwards the same signal again: keep stopping cleanly
            signal.signal(signal.SIGINT, signal.SIG_DFL)  # a second Ctrl-C aborts at once

    with ProgressView(run.bus, run.cfg.train.max_steps, shown=shown) as view:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, on_signal)
        run.start()
        while not run.join(timeout=0.2):
            pass
    if shown:
        print(f"{run.state}: {run.paths.root}" + (f"\n{run.error}" if run.error else ""))
    return 1 if run.state == RunState.FAILED else 0


def launch(run_dir: Path, processes: int, resume: bool) -> int:
    """Train the run in `run_dir` (its config.toml written) on `processes` processes under torchrun,
    showing rank 0's events here. Signals become a stop request through the run's control file, so
    every rank stops at the same step; a second Ctrl-C ends the processes at once."""
    paths = RunPaths(run_dir)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               "-m", "studio.cli"] + (["resume", str(run_dir)] if resume else
                                      ["train", str(paths.config), "--run-dir", str(run_dir)])
    log = paths.root / "processes.log"
    with open(log, "ab") as out:
        # Its own session: a Ctrl-C in this terminal reaches this process only, which asks for a clean stop.
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                 env={**os.environ, _LAUNCHED: "1"})
    bus = EventBus()
    stopping = threading.Event()

    def on_signal(signum, _frame):
        if stopping.is_set() and signum == signal.SIGINT:
            os.killpg(child.pid, signal.SIGTERM)
            return
        stopping.set()
        if signum == signal.SIGHUP:
            view.detach()
            detach_terminal()
        else:
            view.note(f"{signal.Signals(signum).name}: every process finishes its step, then saves "
                      "(Ctrl-C again ends them at once)")
        send_command(run_dir, "stop")

    with ProgressView(bus, _max_steps(run_dir), shown=True) as view:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, on_signal)
        view.note(f"training on {processes} processes (torchrun); their output goes to {log}")
        follower = EventFollower(paths.events)
        follower.skip_existing()
        while child.poll() is None:
            for event in follower.poll():
                bus.publish(event)
            time.sleep(0.2)
        for event in follower.poll():
            bus.publish(event)
    return _outcome(run_dir, child.returncode, log)


def _max_steps(run_dir: Path) -> int:
    from studio.runs import load_config

    return load_config(run_dir).train.max_steps


def _outcome(run_dir: Path, returncode: int, log: Path) -> int:
    statuses = [e for e in read_events(RunPaths(run_dir).events) if e["type"] == "status"]
    state = statuses[-1]["state"] if statuses else None
    if state in (RunState.FINISHED, RunState.STOPPED):
        print(f"{state}: {run_dir}")
        return 0
    reason = statuses[-1].get("reason", "") if statuses else ""
    print(f"{state or 'failed to start'}: {run_dir}\n{reason}\n(exit status {returncode}; see {log})")
    return 1
