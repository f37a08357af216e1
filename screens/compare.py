"""The compare view: two or more runs side by side, opened from the runs list.

Their curves on one chart (each run one colour, by step or by tokens seen), a table of their final
figures (the best of each in bold), what their configs differ in, and the same sampled prompt's
answers side by side at a chosen step. Everything is read from the runs' directories
(`studio.compare.load_run`) on a worker, so runs trained anywhere compare the same way.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from screens.widgets.compare_chart import MARKS, CompareChart, legend
from screens.widgets.samples_view import MODES
from screens.workers import ReportsWorkerErrors, WorkerFailed
from studio.compare import RunRecord, config_differences, load_run, run_colour, table_rows

LOAD_GROUP = "compare-load"
X_AXES = {"step": "step", "tokens": "tokens seen"}
WIDE = 120  # columns from which the chart and the tables stand side by side
LOWER_IS_BETTER = {"held-out loss", "perplexity", "style loss", "wall s"}  # the other figures: higher is better


class CompareScreen(ReportsWorkerErrors, ModalScreen[None]):
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (WIDE, "-wide")]
    BINDINGS = [
        Binding("escape", "dismiss(None)", "Close"),
        Binding("x", "toggle_x", "Step/tokens"),
        Binding("v", "next_view", "Curves"),
        Binding("e", "export", "Export PNG", tooltip="Write the curves (PNG) to studio-exports/"),
        Binding("r", "reload", "Reload"),
        Binding("left_square_bracket", "step(-1)", "Earlier step", show=False),
        Binding("right_square_bracket", "step(1)", "Later step", show=False),
        Binding("less_than_sign", "prompt(-1)", "Previous prompt", show=False),
        Binding("greater_than_sign", "prompt(1)", "Next prompt", show=False),
        Binding("g", "toggle_mode", "Greedy/sampled answers", show=False),
    ]

    class Loaded(Message):
        def __init__(self, runs: list[RunRecord]) -> None:
            super().__init__()
            self.runs = runs

    class Exported(Message):
        def __init__(self, path: Path, x: str) -> None:
            super().__init__()
            self.path = path
            self.x = x

    def __init__(self, run_dirs: list[Path]) -> None:
        super().__init__()
        self.run_dirs = [Path(p) for p in run_dirs]
        self.runs: list[RunRecord] = []
        self.x = "step"
        self.view = "all"  # every curve, or one of studio.compare.CURVES
        self.mode = MODES[0]
        self.step: int | None = None  # the sampling step the answers are shown at; None: the latest
        self.prompt = 0

    def compose(self) -> ComposeResult:
        # The breakpoint class from the start: Textual sets it only after the first layout, and the
        # layout made then does not always follow it.
        self.set_class(self.app.size.width >= WIDE, "-wide")
        self.set_class(self.app.size.width < WIDE, "-narrow")
        yield Static(id="compare-title")
        with VerticalScroll(id="compare-body"):
            with Horizontal(id="compare-top"):
                with Vertical(id="compare-plot"):
                    yield CompareChart(id="compare-chart")
                    yield Static(id="compare-legend")
                with Vertical(id="compare-tables"):
                    yield Static("final figures (the best in bold)", classes="compare-heading")
                    yield Static(id="compare-figures")
                    yield Static("what the configs differ in", classes="compare-heading", id="compare-config-heading")
                    yield Static(id="compare-config")
            yield Static(id="compare-sample-head")
            with Horizontal(id="compare-answers"):
                for i, run_dir in enumerate(self.run_dirs):
                    with VerticalScroll(classes="compare-answer", id=f"compare-answer-{i}") as box:
                        box.border_title = Text(run_dir.name, style=f"bold {run_colour(i)}")
                        yield Static(id=f"compare-answer-text-{i}")
        yield Footer()

    def on_mount(self) -> None:
        self._draw_title()
        self.query_one("#compare-body").focus()  # up/down and page keys scroll it where it does not fit
        self._load()

    # -- reading the runs: every events.jsonl, off the event loop ------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group=LOAD_GROUP, description="reading the runs to compare")
    def _load(self) -> None:
        self.post_message(self.Loaded([load_run(path) for path in self.run_dirs]))

    def on_compare_screen_loaded(self, message: Loaded) -> None:
        self.runs = message.runs
        views = self.views()
        self.view = self.view if self.view in views else views[0]
        self._fill_tables()
        self._draw_chart()
        self._draw_samples()

    def on_worker_failed(self, message: WorkerFailed) -> None:
        # The app tells it too (the message goes on up); the chart's place says what is missing.
        if message.worker.group == LOAD_GROUP:
            chart = self.query_one(CompareChart)
            chart.placeholder = f"cannot compare: {message.text} · r reload · esc close"
            chart.refresh()

    def action_reload(self) -> None:
        self._load()

    # -- the curves ------------------------------------------------------------------------------

    def views(self) -> list[str]:
        """"all", then each curve some run has."""
        return ["all", *[name for name in MARKS if any(run.steps.get(name) for run in self.runs)]]

    def action_toggle_x(self) -> None:
        self.x = "tokens" if self.x == "step" else "step"
        self._draw_chart()

    def action_next_view(self) -> None:
        views = self.views()
        self.view = views[(views.index(self.view) + 1) % len(views)] if self.view in views else views[0]
        self._draw_chart()

    def shown_curves(self) -> list[str]:
        return [name for name in self.views()[1:] if self.view in ("all", name)]

    def _draw_title(self) -> None:
        names = " · ".join(p.name for p in self.run_dirs)
        self.query_one("#compare-title", Static).update(
            f"Comparing {len(self.run_dirs)} runs: {names} · {self.view} curves by {X_AXES[self.x]}")

    def _draw_chart(self) -> None:
        curves = self.shown_curves()
        self.query_one(CompareChart).show(
            [(run_colour(i), {name: run.curve(name, self.x) for name in curves}) for i, run in enumerate(self.runs)],
            X_AXES[self.x])
        self.query_one("#compare-legend", Static).update(
            legend([(run.name, run_colour(i)) for i, run in enumerate(self.runs)], curves))
        self._draw_title()

    # -- the tables ------------------------------------------------------------------------------

    def _fill_tables(self) -> None:
        """Rich tables in Statics: they take their size when filled (a DataTable measures itself later,
        after the layout it would need)."""
        header, rows = table_rows(self.runs)
        figures = self._table()
        for j, figure in enumerate(header[1:], 1):
            best = self._best(figure)
            figures.add_row(figure, *[Text(row[j], style="bold" if i in best else "") for i, row in enumerate(rows)])
        self.query_one("#compare-figures", Static).update(figures)

        differences = config_differences(self.runs)
        config = self._table()
        for key, values in differences.items():
            config.add_row(key, *[_config_value(value) for value in values])
        self.query_one("#compare-config", Static).update(config)
        self.query_one("#compare-config", Static).display = bool(differences)
        self.query_one("#compare-config-heading", Static).update(
            "what the configs differ in" if differences else "the configs are the same (but for the run names)")

    def _table(self) -> Table:
        """A table with a column per run, headed by its name in its colour."""
        table = Table(box=None, header_style="bold")
        table.add_column("")
        for i, run in enumerate(self.runs):
            table.add_column(Text(run.name, style=f"bold {run_colour(i)}"))
        return table

    def _best(self, figure: str) -> set[int]:
        """The runs with the best value of a final figure; none where fewer than two runs have one, or all tie."""
        values = {i: run.final.get(figure) for i, run in enumerate(self.runs)}
        values = {i: v for i, v in values.items() if v is not None}
        if len(values) < 2 or len(set(values.values())) == 1:
            return set()
        best = (min if figure in LOWER_IS_BETTER else max)(values.values())
        return {i for i, v in values.items() if v == best}

    # -- the answers side by side ----------------------------------------------------------------

    def sample_steps(self) -> list[int]:
        return sorted({e["step"] for run in self.runs for e in run.samples if e.get("mode") == self.mode})

    def prompts(self) -> list[int]:
        return sorted({int(e.get("index", 0)) for run in self.runs for e in run.samples})

    def shown_step(self) -> int | None:
        steps = self.sample_steps()
        if not steps:
            return None
        return self.step if self.step in steps else steps[-1]

    def action_step(self, delta: int) -> None:
        steps = self.sample_steps()
        if steps:
            here = steps.index(self.shown_step())
            self.step = steps[max(0, min(len(steps) - 1, here + delta))]
        self._draw_samples()

    def action_prompt(self, delta: int) -> None:
        prompts = self.prompts()
        if prompts:
            here = prompts.index(self.prompt) if self.prompt in prompts else 0
            self.prompt = prompts[(here + delta) % len(prompts)]
        self._draw_samples()

    def action_toggle_mode(self) -> None:
        self.mode = MODES[(MODES.index(self.mode) + 1) % len(MODES)]
        self._draw_samples()

    def _draw_samples(self) -> None:
        head = self.query_one("#compare-sample-head", Static)
        step, steps, prompts = self.shown_step(), self.sample_steps(), self.prompts()
        keys = "[ ] step · < > prompt · g greedy/sampled"
        if prompts and self.prompt not in prompts:
            self.prompt = prompts[0]
        shown = {i: run.sample(step, self.prompt, self.mode) if step is not None else None
                 for i, run in enumerate(self.runs)}
        question = next((e.get("prompt", "") for e in shown.values() if e), "")
        if step is None:
            head.update(Text(f"no {self.mode} answers sampled in these runs · {keys}", style="dim"))
        else:
            text = Text(f"prompt {prompts.index(self.prompt) + 1}/{len(prompts)} · {self.mode} · "
                        f"step {step} ({steps.index(step) + 1}/{len(steps)})", style="bold")
            head.update(text.append(f" · {keys}\n", style="dim").append(question))
        for i, event in shown.items():
            self.query_one(f"#compare-answer-{i}").border_subtitle = _answer_subtitle(event, step)
            self.query_one(f"#compare-answer-text-{i}", Static).update(_answer(event, question, self.mode, step))

    # -- export ----------------------------------------------------------------------------------

    def action_export(self) -> None:
        if not self.runs:
            self.notify("nothing to export yet: the runs are still being read", severity="warning")
            return
        # Where `studio compare` writes it: the runs' folder stays a folder of runs.
        out = Path("studio-exports").resolve() / f"compare-{self.x}-{time.strftime('%Y%m%d-%H%M%S')}.png"
        self._export(list(self.runs), out, self.x)

    @work(thread=True, exclusive=True, exit_on_error=False, group="compare-export",
          description="writing the compared curves (PNG)")
    def _export(self, runs: list[RunRecord], out: Path, x: str) -> None:
        from studio.compare import plot_curves

        self.post_message(self.Exported(plot_curves(runs, out, x=x), x))

    def on_compare_screen_exported(self, message: Exported) -> None:
        self.notify(str(message.path), title=f"curves by {X_AXES[message.x]} written")


def _config_value(value: Any) -> str:
    return "-" if value is None else str(value)


def _answer(event: dict[str, Any] | None, question: str, mode: str, step: int | None) -> Text:
    if event is None:
        return Text(f"no {mode} answer at or before step {step}" if step is not None else "", style="dim")
    text = Text()
    if event.get("prompt", "") != question:  # the runs sampled different prompts (another dataset)
        text.append(f"its prompt: {event.get('prompt', '')}\n", style="dim italic")
    return text.append(event.get("response", ""))


def _answer_subtitle(event: dict[str, Any] | None, step: int | None) -> str:
    """Where an answer is older than the step shown (the run sampled less often, or stopped sooner), its step;
    a looping answer's repeats."""
    if event is None:
        return ""
    parts = [f"from step {event['step']}"] if event["step"] != step else []
    if event.get("repeats"):
        parts.append(f"repeats x{event['repeats']}")
    return " · ".join(parts)
