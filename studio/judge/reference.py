"""Reference metrics: how close each group's answers are to the target-style answers of the same
questions, by ROUGE-L (rouge-score) and BLEU (sacrebleu), the classic figures beside the judge's.

A text takes part when it has a `reference` (studio eval sets the question's target-style answer);
the target group itself is the reference and is left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from studio.judge.items import JudgeItem

TARGET = "target"


@dataclass(frozen=True)
class ReferenceScores:
    """One group's answers against their references: mean ROUGE-L F1 (0..1) and corpus BLEU (0..100)."""

    group: str
    n: int  # the answers the figures rest on
    rouge_l: float
    bleu: float

    def describe(self) -> str:
        return f"{self.group}: ROUGE-L {self.rouge_l:.3f}, BLEU {self.bleu:.1f} (n={self.n})"


def _scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def text_scores(text: str, reference: str) -> dict[str, float]:
    """One answer against its reference: ROUGE-L F1 and sentence BLEU (for the per-text CSV)."""
    import sacrebleu

    return {"rouge_l": _scorer().score(reference, text)["rougeL"].fmeasure,
            "bleu": sacrebleu.sentence_bleu(text, [reference]).score}


def reference_scores(items: Sequence[JudgeItem]) -> list[ReferenceScores]:
    """Per group (in the order the groups first appear), over the texts that have a reference."""
    import sacrebleu

    by_group: dict[str, list[JudgeItem]] = {}
    for item in items:
        if item.reference and item.group != TARGET and item.sample == 0:
            by_group.setdefault(item.group, []).append(item)
    scorer = _scorer()
    out = []
    for group, members in by_group.items():
        texts, references = [m.text for m in members], [m.reference for m in members]
        rouge = [scorer.score(ref, text)["rougeL"].fmeasure for text, ref in zip(texts, references)]
        out.append(ReferenceScores(group, len(members), sum(rouge) / len(rouge),
                                   sacrebleu.corpus_bleu(texts, [references]).score))
    return out
