"""Writing judge results: JSONL and CSV rows, a per-group summary, how well each prompt separates
the controls (with intervals, biases and agreement with human labels), a markdown report and a figure."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from studio.formatting import format_number
from studio.judge.groups import BASE, FEW_SHOT, GENERATED, SFT, TARGET
from studio.judge.items import JudgeItem, JudgeResult
from studio.judge.prompts import JudgePrompt
from studio.judge.stats import auc as auc_of
from studio.judge.stats import compare_prompts, group_stats, histogram, scores_of

if TYPE_CHECKING:
    from studio.judge.labels import LabelStore

COLORS = {BASE: "#4C72B0", FEW_SHOT: "#8172B3", SFT: "#64B5CD", GENERATED: "#DD8452", TARGET: "#55A868"}


def write_jsonl(results: Sequence[JudgeResult], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(result.to_row(), ensure_ascii=False) + "\n" for result in results)


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
    """Header plus one row per group: n, scored, unparsed, out of range, failed, mean, std."""
    rows = [["group", "n", "scored", "unparsed", "out of range", "failed", "mean", "std"]]
    for g in group_stats(results, prompt.scale).values():
        rows.append([g.group or "(none)", str(g.n), str(g.scored), str(g.unparsed - g.out_of_range), str(g.out_of_range),
                     str(g.failed), format_number(g.mean, 2), format_number(g.std, 2)])
    return rows


def rating_lines(prompt: JudgePrompt, results: Sequence[JudgeResult], negative: str | None, positive: str | None,
                 labels: LabelStore | None = None, auc_label: str | None = None) -> list[str]:
    """How well the prompt separates `positive` from `negative` (AUC with its interval, Cohen's d,
    histogram overlap, the verdict in words), its length bias per group, its agreement with the labels."""
    from studio.judge.labels import agreement
    from studio.judge.rating import length_bias, separation

    lines = []
    if negative and positive:
        s = separation(results, prompt.scale, negative, positive)
        if s.auc is not None:
            lines.append(f"{auc_label or f'AUC {negative} vs {positive}'}: {s.auc:.3f} "
                         f"(95% CI {s.ci[0]:.3f}..{s.ci[1]:.3f}, "
                         f"n={s.n_negative}+{s.n_positive}), Cohen's d {format_number(s.cohens_d, 2)}, "
                         f"histogram overlap {format_number(s.overlap, 2)}")
        lines.append(s.verdict)
    biases = [b for b in length_bias(results).values() if b.rho is not None]
    if biases:
        lines.append("length bias (Spearman of score vs length, within each group): "
                     + ", ".join(f"{b.group or '(none)'} {b.rho:+.2f} (n={b.n}, p={b.p_value:.2g})" for b in biases))
    if labels is not None:
        found = agreement(results, labels, prompt.scale)
        lines += [a.describe() for a in found] or [f"no human labels for these texts in {labels.path}"]
    return lines


def comparison_lines(a: JudgePrompt, b: JudgePrompt, results_a: Sequence[JudgeResult],
                     results_b: Sequence[JudgeResult], negative: str, positive: str) -> list[str]:
    """A against B on the same texts: both AUCs on the texts both scored, the paired difference, the verdict."""
    from studio.judge.rating import paired_difference

    d = paired_difference(results_a, results_b, negative, positive)
    if d.difference is None:
        return [d.verdict]
    both = (f"A = {a.id}, B = {b.id}: AUC {negative} vs {positive} {d.auc_a:.3f} (A) and {d.auc_b:.3f} (B) on the "
            f"{d.n_negative}+{d.n_positive} texts both scored")
    return [both, d.verdict]


BASELINES = {FEW_SHOT: "the few-shot baseline", SFT: "the adapter it started from (sft)"}  # what the fine-tune must beat


def fine_tune_lines(prompt: JudgePrompt, results: Sequence[JudgeResult]) -> list[str]:
    """How far the fine-tune got (AUC base vs generated) and, per baseline present (few-shot; sft, the
    adapter a DPO run continued), whether the fine-tune beats it (AUC baseline vs generated, with its interval)."""
    lines = []
    generated = aucs(results)["base_vs_generated"]
    if generated is not None:
        lines.append(f"AUC base vs generated (how far the fine-tune got): {generated:.3f}")
    groups = {r.group for r in results}
    return lines + [_versus(prompt, results, group, name) for group, name in BASELINES.items() if group in groups]


def _versus(prompt: JudgePrompt, results: Sequence[JudgeResult], baseline: str, name: str) -> str:
    from studio.judge.rating import separation

    s = separation(results, prompt.scale, baseline, GENERATED)
    if s.auc is None or s.ci is None:
        return f"{baseline} vs generated: {s.verdict}"
    figures = f"AUC {baseline} vs generated {s.auc:.2f}, 95% CI {s.ci[0]:.2f}..{s.ci[1]:.2f}, n={s.n_negative}+{s.n_positive}"
    if s.ci[0] > 0.5:
        return f"the fine-tune beats {name} ({figures})"
    if s.ci[1] < 0.5:
        return f"{name} beats the fine-tune ({figures})"
    return f"no detectable difference between the fine-tune and {name} ({figures})"


def reference_lines(items: Sequence[JudgeItem]) -> list[str]:
    """ROUGE-L and BLEU of each group's answers against the target-style answers (none without references)."""
    from studio.judge.reference import reference_scores

    found = reference_scores(items)
    return ["against the target-style answers: " + "; ".join(f.describe() for f in found)] if found else []


def summary_text(prompt: JudgePrompt, results: Sequence[JudgeResult], negative: str | None = BASE,
                 positive: str | None = TARGET, labels: LabelStore | None = None) -> str:
    table = group_table(prompt, results)
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = [f"prompt {prompt.id} ({prompt.endpoint.model}, scale {prompt.scale[0]:g}-{prompt.scale[1]:g})"]
    lines += ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in table]
    lines += ["  " + line for line in rating_lines(prompt, results, negative, positive, labels)]
    if (negative, positive) == (BASE, TARGET):
        lines += ["  " + line for line in fine_tune_lines(prompt, results)]
    return "\n".join(lines)


def markdown_report(prompts: Sequence[JudgePrompt], results: dict[str, list[JudgeResult]], title: str, *,
                    negative: str = BASE, positive: str = TARGET, labels: LabelStore | None = None,
                    extra: Sequence[str] = ()) -> str:
    """`extra`: lines about the texts rather than a prompt (perplexity, reference metrics), listed first."""
    out = [f"# {title}", ""]
    if extra:
        out += [f"- {line}" for line in extra] + [""]
    for prompt in prompts:
        rs = results[prompt.id]
        table = group_table(prompt, rs)
        out += [f"## Prompt `{prompt.id}`", "",
                f"Judge: {prompt.endpoint.backend} `{prompt.endpoint.model}`, scale {prompt.scale[0]:g}-"
                f"{prompt.scale[1]:g}, parse mode `{prompt.parse}`.", "",
                "| " + " | ".join(table[0]) + " |", "|" + "---|" * len(table[0])]
        out += ["| " + " | ".join(row) + " |" for row in table[1:]]
        label = ("AUC base vs target (how well this prompt separates the controls)" if (negative, positive) ==
                 (BASE, TARGET) else None)
        out += [""] + [f"- {line}" for line in rating_lines(prompt, rs, negative, positive, labels, label)]
        out += [f"- {line}" for line in fine_tune_lines(prompt, rs)] + [""]
    if len(prompts) == 2:
        a, b = prompts
        cmp = compare_prompts(results[a.id], results[b.id], a.scale, b.scale, top=5)
        out += [f"## `{a.id}` vs `{b.id}`", ""]
        out += [f"- {line}" for line in comparison_lines(a, b, results[a.id], results[b.id], negative, positive)]
        out += ["",
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
        bins = histogram([], prompt.scale)
        ax.set_xlim(bins[0][0], bins[-1][1])  # integer scales: half a point beyond each end; [0, 1]: the scale
        ax.legend(fontsize=8, frameon=False)
        ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)


def write_eval(out_dir: Path, prompts: Sequence[JudgePrompt], results: dict[str, list[JudgeResult]],
               title: str, extra: Sequence[str] = ()) -> list[Path]:
    """RUN/eval/: scores.jsonl, scores.csv, report.md (with agreement with RUN/eval/labels.jsonl when
    it exists, and the `extra` lines first), histogram.png."""
    from studio.judge.labels import LabelStore, labels_path

    every = [r for p in prompts for r in results[p.id]]
    paths = [out_dir / name for name in ("scores.jsonl", "scores.csv", "report.md", "histogram.png")]
    write_jsonl(every, paths[0])
    write_csv(every, paths[1])
    labels = LabelStore(labels_path(out_dir)) if labels_path(out_dir).exists() else None
    paths[2].write_text(markdown_report(prompts, results, title, labels=labels, extra=extra), encoding="utf-8")
    plot_histograms(prompts, results, paths[3])
    return paths
