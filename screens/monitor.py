"""The training monitor: the config form, the live curves, the status line and the sampled chats.

It shows one run at a time, fed either by the in-process trainer's bus (a subscriber that only
posts a message) or by events.jsonl (a follower thread for `studio watch` and the runs list).
Events are buffered and folded into the widgets at most `REDRAW_HZ` times a second.
"""

from __future__ import annotations

import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button
from textual.worker import get_current_worker

from screens.config_form import ConfigForm
from screens.messages import RunEvents, RunLaunched
from screens.runs_list import RunsList
from screens.state import StateChanged
from screens.widgets.loss_chart import LossChart
from screens.widgets.range_test import RangeTestScreen
from screens.widgets.samples_view import SamplesView
from screens.widgets.status_bar import Status, StatusBar
from screens.widgets.trend import Trend
from screens.workers import ReportsWorkerErrors, WorkerFailed
from studio import runs
from studio.events import EventFollower
from studio.formatting import format_duration
from studio.paths import runs_dir
from studio.run_state import RunState
from studio.runs import RunError

REDRAW_HZ = 4
FOLLOW_EVERY_S = 0.5
START_GROUP = "start-run"
FOLLOW_GROUP = "follow"
# step-event field -> (trend title, short title, format): shown in a row of their own once a DPO run logs them
REWARDS = {"reward_chosen": ("reward chosen", "chosen", "+.3f"),
           "reward_rejected": ("reward rejected", "rejected", "+.3f"),
           "reward_margin": ("margin", "margin", "+.3f"), "reward_accuracy": ("accuracy", "acc", ".0%")}


class RunHistory:
    """A run's events folded into what the monitor draws; knows nothing of widgets."""

    def __init__(self, max_steps: int | None = None) -> None:
        self.max_steps = max_steps
        self.train: list[tuple[float, float]] = []
        self.held_out: list[tuple[float, float]] = []
        self.style: list[tuple[float, float]] = []
        self.lr: list[tuple[float, float]] = []
        self.grad_norm: list[tuple[float, float]] = []
        self.judge: list[tuple[float, float]] = []  # the judge's mean score of the sampled answers
        self.range_test: dict[str, Any] | None = None  # the lr_range event of train.learning_rate = "auto"
        # A DPO run's rewards (TRL's rewards/*): how far the policy prefers each answer over the reference.
        self.rewards: dict[str, list[tuple[float, float]]] = {key: [] for key in REWARDS}
        self.pair_margin: list[tuple[float, float]] = []  # held-out pairs: log p(chosen) - log p(rejected)
        self.status = Status(max_steps=max_steps, reason="edit the config, then press s to train")

    def add(self, event: dict[str, Any]) -> set[str]:
        """Fold one event in; returns the parts of the screen it changes."""
        kind, step, s = event.get("type"), int(event.get("step", 0)), self.status
        if kind == "step":
            for series, key in ((self.train, "loss"), (self.lr, "lr"), (self.grad_norm, "grad_norm"),
                                *((self.rewards[key], key) for key in REWARDS)):
                _append(series, step, event.get(key))
            s.step = step
            s.tokens_per_s, s.eta_s, s.memory_mb = event.get("tokens_per_s"), event.get("eta_s"), event.get("memory_mb")
            s.observe_share = event.get("observe_share")
            return {"chart", "trends", "status"}
        if kind == "prepare":
            done, total = int(event.get("done", 0)), max(int(event.get("total", 0)), 1)
            filled = round(20 * done / total)
            s.reason = (f"preparing the data [{'█' * filled}{'░' * (20 - filled)}] {done:,}/{total:,} rows · "
                        f"{event.get('rows_per_s') or 0:,.0f} rows/s · ETA {format_duration(event.get('eta_s'))}")
            return {"status"}
        if kind == "setup":
            processes = int(event.get("processes") or 1)
            s.setup = " ".join(str(part) for part in (
                "DPO" if event.get("method") == "dpo" else "", event.get("device"), event.get("precision"),
                event.get("quantization") if event.get("quantization") not in (None, "none") else "",
                f"x{processes} processes" if processes > 1 else "") if part)
            return {"status"}
        if kind == "lr_range":
            self.range_test = event
            s.learning_rate = f"lr {event['chosen']:.1e} by range test (l: curve)"
            return {"status"}
        if kind == "resume":  # the steps after the checkpoint are trained again: forget their points
            resumed_from = int(event.get("from_step", 0))
            for series in (self.train, self.held_out, self.style, self.lr, self.grad_norm, self.judge,
                           self.pair_margin, *self.rewards.values()):
                series[:] = [point for point in series if point[0] <= resumed_from]
            s.step = resumed_from
            return {"chart", "trends", "status", "samples"}
        if kind == "eval":
            _append(self.held_out, step, event.get("eval_loss"))
            _append(self.style, step, event.get("style_loss"))
            _append(self.pair_margin, step, event.get("pair_margin"))
            return {"chart", "trends"}
        if kind == "status":
            s.state, s.reason = RunState(event.get("state", s.state)), event.get("reason", "")
            s.step = max(s.step, step)
            return {"status"}
        if kind == "error":
            s.error = event.get("message", "")
            return {"status"}
        if kind == "judge":
            _append(self.judge, step, event.get("mean"))
            s.judge = (f"judge {event['mean']:.2f} at step {step}" if event.get("mean") is not None else
                       f"judge at step {step}: {event.get('note') or 'no score'}")
            if event.get("failed"):
                s.judge += f" ({event['failed']} failed)"
            return {"chart", "status"}
        if kind == "checkpoint":
            s.reason = f"checkpoint saved: {event.get('path', '')}"
            return {"status"}
        return {"samples"} if kind == "sample" else set()


def _append(series: list[tuple[float, float]], step: int, value: Any) -> None:
    """Add a point; a resumed run repeats steps after its checkpoint, and the newer values win."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return  # missing, or "nan" kept as text in the log: nothing to draw
    while series and series[-1][0] >= step:
        series.pop()
    series.append((step, value))


class MonitorPane(ReportsWorkerErrors, Container, can_focus=True):
    BINDINGS = [
        Binding("s", "start", "Start"),
        Binding("p", "pause_resume", "Pause/Resume"),
        Binding("x", "stop", "Stop"),
        Binding("c", "checkpoint", "Checkpoint"),
        Binding("o", "open_run", "Runs"),
        Binding("l", "range_test", "LR range test", show=False),
        Binding("f", "toggle_form", "Show/hide the form", show=False),
        Binding("left_square_bracket", "older", "Older sample", show=False),
        Binding("right_square_bracket", "newer", "Newer sample", show=False),
        Binding("less_than_sign", "prompt(-1)", "Previous prompt", show=False),
        Binding("greater_than_sign", "prompt(1)", "Next prompt", show=False),
        Binding("g", "toggle_mode", "Greedy/sampled answers", show=False),
        Binding("escape", "leave_field", "Leave the field", show=False),
    ]

    class FollowEnded(Message):
        """The events.jsonl follower stopped: the watched run's process is gone."""

        def __init__(self, run_dir: Path) -> None:
            super().__init__()
            self.run_dir = run_dir

    def __init__(self) -> None:
        super().__init__()
        self.run_dir: Path | None = None
        self.in_process = False  # the shown run trains in this process (else: read from its directory)
        self.following = False  # a follower thread reads the shown run's events.jsonl
        self.history = RunHistory()
        self._pending: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        with Horizontal(id="monitor-body"):
            yield ConfigForm(self.app.state.config, id="config-form")
            with Vertical(id="monitor-live"):
                yield StatusBar(id="run-status")
                yield LossChart(id="loss-chart")
                with Horizontal(id="trends"):
                    yield Trend("lr", ".1e", id="trend-lr")
                    yield Trend("grad norm", ".2f", short="grad", id="trend-grad")
                rewards = Horizontal(id="reward-trends")
                rewards.display = False  # until a DPO run's rewards arrive
                with rewards:
                    for key, (title, short, fmt) in REWARDS.items():
                        yield Trend(title, fmt, short=short, id=f"trend-{key.replace('_', '-')}")
                    yield Trend("held-out margin", "+.2f", short="held-out", id="trend-pair-margin")
                yield SamplesView(id="samples")

    def on_mount(self) -> None:
        self.query_one(LossChart).placeholder = "no steps yet: press s to train, o to open a run"
        self._draw({"status"})
        self.set_interval(1 / REDRAW_HZ, self._flush)

    # -- what is live ----------------------------------------------------------------------------

    @property
    def run(self):
        """The in-process TrainingRun when the shown run is one, else None."""
        run = self.app.state.training_run
        return run if self.in_process and run is not None and run.paths.root == self.run_dir else None

    @property
    def live(self) -> bool:
        """The shown run trains (or pauses) now. Judged by its last state: the trainer's thread outlives
        its final status event by a moment, and a watched run has no thread here at all."""
        return (self.run is not None or self.following) and self.history.status.state.active

    @property
    def starting(self) -> bool:
        return self.history.status.state == RunState.STARTING

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # None: shown in the footer but dimmed, so the keys stay discoverable.
        if action == "start":
            run = self.app.state.training_run
            training_here = run is not None and run.alive and not run.state.terminal
            return None if self.starting or training_here or not self.query_one(ConfigForm).valid else True
        if action in ("pause_resume", "stop", "checkpoint"):
            return True if self.live else None
        return True

    # -- starting and opening runs ---------------------------------------------------------------

    def action_start(self) -> None:
        if self.check_action("start", ()) is not True:
            form = self.query_one(ConfigForm)
            why = ("fix the highlighted field first" if not form.valid else
                   "a run is already training here: stop it (x) first")
            self.notify(f"cannot start: {why}", severity="warning")
            return
        self._launch(self.app.state.config)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "start":
            event.stop()
            self.action_start()

    def resume_run(self, run_dir: Path) -> None:
        """Continue a killed/stopped/failed run in this process from its last valid checkpoint."""
        try:
            config = runs.load_config(run_dir)
        except Exception as exc:  # a broken config.toml: say so, keep the app
            self.notify(f"cannot resume {run_dir}: {exc}", severity="error")
            return
        self._launch(config, run_dir, resume=True)

    def _launch(self, config, run_dir: Path | None = None, resume: bool = False) -> None:
        several = config.train.gpus > 1
        self._show(None, in_process=not several, config=config)
        self.history.status.state = RunState.STARTING
        self.history.status.reason = (f"starting {config.train.gpus} processes (torchrun)..." if several else
                                      "importing the trainer (torch, transformers)...")
        self._draw({"status"})
        self.query_one(ConfigForm).set_busy(True)
        self.refresh_bindings()
        if several:
            self._start_processes(config, run_dir, resume)
        else:
            self._build_run(config, run_dir, resume)

    class ProcessesStarted(Message):
        """A run on several processes is training: watch it through its directory."""

        def __init__(self, run_dir: Path) -> None:
            super().__init__()
            self.run_dir = run_dir

    @work(thread=True, exclusive=True, exit_on_error=False, group=START_GROUP,
          description="starting the processes of a multi-GPU run")
    def _start_processes(self, config, run_dir: Path | None, resume: bool) -> None:
        """Worker thread: `studio train --gpus N` in its own session (it outlives the app, like a headless
        run), then hand the run to the pane once rank 0 has said it lives."""
        run_dir = run_dir or runs.new_run_dir(config, runs_dir())
        paths = runs.RunPaths(run_dir)
        if not resume:
            run_dir.mkdir(parents=True, exist_ok=True)
            config.with_local_paths_resolved().save(paths.config)
        command = [sys.executable, "-m", "studio.cli"] + (["resume", str(run_dir)] if resume else
                                                          ["train", str(paths.config), "--run-dir", str(run_dir)])
        log = run_dir / "launch.log"
        with open(log, "ab") as out:
            launcher = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        while not runs.is_alive(run_dir):
            if launcher.poll() is not None:
                raise RunError(f"the processes ended before training started: see {log} and {run_dir}/processes.log")
            time.sleep(FOLLOW_EVERY_S)
        self.post_message(self.ProcessesStarted(run_dir))

    def on_monitor_pane_processes_started(self, message: ProcessesStarted) -> None:
        self.open_run(message.run_dir)

    # torch and transformers take seconds to import: the run is built on a thread.
    @work(thread=True, exclusive=True, exit_on_error=False, group=START_GROUP,
          description="importing the trainer and building the run")
    def _build_run(self, config, run_dir: Path | None, resume: bool) -> None:
        """Worker thread: build the run, tell the pane, then start it (messages keep that order)."""
        from studio.events import read_events
        from studio.train import TrainingRun

        run_dir = run_dir or runs.new_run_dir(config, runs_dir())
        earlier = read_events(runs.RunPaths(run_dir).events) if resume else []
        run = TrainingRun(config, run_dir, resume=resume)
        self.post_message(RunLaunched(run))
        if earlier:
            self.post_message(RunEvents(run.paths.root, earlier))
        run.bus.subscribe(partial(self._hand_off, run.paths.root))
        run.start()

    def _hand_off(self, run_dir: Path, event: dict[str, Any]) -> None:
        """Runs on the trainer thread: post and return (about a microsecond, never blocks)."""
        try:
            self.post_message(RunEvents(run_dir, [event]))
        except RuntimeError:
            pass  # the app's loop has closed: the run goes on headless, events.jsonl keeps the record

    def on_run_launched(self, message: RunLaunched) -> None:
        run = message.run
        self.app.change(training_run=run)
        self._show(run.paths.root, in_process=True, config=run.cfg, keep_status=True)
        self.history.status.source = run.paths.root.name

    def open_run(self, run_dir: Path) -> None:
        """Show a run from its directory: its config in the form, its events, live while it trains."""
        run_dir = Path(run_dir)
        try:
            config = runs.load_config(run_dir)
        except Exception as exc:  # not a run directory, or its config.toml is broken
            self.notify(f"cannot open {run_dir}: {exc}", severity="error", timeout=8)
            return
        self.app.change(config=config)
        self._show(run_dir, in_process=False, config=config)
        self.history.status.source = f"{run_dir.name} (watching)"
        self.following = True
        self._follow(run_dir)

    @work(thread=True, exclusive=True, exit_on_error=False, group=FOLLOW_GROUP,
          description="following the run's events.jsonl")
    def _follow(self, run_dir: Path) -> None:
        """Worker thread: tail events.jsonl and post what is new, until the run's process is gone."""
        worker = get_current_worker()
        follower = EventFollower(runs.RunPaths(run_dir).events)
        while not worker.is_cancelled:
            alive = runs.is_alive(run_dir)  # asked before polling, so nothing written before it dies is missed
            events = follower.poll()
            if events:
                self.post_message(RunEvents(run_dir, events))
            if not alive and not events:
                break
            time.sleep(FOLLOW_EVERY_S)
        self.post_message(self.FollowEnded(run_dir))

    def on_monitor_pane_follow_ended(self, message: FollowEnded) -> None:
        if message.run_dir != self.run_dir or self.in_process:
            return
        self.following = False
        self._flush()
        status = self.history.status
        if not status.state.terminal and status.state != RunState.IDLE:
            status.state = RunState.KILLED
            status.reason = "its process is gone without saying so: o, then r, resumes it from its last checkpoint"
        self._draw({"status"})
        self.refresh_bindings()

    def _show(self, run_dir: Path | None, in_process: bool, config, keep_status: bool = False) -> None:
        """Switch the pane to another run (trained with `config`): forget the old one's events."""
        self.workers.cancel_group(self, FOLLOW_GROUP)
        self.following = False
        status = self.history.status
        self.run_dir, self.in_process = run_dir, in_process
        self.history = RunHistory(config.train.max_steps)
        if keep_status:
            self.history.status.state, self.history.status.reason = status.state, status.reason
        self._pending.clear()
        # A run that continues an adapter samples that adapter at step 0, not the base model.
        self.query_one(SamplesView).clear(start="starting adapter" if config.model.adapter else "base")
        self._draw({"chart", "trends", "status"})
        if run_dir is not None:
            self.app.change(run_dir=run_dir)

    # -- events in ---------------------------------------------------------------------------------

    def on_run_events(self, message: RunEvents) -> None:
        if message.run_dir == self.run_dir:
            self._pending.extend(message.events)

    def _flush(self) -> None:
        """Fold buffered events in and redraw what they changed (the timer calls this a few times a second)."""
        if not self._pending:
            return
        events, self._pending = self._pending, []
        changed: set[str] = set()
        for event in events:
            changed |= self.history.add(event)
        view = self.query_one(SamplesView)
        for event in events:
            if event.get("type") == "sample":
                view.add([event])
            elif event.get("type") == "resume":
                view.forget_after(int(event.get("from_step", 0)))
        self._draw(changed)
        if self.in_process:
            self._tell(events)
        if "status" in changed:
            self.query_one(ConfigForm).set_busy(self.live or self.starting)
            self.refresh_bindings()

    def _tell(self, events: list[dict[str, Any]]) -> None:
        """Toasts for what the user of an in-process run is waiting for."""
        for e in events:
            if e.get("type") == "error":
                self.notify(e.get("message", ""), title="training", severity="error", timeout=10)
            elif e.get("type") == "status" and RunState(e["state"]).terminal:
                state, where = RunState(e["state"]), self.run_dir
                text = {RunState.FINISHED: f"finished: the adapter is in {where}/adapter",
                        RunState.STOPPED: f"stopped at step {e.get('step')}: checkpoint and adapter saved in {where}",
                        RunState.FAILED: f"the run failed: {e.get('reason', '')}"}[state]
                self.notify(text, title="training", severity="error" if state == RunState.FAILED else "information",
                            timeout=10)

    def _draw(self, parts: set[str]) -> None:
        h = self.history
        if "chart" in parts:
            self.query_one(LossChart).show({"train": h.train, "held-out": h.held_out, "style": h.style,
                                            "judge": h.judge})
        if "trends" in parts:
            self.query_one("#trend-lr", Trend).show(h.lr)
            self.query_one("#trend-grad", Trend).show(h.grad_norm)
            self.query_one("#reward-trends").display = any(h.rewards.values())
            for key, points in h.rewards.items():
                self.query_one(f"#trend-{key.replace('_', '-')}", Trend).show(points)
            self.query_one("#trend-pair-margin", Trend).show(h.pair_margin)
        if "status" in parts:
            self.query_one(StatusBar).show(h.status)

    # -- the app's other news --------------------------------------------------------------------

    def on_state_changed(self, message: StateChanged) -> None:
        if "config" not in message.changed:
            return
        form = self.query_one(ConfigForm)
        if form.config != message.state.config:  # from another pane or an opened run, not this form's edit
            form.load(message.state.config)
        self.refresh_bindings()

    def on_config_form_edited(self, message: ConfigForm.Edited) -> None:
        if message.config is not None:
            self.app.change(config=message.config)
        self.refresh_bindings()

    def on_worker_failed(self, message: WorkerFailed) -> None:
        if message.worker.group != START_GROUP:
            return  # the app's toast says it
        status = self.history.status
        status.state, status.reason, status.error = RunState.FAILED, "the run could not start", message.text
        self._draw({"status"})
        self.query_one(ConfigForm).set_busy(False)
        self.refresh_bindings()

    # -- controls ----------------------------------------------------------------------------------

    def _control(self, command: str, note: str) -> None:
        run = self.run
        if run is not None and run.alive:
            {"pause": run.pause, "resume": run.resume, "stop": run.stop, "checkpoint": run.checkpoint_now}[command]()
        elif self.run_dir is not None and runs.is_alive(self.run_dir):
            runs.send_command(self.run_dir, command)  # another process trains it: its control channel
        else:
            self.notify("no run is training: s starts one, o opens one", severity="warning")
            return
        self.history.status.reason = note
        self._draw({"status"})

    def action_pause_resume(self) -> None:
        if self.history.status.state == RunState.PAUSED:
            self._control("resume", "resume requested")
        else:
            self._control("pause", "pause requested: it takes effect at the end of this step")

    def action_stop(self) -> None:
        self._control("stop", "stop requested: saving a checkpoint and the adapter at the end of this step")

    def action_checkpoint(self) -> None:
        self._control("checkpoint", "checkpoint requested: saved at the end of this step")

    def action_open_run(self) -> None:
        def chosen(choice: tuple[str, Path] | None) -> None:
            if choice is None:
                return
            verb, run_dir = choice
            self.resume_run(run_dir) if verb == "resume" else self.open_run(run_dir)

        self.app.push_screen(RunsList(runs_dir()), chosen)

    def action_range_test(self) -> None:
        """The learning-rate range test's curve, when the run chose its rate by one."""
        if self.history.range_test is None:
            self.notify("no range test in this run: it runs when train.learning_rate = \"auto\"", timeout=4)
            return
        self.app.push_screen(RangeTestScreen(self.history.range_test))

    def action_toggle_form(self) -> None:
        form = self.query_one(ConfigForm)
        form.display = not form.display

    def action_leave_field(self) -> None:
        self.focus()

    def action_older(self) -> None:
        self.query_one(SamplesView).older()

    def action_newer(self) -> None:
        self.query_one(SamplesView).newer()

    def action_prompt(self, delta: int) -> None:
        self.query_one(SamplesView).next_prompt(delta)

    def action_toggle_mode(self) -> None:
        self.query_one(SamplesView).toggle_mode()
