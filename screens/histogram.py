"""The score histogram: how prompt A (or B, or both) scores each control group, with the numbers
a report needs (mean, spread, AUC base vs target = the judge's own quality, with its 95% interval,
Cohen's d and overlap; AUC base vs generated = how far the fine-tune got; length bias; flagged and
out-of-range scores; B against A on the same texts, in words), the texts behind any bar, and an
export of the figure (PNG), the scores (CSV) and a report (markdown).

It reads the Judge pane's latest results from the app's state whenever it is shown or told that
new results arrived. The intervals need scipy: they are computed on a worker and filled in when
ready. At 80x24 the pane scrolls: the charts and their numbers come first, the bar's texts below.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.events import Resize
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable, Static

from screens.shared import has_adapter
from screens.state import JUDGE_LABELS, StateChanged
from screens.widgets.pairs_maker import PairsMaker
from screens.widgets.score_bins import ScoreBins
from screens.widgets.score_plot import GROUP_STYLES, ScorePlot
from screens.widgets.score_rating import Rating, comparison_words, detail_lines, judge_folder, separation_lines
from screens.workers import ReportsWorkerErrors
from studio.formatting import format_number
from studio.judge import BASE, FEW_SHOT, GENERATED, SFT, TARGET, JudgePrompt, JudgeResult, group_stats, histogram
from studio.judge.report import aucs

GROUP_ORDER = (BASE, FEW_SHOT, SFT, GENERATED, TARGET)  # other groups (from a texts file) follow in order of appearance
CHOICES = ("both", "A", "B")  # what `p` cycles through
NARROW_WIDTH = 100
BAR = Binding.Group("Bar", compact=True)
TEXT_WIDTH = 90


class Exported(Message):
    def __init__(self, paths: list[Path]) -> None:
        super().__init__()
        self.paths = paths


class Rated(Message):
    """The figures of the results they were computed on (a newer reload drops them)."""

    def __init__(self, results: dict[str, list[JudgeResult]], ratings: dict[str, Rating], comparison: str) -> None:
        super().__init__()
        self.results, self.ratings, self.comparison = results, ratings, comparison


def ordered_groups(results: list[JudgeResult]) -> list[str]:
    present = list(dict.fromkeys(r.group for r in results))
    return [g for g in GROUP_ORDER if g in present] + [g for g in present if g not in GROUP_ORDER]


def bin_of(score: float, bins: list[tuple[float, float, int]]) -> int:
    """The bin a score falls in, by the rule studio.judge.histogram counts with."""
    return next((i for i, (_, high, _) in enumerate(bins) if score < high), len(bins) - 1)


def stats_text(prompt: JudgePrompt, results: list[JudgeResult], rating: Rating | None = None) -> Text:
    """Per group: a legend swatch, n, mean and spread; then the two AUCs that matter, and the rating's
    figures once they are computed."""
    stats = group_stats(results, prompt.scale)
    text = Text()
    for group in ordered_groups(results):
        g = stats[group]
        missing = "".join(f", {count} {what}" for count, what in ((g.unparsed, "unparsed"), (g.failed, "failed"))
                          if count)
        text.append("██ ", style=GROUP_STYLES.get(group, "dim"))
        text.append(f"{group or '(none)':<10} n {g.scored:<4} mean {format_number(g.mean, 2):<5} "
                    f"sd {format_number(g.std, 2)}{missing}\n")
    separation = aucs(results)
    text.append(f"AUC base/target    {format_number(separation['base_vs_target'], 2)}  (the judge's quality)")
    for line in separation_lines(rating) if rating is not None else ["intervals: computing…"]:
        text.append(f"\n  {line}")
    text.append(f"\nAUC base/generated {format_number(separation['base_vs_generated'], 2)}  (the fine-tune's progress)")
    for line in detail_lines(rating) if rating is not None else []:
        text.append(f"\n{line}")
    return text


class HistogramPane(ReportsWorkerErrors, VerticalScroll, can_focus=True):
    BINDINGS = [
        Binding("p", "cycle_prompts", "A/B/both", tooltip="Show prompt A, B, or both side by side"),
        Binding("o", "toggle_layout", "Layout",
                tooltip="The groups' histograms in one chart (overlaid), or one chart per group (side by side)"),
        Binding("left", "bar(-1)", "Bar ←", group=BAR, tooltip="Choose the bar to the left: its texts are listed below"),
        Binding("right", "bar(1)", "Bar →", group=BAR,
                tooltip="Choose the bar to the right: its texts are listed below"),
        Binding("e", "export", "Export",
                tooltip="Write the figure (PNG), the scores (CSV) and a report (markdown) to RUN/eval/"),
        Binding("m", "make_pairs", "Make pairs",
                tooltip="Preference pairs for DPO: the run's adapter answers its training questions several times, "
                        "the prompt shown scores them, best vs worst are kept (m again stops it)"),
        Binding("r", "reload", "Reload", show=False, tooltip="Read the Judge pane's latest results again"),
    ]

    shown: reactive[str] = reactive("both")
    side_by_side: reactive[bool] = reactive(False)

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._prompts: dict[str, JudgePrompt] = {}
        self._results: dict[str, list[JudgeResult]] = {}
        self._bins: list[tuple[float, float, int]] = []  # the shared bins: the first shown prompt's scale
        self._chosen: int | None = None
        self._ratings: dict[str, Rating] = {}  # of self._results, once computed
        self._comparison = ""

    def compose(self) -> ComposeResult:
        yield Static("", id="scores-head", markup=False)
        yield PairsMaker(id="pairs-maker")
        yield Static("", id="score-compare", classes="-empty", markup=False)
        with Horizontal(id="score-columns"):
            for label in JUDGE_LABELS:
                with Vertical(id=f"score-col-{label.lower()}", classes="score-column"):
                    yield ScorePlot(id=f"score-plot-{label.lower()}")
                    yield Static("", id=f"score-stats-{label.lower()}", classes="score-stats", markup=False)
        yield ScoreBins(id="score-bins")
        yield Static("", id="bin-title", markup=False)
        yield DataTable(cursor_type="row", zebra_stripes=True, id="bin-texts")

    def on_mount(self) -> None:
        table = self.query_one("#bin-texts", DataTable)
        for name, width in (("prompt", 6), ("group", 9), ("score", 5), ("text", TEXT_WIDTH)):
            table.add_column(name, key=name, width=width)
        self._draw()
        self.reload()

    # -- loading ---------------------------------------------------------------------------------

    def on_show(self) -> None:
        self.reload()

    def on_resize(self, event: Resize) -> None:
        # Too narrow for two charts side by side with their numbers: one above the other, and the pane scrolls.
        self.set_class(event.size.width < NARROW_WIDTH, "-narrow")

    def on_state_changed(self, message: StateChanged) -> None:
        if message.changed & {"judge_results", "judge_prompts"}:
            self.reload()
        if "run_dir" in message.changed:
            self.query_one(PairsMaker).follow(self.app.state.run_dir)

    def action_reload(self) -> None:
        self.reload()

    def reload(self) -> None:
        prompts, results = self.app.state.judged()
        if (prompts, results) == (self._prompts, self._results):
            return
        self._prompts, self._results = prompts, results
        self._chosen = None  # the fullest bin, once the bins are known
        self._ratings, self._comparison = {}, ""
        self._draw()
        if results:
            self._rate(prompts, results, self.app.state.run_dir)

    @work(thread=True, exclusive=True, group="scores-rating", exit_on_error=False,
          description="rating the prompts (AUC intervals, paired difference, length bias)")
    def _rate(self, prompts: dict[str, JudgePrompt], results: dict[str, list[JudgeResult]],
              run_dir: Path | None) -> None:
        from screens.widgets.score_rating import compare, rate
        from studio.judge.labels import LabelStore, labels_path

        path = labels_path(judge_folder(run_dir))
        labels = LabelStore(path) if path.exists() else None
        ratings = {label: rate(prompts[label], results[label], labels) for label in results}
        self.post_message(Rated(results, ratings, comparison_words(compare(prompts, results))))

    def on_rated(self, message: Rated) -> None:
        if message.results is self._results:
            self._ratings, self._comparison = message.ratings, message.comparison
            self._draw()

    def _labels(self) -> list[str]:
        """The labels shown that have results."""
        wanted = JUDGE_LABELS if self.shown == "both" else (self.shown,)
        return [label for label in wanted if label in self._results]

    # -- drawing ---------------------------------------------------------------------------------

    def _draw(self) -> None:
        labels = self._labels()
        layout = "side by side" if self.side_by_side else "overlaid"
        if not self._results:
            head = "no judge results yet: in the Judge pane (key 4), press r to run A and B"
        else:
            names = " and ".join(f"{label} ({self._prompts[label].name or self._prompts[label].id})"
                                 for label in labels) or f"prompt {self.shown}: no results"
            head = f"{names} · groups {layout} · p: prompt · o: layout · ←/→: bar · e: export · m: pairs"
        self.query_one("#scores-head", Static).update(head)

        self._bins = histogram([], self._prompts[labels[0]].scale) if labels else []
        totals = [0] * len(self._bins)
        for label in labels:
            for result in self._results[label]:
                if result.score is not None:
                    totals[bin_of(result.score, self._bins)] += 1
        if self._bins and self._chosen is None:
            self._chosen = max(range(len(totals)), key=totals.__getitem__)

        for label in JUDGE_LABELS:
            column = self.query_one(f"#score-col-{label.lower()}")
            column.set_class(label not in labels and bool(self._results), "-hidden")
            self._draw_prompt(label)
        cells = [f"{(low + high) / 2:g} ({count})" for (low, high, _), count in zip(self._bins, totals)]
        self.query_one(ScoreBins).show(cells, self._chosen)
        compare = self.query_one("#score-compare", Static)
        compare.update(self._comparison if self.shown == "both" else "")
        compare.set_class(not (self._comparison and self.shown == "both"), "-empty")
        self._list_bin()

    def _draw_prompt(self, label: str) -> None:
        plot = self.query_one(f"#score-plot-{label.lower()}", ScorePlot)
        stats = self.query_one(f"#score-stats-{label.lower()}", Static)
        column = self.query_one(f"#score-col-{label.lower()}")
        if label not in self._results:
            column.border_title = f"{label}: no results"
            plot.show([], {}, self.side_by_side, None)
            stats.update("")
            return
        prompt, results = self._prompts[label], self._results[label]
        column.border_title = f"{label} · {prompt.name or prompt.id} · {prompt.endpoint.model}"
        by_group = group_stats(results, prompt.scale)
        groups = ordered_groups(results)
        bars = [f"{(low + high) / 2:g}" for low, high, _ in histogram([], prompt.scale)]
        counts = {group: [count for _, _, count in by_group[group].histogram] for group in groups}
        shares_bins = prompt.scale == self._prompts[self._labels()[0]].scale
        plot.show(bars, counts, self.side_by_side, self._chosen if shares_bins else None)
        stats.update(stats_text(prompt, results, self._ratings.get(label)))

    def _list_bin(self) -> None:
        """The texts in the chosen bin, from every prompt shown."""
        table = self.query_one("#bin-texts", DataTable)
        table.clear()
        title = self.query_one("#bin-title", Static)
        if self._chosen is None or not self._bins:
            title.update("")
            return
        low, high, _ = self._bins[self._chosen]
        rows = [(label, r) for label in self._labels() for r in self._results[label]
                if r.score is not None and bin_of(r.score, self._bins) == self._chosen]
        title.update(f"bar {self._chosen + 1} of {len(self._bins)}: scores {low:g} to {high:g}, {len(rows)} texts")
        for label, result in rows:
            text = " ".join(result.text.split())
            text = text if len(text) <= TEXT_WIDTH else text[:TEXT_WIDTH - 1] + "…"
            table.add_row(label, result.group, f"{result.score:g}", text)

    # -- keys ------------------------------------------------------------------------------------

    def action_cycle_prompts(self) -> None:
        self.shown = CHOICES[(CHOICES.index(self.shown) + 1) % len(CHOICES)]

    def action_toggle_layout(self) -> None:
        self.side_by_side = not self.side_by_side

    def watch_shown(self) -> None:
        self._chosen = None
        if self.is_mounted:
            self._draw()

    def watch_side_by_side(self) -> None:
        if self.is_mounted:
            self._draw()

    def action_bar(self, step: int) -> None:
        if self._bins:
            self._chosen = max(0, min(len(self._bins) - 1, (self._chosen or 0) + step))
            self._draw()
            if self.has_class("-narrow"):
                self.query_one("#bin-texts").scroll_visible()  # below the charts here: bring the bar's texts in

    def on_score_bins_chosen(self, message: ScoreBins.Chosen) -> None:
        self._chosen = message.index
        self._draw()

    # -- preference pairs ------------------------------------------------------------------------

    def action_make_pairs(self) -> None:
        maker = self.query_one(PairsMaker)
        if maker.running:
            maker.stop()
            return
        run_dir, labels = self.app.state.run_dir, self._labels()
        if not has_adapter(run_dir):
            self.notify("pairs come from a run's adapter answering its training questions: train a run, or open "
                        "one (Runs: o), first", severity="warning")
        elif not labels:
            self.notify("the pairs are scored with the judge prompt shown here: run the judge first (Judge pane, r)",
                        severity="warning")
        elif self._prompts[labels[0]].parse == "pairwise":
            self.notify("a pairwise prompt does not score answers one by one: show the other prompt (p)",
                        severity="warning")
        else:
            maker.start(Path(run_dir), self._prompts[labels[0]])

    # -- export ----------------------------------------------------------------------------------

    def action_export(self) -> None:
        self.reload()
        labels = self._labels()
        if not labels:
            self.notify("nothing to export yet: run A and B in the Judge pane first", severity="warning")
            return
        folder = judge_folder(self.app.state.run_dir)
        prompts = [self._prompts[label] for label in labels]
        self._export(prompts, {self._prompts[label].id: self._results[label] for label in labels}, folder,
                     "judge-" + "".join(labels))

    @work(thread=True, exclusive=True, group="scores-export", exit_on_error=False,
          description="exporting the histogram (PNG), the scores (CSV) and the report (markdown)")
    def _export(self, prompts: list[JudgePrompt], results: dict[str, list[JudgeResult]], folder: Path,
                stem: str) -> None:
        # On a thread: matplotlib takes a second to import and draw, the report's intervals need scipy.
        from studio.judge.labels import LabelStore, labels_path
        from studio.judge.report import markdown_report, plot_histograms, write_csv

        png, csv, report = (folder / f"{stem}-{name}" for name in ("histogram.png", "scores.csv", "report.md"))
        plot_histograms(prompts, results, png)
        write_csv([r for rs in results.values() for r in rs], csv)
        labels = LabelStore(labels_path(folder)) if labels_path(folder).exists() else None
        report.write_text(markdown_report(prompts, results, "Judge prompts compared", labels=labels), encoding="utf-8")
        self.post_message(Exported([png, csv, report]))

    def on_exported(self, message: Exported) -> None:
        self.notify("\n".join(str(p) for p in message.paths), title="exported")
