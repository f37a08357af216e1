"""What a judge scores (JudgeItem) and what it says about it (JudgeResult)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

# How a result without a score says why (the start of JudgeResult.error). The judge answered but
# gave no score, or one outside the scale; or the answer was cut off: the text failed, though its
# raw answer is kept to look at.
UNPARSED = "unparsed"
OUT_OF_RANGE = "out of range"
TRUNCATED = "truncated"


def text_hash(text: str) -> str:
    """A text's identity across files and runs (human labels are keyed by it)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class JudgeItem:
    """One text to judge. `fields` carries the input row's other columns through to the output."""

    text: str
    group: str = ""
    question: str | None = None
    reference: str | None = None
    text_b: str | None = None  # pairwise mode: the second answer (the template's {answer_b})
    sample: int = 0  # test-retest: the n-th independent judgement of the same text (0: the usual one)
    fields: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> JudgeItem:
        known = {"text", "group", "question", "reference", "text_b"}
        return cls(text=row["text"], group=str(row.get("group") or ""), question=row.get("question"),
                   reference=row.get("reference"), text_b=row.get("text_b"),
                   fields={k: v for k, v in row.items() if k not in known})


@dataclass
class JudgeResult:
    """The judge's verdict on one item, or why there is none.

    score is None when the answer did not parse or was out of the scale (raw is kept, error says
    why), or when the text failed: the request failed (raw is None), or the reply was no usable
    answer (truncated, empty, malformed: raw is kept when there was one). `failed`, `unparsed` and
    `out_of_range` tell these apart.

    flag: a score to read with care, in words (low probability mass on the score values, a text
    score where logprobs were asked for); mass: the probability on valid score values (logprob modes).
    cacheable: False for answers shaped by the endpoint's condition rather than the text (a
    fallback because logprobs were missing), so they are asked again once the endpoint is fixed.
    """

    item: JudgeItem
    prompt_id: str
    backend: str
    model: str
    score: float | None = None
    reason: str | None = None
    raw: str | None = None
    latency_s: float | None = None
    tokens: int | None = None
    attempts: int = 0
    error: str | None = None
    cached: bool = False
    flag: str | None = None
    mass: float | None = None
    cacheable: bool = field(default=True, compare=False)

    @property
    def text(self) -> str:
        return self.item.text

    @property
    def group(self) -> str:
        return self.item.group

    @property
    def question(self) -> str | None:
        return self.item.question

    @property
    def reference(self) -> str | None:
        return self.item.reference

    @property
    def text_hash(self) -> str:
        return text_hash(self.item.text)

    @property
    def failed(self) -> bool:
        """No usable answer came back (network, HTTP error, timeout, malformed reply, cancelled), or the
        answer was cut off before its score (raw kept)."""
        return self.raw is None or self.score is None and (self.error or "").startswith(TRUNCATED)

    @property
    def unparsed(self) -> bool:
        """An answer came back but holds no usable score: none at all, or one outside the scale
        (`out_of_range` tells that part apart; `status` names the one category)."""
        return self.score is None and not self.failed

    @property
    def out_of_range(self) -> bool:
        """An answer came back with a score outside the scale (kept in raw, never clamped)."""
        return self.score is None and self.raw is not None and (self.error or "").startswith(OUT_OF_RANGE)

    @property
    def status(self) -> str:
        """scored, unparsed, out of range or failed: one of them."""
        if self.score is not None:
            return "scored"
        return "failed" if self.failed else OUT_OF_RANGE if self.out_of_range else "unparsed"

    def to_row(self) -> dict[str, Any]:
        """The output row: the input row's fields, then the verdict."""
        row: dict[str, Any] = dict(self.item.fields)
        row.update(text=self.item.text, group=self.item.group)
        for name in ("question", "reference", "text_b"):
            if getattr(self.item, name) is not None:
                row[name] = getattr(self.item, name)
        if self.item.sample:
            row["sample"] = self.item.sample
        row.update(prompt=self.prompt_id, backend=self.backend, model=self.model, score=self.score,
                   status=self.status, flag=self.flag, mass=self.mass, reason=self.reason, raw=self.raw,
                   error=self.error, attempts=self.attempts, cached=self.cached, latency_s=self.latency_s,
                   tokens=self.tokens)
        return row
