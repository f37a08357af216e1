"""Comparing runs: their curves side by side, a table of final figures, and what their configs differ in.

Every run is read from its directory alone (config.toml, events.jsonl, eval/scores.jsonl), so runs
trained headless, in the app, resumed or on several processes compare the same way.

    runs = [load_run(path) for path in paths]
    table_rows(runs); config_differences(runs); plot_curves(runs, "curves.png", x="tokens")
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from studio.events import Event, read_events
from studio.runs import RunPaths, load_config, summarize

CURVES = ("train", "held-out", "style", "judge")
Point = tuple[float, float]  # (x, value)
# One colour per run, the same in the PNG and in the app: Okabe and Ito's palette, told apart with
# colour-blindness and legible on a white figure and on a dark terminal alike.
RUN_COLOURS = ("#56B4E9", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#0072B2", "#F0E442", "#999999")


@dataclass
class RunRecord:
    """What one run's directory says, folded for comparing."""

    name: str
    path: Path
    config: dict[str, Any]  # "section.key" -> value
    status: str
    steps: dict[str, list[Point]] = field(default_factory=dict)  # curve -> (step, value)
    tokens: dict[int, float] = field(default_factory=dict)  # step -> real tokens seen by the end of it
    samples: list[Event] = field(default_factory=list)
    final: dict[str, float | None] = field(default_factory=dict)

    def curve(self, name: str, x: str = "step") -> list[Point]:
        """A curve by step, or by tokens seen (steps before the first step event count as 0 tokens)."""
        points = self.steps.get(name, [])
        if x == "step":
            return points
        return [(self.tokens.get(int(step), 0.0), value) for step, value in points]

    def sample(self, step: int, index: int, mode: str = "greedy") -> Event | None:
        """The `sample` event of prompt `index` shown at `step`: the last one at or before it."""
        found = [e for e in self.samples if e.get("index") == index and e.get("mode") == mode and e["step"] <= step]
        return found[-1] if found else None


def load_run(run_dir: Path) -> RunRecord:
    run_dir = Path(run_dir)
    cfg = load_config(run_dir)
    events = read_events(RunPaths(run_dir).events)
    flat = {f"{section}.{key}": value for section, values in asdict(cfg).items() if isinstance(values, dict)
            for key, value in values.items()}
    record = RunRecord(name=run_dir.name, path=run_dir, config=flat, status=str(summarize(run_dir, events).status))
    curves: dict[str, list[Point]] = {name: [] for name in CURVES}
    seen, speeds, first, last = 0.0, [], None, None
    for event in events:
        kind, step = event["type"], event["step"]
        if kind == "step":
            first = event["time"] if first is None else first
            last = event["time"]
            seen += _number(event.get("tokens_per_s")) * _number(event.get("step_time_s"))
            record.tokens[step] = seen
            speeds.append(_number(event.get("tokens_per_s")))
            _add(curves["train"], step, event.get("loss"))
        elif kind == "eval":
            _add(curves["held-out"], step, event.get("eval_loss"))
            _add(curves["style"], step, event.get("style_loss"))
        elif kind == "judge":
            _add(curves["judge"], step, event.get("mean"))
        elif kind == "sample":
            record.samples.append(event)
    record.steps = {name: points for name, points in curves.items() if points}
    last_eval = next((e for e in reversed(events) if e["type"] == "eval"), {})
    record.final = {
        "held-out loss": _maybe(last_eval.get("eval_loss")),
        "perplexity": _maybe(last_eval.get("perplexity")),
        "style loss": _maybe(last_eval.get("style_loss")),
        "tokens/s": statistics.median(speeds) if speeds else None,
        "wall s": (last - first) if first is not None and last is not None else None,
        **_judge_figures(run_dir / "eval" / "scores.jsonl"),
    }
    return record


def _add(points: list[Point], step: int, value: Any) -> None:
    number = _maybe(value)
    if number is not None:
        points.append((step, number))


def _maybe(value: Any) -> float | None:
    """A finite number from an event, else None ("nan" is written as text in the log)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return None
    return float(value)


def _number(value: Any) -> float:
    return _maybe(value) or 0.0


def _judge_figures(scores: Path) -> dict[str, float | None]:
    """Per judge prompt: the mean score of the run's generated answers, and the AUC of generated vs
    base-style answers (how far the fine-tune moved toward the target style), from `studio eval`."""
    if not scores.exists():
        return {}
    from studio.judge.stats import auc

    by_prompt: dict[str, dict[str, list[float]]] = {}
    for line in scores.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row.get("score") is not None:
            by_prompt.setdefault(row["prompt"], {}).setdefault(row.get("group", ""), []).append(float(row["score"]))
    figures: dict[str, float | None] = {}
    for prompt, groups in sorted(by_prompt.items()):
        generated = groups.get("generated", [])
        figures[f"judge {prompt} mean"] = statistics.fmean(generated) if generated else None
        figures[f"judge {prompt} AUC"] = auc(groups.get("base", []), generated) if generated else None
    return figures


def config_differences(runs: list[RunRecord]) -> dict[str, list[Any]]:
    """The config keys whose values are not the same in every run (the run name left out), with each run's value."""
    keys = sorted({key for run in runs for key in run.config} - {"name"})
    return {key: [run.config.get(key) for run in runs] for key in keys
            if len({json.dumps(run.config.get(key), sort_keys=True) for run in runs}) > 1}


def table_rows(runs: list[RunRecord]) -> tuple[list[str], list[list[str]]]:
    """A header and one row per run of final figures, as text ("-" where a run has none)."""
    columns = list(dict.fromkeys(key for run in runs for key in run.final))
    rows = [[run.name, run.status, str(max((int(s) for s, _ in run.steps.get("train", [])), default=0)),
             *[_cell(run.final.get(column)) for column in columns]] for run in runs]
    return ["run", "status", "steps", *columns], rows


def _cell(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3f}"


def run_colour(index: int) -> str:
    """The colour of the `index`-th run compared (as a hex string)."""
    return RUN_COLOURS[index % len(RUN_COLOURS)]


def plot_curves(runs: list[RunRecord], out: Path, x: str = "step") -> Path:
    """One panel per curve any run has, each run one colour throughout; written as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [name for name in CURVES if any(run.steps.get(name) for run in runs)]
    fig, axes = plt.subplots(1, max(len(names), 1), figsize=(4.5 * max(len(names), 1), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names):
        for i, run in enumerate(runs):
            points = run.curve(name, x)
            if points:
                xs, ys = zip(*points)
                ax.plot(xs, ys, marker="o" if len(points) < 12 else None, markersize=3,
                        color=run_colour(i), label=run.name)
        ax.set_title(name)
        ax.set_xlabel("tokens seen" if x == "tokens" else "step")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
