"""Writing judge results: JSONL and CSV rows, a per-group summary, a markdown report and a figure."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

from studio.formatting import format_number
from studio.judge.groups import BASE, GENERATED, TARGET
from studio.judge.items import JudgeResult
from studio.judge.prompts import JudgePrompt
from studio.judge.stats import auc as auc_of
from studio.judge.stats import compare_prompts, group_stats, scores_of

COLORS = {BASE: "#4C72B0", GENERATED: "#DD8452", TARGET: "#55A868"}


def write_jsonl(results: Sequence[JudgeResult], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for result in results:
            f.write(json.dumps(result.to_row(), ensure_ascii=False) + "\n")


def write_csv(results: Sequence[JudgeResult], path: Path) -> None:
    rows = [r.to_row() for r in results]
    columns = list(dict.fromkeys(key for row in rows for key in row))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def aucs(results: Sequence[JudgeResult]) -> dict[str, float | None]:
    """The two AUCs that matter: base vs target (the judge's own quality) and base vs generated."""
    base = scores_of(results, BASE)
    return {"base_vs_target": auc_of(base, scores_of(results, TARGET)),
            "base_vs_generated": auc_of(base, scores_of(results, GENERATED))}


def group_table(prompt: JudgePrompt, results: Sequence[JudgeResult]) -> list[list[str]]:
    """Header plus one row per group: n, scored, unparsed, failed, mean, std."""
    rows = [["group", "n", "scored", "unparsed", "failed", "mean", "std"]]
    for g in group_stats(results, prompt.scale).values():
        rows.append([g.group or "(none)", str(g.n), str(g.scored), str(g.unparsed), str(g.failed),
                     format_number(g.mean, 2), format_number(g.std, 2)])
    return rows


def summary_text(prompt: JudgePrompt, results: Sequence[JudgeResult]) -> str:
    table = group_table(prompt, results)
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = [f"prompt {prompt.id} ({prompt.endpoint.model}, scale {prompt.scale[0]:g}-{prompt.scale[1]:g})"]
    lines += ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in table]
    for name, value in aucs(results).items():
        if value is not None:
            lines.append(f"  AUC {name.replace('_', ' ')}: {value:.3f}")
    return "\n".join(lines)


def markdown_report(prompts: Sequence[JudgePrompt], results: dict[str, list[JudgeResult]], title: str) -> str:
    out = [f"# {title}", ""]
    for prompt in prompts:
        rs = results[prompt.id]
        table = group_table(prompt, rs)
        out += [f"## Prompt `{prompt.id}`", "",
                f"Judge: {prompt.endpoint.backend} `{prompt.endpoint.model}`, scale {prompt.scale[0]:g}-"
                f"{prompt.scale[1]:g}, parse mode `{prompt.parse}`.", "",
                "| " + " | ".join(table[0]) + " |", "|" + "---|" * len(table[0])]
        out += ["| " + " | ".join(row) + " |" for row in table[1:]]
        a = aucs(rs)
        out += ["",
                "- AUC base vs target (how well this prompt separates the controls): "
                f"{format_number(a['base_vs_target'], 3)}",
                f"- AUC base vs generated (how far the fine-tune got): {format_number(a['base_vs_generated'], 3)}", ""]
    if len(prompts) == 2:
        a, b = prompts
        cmp = compare_prompts(results[a.id], results[b.id], a.scale, b.scale, top=5)
        out += [f"## `{a.id}` vs `{b.id}`", "",
                f"Spearman rank correlation over {cmp.n} texts: {format_number(cmp.spearman, 3)}", "",
                "Texts they disagree on most:", ""]
        for x, y, gap in cmp.disagreements:
            snippet = x.text.replace("\n", " ")[:100]
            out.append(f"- [{x.group}] {a.id} {x.score:g}, {b.id} {y.score:g} (gap {gap:.2f}): {snippet}")
        out.append("")
    return "\n".join(out)


def plot_histograms(prompts: Sequence[JudgePrompt], results: dict[str, list[JudgeResult]], path: Path) -> None:
    """One panel per prompt: the groups' score histograms overlaid, dashed lines at their means,
    the AUCs in the title."""
    import matplotlib

    matplotlib.use("Agg")  # no display on a workstation over SSH
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, len(prompts), figsize=(6.4 * len(prompts), 4.2), squeeze=False)
    for ax, prompt in zip(axes[0], prompts):
        rs = results[prompt.id]
        stats = group_stats(rs, prompt.scale)
        for group, g in stats.items():
            if not g.scored:
                continue
            edges = [lo for lo, _, _ in g.histogram] + [g.histogram[-1][1]]
            color = COLORS.get(group)
            ax.hist(scores_of(rs, group), bins=edges, alpha=0.45, color=color, edgecolor=color,
                    label=f"{group} (n={g.scored}, mean {g.mean:.2f})")
            ax.axvline(g.mean, color=color, linestyle="--", linewidth=1.5)
        a = aucs(rs)
        ax.set_title(f"{prompt.id}: AUC base/target {format_number(a['base_vs_target'], 2)}, "
                     f"base/generated {format_number(a['base_vs_generated'], 2)}", fontsize=10)
        ax.set_xlabel(f"judge score ({prompt.endpoint.model})")
        ax.set_ylabel("texts")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlim(prompt.scale[0] - 0.5, prompt.scale[1] + 0.5)
        ax.legend(fontsize=8, frameon=False)
        ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)


def write_eval(out_dir: Path, prompts: Sequence[JudgePrompt], results: dict[str, list[JudgeResult]],
               title: str) -> list[Path]:
    """RUN/eval/: scores.jsonl, scores.csv, report.md, histogram.png."""
    every = [r for p in prompts for r in results[p.id]]
    paths = [out_dir / name for name in ("scores.jsonl", "scores.csv", "report.md", "histogram.png")]
    write_jsonl(every, paths[0])
    write_csv(every, paths[1])
    paths[2].write_text(markdown_report(prompts, results, title), encoding="utf-8")
    plot_histograms(prompts, results, paths[3])
    return paths
