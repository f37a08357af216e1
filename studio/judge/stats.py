"""Numbers about scores: per-group summaries, how well a prompt separates two groups (AUC), how two
prompts agree (Spearman) and where they disagree most, and pairwise win and position-flip rates.

Only parsed scores enter the statistics; unparsed, out-of-range and failed results are counted beside them.
Pure Python on purpose: the panes import this module, and scipy would add a second to the app's start
(the intervals and bias figures, which need numpy and scipy, are in studio.judge.rating).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from studio.judge.items import JudgeResult


@dataclass(frozen=True)
class GroupStats:
    group: str
    n: int  # results in the group
    scored: int
    unparsed: int  # answers without a usable score, out-of-range ones included
    failed: int
    out_of_range: int  # the part of `unparsed` whose score was outside the scale
    mean: float | None
    std: float | None  # sample standard deviation (n - 1); None below two scores
    histogram: list[tuple[float, float, int]]  # (low edge, high edge, count)


def histogram(scores: Sequence[float], scale: tuple[float, float],
              bins: int | None = None) -> list[tuple[float, float, int]]:
    """Counts over the scale. An integer scale of three to about a hundred values gets one bin per
    integer (centred on it); others ([0, 1] probabilities, decimals) get `bins` equal bins (default 10)."""
    lo, hi = scale
    if bins is None and float(lo).is_integer() and float(hi).is_integer() and 2 <= hi - lo <= 100:
        edges = [lo - 0.5 + i for i in range(int(hi - lo) + 2)]
    else:
        bins = bins or 10
        edges = [lo + (hi - lo) * i / bins for i in range(bins + 1)]
    counts = [0] * (len(edges) - 1)
    for score in scores:
        index = next((i for i in range(len(counts)) if score < edges[i + 1]), len(counts) - 1)
        counts[max(0, index)] += 1
    return [(edges[i], edges[i + 1], counts[i]) for i in range(len(counts))]


def _mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def group_stats(results: Sequence[JudgeResult], scale: tuple[float, float]) -> dict[str, GroupStats]:
    """Per group, in order of first appearance."""
    groups: dict[str, list[JudgeResult]] = {}
    for result in results:
        groups.setdefault(result.group, []).append(result)
    out = {}
    for group, members in groups.items():
        scores = [r.score for r in members if r.score is not None]
        mean, std = _mean_std(scores)
        out[group] = GroupStats(group=group, n=len(members), scored=len(scores),
                                unparsed=sum(r.unparsed for r in members), failed=sum(r.failed for r in members),
                                out_of_range=sum(r.out_of_range for r in members), mean=mean, std=std,
                                histogram=histogram(scores, scale))
    return out


def scores_of(results: Sequence[JudgeResult], group: str) -> list[float]:
    return [r.score for r in results if r.group == group and r.score is not None]


def auc(negative: Sequence[float], positive: Sequence[float]) -> float | None:
    """P(a random positive scores above a random negative), ties counting half (Mann-Whitney U / n1 n2).
    1.0: perfectly separated, 0.5: no better than chance. None when a group has no scores."""
    if not negative or not positive:
        return None
    ranks = _ranks(list(negative) + list(positive))
    positive_rank_sum = sum(ranks[len(negative):])
    u = positive_rank_sum - len(positive) * (len(positive) + 1) / 2
    return u / (len(negative) * len(positive))


def _ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties sharing their average rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Rank correlation of paired scores (Pearson on tie-averaged ranks). None if undefined."""
    if len(a) != len(b):
        raise ValueError("spearman needs paired scores")
    if len(a) < 2:
        return None
    ra, rb = _ranks(a), _ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    va, vb = sum((x - ma) ** 2 for x in ra), sum((y - mb) ** 2 for y in rb)
    if va == 0 or vb == 0:
        return None
    return cov / math.sqrt(va * vb)


@dataclass(frozen=True)
class Comparison:
    """Prompt A against prompt B on the same items."""

    n: int  # items both scored
    spearman: float | None
    disagreements: list[tuple[JudgeResult, JudgeResult, float]]  # (a, b, gap on a 0-1 scale), largest first


def _normalised(score: float, scale: tuple[float, float]) -> float:
    lo, hi = scale
    return (score - lo) / (hi - lo)


def compare_prompts(a: Sequence[JudgeResult], b: Sequence[JudgeResult], scale_a: tuple[float, float],
                    scale_b: tuple[float, float], top: int = 10) -> Comparison:
    """a and b are the two prompts' results on the same items, in the same order. Gaps are
    measured after mapping each prompt's scale onto 0-1, so a 1-10 and a 1-5 prompt compare."""
    if len(a) != len(b):
        raise ValueError("compare_prompts needs results for the same items in the same order")
    pairs = [(x, y) for x, y in zip(a, b) if x.score is not None and y.score is not None]
    rho = spearman([x.score for x, _ in pairs], [y.score for _, y in pairs])
    gaps = [(x, y, abs(_normalised(x.score, scale_a) - _normalised(y.score, scale_b))) for x, y in pairs]
    gaps.sort(key=lambda t: t[2], reverse=True)
    return Comparison(n=len(pairs), spearman=rho, disagreements=gaps[:top])


@dataclass(frozen=True)
class PairwiseStats:
    n: int  # pairs with a verdict in both orders
    wins: int  # the first-listed system ("a") won in both orders
    losses: int
    ties: int  # both orders said tie
    flips: int  # the verdict changed with the order (position bias); counted as a tie in win_rate
    unjudged: int  # a verdict missing in at least one order
    win_rate: float | None  # (wins + half of ties and flips) / n, for system a
    flip_rate: float | None


def pairwise_stats(forward: Sequence[JudgeResult], backward: Sequence[JudgeResult]) -> PairwiseStats:
    """forward: verdicts with a shown first; backward: the same pairs with b shown first.
    A verdict's score is 1.0 when the answer shown first won, 0.0 for the second, 0.5 for a tie."""
    wins = losses = ties = flips = unjudged = 0
    for f, b in zip(forward, backward):
        if f.score is None or b.score is None:
            unjudged += 1
            continue
        a_first, a_second = f.score, 1.0 - b.score  # both: how much "a" won
        if a_first != a_second:
            flips += 1
        elif a_first == 1.0:
            wins += 1
        elif a_first == 0.0:
            losses += 1
        else:
            ties += 1
    n = wins + losses + ties + flips
    return PairwiseStats(n=n, wins=wins, losses=losses, ties=ties, flips=flips, unjudged=unjudged,
                         win_rate=(wins + 0.5 * (ties + flips)) / n if n else None,
                         flip_rate=flips / n if n else None)
