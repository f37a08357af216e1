"""The judge workbench: two judge prompts, A and B, side by side; a probe to try them on one text
(with a question and a reference, for the prompts that use them); and a run of both over the
control groups (or a texts file), with the texts they disagree on most at the top of the table,
where the user labels texts by hand to see which prompt agrees with a person.

With no API key the two judges start as the local one (the embedded model asked a yes/no question),
labelled as weak. `a`/`b` edit the whole prompt (PromptEditor), `d` shows how B differs from A, and
`w` turns to pairwise mode: each question's generated (or target) answer against its base answer,
in both orders, for a win rate and a flip rate.

A run first counts what it will cost (requests, cache hits, tokens) and asks before sending more
than CONFIRM_ABOVE requests. Every judge call runs on a thread worker that only posts messages
back. A run's progress is coalesced on the worker (a few messages a second, each carrying the
results since the last), so the UI stays responsive however fast a cached run finishes. Results
go into the app's state (`judge_results`, `judge_prompts`) for the Scores pane; each prompt's
AUC, interval and agreement with the labels are computed on a worker too (they need scipy).
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal
from textual.events import Resize
from textual.message import Message
from textual.widgets import DataTable, Input, ProgressBar, Static

from screens.shared import describe_error, has_adapter
from screens.state import JUDGE_LABELS, StateChanged
from screens.widgets.judge_dialogs import ConfirmRun, PromptDiff
from screens.widgets.judge_editor import PromptEditor
from screens.widgets.judge_side import JudgeSide
from screens.widgets.judge_table import JudgeTable, score_cell
from screens.widgets.score_rating import judge_folder
from screens.workers import ReportsWorkerErrors, WorkerFailed
from studio.formatting import format_number
from studio.judge import (
    CONFIRM_ABOVE,
    Estimate,
    JudgeCache,
    JudgeConfigError,
    JudgeItem,
    JudgePrompt,
    JudgeResult,
    LocalJudge,
    SessionKeys,
    answer_pairs,
    check_backend,
    compare_prompts,
    estimate,
    load_texts,
    prompt_diff,
    run_groups,
    run_judge,
    totals,
)
from studio.judge.estimate import judged_items
from studio.judge.labels import LabelStore, labels_path
from studio.judge.offline import default_judge

PROGRESS_INTERVAL_S = 0.2  # at most five table updates a second while a run streams in
DEFAULT_QUESTIONS = 40
FEW_SHOT_EXAMPLES = 3  # a run's groups include the base model shown this many training answers (the few-shot baseline)
ROOMY_HEIGHT = 40  # from this many rows the pane has room to show the start of each prompt
EDIT = Binding.Group("Edit")


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


class RunPrepared(RunMessage):
    """The texts are loaded and the cost is counted: what is judged (pairs in both orders in pairwise
    mode), from where, and each prompt's estimate."""

    def __init__(self, run: threading.Event, items: list[JudgeItem], source: str,
                 estimates: dict[str, Estimate]) -> None:
        super().__init__(run)
        self.items, self.source, self.estimates = items, source, estimates


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


class Rated(Message):
    """Each prompt's figures in words, for its side (`serial` drops an older computation's answer)."""

    def __init__(self, serial: int, lines: dict[str, list[str]]) -> None:
        super().__init__()
        self.serial, self.lines = serial, lines


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


def combined(estimates: list[Estimate]) -> Estimate:
    return Estimate(*(sum(getattr(e, f.name) for e in estimates) for f in dataclasses.fields(Estimate)))


class JudgePane(ReportsWorkerErrors, Container, can_focus=True):
    """The pane takes focus when shown, so its letter keys work at once; in a text box they type,
    and Escape (or Tab) leaves the box."""

    BINDINGS = [
        Binding("r", "run", "Run", tooltip="Score the control groups (or the texts file) with both prompts"),
        Binding("x", "cancel", "Cancel", tooltip="Stop the run; what was scored is kept (and cached)"),
        Binding("p", "focus_probe", "Probe", tooltip="Type a text (and a question, a reference) for both judges"),
        Binding("a", "edit('A')", "Edit A", group=EDIT, tooltip="Edit prompt A: template, system prompt, scale, "
                                                                "parse mode, endpoint; load and save it"),
        Binding("b", "edit('B')", "Edit B", group=EDIT, tooltip="Edit prompt B"),
        Binding("d", "diff", "Diff", tooltip="What prompt B changes from prompt A"),
        Binding("w", "pairwise", "Pairwise",
                tooltip="Pairwise mode: generated (or target) vs base answers of each question, in both orders"),
        Binding("l", "focus_table", "Label", tooltip="To the table: y/n or a digit labels the highlighted text; "
                                                      "escape comes back"),
        Binding("s", "sort", "Sort", tooltip="Sort the table by the next column (gap, A, B, group, label, text)"),
        Binding("t", "focus_texts", "Texts file", show=False,
                tooltip="Judge the texts of a file (.jsonl/.csv: text, group) instead of the control groups"),
        Binding("escape", "leave_field", "Leave the field", show=False),
    ]

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.pairwise = False
        self._cancel: threading.Event | None = None  # set to stop the current run; also names it
        self._busy = False
        self._run_prompts: dict[str, JudgePrompt] = {}  # the prompts as they were when the current run started
        self._local_judges: dict[str, LocalJudge] = {}  # an in-process model, loaded once, reused by every run
        self._labels: LabelStore | None = None
        self._rating_serial = 0

    @property
    def keys(self) -> SessionKeys:
        return self.app.api_keys

    def compose(self) -> ComposeResult:
        start = default_judge()  # the local judge, labelled as weak, when OPENROUTER_API_KEY is not set
        with Horizontal(id="judge-sides"):
            yield JudgeSide("A", start.prompt, self.keys, id="side-a")
            yield JudgeSide("B", start.prompt, self.keys, id="side-b")
        with Horizontal(classes="judge-bar"):
            yield Static("probe", classes="judge-label")
            yield Input(placeholder="a text for both judges; enter asks them", compact=True, id="probe")
            yield Input(placeholder="question", compact=True, id="probe-question", classes="probe-field")
            yield Input(placeholder="reference", compact=True, id="probe-reference", classes="probe-field")
        with Horizontal(classes="judge-bar"):
            yield Static("texts", classes="judge-label")
            yield Input(placeholder="file (.jsonl/.csv with text, group); empty: the control groups", compact=True,
                        id="texts-file")
            yield Static("questions", classes="judge-label")
            yield Input(str(DEFAULT_QUESTIONS), type="integer", compact=True, id="questions")
            yield Static("scores", id="judge-mode", markup=False)
        with Horizontal(classes="judge-bar"):
            yield ProgressBar(show_eta=False, id="run-progress")
            yield Static("r: run A and B over the texts", id="run-status", markup=False)
        yield Static("", id="judge-counters", classes="-empty", markup=False)
        yield Static("", id="judge-estimate", classes="-empty", markup=False)
        yield JudgeTable(id="judge-table")
        yield Static("", id="judge-detail", markup=False)

    def on_mount(self) -> None:
        self._load_labels()

    def on_resize(self, event: Resize) -> None:
        self.set_class(event.size.height >= ROOMY_HEIGHT, "-roomy")

    def side(self, label: str) -> JudgeSide:
        return self.query_one(f"#side-{label.lower()}", JudgeSide)

    def _status(self, text: str, error: bool = False) -> None:
        status = self.query_one("#run-status", Static)
        status.update(text)
        status.set_class(error, "-error")

    def _line(self, selector: str, text: str) -> None:
        line = self.query_one(selector, Static)
        line.update(text)
        line.set_class(not text, "-empty")

    def _prompts(self) -> dict[str, JudgePrompt] | None:
        """Both prompts, or None when a judge cannot be asked (each side says why)."""
        ok = True
        for label in JUDGE_LABELS:
            self.side(label).show_endpoint_status()
            ok = ok and self.side(label).endpoint_problem() is None
        return {label: self.side(label).prompt() for label in JUDGE_LABELS} if ok else None

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

    def _api_keys(self, prompts: dict[str, JudgePrompt]) -> dict[str, str | None]:
        """Keys typed for each prompt's host (None: the environment's, if any). Handed to the worker in memory."""
        return {label: self.keys.get(prompt.endpoint) or None for label, prompt in prompts.items()}

    # -- the prompts -----------------------------------------------------------------------------

    def action_edit(self, label: str) -> None:
        def edited(prompt: JudgePrompt | None) -> None:
            if prompt is not None:
                self.side(label).set_prompt(prompt)
            for other in JUDGE_LABELS:
                self.side(other).show_endpoint_status()  # a key typed for one host serves both sides on it

        save_dir = judge_folder(self.app.state.run_dir) / "prompts"
        self.app.push_screen(PromptEditor(label, self.side(label).prompt(), self.keys, save_dir), edited)

    def action_diff(self) -> None:
        a, b = self.side("A").prompt(), self.side("B").prompt()
        diff = prompt_diff(a, dataclasses.replace(b, id=a.id))  # their ids differ by their side alone
        self.app.push_screen(PromptDiff("".join(diff.splitlines(keepends=True)[2:])))  # the title names A and B

    def action_pairwise(self) -> None:
        self.pairwise = not self.pairwise
        for label in JUDGE_LABELS:
            self.side(label).set_pairwise(self.pairwise)
        self.query_one("#judge-mode", Static).update("pairwise" if self.pairwise else "scores")
        self.query_one("#probe-reference", Input).placeholder = "answer B" if self.pairwise else "reference"
        self._status("pairwise mode: r judges generated (or target) vs base answers of each question, both orders"
                     if self.pairwise else "r: run A and B over the texts")

    # -- the probe -------------------------------------------------------------------------------

    @on(Input.Submitted, "#probe, #probe-question, #probe-reference")
    def _probe(self, event: Input.Submitted) -> None:
        text = self.query_one("#probe", Input).value.strip()
        prompts = self._prompts() if text else None
        if prompts is None:
            return
        question = self.query_one("#probe-question", Input).value.strip() or None
        other = self.query_one("#probe-reference", Input).value.strip() or None
        item = JudgeItem(text, question=question, text_b=other) if self.pairwise else \
            JudgeItem(text, question=question, reference=other)
        for label in JUDGE_LABELS:
            self.side(label).probe_pending()
        self._probe_worker(prompts, self._judges(prompts), self._api_keys(prompts), item)

    @work(thread=True, exclusive=True, group="judge-probe", exit_on_error=False,
          description="asking both judges about the probe")
    def _probe_worker(self, prompts: dict[str, JudgePrompt], judges: dict, keys: dict, item: JudgeItem) -> None:
        async def ask_both():
            return await asyncio.gather(
                *(run_judge(prompt, [item], judge=judges[label], api_key=keys[label])
                  for label, prompt in prompts.items()), return_exceptions=True)

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
        try:
            for prompt in prompts.values():
                check_backend(prompt)
        except JudgeConfigError as error:
            self._status(str(error), error=True)
            return
        questions = self.query_one("#questions", Input).value
        limit = int(questions) if questions.isdigit() and int(questions) > 0 else DEFAULT_QUESTIONS
        texts_file = self.query_one("#texts-file", Input).value.strip()
        if self._cancel is not None:
            self._cancel.set()  # the previous run, if any, gives way (its worker is replaced too)
        self._cancel = threading.Event()
        self._run_prompts = prompts
        self._line("#judge-counters", "")
        self._line("#judge-estimate", "")
        self._status("loading the texts…")
        self._set_busy(True)
        self._prepare_worker(prompts, texts_file, self.app.state.run_dir, limit, self.pairwise, self._cancel)

    @work(thread=True, exclusive=True, group="judge-run", exit_on_error=False,
          description="loading the texts to judge and counting what it costs")
    def _prepare_worker(self, prompts: dict[str, JudgePrompt], texts_file: str, run_dir: Path | None, limit: int,
                        pairwise: bool, cancel: threading.Event) -> None:
        if texts_file:
            items, source = load_texts(Path(texts_file).expanduser()), f"texts from {texts_file}"
        elif has_adapter(run_dir):
            items = run_groups(run_dir, limit=limit, few_shot=FEW_SHOT_EXAMPLES,
                               progress=lambda text: self.post_message(RunStatus(cancel, text))).items
            groups = ", ".join(dict.fromkeys(item.group for item in items))
            source = f"run {Path(run_dir).name}: {groups} answers (few-shot: {FEW_SHOT_EXAMPLES} examples)"
        else:
            items, source = demo_items(limit), "the demo's plain (base) and Yoda (target) answers"
        if pairwise:
            items = answer_pairs(items)
            source = f"pairs from {source}, in both orders"
        if cancel.is_set():
            self.post_message(RunFinished(cancel, {}, {}, 0.0))
            return
        cache = JudgeCache()
        try:
            estimates = {label: estimate(prompt, items, cache) for label, prompt in prompts.items()}
        finally:
            cache.close()
        judged = judged_items(prompts["A"], items)  # pairwise: every pair, then every pair swapped
        self.post_message(RunPrepared(cancel, judged, source, estimates))

    def on_run_prepared(self, message: RunPrepared) -> None:
        if not self._current(message):
            return
        cost = combined(list(message.estimates.values()))
        self._line("#judge-estimate", f"before the run: {cost.describe()}")
        if not cost.needs_confirmation(CONFIRM_ABOVE):
            self._judge(message)
            return

        def answer(send: bool | None) -> None:
            if send and self._current(message):
                self._judge(message)
            elif self._current(message):
                self._set_busy(False)
                self._status(f"not sent: {cost.requests:,} requests is more than {CONFIRM_ABOVE}; fewer questions "
                             "(or a smaller texts file) make a smaller run", error=True)

        self._status(f"{cost.requests:,} requests to send: confirm or not")
        self.app.push_screen(ConfirmRun(f"This run sends {cost.describe()}.\n\nThat is more than {CONFIRM_ABOVE} "
                                        "requests. Send them?"), answer)

    def _judge(self, prepared: RunPrepared) -> None:
        prompts = self._run_prompts
        self.query_one(JudgeTable).start(prepared.items, {label: p.scale for label, p in prompts.items()},
                                         pairwise=self.pairwise)
        self.query_one(ProgressBar).update(total=len(prepared.items) * len(JUDGE_LABELS), progress=0)
        self.add_class("-running")
        judging = f"judging {len(prepared.items)} texts ({prepared.source}) with A and B… x: cancel"
        self._status(judging)
        asking = {label for label, cost in prepared.estimates.items() if cost.requests}  # the rest: all cached
        judges = self._judges(prompts)
        to_load = {id(judges[label]): judges[label] for label in asking if judges[label] and not judges[label].loaded}
        self._judge_worker(prompts, judges, self._api_keys(prompts), prepared.items, prepared.run, judging,
                           list(to_load.values()))

    @work(thread=True, exclusive=True, group="judge-run", exit_on_error=False,
          description="judging the texts with prompts A and B")
    def _judge_worker(self, prompts: dict[str, JudgePrompt], judges: dict, keys: dict, items: list[JudgeItem],
                      cancel: threading.Event, judging: str, to_load: list[LocalJudge]) -> None:
        for judge in to_load:
            # The first use loads the model (and converts the embedded one once): say so, it can take minutes.
            self.post_message(RunStatus(cancel, f"loading the local judge's model {judge.model} (the first time "
                                                "takes longest)… x: cancel"))
            judge.load()
            self.post_message(RunStatus(cancel, judging))
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

        def judging(label: str):
            return run_judge(prompts[label], items, judge=judges[label], api_key=keys[label], cache=cache,
                             cancel_event=cancel, on_progress=collector(label))

        async def judge_both() -> list:
            if all(judges.values()):
                # In-process judges take turns on one model anyway; A first, so a B that asks the same is cached.
                answers = []
                for label in prompts:
                    try:
                        answers.append(await judging(label))
                    except Exception as error:  # noqa: BLE001 (said per prompt, as gather does below)
                        answers.append(error)
                return answers
            return await asyncio.gather(*(judging(label) for label in prompts), return_exceptions=True)

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

    def _set_busy(self, busy: bool) -> None:
        """A run is under way (loading, asking, judging): x cancels it. Its progress bar shows while it judges."""
        self._busy = busy
        if not busy:
            self.remove_class("-running")
        self.refresh_bindings()

    def on_run_status(self, message: RunStatus) -> None:
        if self._current(message):
            self._status(message.text)

    def on_run_progress(self, message: RunProgress) -> None:
        if not self._current(message):
            return
        table = self.query_one(JudgeTable)
        table.add_results(message.batch)
        self.query_one(ProgressBar).advance(len(message.batch))
        self._line("#judge-counters", counters(table.finished()))

    def on_run_finished(self, message: RunFinished) -> None:
        if not self._current(message):
            return
        self._set_busy(False)
        if not message.results and not message.errors:
            self._status("cancelled before any text was judged")
            return
        table = self.query_one(JudgeTable)
        self._line("#judge-counters", counters(table.finished()))
        every = [r for results in message.results.values() for r in results]
        self._line("#judge-estimate", f"totals: {totals(every).describe()}")
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
            self._rate()

    def action_cancel(self) -> None:
        if self._cancel is not None and not self._cancel.is_set():
            self._cancel.set()
            self._status("cancelling…")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel":
            return self._busy  # shown while a run goes, out of the footer's way otherwise
        return True

    def on_worker_failed(self, message: WorkerFailed) -> None:
        """Said next to what the user started too (the app's toast says it once for all)."""
        if message.worker.group == "judge-probe":
            for label in JUDGE_LABELS:
                self.side(label).show_probe(error=message.text)
        elif message.worker.group == "judge-run":
            self._set_busy(False)
            self._status(message.text, error=True)

    # -- how good each prompt is -------------------------------------------------------------------

    def _load_labels(self) -> None:
        path = labels_path(judge_folder(self.app.state.run_dir))
        try:
            self._labels = LabelStore(path)
        except JudgeConfigError as error:
            self._labels = None
            self._status(f"labels cannot be kept: {error}", error=True)
        table = self.query_one(JudgeTable)
        table.labels = self._labels
        table.add_results([])  # redraws the label column
        table.refresh_bindings()

    def on_state_changed(self, message: StateChanged) -> None:
        if "run_dir" in message.changed:
            self._load_labels()
            self._rate()

    def on_judge_table_labelled(self, message: JudgeTable.Labelled) -> None:
        self._rate()

    def _rate(self) -> None:
        prompts, results = self.app.state.judged()
        if not results:
            return
        self._rating_serial += 1
        self._rate_worker(self._rating_serial, prompts, results, self._labels)

    @work(thread=True, exclusive=True, group="judge-rating", exit_on_error=False,
          description="rating prompts A and B (AUC intervals, agreement with the labels)")
    def _rate_worker(self, serial: int, prompts: dict[str, JudgePrompt], results: dict[str, list[JudgeResult]],
                     labels: LabelStore | None) -> None:
        from screens.widgets.score_rating import rate, side_lines

        self.post_message(Rated(serial, {label: side_lines(rate(prompts[label], results[label], labels))
                                         for label in results}))

    def on_rated(self, message: Rated) -> None:
        if message.serial == self._rating_serial:
            for label, lines in message.lines.items():
                self.side(label).show_rating(lines)

    # -- the table -------------------------------------------------------------------------------

    @on(DataTable.RowHighlighted, "#judge-table")
    def _show_detail(self, event: DataTable.RowHighlighted) -> None:
        item, results = self.query_one(JudgeTable).row_of(int(event.row_key.value))
        lines = [f"[{item.group}] {' '.join(item.text.split())}"]
        if item.text_b is not None:
            lines[0] += f" ‖ {' '.join(item.text_b.split())}"
        for label, result in results.items():
            why = "" if result is None else (result.reason or result.error or "")
            lines.append(f"{label} {score_cell(result)}: {' '.join(why.split())}")
        self.query_one("#judge-detail", Static).update("\n".join(lines))

    def action_sort(self) -> None:
        self.query_one(JudgeTable).next_sort()

    # -- focus -----------------------------------------------------------------------------------

    def action_focus_probe(self) -> None:
        self.query_one("#probe", Input).focus()

    def action_focus_table(self) -> None:
        self.query_one(JudgeTable).focus()

    def action_focus_texts(self) -> None:
        self.query_one("#texts-file", Input).focus()

    def action_leave_field(self) -> None:
        self.focus()
