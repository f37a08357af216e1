"""Rating a judge prompt: how well it tells a positive control from a negative one (AUC with a
bootstrap interval, Cohen's d, histogram overlap), whether prompt B does that better than prompt A
on the same texts (a paired bootstrap of AUC(B) - AUC(A)), and its biases (score against text
length, the position of an answer in a pairwise prompt, the spread of repeated judgements).

Intervals are percentile intervals from a seeded bootstrap that resamples texts within each group
(stratified: both groups keep their sizes), so the same results always give the same interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

from studio.judge.items import JudgeResult
from studio.judge.stats import auc, histogram, pairwise_stats, scores_of

RESAMPLES = 2000
SEED = 0
CONFIDENCE = 0.95
RESOLVE = 0.05  # the AUC difference a comparison should be able to tell from none
CANNOT_SEPARATE = "this judge cannot separate these groups"  # a verdict's start when the interval holds 0.5


@dataclass(frozen=True)
class Separation:
    """How well one prompt's scores separate `positive` from `negative`."""

    negative: str
    positive: str
    n_negative: int  # scored texts in each group
    n_positive: int
    auc: float | None
    ci: tuple[float, float] | None  # 95% bootstrap interval of the AUC
    cohens_d: float | None  # mean difference in pooled standard deviations
    overlap: float | None  # shared area of the two normalised histograms: 0 disjoint, 1 identical

    @property
    def separates(self) -> bool | None:
        """True when the interval lies above 0.5; None when there is nothing to say."""
        return None if self.ci is None else self.ci[0] > 0.5

    @property
    def verdict(self) -> str:
        if self.auc is None or self.ci is None:
            return f"no AUC: {self.negative if not self.n_negative else self.positive} has no scored texts"
        figures = f"AUC {self.auc:.2f}, 95% CI {self.ci[0]:.2f}..{self.ci[1]:.2f}"
        if self.ci[0] <= 0.5 <= self.ci[1]:
            return f"{CANNOT_SEPARATE} ({figures})"
        if self.ci[1] < 0.5:
            return f"separates them the wrong way round: {self.negative} scores higher ({figures})"
        return f"separates {self.positive} from {self.negative} ({figures})"


@dataclass(frozen=True)
class PairedDifference:
    """AUC(B) - AUC(A) on the texts both prompts scored, with its paired bootstrap interval."""

    n_negative: int
    n_positive: int
    auc_a: float | None
    auc_b: float | None
    difference: float | None
    ci: tuple[float, float] | None
    more_texts: int | None  # about how many more texts per group would resolve RESOLVE; None when resolved

    @property
    def verdict(self) -> str:
        if self.difference is None or self.ci is None:
            return "no comparison: a group has no text that both prompts scored"
        low, high = self.ci
        figures = f"{self.difference:+.2f}, 95% CI {low:+.2f}..{high:+.2f}"
        if low > 0:
            return f"B separates better ({figures})"
        if high < 0:
            return f"A separates better ({figures})"
        if self.more_texts is None:
            return (f"no detectable difference ({figures}); the interval already rules out a difference of "
                    f"{RESOLVE:.2f} or more")
        return (f"no detectable difference ({figures}); about {self.more_texts} more texts per group would resolve "
                f"{RESOLVE:.2f}")


def _stratified_indices(rng: np.random.Generator, n: int, resamples: int) -> np.ndarray:
    return rng.integers(0, n, size=(resamples, n))


def _bootstrap_aucs(negative: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """The AUC of each row: rows of resampled negative and positive scores (Mann-Whitney U by ranks)."""
    n_neg, n_pos = negative.shape[1], positive.shape[1]
    ranks = scipy_stats.rankdata(np.concatenate([negative, positive], axis=1), axis=1)
    u = ranks[:, n_neg:].sum(axis=1) - n_pos * (n_pos + 1) / 2
    return u / (n_neg * n_pos)


def _interval(values: np.ndarray) -> tuple[float, float]:
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def auc_interval(negative: Sequence[float], positive: Sequence[float], *, resamples: int = RESAMPLES,
                 seed: int = SEED) -> tuple[float, float] | None:
    """95% percentile interval of the AUC, resampling each group within itself."""
    if not negative or not positive:
        return None
    rng = np.random.default_rng(seed)
    neg, pos = np.asarray(negative, float), np.asarray(positive, float)
    boot = _bootstrap_aucs(neg[_stratified_indices(rng, len(neg), resamples)],
                           pos[_stratified_indices(rng, len(pos), resamples)])
    return _interval(boot)


def cohens_d(negative: Sequence[float], positive: Sequence[float]) -> float | None:
    """(mean positive - mean negative) / pooled standard deviation (n - 1 in each group)."""
    if len(negative) < 2 or len(positive) < 2:
        return None
    n1, n2 = len(negative), len(positive)
    pooled = ((n1 - 1) * np.var(negative, ddof=1) + (n2 - 1) * np.var(positive, ddof=1)) / (n1 + n2 - 2)
    if pooled == 0:
        return None
    return float((np.mean(positive) - np.mean(negative)) / math.sqrt(pooled))


def overlap(negative: Sequence[float], positive: Sequence[float], scale: tuple[float, float]) -> float | None:
    """The overlapping coefficient of the two score histograms (each normalised to 1) on the scale's bins."""
    if not negative or not positive:
        return None
    a = [c / len(negative) for *_, c in histogram(negative, scale)]
    b = [c / len(positive) for *_, c in histogram(positive, scale)]
    return float(sum(min(x, y) for x, y in zip(a, b)))


def separation(results: Sequence[JudgeResult], scale: tuple[float, float], negative: str, positive: str, *,
               resamples: int = RESAMPLES, seed: int = SEED) -> Separation:
    neg, pos = scores_of(results, negative), scores_of(results, positive)
    return Separation(negative=negative, positive=positive, n_negative=len(neg), n_positive=len(pos),
                      auc=auc(neg, pos), ci=auc_interval(neg, pos, resamples=resamples, seed=seed),
                      cohens_d=cohens_d(neg, pos), overlap=overlap(neg, pos, scale))


def _both_scored(a: Sequence[JudgeResult], b: Sequence[JudgeResult], group: str) -> tuple[np.ndarray, np.ndarray]:
    pairs = [(x.score, y.score) for x, y in zip(a, b)
             if x.group == group and x.score is not None and y.score is not None]
    return np.array([x for x, _ in pairs], float), np.array([y for _, y in pairs], float)


def more_texts_to_resolve(ci: tuple[float, float], n_per_group: float, resolve: float = RESOLVE) -> int | None:
    """About how many more texts per group would shrink the interval's half-width to `resolve`,
    assuming (as for any mean-like statistic) that the width shrinks as 1/sqrt(n). None when it
    already is that narrow."""
    half = (ci[1] - ci[0]) / 2
    if half <= resolve:
        return None
    return math.ceil(n_per_group * ((half / resolve) ** 2 - 1))


def paired_difference(results_a: Sequence[JudgeResult], results_b: Sequence[JudgeResult], negative: str,
                      positive: str, *, resamples: int = RESAMPLES, seed: int = SEED) -> PairedDifference:
    """results_a and results_b: two prompts' results on the same texts in the same order. The same
    resampled texts score both prompts in each bootstrap round, so what the texts share cancels out."""
    if len(results_a) != len(results_b):
        raise ValueError("paired_difference needs both prompts' results on the same texts in the same order")
    neg_a, neg_b = _both_scored(results_a, results_b, negative)
    pos_a, pos_b = _both_scored(results_a, results_b, positive)
    if not len(neg_a) or not len(pos_a):
        return PairedDifference(len(neg_a), len(pos_a), None, None, None, None, None)
    auc_a, auc_b = auc(list(neg_a), list(pos_a)), auc(list(neg_b), list(pos_b))
    rng = np.random.default_rng(seed)
    neg_idx = _stratified_indices(rng, len(neg_a), resamples)
    pos_idx = _stratified_indices(rng, len(pos_a), resamples)
    boot = _bootstrap_aucs(neg_b[neg_idx], pos_b[pos_idx]) - _bootstrap_aucs(neg_a[neg_idx], pos_a[pos_idx])
    ci = _interval(boot)
    resolved = ci[0] > 0 or ci[1] < 0
    more = None if resolved else more_texts_to_resolve(ci, (len(neg_a) + len(pos_a)) / 2)
    return PairedDifference(len(neg_a), len(pos_a), auc_a, auc_b, auc_b - auc_a, ci, more)


# -- biases ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LengthBias:
    """Spearman correlation of score with text length (characters) within one group: a judge that
    rewards length shows a clearly positive rho where length says nothing about the style."""

    group: str
    n: int
    rho: float | None
    p_value: float | None


def length_bias(results: Sequence[JudgeResult]) -> dict[str, LengthBias]:
    groups: dict[str, list[JudgeResult]] = {}
    for r in results:
        if r.score is not None:
            groups.setdefault(r.group, []).append(r)
    out = {}
    for group, members in groups.items():
        scores, lengths = [r.score for r in members], [len(r.text) for r in members]
        if len(members) < 3 or len(set(scores)) < 2 or len(set(lengths)) < 2:
            out[group] = LengthBias(group, len(members), None, None)
            continue
        test = scipy_stats.spearmanr(lengths, scores)
        out[group] = LengthBias(group, len(members), float(test.statistic), float(test.pvalue))
    return out


@dataclass(frozen=True)
class PositionBias:
    """Pairwise prompts, per group: how often the answer shown first wins (ties count half; 0.5 is
    unbiased) and how often the verdict flips when the order is swapped."""

    group: str
    n: int  # pairs with a verdict in both orders
    first_wins: float | None
    flip_rate: float | None


def position_bias(forward: Sequence[JudgeResult], backward: Sequence[JudgeResult]) -> dict[str, PositionBias]:
    groups: dict[str, list[int]] = {}
    for i, f in enumerate(forward):
        groups.setdefault(f.group, []).append(i)
    out = {}
    for group, rows in groups.items():
        f, b = [forward[i] for i in rows], [backward[i] for i in rows]
        judged = [(x.score, y.score) for x, y in zip(f, b) if x.score is not None and y.score is not None]
        first = [s for pair in judged for s in pair]  # every verdict's score is "the first shown won"
        stats = pairwise_stats(f, b)
        out[group] = PositionBias(group, len(judged), float(np.mean(first)) if first else None, stats.flip_rate)
    return out


@dataclass(frozen=True)
class Retest:
    """Repeated judgements of the same texts (temperature > 0): their spread per text."""

    texts: int  # texts with at least two scored samples
    samples: int  # the most samples any text has
    mean_sd: float | None  # mean within-text standard deviation of the score
    max_range: float | None  # the largest max - min over one text's samples
    rho: float | None  # Spearman between the first two samples across texts


def retest(results: Sequence[JudgeResult]) -> Retest:
    """results: from run_judge on retest_items(items, n)."""
    by_text: dict[tuple, dict[int, float]] = {}
    for r in results:
        if r.score is not None:
            key = (r.item.text, r.item.group, r.item.question, r.item.reference, r.item.text_b)
            by_text.setdefault(key, {})[r.item.sample] = r.score
    repeated = [s for s in by_text.values() if len(s) >= 2]
    if not repeated:
        return Retest(0, max((len(s) for s in by_text.values()), default=0), None, None, None)
    sds = [float(np.std(list(s.values()), ddof=1)) for s in repeated]
    ranges = [max(s.values()) - min(s.values()) for s in repeated]
    firsts = [(s[0], s[1]) for s in repeated if 0 in s and 1 in s]
    rho = None
    if len(firsts) >= 3 and len({x for x, _ in firsts}) > 1 and len({y for _, y in firsts}) > 1:
        rho = float(scipy_stats.spearmanr([x for x, _ in firsts], [y for _, y in firsts]).statistic)
    return Retest(len(repeated), max(len(s) for s in repeated), float(np.mean(sds)), float(max(ranges)), rho)
