"""The judge workbench: two judge prompts, A and B, side by side; a probe to try them on one
sentence; and a run of both over the control groups (or a texts file) with the texts they
disagree on most at the top of the table.

Every judge call runs on a thread worker that only posts messages back. A run's progress is
coalesced on the worker (a few messages a second, each carrying the results since the last), so
the UI stays responsive however fast a cached run finishes. Results go into the app's state
(`judge_results`, `judge_prompts`) for the Scores pane.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal
from textual.message import Message
from textual.widgets import DataTable, Input, ProgressBar, Static, TextArea

from screens.shared import describe_error
from screens.state import JUDGE_LABELS
from screens.widgets.judge_side import JudgeSide
from screens.widgets.judge_table import JudgeTable, score_cell
from screens.workers import ReportsWorkerErrors, WorkerFailed
from studio.formatting import format_number
from studio.judge import (JudgeCache, JudgeConfigError, JudgeItem, JudgePrompt, JudgeResult, LocalJudge,
                          compare_prompts, load_texts, run_groups, run_judge)

PROGRESS_INTERVAL_S = 0.2  # at most five table updates a second while a run streams in
DEFAULT_QUESTIONS = 40


class ProbeAnswered(Message):
    def __init__(self, label: str, result: JudgeResult | None, error: str | None) -> None:
        super().__init__()
        self.label, self.result, self.error = label, result, error


class RunMessage(Message):
    """From a run's worker. `run` is the run's cancel event, which also tells runs apart: a message
    from a run that a newer one replaced is dropped."""

    def __init__(self, run: threading.Event) -> None:
        super().__init__()
        self.run = run


class RunStatus(RunMessage):
    """What a run is doing before it judges (loading texts, generating the run's answers)."""

    def __init__(self, run: threading.Event, text: str) -> None:
        super().__init__(run)
        self.text = text


class RunStarted(RunMessage):
    def __init__(self, run: threading.Event, items: list[JudgeItem], source: str) -> None:
        super().__init__(run)
        self.items, self.source = items, source


class RunProgress(RunMessage):
    """Results since the last message: (prompt label, item index, result)."""

    def __init__(self, run: threading.Event, batch: list[tuple[str, int, JudgeResult]]) -> None:
        super().__init__(run)
        self.batch = batch


class RunFinished(RunMessage):
    def __init__(self, run: threading.Event, results: dict[str, list[JudgeResult]], errors: dict[str, str],
                 seconds: float) -> None:
        super().__init__(run)
        self.results, self.errors, self.seconds = results, errors, seconds


def counters(results: list[JudgeResult]) -> str:
    """Requests (fresh answers' attempts), retries, errors, unparsed answers and cache hits."""
    fresh = [r for r in results if not r.cached]
    requests = sum(r.attempts for r in fresh)
    retries = sum(max(0, r.attempts - 1) for r in fresh)
    errors = sum(r.failed and r.error != "cancelled" for r in results)
    unparsed = sum(r.unparsed for r in results)
    hits = sum(r.cached for r in results)
    return f"requests {requests} · retries {retries} · errors {errors} · unparsed {unparsed} · cache hits {hits}"


def demo_items(limit: int) -> list[JudgeItem]:
    """The demo's plain (base) and Yoda (target) answers to `limit` questions spread over its topics."""
    from studio.data import demo_controls

    rows = demo_controls()
    questions = list(dict.fromkeys(row["question"] for row in rows))
    count = max(1, min(limit, len(questions)))
    chosen = {questions[i * len(questions) // count] for i in range(count)}
    return [JudgeItem.from_row(row) for row in rows if row["question"] in chosen]


def has_adapter(run_dir: Path | None) -> bool:
    from studio.runs import RunPaths

    return run_dir is not None and RunPaths(Path(run_dir)).adapter.is_dir()


class JudgePane(ReportsWorkerErrors, Container, can_focus=True):
    """The pane takes focus when shown, so its letter keys work at once; in a text box they type,
    and Escape (or Tab) leaves the box."""

    BINDINGS = [
        Binding("r", "run", "Run A/B", tooltip="Score the control groups (or the texts file) with both prompts"),
        Binding("x", "cancel", "Cancel", tooltip="Stop the run; what was scored is kept (and cached)"),
        Binding("p", "focus_probe", "Probe", tooltip="Type a sentence and see both judges' scores"),
        Binding("a", "edit('A')", "Edit A", tooltip="Edit prompt A's system prompt"),
        Binding("b", "edit('B')", "Edit B", tooltip="Edit prompt B's system prompt"),
        Binding("s", "sort", "Sort", tooltip="Sort the table by the next column (gap, A, B, group, text)"),
        Binding("t", "focus_texts", "Texts file", show=False,
                tooltip="Judge the texts of a file (.jsonl/.csv: text, group) instead of the control groups"),
        Binding("escape", "leave_field", "Leave the field", show=False),
    ]

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._cancel: threading.Event | None = None  # set to stop the current run; also names it
        self._run_prompts: dict[str, JudgePrompt] = {}  # the prompts as they were when the current run started
        self._local_judges: dict[str, LocalJudge] = {}  # an in-process model, loaded once, reused by every run

    def compose(self) -> ComposeResult:
        with Horizontal(id="judge-sides"):
            yield JudgeSide("A", "yoda", id="side-a")
            yield JudgeSide("B", "yoda", id="side-b")
        with Horizontal(classes="judge-bar"):
            yield Static("probe", classes="judge-label")
            yield Input(placeholder="type a sentence and press enter: both judges score it", compact=True,
                        id="probe")
        with Horizontal(classes="judge-bar"):
            yield Static("texts", classes="judge-label")
            yield Input(placeholder="file (.jsonl/.csv with text, group); empty: the control groups", compact=True,
                        id="texts-file")
            yield Static("questions", classes="judge-label")
            yield Input(str(DEFAULT_QUESTIONS), type="integer", compact=True, id="questions")
        with Horizontal(classes="judge-bar"):
            yield ProgressBar(show_eta=False, id="run-progress")
            yield Static("r: run A and B over the texts", id="run-status", markup=False)
        yield Static("", id="judge-counters", markup=False)
        yield JudgeTable(id="judge-table")
        yield Static("", id="judge-detail", markup=False)

    def side(self, label: str) -> JudgeSide:
        return self.query_one(f"#side-{label.lower()}", JudgeSide)

    def _status(self, text: str, error: bool = False) -> None:
        status = self.query_one("#run-status", Static)
        status.update(text)
        status.set_class(error, "-error")

    def _prompts(self) -> dict[str, JudgePrompt] | None:
        """Both prompts as edited, or None after showing each problem on its own side."""
        prompts, ok = {}, True
        for label in JUDGE_LABELS:
            side = self.side(label)
            side.show_endpoint_status()  # an endpoint problem is shown there, once
            if side.endpoint_problem() is not None:
                ok = False
                continue
            try:
                prompts[label] = side.prompt()
            except JudgeConfigError as error:
                side.show_probe(error=str(error))
                ok = False
        return prompts if ok else None

    def _judges(self, prompts: dict[str, JudgePrompt]) -> dict[str, LocalJudge | None]:
        """The in-process judge for a prompt that uses one (kept, so its model loads once); None: HTTP."""
        judges = {}
        for label, prompt in prompts.items():
            judge = None
            if prompt.endpoint.backend == "local":
                model = prompt.endpoint.model
                judge = self._local_judges.setdefault(model, LocalJudge(model))
            judges[label] = judge
        return judges

    # -- the probe -------------------------------------------------------------------------------

    @on(Input.Submitted, "#probe")
    def _probe(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        prompts = self._prompts() if text else None
        if prompts is None:
            return
        for label in JUDGE_LABELS:
            self.side(label).probe_pending()
        self._probe_worker(prompts, self._judges(prompts), text)

    @work(thread=True, exclusive=True, group="judge-probe", exit_on_error=False,
          description="asking both judges about the probe sentence")
    def _probe_worker(self, prompts: dict[str, JudgePrompt], judges: dict, text: str) -> None:
        async def ask_both():
            return await asyncio.gather(
                *(run_judge(prompt, [JudgeItem(text)], judge=judges[label]) for label, prompt in prompts.items()),
                return_exceptions=True)

        for label, answer in zip(prompts, asyncio.run(ask_both())):
            if isinstance(answer, BaseException):
                self.post_message(ProbeAnswered(label, None, describe_error(answer)))
            else:
                self.post_message(ProbeAnswered(label, answer[0], None))

    def on_probe_answered(self, message: ProbeAnswered) -> None:
        self.side(message.label).show_probe(message.result, message.error)

    # -- a run over many texts -------------------------------------------------------------------

    def action_run(self) -> None:
        prompts = self._prompts()
        if prompts is None:
            self._status("fix the judge endpoints above first", error=True)
            return
        questions = self.query_one("#questions", Input).value
        limit = int(questions) if questions.isdigit() and int(questions) > 0 else DEFAULT_QUESTIONS
        texts_file = self.query_one("#texts-file", Input).value.strip()
        if self._cancel is not None:
            self._cancel.set()  # the previous run, if any, gives way (its worker is replaced too)
        self._cancel = threading.Event()
        self._run_prompts = prompts
        self.query_one("#judge-counters", Static).update("")
        self._status("loading the texts…")
        self._run_worker(prompts, self._judges(prompts), texts_file, self.app.state.run_dir, limit,
                         self._cancel)

    @work(thread=True, exclusive=True, group="judge-run", exit_on_error=False,
          description="judging the texts with prompts A and B")
    def _run_worker(self, prompts: dict[str, JudgePrompt], judges: dict, texts_file: str, run_dir: Path | None,
                    limit: int, cancel: threading.Event) -> None:
        if texts_file:
            items, source = load_texts(Path(texts_file).expanduser()), f"texts from {texts_file}"
        elif has_adapter(run_dir):
            items = run_groups(run_dir, limit=limit, progress=lambda text: self.post_message(RunStatus(cancel, text))).items
            source = f"run {Path(run_dir).name}: base, generated and target answers"
        else:
            items, source = demo_items(limit), "the demo's plain (base) and Yoda (target) answers"
        if cancel.is_set():
            return
        self.post_message(RunStarted(cancel, items, source))

        index = {id(item): i for i, item in enumerate(items)}  # results carry the very item they judged
        pending: list[tuple[str, int, JudgeResult]] = []
        last_post = 0.0

        def flush() -> None:
            nonlocal last_post
            if pending:
                self.post_message(RunProgress(cancel, pending.copy()))
                pending.clear()
            last_post = time.monotonic()

        def collector(label: str):
            # Called on this thread's event loop after every item: batch, and post a few times a second.
            def on_progress(progress) -> None:
                pending.append((label, index[id(progress.result.item)], progress.result))
                if time.monotonic() - last_post >= PROGRESS_INTERVAL_S:
                    flush()
            return on_progress

        cache = JudgeCache()
        start = time.monotonic()

        async def judge_both():
            return await asyncio.gather(
                *(run_judge(prompt, items, judge=judges[label], cache=cache, cancel_event=cancel,
                            on_progress=collector(label)) for label, prompt in prompts.items()),
                return_exceptions=True)

        try:
            answers = asyncio.run(judge_both())
        finally:
            cache.close()
        flush()
        results = {label: a for label, a in zip(prompts, answers) if not isinstance(a, BaseException)}
        errors = {label: describe_error(a) for label, a in zip(prompts, answers) if isinstance(a, BaseException)}
        self.post_message(RunFinished(cancel, results, errors, time.monotonic() - start))

    def _current(self, message: RunMessage) -> bool:
        return message.run is self._cancel

    def on_run_status(self, message: RunStatus) -> None:
        if self._current(message):
            self._status(message.text)

    def on_run_started(self, message: RunStarted) -> None:
        if not self._current(message):
            return
        self.query_one(JudgeTable).start(message.items, {label: p.scale for label, p in self._run_prompts.items()})
        self.query_one(ProgressBar).update(total=len(message.items) * len(JUDGE_LABELS), progress=0)
        self.add_class("-running")
        self._status(f"judging {len(message.items)} texts ({message.source}) with A and B… x: cancel")

    def on_run_progress(self, message: RunProgress) -> None:
        if not self._current(message):
            return
        table = self.query_one(JudgeTable)
        table.add_results(message.batch)
        self.query_one(ProgressBar).advance(len(message.batch))
        self.query_one("#judge-counters", Static).update(counters(table.finished()))

    def on_run_finished(self, message: RunFinished) -> None:
        if not self._current(message):
            return
        self.remove_class("-running")
        table = self.query_one(JudgeTable)
        self.query_one("#judge-counters", Static).update(counters(table.finished()))
        if message.errors:
            self._status("; ".join(f"{label}: {text}" for label, text in message.errors.items()), error=True)
        elif message.run.is_set():
            done = sum(r.error != "cancelled" for r in table.finished())
            self._status(f"cancelled: {done} of {2 * len(table.items)} judged (kept in the cache: r resumes)")
        else:
            comparison = compare_prompts(message.results["A"], message.results["B"],
                                         *(self._run_prompts[label].scale for label in JUDGE_LABELS))
            rho = format_number(comparison.spearman, 2)
            self._status(f"done in {message.seconds:.1f} s: A and B agree with Spearman {rho} over "
                         f"{comparison.n} texts; largest disagreements first")
        if message.results:
            self.app.change(judge_prompts={label: self._run_prompts[label] for label in message.results},
                            judge_results=dict(message.results))

    def action_cancel(self) -> None:
        if self._cancel is not None and not self._cancel.is_set():
            self._cancel.set()
            self._status("cancelling…")

    def on_worker_failed(self, message: WorkerFailed) -> None:
        """Said next to what the user started too (the app's toast says it once for all)."""
        if message.worker.group == "judge-probe":
            for label in JUDGE_LABELS:
                self.side(label).show_probe(error=message.text)
        elif message.worker.group == "judge-run":
            self.remove_class("-running")
            self._status(message.text, error=True)

    # -- the table -------------------------------------------------------------------------------

    @on(DataTable.RowHighlighted, "#judge-table")
    def _show_detail(self, event: DataTable.RowHighlighted) -> None:
        item, results = self.query_one(JudgeTable).row_of(int(event.row_key.value))
        lines = [f"[{item.group}] {' '.join(item.text.split())}"]
        for label, result in results.items():
            why = "" if result is None else (result.reason or result.error or "")
            lines.append(f"{label} {score_cell(result)}: {' '.join(why.split())}")
        self.query_one("#judge-detail", Static).update("\n".join(lines))

    def action_sort(self) -> None:
        self.query_one(JudgeTable).next_sort()

    # -- focus -----------------------------------------------------------------------------------

    def action_focus_probe(self) -> None:
        self.query_one("#probe", Input).focus()

    def action_focus_texts(self) -> None:
        self.query_one("#texts-file", Input).focus()

    def action_edit(self, label: str) -> None:
        self.side(label).query_one(TextArea).focus()

    def action_leave_field(self) -> None:
        self.focus()
