"""Preference pairs from the Scores pane (`m`): the run's adapter answers its training questions N times,
the judge prompt shown scores every answer, best-vs-worst pairs go to RUN/pairs.jsonl (studio.pairs does
the work, as `studio pairs` does), and the Train pane's form is then offered a DPO run on them that
continues the run's adapter.

`PairsDialog` asks how many answers, questions and what margin; `PairsMaker` is the Scores pane's line
that runs it on a thread worker, shows its progress, and stops it (`m` again) without writing anything.
"""

from __future__ import annotations

import threading
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from screens.widgets.judge_dialogs import ConfirmRun
from screens.workers import ReportsWorkerErrors

DEFAULT_ANSWERS = 4
DEFAULT_QUESTIONS = 40
PROGRESS_INTERVAL_S = 0.2


def shown_path(path: Path) -> str:
    """The path from the folder the studio runs in, when it is below it (a long absolute path wraps mid-word)."""
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


class PairsDialog(ModalScreen):
    """Dismisses with a studio.pairs.PairSettings, or None."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Not now")]
    FIELDS = (("answers", "answers per question", str(DEFAULT_ANSWERS)),
              ("questions", "training questions", str(DEFAULT_QUESTIONS)),
              ("margin", "least score margin", ""),
              ("temperature", "temperature", "0.8"))

    def __init__(self, run_name: str, prompt_name: str, default_margin: float) -> None:
        super().__init__()
        self.run_name, self.prompt_name, self.default_margin = run_name, prompt_name, default_margin

    def compose(self) -> ComposeResult:
        with Vertical(id="pairs-dialog"):
            yield Static(f"Preference pairs from run {self.run_name}: its adapter answers each training question "
                         f"several times, judge {self.prompt_name} scores every answer, and each question's best and "
                         "worst answers make a pair when their scores differ by the margin (by default a ninth of the "
                         "judge's scale).", markup=False)
            for key, label, value in self.FIELDS:
                with Horizontal(classes="pairs-field"):
                    yield Label(label, classes="pairs-label")
                    placeholder = f"{self.default_margin:.2g}" if key == "margin" else ""
                    yield Input(value, placeholder=placeholder, compact=True, id=f"pairs-{key}")
            yield Static("", id="pairs-error", markup=False)
            with Horizontal(id="pairs-buttons"):
                yield Button("Make pairs", id="make", variant="primary", compact=True)
                yield Button("Not now", id="cancel", compact=True)

    def settings(self):
        """The settings typed, or ValueError naming the field that is wrong."""
        from studio.pairs import PairSettings

        def value(key: str) -> str:
            return self.query_one(f"#pairs-{key}", Input).value.strip()

        try:
            n, questions = int(value("answers")), int(value("questions"))
        except ValueError:
            raise ValueError("answers and questions are whole numbers, e.g. 4 and 40") from None
        if n < 2 or questions < 1:
            raise ValueError("a pair needs at least 2 answers to a question, and at least 1 question")
        try:
            margin = float(value("margin")) if value("margin") else None
            temperature = float(value("temperature"))
        except ValueError:
            raise ValueError("the margin and the temperature are numbers, e.g. 1 and 0.8") from None
        return PairSettings(n=n, limit=questions, min_margin=margin, temperature=temperature)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel":
            self.dismiss(None)
            return
        self.on_input_submitted()

    def on_input_submitted(self, _event: Input.Submitted | None = None) -> None:
        try:
            self.dismiss(self.settings())
        except ValueError as error:
            self.query_one("#pairs-error", Static).update(str(error))


class PairsProgress(Message):
    def __init__(self, cancel: threading.Event, text: str) -> None:
        super().__init__()
        self.cancel, self.text = cancel, text


class PairsEnded(Message):
    """Made (`path` set, with the report's summary), stopped or failed: `text` says which."""

    def __init__(self, cancel: threading.Event, text: str, run_dir: Path | None = None, path: Path | None = None,
                 kept: int = 0, summary: str = "") -> None:
        super().__init__()
        self.cancel, self.text = cancel, text
        self.run_dir, self.path, self.kept, self.summary = run_dir, path, kept, summary


class PairsMaker(ReportsWorkerErrors, Static):
    """One line: what making pairs is doing or did (hidden before the first time)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False, classes="-empty")
        self._cancel: threading.Event | None = None  # set to stop the current making; also names it
        self._run_dir: Path | None = None  # the run the line is about

    @property
    def running(self) -> bool:
        return self._cancel is not None

    def _say(self, text: str) -> None:
        self.update(text)
        self.set_class(not text, "-empty")

    def follow(self, run_dir: Path | None) -> None:
        """The panes show `run_dir` now: a finished line about another run goes."""
        if not self.running and run_dir != self._run_dir:
            self._say("")

    def start(self, run_dir: Path, prompt) -> None:
        """Ask for the settings, then make pairs from the run's answers scored with `prompt`."""
        from studio.pairs import PairSettings

        def chosen(settings) -> None:
            if settings is not None and not self.running:
                self._cancel, self._run_dir = threading.Event(), run_dir
                self._say(f"making pairs: loading run {run_dir.name}'s adapter… m: stop")
                self._make(run_dir, prompt, settings, self._cancel)

        name = prompt.name or prompt.id
        self.app.push_screen(PairsDialog(run_dir.name, name, PairSettings().margin(prompt.scale)), chosen)

    def stop(self) -> None:
        if self._cancel is not None:
            self._cancel.set()
            self._say("making pairs: stopping… (nothing is written)")

    def on_unmount(self) -> None:
        if self._cancel is not None:
            self._cancel.set()  # the app is closing: the worker stops at its next batch

    @work(thread=True, exclusive=True, group="pairs", exit_on_error=False,
          description="making preference pairs: sampling the run's answers and judging them")
    def _make(self, run_dir: Path, prompt, settings, cancel: threading.Event) -> None:
        import time

        from studio.pairs import PairsCancelled, make_pairs

        last = 0.0

        def say(text: str) -> None:
            nonlocal last
            if time.monotonic() - last >= PROGRESS_INTERVAL_S and not cancel.is_set():
                last = time.monotonic()
                self.post_message(PairsProgress(cancel, f"making pairs: {text}… m: stop"))

        try:
            pairs, report, path = make_pairs(
                run_dir, prompt, settings, cancel_event=cancel, api_key=self.app.api_keys.get(prompt.endpoint),
                on_sampled=lambda done, total: say(f"sampled {done}/{total} answers"),
                on_progress=lambda p: say(f"judged {p.done}/{p.total} answers ({p.failed} failed)"))
        except PairsCancelled as stopped:
            self.post_message(PairsEnded(cancel, str(stopped)))
            return
        except BaseException:
            self.post_message(PairsEnded(cancel, "making pairs failed: nothing written"))
            raise  # the app shows the error
        self.post_message(PairsEnded(cancel, f"{len(pairs)} preference pairs in {shown_path(path)}", run_dir, path,
                                     len(pairs), report.summary()))

    def on_pairs_progress(self, message: PairsProgress) -> None:
        if message.cancel is self._cancel:
            self._say(message.text)

    def on_pairs_ended(self, message: PairsEnded) -> None:
        if message.cancel is not self._cancel:
            return
        self._cancel = None
        self._say(message.text)
        if message.path is None:
            return
        if not message.kept:
            self.app.notify(message.summary, title="no pairs kept", severity="warning", timeout=15)
            return

        def answer(train: bool | None) -> None:
            if train:
                from studio.pairs import dpo_config

                self.app.change(config=dpo_config(message.run_dir, message.path))
                self.app.action_show_pane("train")
                self.app.notify("the form is set for DPO on the pairs, continuing the run's adapter: check it, "
                                "then press s", title="DPO")

        self.app.push_screen(ConfirmRun(f"{message.summary}\n\nwritten to {shown_path(message.path)}\n\nSet the Train "
                                        "pane for a DPO run on these pairs, continuing this run's adapter?",
                                        yes="Set up DPO"),
                             answer)
