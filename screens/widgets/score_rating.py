"""How far to trust a judge prompt, in the few words a pane has room for: its AUC between the base
and target groups with the 95% interval (and plainly when that interval holds 0.5), Cohen's d,
histogram overlap, length bias, its flagged scores, its agreement with the human labels; for a
pairwise prompt its win, flip and first-position rates; and prompt B against prompt A on the same
texts. The Judge and Scores panes both show these.

`rate` and `compare` run on a worker: studio.judge.rating and the label agreement bring numpy, scipy
and scikit-learn, which the app does not load to open.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from studio.judge import BASE, TARGET, JudgePrompt, JudgeResult, PairwiseStats, pairwise_stats

if TYPE_CHECKING:
    from studio.judge.labels import Agreement, LabelStore
    from studio.judge.rating import LengthBias, PairedDifference, PositionBias, Separation

EXPORTS = Path("studio-exports")  # where labels and exports go when no run is shown


def judge_folder(run_dir: Path | None) -> Path:
    """Where the judge's files for what is shown live: RUN/eval/, or ./studio-exports/ without a run."""
    return (Path(run_dir) / "eval" if run_dir else EXPORTS).resolve()


def split_pairwise(results: Sequence[JudgeResult]) -> tuple[Sequence[JudgeResult], Sequence[JudgeResult]]:
    """A pairwise run's results are every pair in its first order, then the same pairs swapped."""
    half = len(results) // 2
    return results[:half], results[half:]


@dataclass(frozen=True)
class Rating:
    """One prompt's figures on one run's results."""

    separation: Separation | None  # base vs target; None when those groups are not both there
    length_bias: dict[str, LengthBias] = field(default_factory=dict)
    agreement: list[Agreement] = field(default_factory=list)
    labels: int = 0  # human labels in the store (of any text)
    pairwise: PairwiseStats | None = None
    matchup: tuple[str, str] | None = None  # pairwise: the groups of answers A and B (generated, sft)
    position: dict[str, PositionBias] = field(default_factory=dict)
    flagged: int = 0  # scores to read with care (low probability mass; a text score where logprobs were asked)
    out_of_range: int = 0
    baselines: list[str] = field(default_factory=list)  # whether the fine-tune beats the few-shot baseline and its start, in words
    reference: list[str] = field(default_factory=list)  # ROUGE-L and BLEU against the target-style answers


def rate(prompt: JudgePrompt, results: Sequence[JudgeResult], labels: LabelStore | None = None) -> Rating:
    from studio.judge.labels import agreement
    from studio.judge.rating import length_bias, position_bias, separation
    from studio.judge.report import fine_tune_lines, reference_lines

    flags = {"flagged": sum(r.flag is not None for r in results), "out_of_range": sum(r.out_of_range for r in results)}
    if prompt.parse == "pairwise":
        forward, backward = split_pairwise(results)
        first = forward[0].item if forward else None
        matchup = (first.group, first.fields["versus"]) if first is not None and "versus" in first.fields else None
        return Rating(None, pairwise=pairwise_stats(forward, backward), position=position_bias(forward, backward),
                      matchup=matchup, **flags)
    groups = {r.group for r in results}
    sep = separation(results, prompt.scale, BASE, TARGET) if {BASE, TARGET} <= groups else None
    found = agreement(results, labels, prompt.scale) if labels is not None else []
    baselines = [line for line in fine_tune_lines(prompt, results) if not line.startswith("AUC base vs generated")]
    return Rating(sep, length_bias(results), found, len(labels) if labels is not None else 0, **flags,
                  baselines=baselines, reference=reference_lines([r.item for r in results]))


def compare(prompts: dict[str, JudgePrompt], results: dict[str, list[JudgeResult]]) -> PairedDifference | None:
    """B against A on the texts both scored, when both rate the same texts one at a time."""
    from studio.judge.rating import paired_difference

    if set(results) != {"A", "B"} or len(results["A"]) != len(results["B"]):
        return None
    if any(prompts[label].parse == "pairwise" for label in results):
        return None
    if not {BASE, TARGET} <= {r.group for r in results["A"]}:
        return None
    return paired_difference(results["A"], results["B"], BASE, TARGET)


# -- in words ------------------------------------------------------------------------------------


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}"


def _plain(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def auc_words(sep: Separation) -> str:
    """The AUC with its interval, and what it means when the interval does not clear 0.5."""
    from studio.judge.rating import CANNOT_SEPARATE

    if sep.auc is None or sep.ci is None:
        return sep.verdict
    figures = f"AUC {sep.auc:.2f} (95% CI {sep.ci[0]:.2f}..{sep.ci[1]:.2f})"
    if sep.ci[0] <= 0.5 <= sep.ci[1]:
        return f"{figures}: {CANNOT_SEPARATE}"
    if sep.ci[1] < 0.5:
        return f"{figures}: the wrong way round ({sep.negative} scores higher)"
    return figures


def pairwise_words(rating: Rating) -> str:
    stats = rating.pairwise
    if stats is None or stats.n == 0:
        return "no pair judged in both orders yet"
    first = [p.first_wins for p in rating.position.values() if p.first_wins is not None]
    shown_first = f" · first shown wins {sum(first) / len(first):.2f}" if first else ""
    who = f"{rating.matchup[0]} over {rating.matchup[1]}: " if rating.matchup else ""
    return f"{who}wins {_plain(stats.win_rate)} of {stats.n} pairs · flips {_plain(stats.flip_rate)}{shown_first}"


def label_words(rating: Rating) -> str:
    """Agreement with the human labels, with how many there are."""
    if not rating.agreement:
        if rating.labels:
            return f"none of the {rating.labels} human labels is on a text scored here"
        return "no labels yet: l, then y/n or 0-9"  # one line of a side at 80 columns
    parts = []
    for a in rating.agreement:
        symbol = "weighted κ" if a.kappa_name.startswith("weighted") else "κ"  # Cohen's: one line at 80 columns
        kappa = f", {symbol} {a.kappa:.2f}" if a.kappa is not None else ""
        parts.append(f"{a.n} labels ({a.kind}): ρ {_plain(a.spearman)}{kappa}")
    return "; ".join(parts)


def flag_words(rating: Rating) -> str | None:
    found = [(rating.flagged, "flagged (low confidence)"), (rating.out_of_range, "out of range (not clamped)")]
    shown = [f"{count} {what}" for count, what in found if count]
    return "flags: " + ", ".join(shown) if shown else None


def side_lines(rating: Rating) -> list[str]:
    """The Judge pane's few lines per prompt: its AUC (or pairwise rates), its agreement with the labels."""
    if rating.pairwise is not None:
        lines = [pairwise_words(rating)]
    elif rating.separation is not None:
        lines = [auc_words(rating.separation)]
    else:
        lines = ["no AUC: judge texts in groups base and target"]
    return lines + [label_words(rating)] if rating.pairwise is None else lines


def separation_lines(rating: Rating) -> list[str]:
    """Under the Scores pane's AUC base/target: its interval, d and overlap, and what they mean; for a
    pairwise prompt its rates instead."""
    from studio.judge.rating import CANNOT_SEPARATE

    if rating.pairwise is not None:
        return [pairwise_words(rating)] + [
            f"{p.group or '(none)'}: first shown wins {_plain(p.first_wins)}, flips {_plain(p.flip_rate)} (n {p.n})"
            for p in rating.position.values()]
    sep = rating.separation
    if sep is None or sep.ci is None:
        return []
    lines = [f"95% CI {sep.ci[0]:.2f}..{sep.ci[1]:.2f} · Cohen's d {_plain(sep.cohens_d)} · "
             f"overlap {_plain(sep.overlap)}"]
    if sep.ci[0] <= 0.5 <= sep.ci[1]:
        lines.append(CANNOT_SEPARATE)
    elif sep.ci[1] < 0.5:
        lines.append(f"the wrong way round: {sep.negative} scores higher")
    return lines


def detail_lines(rating: Rating) -> list[str]:
    """The rest of the Scores pane's figures: length bias, agreement with the labels, flags."""
    lines = []
    biases = [b for b in rating.length_bias.values() if b.rho is not None]
    if biases:
        lines.append("length bias ρ: " + ", ".join(f"{b.group or '(none)'} {_signed(b.rho)}" for b in biases))
    if rating.agreement:
        lines.append(label_words(rating))
    flags = flag_words(rating)
    if flags:
        lines.append(flags)
    return lines + rating.baselines + rating.reference


def comparison_words(difference: PairedDifference | None) -> str:
    if difference is None:
        return ""
    return f"B vs A, same texts: {difference.verdict}"
