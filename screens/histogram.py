"""Score histograms: per group (base, generated, target) for each judge prompt, with the separation
between groups (AUC), the texts behind a bar, and export to PNG (matplotlib) and CSV."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.widgets import Static
from textual_plotext import PlotextPlot

GROUP_ORDER = ("base", "generated", "target")
EXPORT_DIR = Path("studio-exports")


class HistogramPane(Container, can_focus=True):
    BINDINGS = [
        Binding("p", "next_prompt", "Prompt"),
        Binding("v", "toggle_layout", "Overlay/side by side"),
        Binding("left", "bar(-1)", "Previous bar"),
        Binding("right", "bar(1)", "Next bar"),
        Binding("e", "export", "Export PNG+CSV"),
    ]

    DEFAULT_CSS = """
    HistogramPane { layout: vertical; }
    HistogramPane #stats { height: auto; padding: 0 1; }
    HistogramPane PlotextPlot { height: 1fr; }
    HistogramPane #bar-texts { height: 10; padding: 0 1; border-top: solid $primary-darken-2; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.prompt_index = 0
        self.overlay = True
        self.bar = 0

    def compose(self) -> ComposeResult:
        yield Static("no judge scores yet: run A and B on the Judge pane (4, then r)", id="stats")
        yield PlotextPlot()
        yield Static(id="bar-texts")

    def on_show(self) -> None:
        self.redraw()

    # -- what is shown ----------------------------------------------------------------------------

    def _current(self):
        prompts = getattr(self.app, "judge_prompts", [])
        results = getattr(self.app, "judge_results", {})
        prompts = [p for p in prompts if p.id in results]
        if not prompts:
            return None, []
        prompt = prompts[self.prompt_index % len(prompts)]
        return prompt, results[prompt.id]

    def redraw(self) -> None:
        from studio.judge.report import aucs
        from studio.judge.stats import group_stats

        prompt, results = self._current()
        if prompt is None:
            return
        stats = group_stats(results, prompt.scale)
        groups = [g for g in GROUP_ORDER if g in stats] + [g for g in stats if g not in GROUP_ORDER]
        a = aucs(results)
        lines = [f"[b]{prompt.id}[/b] ({prompt.endpoint.model}) · AUC base/target {_fmt(a['base_vs_target'])}"
                 f" (judge quality) · base/generated {_fmt(a['base_vs_generated'])} (how far the fine-tune got)"]
        for g in groups:
            s = stats[g]
            lines.append(f"  {g:10s} n={s.n:<4d} mean {_fmt(s.mean)} ± {_fmt(s.std)} · "
                         f"{s.unparsed} unparsed · {s.failed} failed")
        self.query_one("#stats", Static).update("\n".join(lines))
        edges = stats[groups[0]].histogram
        self.bar = self.bar % len(edges)
        labels = [f"{(lo + hi) / 2:g}" for lo, hi, _ in edges]
        plot = self.query_one(PlotextPlot)
        plt = plot.plt
        plt.clear_figure()
        if self.overlay:
            for g in groups:
                plt.plot(list(range(len(edges))), [count for _, _, count in stats[g].histogram], label=g, marker="braille")
            plt.xticks(list(range(len(edges))), labels)
        else:
            plt.multiple_bar(labels, [[count for _, _, count in stats[g].histogram] for g in groups], labels=groups)
        lo, hi, _ = edges[self.bar]
        plt.title(f"scores per group ({'overlaid' if self.overlay else 'side by side'}) · bar {lo:g}-{hi:g} chosen")
        plt.xlabel("judge score")
        plt.ylabel("texts")
        plot.refresh()
        self._show_bar(results, lo, hi, last=self.bar == len(edges) - 1)

    def _show_bar(self, results, lo: float, hi: float, last: bool) -> None:
        inside = [r for r in results if r.score is not None and lo <= r.score and (r.score < hi or last)]
        head = f"{len(inside)} texts scored {lo:g} to {hi:g} (←/→ choose a bar)"
        lines = [f"  {r.group:9s} {r.score:g}  {r.text.replace(chr(10), ' ')[:110]}" for r in inside[:8]]
        self.query_one("#bar-texts", Static).update(Text("\n".join([head, *lines])))  # texts are not markup

    # -- keys -------------------------------------------------------------------------------------

    def action_next_prompt(self) -> None:
        self.prompt_index += 1
        self.redraw()

    def action_toggle_layout(self) -> None:
        self.overlay = not self.overlay
        self.redraw()

    def action_bar(self, step: int) -> None:
        self.bar += step
        self.redraw()

    def action_export(self) -> None:
        from studio.judge.report import plot_histograms, write_csv

        results = getattr(self.app, "judge_results", {})
        prompts = [p for p in getattr(self.app, "judge_prompts", []) if p.id in results]
        if not prompts:
            self.notify("nothing to export yet: run A and B on the Judge pane", severity="warning")
            return
        EXPORT_DIR.mkdir(exist_ok=True)
        png, csv = EXPORT_DIR / "judge-histogram.png", EXPORT_DIR / "judge-scores.csv"
        plot_histograms(prompts, results, png)
        write_csv([r for p in prompts for r in results[p.id]], csv)
        self.notify(f"wrote {png} and {csv}")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
