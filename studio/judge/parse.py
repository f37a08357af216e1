"""Turning a judge's answer into a score, or saying exactly why not.

Rules that hold in every mode: an empty answer or one without a score is *unparsed* (score None,
raw kept, error says why), never 0; a score outside the scale is *not* clamped: score None and
the error names the value and the scale, so the raw number is never silently coerced. When an
answer holds several candidates the LAST one wins: judges restate the format or quote the text
before giving their verdict at the end.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

_NUM = r"[-+]?\d+(?:\.\d+)?"
_BRACKETED = re.compile(r"\[\[\s*(" + _NUM + r")\s*\]\]")
_SCORE_LINE = re.compile(r"\bscore\b\W{0,3}(?:is|of|=|:)?\s*\W{0,2}\s*(" + _NUM + r")(?!\s*(?:to|-|–)\s*\d)",
                         re.IGNORECASE)
# Numbers that describe the scale rather than give a score: "1 to 9", "1-10", "/10", "out of 10".
_RANGE = re.compile(r"(" + _NUM + r")\s*(?:to|-|–|—)\s*(" + _NUM + r")", re.IGNORECASE)
_DENOMINATOR = re.compile(r"(?:/|\bout of)\s*(" + _NUM + r")", re.IGNORECASE)
_ANY_NUMBER = re.compile(r"(?<![\w.])(" + _NUM + r")(?![\w])")
# Case-sensitive letters, so "the better one is a bit..." is not a verdict for A.
_VERDICT = re.compile(r"\[\[\s*([ABC])\s*\]\]|(?i:\b(?:winner|verdict)\b)\W{0,3}(A|B|(?i:tie))\b")


@dataclass(frozen=True)
class Parsed:
    score: float | None
    reason: str | None = None
    error: str | None = None


def parse_answer(raw: str, mode: str, scale: tuple[float, float]) -> Parsed:
    """Parse a text answer in one of the text modes: number, score, json, pairwise."""
    if not raw or not raw.strip():
        return Parsed(None, error="unparsed: empty answer")
    parser = {"number": _parse_number, "score": _parse_score_line, "json": _parse_json,
              "pairwise": _parse_verdict}.get(mode)
    if parser is None:
        raise ValueError(f"{mode!r} is not a text parse mode")
    parsed = parser(raw)
    return parsed if mode == "pairwise" else _in_scale(parsed, scale)


def _in_scale(parsed: Parsed, scale: tuple[float, float]) -> Parsed:
    lo, hi = scale
    if parsed.score is None or lo <= parsed.score <= hi:
        return parsed
    return Parsed(None, parsed.reason, f"out of range: the judge said {parsed.score:g}, the scale is {lo:g}-{hi:g}"
                                       " (kept in raw, not clamped)")


def _rest(raw: str, match: re.Match) -> str | None:
    """The reason: the answer without the line that holds the score."""
    start = raw.rfind("\n", 0, match.start()) + 1
    end = raw.find("\n", match.end())
    rest = (raw[:start] + (raw[end:] if end != -1 else "")).strip()
    return rest or None


def _parse_score_line(raw: str) -> Parsed:
    matches = list(_SCORE_LINE.finditer(raw))
    if not matches:
        return Parsed(None, error="unparsed: no `Score: N` in the answer")
    last = matches[-1]
    return Parsed(float(last.group(1)), _rest(raw, last))


def _parse_number(raw: str) -> Parsed:
    """A bare verdict: `7`, `7/10`, `[[7]]`, `7 out of 10`, "on a scale of 1 to 9 ... 3"."""
    bracketed = list(_BRACKETED.finditer(raw))
    if bracketed:
        return Parsed(float(bracketed[-1].group(1)), _rest(raw, bracketed[-1]))
    scale_spans = [m.span(g) for m in _RANGE.finditer(raw) for g in (1, 2)]
    scale_spans += [m.span(1) for m in _DENOMINATOR.finditer(raw)]
    candidates = [m for m in _ANY_NUMBER.finditer(raw) if m.span(1) not in scale_spans]
    if not candidates:
        return Parsed(None, error="unparsed: no score number in the answer")
    last = candidates[-1]
    return Parsed(float(last.group(1)), _rest(raw, last))


def _json_objects(raw: str):
    """Every JSON object in the text, found by decoding from each `{`; braces inside strings are fine."""
    decoder = json.JSONDecoder()
    pos = raw.find("{")
    while pos != -1:
        try:
            value, end = decoder.raw_decode(raw, pos)
        except json.JSONDecodeError:
            pos = raw.find("{", pos + 1)
            continue
        if isinstance(value, dict):
            yield value
        pos = raw.find("{", end)


def _parse_json(raw: str) -> Parsed:
    objects = [o for o in _json_objects(raw) if "score" in o]
    if not objects:
        return Parsed(None, error='unparsed: no JSON object with a "score" key')
    obj = objects[-1]
    value = obj["score"]
    reason = obj.get("reason", obj.get("explanation"))
    reason = None if reason is None else str(reason)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return Parsed(None, reason, f"unparsed: score is {value!r}, not a number")
    try:
        score = float(value)
    except ValueError:
        return Parsed(None, reason, f"unparsed: score is {value!r}, not a number")
    if not math.isfinite(score):
        return Parsed(None, reason, f"unparsed: score is {value!r}")
    return Parsed(score, reason)


def _parse_verdict(raw: str) -> Parsed:
    """Pairwise: 1.0 when the first answer (A) wins, 0.0 for B, 0.5 for a tie ([[C]] or "tie")."""
    matches = list(_VERDICT.finditer(raw))
    if not matches:
        return Parsed(None, error="unparsed: no verdict ([[A]], [[B]] or [[C]] for a tie)")
    last = matches[-1]
    verdict = (last.group(1) or last.group(2)).upper()
    return Parsed({"A": 1.0, "B": 0.0}.get(verdict, 0.5), _rest(raw, last))


# -- logprobs (G-Eval) ---------------------------------------------------------------------------

TopLogprobs = Sequence[Sequence[tuple[str, float]]]  # per generated position: (token, logprob) pairs


def expected_score(top_logprobs: TopLogprobs, scale: tuple[float, float]) -> Parsed:
    """The probability-weighted mean over the score tokens at the first position whose likeliest
    token is a score (G-Eval). Only integer scores count; "7" and " 7" add up. The reason records
    the distribution and how much probability mass the score tokens held there."""
    lo, hi = scale
    for position in top_logprobs:
        if not position:
            continue
        best = max(position, key=lambda pair: pair[1])[0].strip()
        if not (best.lstrip("-").isdigit() and lo <= int(best) <= hi):
            continue
        probs: dict[int, float] = {}
        for token, logprob in position:
            token = token.strip()
            if token.lstrip("-").isdigit() and lo <= int(token) <= hi:
                probs[int(token)] = probs.get(int(token), 0.0) + math.exp(logprob)
        return score_from_distribution(probs)
    return Parsed(None, error="unparsed: no position where a score token is the likeliest")


def score_from_distribution(probs: dict[int, float]) -> Parsed:
    mass = sum(probs.values())
    if mass <= 0:
        return Parsed(None, error="unparsed: the score tokens have no probability")
    score = sum(k * p for k, p in probs.items()) / mass
    shown = ", ".join(f"{k}: {p / mass:.2f}" for k, p in sorted(probs.items()))
    return Parsed(score, f"expected score over score tokens (mass {mass:.2f}): {shown}")
