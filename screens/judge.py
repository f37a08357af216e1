"""The judge workbench: prompts A and B side by side, a probe box, and A/B runs over control groups.

Every judge call runs on a thread worker that only posts messages back; progress is read by a
timer a few times a second, never redrawn per request. Results go to `app.judge_results`, which
the Scores pane draws.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Input, Label, ProgressBar, Select, Static, TextArea

SIDES = ("A", "B")
DEFAULT_PRESETS = {"A": "yoda", "B": "leprechaun"}
SORTS = ("disagreement", "A", "B")


class ProbeScored(Message):
    def __init__(self, side: str, text: str) -> None:
        super().__init__()
        self.side, self.text = side, text


class GroupsScored(Message):
    def __init__(self, results: dict[str, list], prompts: list) -> None:
        super().__init__()
        self.results, self.prompts = results, prompts


class JudgeProblem(Message):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


def texts_file() -> Path | None:
    """Groups from a file instead of the demo controls: $STUDIO_JUDGE_TEXTS (rows: text, group)."""
    path = os.environ.get("STUDIO_JUDGE_TEXTS")
    return Path(path) if path else None


def normalised(score: float | None, scale: tuple[float, float]) -> float | None:
    return None if score is None else (score - scale[0]) / (scale[1] - scale[0])


class PromptEditor(Vertical):
    """One side's judge: preset, endpoint and system prompt."""

    DEFAULT_CSS = """
    PromptEditor { width: 1fr; height: 1fr; padding: 0 1; }
    PromptEditor Input { height: 1; border: none; padding: 0 1; }
    PromptEditor Select { height: 1; }
    PromptEditor TextArea { height: 1fr; }
    PromptEditor .side { text-style: bold; }
    """

    def __init__(self, side: str) -> None:
        super().__init__(id=f"side-{side}")
        self.side = side

    def compose(self) -> ComposeResult:
        from studio.judge.prompts import preset_ids

        yield Label(f"judge {self.side}", classes="side")
        yield Select([(p, p) for p in preset_ids()], value=DEFAULT_PRESETS[self.side], allow_blank=False,
                     id=f"preset-{self.side}", compact=True)
        yield Input(placeholder="base URL", id=f"url-{self.side}")
        yield Input(placeholder="model", id=f"model-{self.side}")
        yield Input(placeholder="API key variable (empty: none)", id=f"key-{self.side}")
        yield TextArea(id=f"system-{self.side}", soft_wrap=True)

    def on_mount(self) -> None:
        self.load_preset(DEFAULT_PRESETS[self.side])

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        self.load_preset(str(event.value))

    def load_preset(self, preset: str) -> None:
        from studio.judge.prompts import load_prompt

        prompt = load_prompt(preset)
        self.query_one(f"#url-{self.side}", Input).value = prompt.endpoint.base_url
        self.query_one(f"#model-{self.side}", Input).value = prompt.endpoint.model
        self.query_one(f"#key-{self.side}", Input).value = prompt.endpoint.api_key_env
        self.query_one(f"#system-{self.side}", TextArea).text = prompt.system

    def prompt(self):
        """The judge prompt as edited; a missing key is a clear error naming its variable."""
        from studio.judge.prompts import JudgeConfigError, load_prompt

        preset = str(self.query_one(f"#preset-{self.side}", Select).value)
        base = load_prompt(preset)
        key_env = self.query_one(f"#key-{self.side}", Input).value.strip()
        if key_env and not os.environ.get(key_env):
            raise JudgeConfigError(f"judge {self.side}: the API key variable {key_env} is not set; quit, "
                                   f"`export {key_env}=...`, and start the studio again (or clear the field "
                                   f"for a server that needs no key)")
        edited = dataclasses.replace(base, id=f"{self.side}:{preset}",
                                     system=self.query_one(f"#system-{self.side}", TextArea).text)
        return edited.with_endpoint(base_url=self.query_one(f"#url-{self.side}", Input).value.strip(),
                                    model=self.query_one(f"#model-{self.side}", Input).value.strip(),
                                    api_key_env=key_env)


class JudgePane(Container, can_focus=True):
    BINDINGS = [
        Binding("r", "run_groups", "Run A/B"),
        Binding("k", "cancel", "Cancel"),
        Binding("slash", "focus_probe", "Probe"),
        Binding("t", "cycle_sort", "Sort"),
    ]

    DEFAULT_CSS = """
    JudgePane { layout: vertical; }
    JudgePane #editors { height: 14; }
    JudgePane #probe { height: 3; }
    JudgePane #probe-result { height: auto; max-height: 4; padding: 0 1; }
    JudgePane #run-line { height: 1; padding: 0 1; }
    JudgePane #run-line ProgressBar { width: 40; }
    JudgePane #counters { width: 1fr; padding: 0 1; }
    JudgePane #problem { color: $error; padding: 0 1; height: auto; }
    JudgePane DataTable { height: 1fr; }
    """

    def __init__(self) -> None:
        super().__init__()
        self._cancel = threading.Event()
        self._progress: dict[str, Any] = {}
        self._results: dict[str, list] = {}
        self._prompts: list = []
        self._sort = SORTS[0]
        self._probe_lines: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        with Horizontal(id="editors"):
            for side in SIDES:
                yield PromptEditor(side)
        yield Input(placeholder="probe: type a sentence, Enter scores it with A and B", id="probe")
        yield Static(id="probe-result")
        with Horizontal(id="run-line"):
            yield ProgressBar(total=1, show_eta=False, id="progress")
            yield Static("r runs A and B over the control groups (base style, target style)", id="counters")
        yield Static(id="problem")
        yield DataTable(id="table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("group", "A", "B", "Δ", "text")
        self.set_interval(0.25, self._show_progress)

    # -- probe ------------------------------------------------------------------------------------

    def action_focus_probe(self) -> None:
        self.query_one("#probe", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "probe" or not event.value.strip():
            return
        prompts = self._prompts_or_problem()
        if prompts:
            self._probe_lines = {}
            self.query_one("#probe-result", Static).update("scoring…")
            self._probe(prompts, event.value.strip())

    @work(thread=True, exclusive=True, group="judge-probe", exit_on_error=False, description="probe the judges")
    def _probe(self, prompts: list, text: str) -> None:
        from studio.judge.runner import probe

        for side, prompt in zip(SIDES, prompts):
            result = probe(prompt, text, timeout=30.0, retries=1)
            shown = result.error or f"{result.score}  {(result.reason or result.raw or '').strip()[:150]}"
            self.post_message(ProbeScored(side, f"{side}: {shown}"))

    def on_probe_scored(self, message: ProbeScored) -> None:
        self._probe_lines[message.side] = message.text
        lines = "\n".join(self._probe_lines[side] for side in sorted(self._probe_lines))
        self.query_one("#probe-result", Static).update(Text(lines))  # judge answers are not markup

    # -- A/B over the control groups ------------------------------------------------------------

    def _prompts_or_problem(self) -> list | None:
        from studio.judge.prompts import JudgeConfigError

        try:
            prompts = [editor.prompt() for editor in self.query(PromptEditor)]
        except JudgeConfigError as exc:
            self.post_message(JudgeProblem(str(exc)))
            return None
        self.query_one("#problem", Static).update("")
        return prompts

    def action_run_groups(self) -> None:
        prompts = self._prompts_or_problem()
        if not prompts:
            return
        self._cancel.clear()
        self._progress = {}
        self._score_groups(prompts)

    def action_cancel(self) -> None:
        self._cancel.set()

    @work(thread=True, exclusive=True, group="judge-run", exit_on_error=False, description="judge A and B")
    def _score_groups(self, prompts: list) -> None:
        from studio.data import demo_controls
        from studio.judge import JudgeCache, JudgeItem, load_texts, run_judge_sync

        path = texts_file()
        items = load_texts(path) if path else [JudgeItem.from_row(row) for row in demo_controls()]
        results = {}
        cache = JudgeCache()
        try:
            for prompt in prompts:
                def note(progress, side=prompt.id):
                    self._progress[side] = progress  # read by the UI timer; assignment is atomic

                results[prompt.id] = run_judge_sync(prompt, items, cache=cache, on_progress=note,
                                                    cancel_event=self._cancel, timeout=60.0)
        finally:
            cache.close()
        self.post_message(GroupsScored(results, prompts))

    def _show_progress(self) -> None:
        if not self._progress:
            return
        done = sum(p.done for p in self._progress.values())
        total = sum(p.total for p in self._progress.values()) or 1
        bar = self.query_one(ProgressBar)
        bar.update(total=max(total, 1), progress=done)
        failed = sum(p.failed for p in self._progress.values())
        cached = sum(p.cached for p in self._progress.values())
        unparsed = sum(p.unparsed for p in self._progress.values())
        self.query_one("#counters", Static).update(
            f"{done}/{total} judged · {failed} errors · {unparsed} unparsed · {cached} cache hits")

    def on_groups_scored(self, message: GroupsScored) -> None:
        self._show_progress()
        self._progress = {}
        self._results, self._prompts = message.results, message.prompts
        self.app.judge_results = dict(message.results)
        self.app.judge_prompts = list(message.prompts)
        all_results = [r for rs in message.results.values() for r in rs]
        attempts = sum(r.attempts for r in all_results)
        self.query_one("#counters", Static).update(
            f"{len(all_results)} judged · {attempts} requests · {sum(max(r.attempts - 1, 0) for r in all_results)} "
            f"retries · {sum(r.failed for r in all_results)} errors · {sum(r.cached for r in all_results)} cache hits"
            + (" · cancelled" if self._cancel.is_set() else ""))
        self._fill_table()

    def action_cycle_sort(self) -> None:
        self._sort = SORTS[(SORTS.index(self._sort) + 1) % len(SORTS)]
        self._fill_table()
        self.notify(f"sorted by {self._sort}")

    def _fill_table(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        if len(self._prompts) != 2:
            return
        a, b = (self._results[p.id] for p in self._prompts)
        rows = []
        for ra, rb in zip(a, b):
            na, nb = normalised(ra.score, self._prompts[0].scale), normalised(rb.score, self._prompts[1].scale)
            delta = abs(na - nb) if na is not None and nb is not None else None
            rows.append((ra.group, ra.score, rb.score, delta, ra.text))
        keys = {"disagreement": lambda r: -(r[3] if r[3] is not None else -1),
                "A": lambda r: -(r[1] if r[1] is not None else float("-inf")),
                "B": lambda r: -(r[2] if r[2] is not None else float("-inf"))}
        for group, sa, sb, delta, text in sorted(rows, key=keys[self._sort]):
            table.add_row(group, _fmt(sa), _fmt(sb), _fmt(delta), Text(text.replace("\n", " ")[:90]))

    def on_judge_problem(self, message: JudgeProblem) -> None:
        self.query_one("#problem", Static).update(message.text)
        self.notify(message.text, severity="error", timeout=8)

    def on_worker_state_changed(self, event) -> None:
        from textual.worker import WorkerState

        if event.state == WorkerState.ERROR:
            self.post_message(JudgeProblem(f"{type(event.worker.error).__name__}: {event.worker.error}"))


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
