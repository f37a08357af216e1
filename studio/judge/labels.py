"""Human labels of judged texts, and how well a prompt's scores agree with them.

Labels live in `labels.jsonl` beside the judge results, one row per text, keyed by the text's hash
(so they follow a text across runs, prompts and files) and rewritten whole on every change (a
small file; a crash leaves the old one or the new one, never half of one). A label is either
yes/no ("is this text in the target style?", stored as 1/0) or a score on a scale.

Agreement of a prompt with the labels: Spearman's rho between score and label, and a kappa:
Cohen's kappa for yes/no labels (the judge's score counts as yes above the middle of its scale),
quadratic-weighted kappa for labels on the prompt's own scale (the score rounded to the scale).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from studio.judge.items import JudgeResult, text_hash
from studio.judge.prompts import JudgeConfigError

LABELS_FILE = "labels.jsonl"
YES_NO = "yes/no"


def labels_path(results: str | Path) -> Path:
    """Where the labels of a results file (or a results folder, such as RUN/eval) are kept."""
    results = Path(results)
    return (results if results.is_dir() or not results.suffix else results.parent) / LABELS_FILE


@dataclass(frozen=True)
class Label:
    hash: str
    value: float
    kind: str  # YES_NO, or a scale such as "1-10"
    text: str  # the start of the text, so the file can be read by a person


def scale_kind(scale: tuple[float, float]) -> str:
    return f"{scale[0]:g}-{scale[1]:g}"


class LabelStore:
    """The labels in one labels.jsonl; a missing file is an empty store."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._labels: dict[str, Label] = {}
        if self.path.exists():
            for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    label = Label(str(row["hash"]), float(row["label"]), str(row["kind"]), str(row.get("text", "")))
                except (ValueError, KeyError, TypeError) as exc:
                    raise JudgeConfigError(f"{self.path}:{number}: not a label row ({exc}); each row needs hash, "
                                           "label and kind") from None
                self._labels[label.hash] = label  # a later row for the same text wins

    def __len__(self) -> int:
        return len(self._labels)

    def __iter__(self):
        return iter(self._labels.values())

    def get(self, text: str) -> Label | None:
        return self._labels.get(text_hash(text))

    def upsert(self, text: str, value: float, kind: str = YES_NO) -> Label:
        """Set (or replace) the label of a text and save at once. Yes/no labels are 1 (yes) or 0 (no)."""
        if kind == YES_NO and value not in (0, 1):
            raise JudgeConfigError(f"a yes/no label is 1 or 0, not {value!r}")
        label = Label(text_hash(text), float(value), kind, " ".join(text.split())[:120])
        self._labels[label.hash] = label
        self.save()
        return label

    def remove(self, text: str) -> None:
        if self._labels.pop(text_hash(text), None) is not None:
            self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".jsonl.tmp")
        saved = round(time.time())
        rows = (json.dumps({"hash": label.hash, "label": label.value, "kind": label.kind, "text": label.text,
                            "saved": saved}, ensure_ascii=False) + "\n" for label in self._labels.values())
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(rows)
        tmp.replace(self.path)


@dataclass(frozen=True)
class Agreement:
    """One prompt's scores against the human labels of one kind."""

    kind: str  # YES_NO or a scale
    n: int  # labelled texts the prompt scored
    spearman: float | None
    kappa: float | None
    kappa_name: str  # "Cohen's kappa", "weighted kappa" or "" when the labels' scale is not the prompt's

    def describe(self) -> str:
        rho = "-" if self.spearman is None else f"{self.spearman:.2f}"
        kappa = f", {self.kappa_name} {self.kappa:.2f}" if self.kappa is not None else ""
        return f"agreement with {self.n} human labels ({self.kind}): Spearman {rho}{kappa}"


def agreement(results: Sequence[JudgeResult], labels: LabelStore, scale: tuple[float, float]) -> list[Agreement]:
    """Per kind of label present, over the labelled texts this prompt scored (each text once)."""
    from scipy.stats import spearmanr
    from sklearn.metrics import cohen_kappa_score

    pairs: dict[str, dict[str, tuple[float, float]]] = {}
    for r in results:
        label = labels.get(r.text) if r.score is not None else None
        if label is not None:
            pairs.setdefault(label.kind, {})[label.hash] = (r.score, label.value)
    out = []
    for kind, by_text in sorted(pairs.items()):
        scores, values = [s for s, _ in by_text.values()], [v for _, v in by_text.values()]
        rho = None
        if len(scores) >= 2 and len(set(scores)) > 1 and len(set(values)) > 1:
            rho = float(spearmanr(scores, values).statistic)
        kappa, name = None, ""
        if kind == YES_NO:
            middle = (scale[0] + scale[1]) / 2
            judged, name = [1.0 if s > middle else 0.0 for s in scores], "Cohen's kappa"
            kappa = _kappa(cohen_kappa_score, values, judged)
        elif kind == scale_kind(scale):
            judged, name = [float(math.floor(s + 0.5)) for s in scores], "weighted kappa"
            every_value = list(range(math.ceil(scale[0]), math.floor(scale[1]) + 1))  # distances on the whole scale
            kappa = _kappa(cohen_kappa_score, values, judged, weights="quadratic", labels=every_value)
        out.append(Agreement(kind, len(scores), rho, kappa, name))
    return out


def _kappa(cohen_kappa_score, human: list[float], judged: list[float], **kwargs) -> float | None:
    if len(human) < 2 or len(set(human) | set(judged)) < 2:
        return None
    value = float(cohen_kappa_score(human, judged, **kwargs))
    return None if math.isnan(value) else value
