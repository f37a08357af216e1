"""What a judge scores (JudgeItem) and what it says about it (JudgeResult)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class JudgeItem:
    """One text to judge. `fields` carries the input row's other columns through to the output."""

    text: str
    group: str = ""
    question: str | None = None
    reference: str | None = None
    text_b: str | None = None  # pairwise mode: the second answer (the template's {answer_b})
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

    score is None when the answer did not parse (raw is kept, error says why) or when the
    request failed (raw is None too). `failed` and `unparsed` tell the two apart.
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
    def failed(self) -> bool:
        """No answer came back (network, HTTP error, timeout, cancelled)."""
        return self.raw is None

    @property
    def unparsed(self) -> bool:
        """An answer came back but holds no usable score."""
        return self.raw is not None and self.score is None

    def to_row(self) -> dict[str, Any]:
        """The output row: the input row's fields, then the verdict."""
        row: dict[str, Any] = dict(self.item.fields)
        row.update(text=self.item.text, group=self.item.group)
        for name in ("question", "reference", "text_b"):
            if getattr(self.item, name) is not None:
                row[name] = getattr(self.item, name)
        row.update(prompt=self.prompt_id, backend=self.backend, model=self.model, score=self.score,
                   reason=self.reason, raw=self.raw, error=self.error, attempts=self.attempts,
                   cached=self.cached, latency_s=self.latency_s, tokens=self.tokens)
        return row
