"""Turning a judge's answer into a score, or saying exactly why not.

Rules that hold in every mode: an empty answer or one without a score is *unparsed* (score None,
raw kept, error says why), never 0; a score outside the scale is *out of range*, not clamped:
score None and the error names the value and the scale. When an answer holds several candidates
the LAST one wins: judges restate the format or quote the text before giving their verdict at the
end. A labelled score ("Score: 7", "Rating: 7", "[[7]]") wins over a bare number.

A truncated answer (the judge ran out of tokens) only counts when a complete, final score line came
before the cut: "Score: 3? But wait..." is not a verdict.

Logprob modes read the score from the judge's token probabilities: `logprobs` (G-Eval: the
expected score over the scale's values, at the position where the text's score stands) and
`yesno` (the probability of "yes" against "no"). The probability mass the valid values hold there
is recorded, and a score whose mass is below LOW_MASS is flagged.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from studio.judge.items import OUT_OF_RANGE, TRUNCATED, UNPARSED

LOW_MASS = 0.5  # below this, a logprob score is flagged: most of the judge's probability was elsewhere

_NUM = r"[-+]?\d+(?:\.\d+)?"
_BRACKETED = re.compile(r"\[\[\s*(" + _NUM + r")\s*\]\]", re.ASCII)
_NOT_A_RANGE = r"(?!\s*(?:to|-|–)\s*\d)"
_SCORE_LINE = re.compile(r"\bscore\b\W{0,3}(?:is|of|=|:)?\s*\W{0,2}\s*(" + _NUM + r")" + _NOT_A_RANGE,
                         re.IGNORECASE | re.ASCII)
_LABELLED = re.compile(r"\b(?:score|rating|grade)\b\W{0,3}(?:is|of|=|:)?\s*\W{0,2}\s*(" + _NUM + r")" + _NOT_A_RANGE,
                       re.IGNORECASE | re.ASCII)
# Numbers that describe the scale rather than give a score: "1 to 9", "1-10", "/10", "out of 10".
_RANGE = re.compile(r"(" + _NUM + r")\s*(?:to|-|–|—)\s*(" + _NUM + r")", re.IGNORECASE | re.ASCII)
_DENOMINATOR = re.compile(r"(?:/|\bout of)\s*(" + _NUM + r")", re.IGNORECASE | re.ASCII)
_ANY_NUMBER = re.compile(r"(?<![\w.])(" + _NUM + r")(?![\w])", re.ASCII)
# A line that says nothing but the score: "Score: 7", "**Rating: 7/10**", "[[7]]", "7".
_PURE_SCORE_LINE = re.compile(r"[\s*#_>-]*(?:(?:final\s+)?(?:score|rating|grade)\b\W{0,3}(?:is|of|=|:)?\s*)?"
                              r"(?:\[\[\s*)?" + _NUM + r"(?:\s*\]\])?\s*(?:(?:/|out of)\s*\d+)?[\s.*_)\]]*",
                              re.IGNORECASE | re.ASCII)
# Case-sensitive letters, so "the better one is a bit..." is not a verdict for A.
_VERDICT = re.compile(r"\[\[\s*([ABC])\s*\]\]|(?i:\b(?:winner|verdict)\b)\W{0,3}(A|B|(?i:tie))\b")
_YES_NO = re.compile(r"\b(yes|no)\b", re.IGNORECASE)
# A score token's digits and what follows them; "²" and other Unicode digits are not score digits.
_LEADING_DIGITS = re.compile(r"(\d+)(.*)", re.ASCII | re.DOTALL)

TEXT_MODES = ("number", "score", "json", "pairwise", "yesno")


@dataclass(frozen=True)
class Parsed:
    score: float | None
    reason: str | None = None
    error: str | None = None
    flag: str | None = None  # a score to read with care, in words
    mass: float | None = None  # logprob modes: the probability on valid values


def parse_answer(raw: str, mode: str, scale: tuple[float, float], truncated: bool = False) -> Parsed:
    """Parse a text answer in one of the text modes: number, score, json, pairwise, yesno.

    truncated: the answer was cut at the token limit; only a complete final score line counts
    (otherwise error "truncated: ...", and the result is a failure, not an unparsed answer)."""
    if not raw or not raw.strip():
        return Parsed(None, error=f"{UNPARSED}: empty answer")
    parser = {"number": _parse_number, "score": _parse_score_line, "json": _parse_json,
              "pairwise": _parse_verdict, "yesno": _parse_yes_no}.get(mode)
    if parser is None:
        raise ValueError(f"{mode!r} is not a text parse mode")
    if truncated:
        parsed = _parse_truncated(raw, mode, parser)
        if parsed is None:
            return Parsed(None, error=f"{TRUNCATED}: the answer was cut at the token limit before a final score line; "
                                      "raise max_tokens (or max_completion_tokens) in the prompt's [params]")
    else:
        parsed = parser(raw)
    return parsed if mode in ("pairwise", "yesno") else _in_scale(parsed, scale)


def _parse_truncated(raw: str, mode: str, parser) -> Parsed | None:
    if mode in ("json", "yesno"):  # a JSON object decodes whole or not at all; yes/no comes first
        parsed = parser(raw)
        return parsed if parsed.score is not None else None
    complete = raw[:raw.rfind("\n") + 1]  # the last line may be cut mid-way
    if mode == "pairwise":
        parsed = parser(complete) if complete.strip() else None
        return parsed if parsed is not None and parsed.score is not None else None
    match = _score_match(complete, mode)
    if match is None:
        return None
    line = _line_of(complete, match)
    if not _PURE_SCORE_LINE.fullmatch(complete[line[0]:line[1]]):
        return None
    return Parsed(float(match.group(1)), _rest(complete, match))


def _in_scale(parsed: Parsed, scale: tuple[float, float]) -> Parsed:
    lo, hi = scale
    if parsed.score is None or lo <= parsed.score <= hi:
        return parsed
    return Parsed(None, parsed.reason, f"{OUT_OF_RANGE}: the judge said {parsed.score:g}, the scale is {lo:g}-{hi:g}"
                                       " (kept in raw, not clamped)")


def _line_of(raw: str, match: re.Match) -> tuple[int, int]:
    start = raw.rfind("\n", 0, match.start()) + 1
    end = raw.find("\n", match.end())
    return start, len(raw) if end == -1 else end


def _rest(raw: str, match: re.Match) -> str | None:
    """The reason: the answer without the line that holds the score."""
    start, end = _line_of(raw, match)
    rest = (raw[:start] + raw[end:]).strip()
    return rest or None


def _score_match(raw: str, mode: str) -> re.Match | None:
    """Where the score stands (group 1): the last `Score: N` in score mode; in number mode the last
    [[N]], else the last labelled score (score, rating, grade), else the last number that does not
    describe the scale ("1 to 10", "/10")."""
    if mode == "score":
        return _last(_SCORE_LINE.finditer(raw))
    for pattern in (_BRACKETED, _LABELLED):
        if (match := _last(pattern.finditer(raw))) is not None:
            return match
    scale_spans = [m.span(g) for m in _RANGE.finditer(raw) for g in (1, 2)]
    scale_spans += [m.span(1) for m in _DENOMINATOR.finditer(raw)]
    return _last(m for m in _ANY_NUMBER.finditer(raw) if m.span(1) not in scale_spans)


def _last(matches) -> re.Match | None:
    last = None
    for last in matches:  # the loop leaves the last one in `last`
        pass
    return last


def _parse_score_line(raw: str) -> Parsed:
    match = _score_match(raw, "score")
    if match is None:
        return Parsed(None, error=f"{UNPARSED}: no `Score: N` in the answer")
    return Parsed(float(match.group(1)), _rest(raw, match))


def _parse_number(raw: str) -> Parsed:
    """A bare verdict: `7`, `7/10`, `[[7]]`, `Rating: 7`, `7 out of 10`, "on a scale of 1 to 9 ... 3"."""
    match = _score_match(raw, "number")
    if match is None:
        return Parsed(None, error=f"{UNPARSED}: no score number in the answer")
    return Parsed(float(match.group(1)), _rest(raw, match))


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
        return Parsed(None, error=f'{UNPARSED}: no JSON object with a "score" key')
    obj = objects[-1]
    value = obj["score"]
    reason = obj.get("reason", obj.get("explanation"))
    reason = None if reason is None else str(reason)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return Parsed(None, reason, f"{UNPARSED}: score is {value!r}, not a number")
    try:
        score = float(value)
    except ValueError:
        return Parsed(None, reason, f"{UNPARSED}: score is {value!r}, not a number")
    if not math.isfinite(score):
        return Parsed(None, reason, f"{UNPARSED}: score is {value!r}")
    return Parsed(score, reason)


def _parse_verdict(raw: str) -> Parsed:
    """Pairwise: 1.0 when the first answer (A) wins, 0.0 for B, 0.5 for a tie ([[C]] or "tie")."""
    match = _last(_VERDICT.finditer(raw))
    if match is None:
        return Parsed(None, error=f"{UNPARSED}: no verdict ([[A]], [[B]] or [[C]] for a tie)")
    verdict = (match.group(1) or match.group(2)).upper()
    return Parsed({"A": 1.0, "B": 0.0}.get(verdict, 0.5), _rest(raw, match))


def _parse_yes_no(raw: str) -> Parsed:
    """Yes/no: 1.0 for yes, 0.0 for no, from the first yes or no in the answer (the verdict comes first)."""
    match = _YES_NO.search(raw)
    if match is None:
        return Parsed(None, error=f"{UNPARSED}: no yes or no in the answer")
    return Parsed(1.0 if match.group(1).lower() == "yes" else 0.0, _rest(raw, match))


# -- logprobs ------------------------------------------------------------------------------------

Alternatives = Sequence[tuple[str, float]]  # (token, logprob) pairs at one generated position


def expected_score(top_logprobs: Sequence[Alternatives], scale: tuple[float, float],
                   chosen: Sequence[str] | None = None) -> Parsed:
    """G-Eval: the probability-weighted mean of the scale's values at the position where the answer
    gives its score (found in the text by the number-mode rule: [[N]], then a labelled score, then
    the last number). A value spanning several tokens ("10" as "1","0") gets the probability of the
    whole sequence; "7" and " 7" add up; the mean is normalised by the mass on valid values.

    top_logprobs: per generated position, the alternatives the endpoint listed; chosen: the token
    generated at each position (default: each position's likeliest)."""
    chosen = list(chosen) if chosen is not None else [max(p, key=lambda a: a[1])[0] if p else "" for p in top_logprobs]
    text = "".join(chosen)
    match = _score_match(text, "number")
    if match is None:
        return Parsed(None, error=f"{UNPARSED}: no score in the answer")
    pos, first = 0, 0
    for i, token in enumerate(chosen):  # the position whose token holds the score's first character
        if pos <= match.start(1) < pos + len(token):
            first = i
            break
        pos += len(token)
    prefix = text[pos:match.start(1)].strip()  # e.g. ":" when the tokenizer glued it on
    values = _scale_values(scale)
    probs, ambiguous = _value_probabilities(top_logprobs, chosen, first, prefix, values)
    parsed = score_from_distribution(probs)
    if parsed.score is not None and ambiguous > 0:
        parsed = Parsed(parsed.score, parsed.reason + f"; {ambiguous:.2f} left out (a digit whose number the "
                                                      "endpoint did not show)", flag=parsed.flag, mass=parsed.mass)
    return parsed


def _scale_values(scale: tuple[float, float]) -> dict[str, int]:
    lo, hi = scale
    return {str(k): k for k in range(math.ceil(lo), math.floor(hi) + 1)}


def _digits_after(token: str, prefix: str) -> tuple[str, bool] | None:
    """The digits a token holds at the score's position, and whether the number ends inside the token
    ("7." ends it, "1" may go on as "10"); None when it holds no number there."""
    token = token.strip()
    if prefix:
        if not token.startswith(prefix):
            return None
        token = token[len(prefix):].strip()
    match = _LEADING_DIGITS.match(token)
    if match is None or (match.group(2)[:1].isalnum()):  # "7th", "1²": not a score value
        return None
    return match.group(1), bool(match.group(2))


def _value_probabilities(top_logprobs, chosen, first: int, prefix: str,
                         values: dict[str, int]) -> tuple[dict[int, float], float]:
    """P(value) for each scale value, from the alternatives at the score's position and, for a number
    that may go on ("1" of "10"), at the next ones. The endpoint lists alternatives only along the
    path it generated, so a digit that may go on but was not generated cannot be split: its
    probability is returned as `ambiguous`, left out of the mass."""
    probs: dict[int, float] = {}
    ambiguous = 0.0

    def add(digits: str, p: float) -> None:
        if digits in values:
            probs[values[digits]] = probs.get(values[digits], 0.0) + p

    def walk(position: int, so_far: str, p_so_far: float) -> None:
        nonlocal ambiguous
        for token, logprob in top_logprobs[position]:
            p = p_so_far * math.exp(logprob)
            if position == first:
                found = _digits_after(token, prefix)
            elif token[:1].isascii() and token[:1].isdigit():
                found = _digits_after(token, "")
            else:
                add(so_far, p)  # the number ended before this token
                continue
            if found is None:
                continue
            digits, ended = so_far + found[0], found[1]
            if ended or not any(v != digits and v.startswith(digits) for v in values):
                add(digits, p)
            elif token == chosen[position] and position + 1 < len(top_logprobs):
                walk(position + 1, digits, p)
            else:
                ambiguous += p

    walk(first, "", 1.0)
    return probs, ambiguous


_YES = {"yes"}
_NO = {"no"}


def yes_probability(top_logprobs: Sequence[Alternatives], chosen: Sequence[str] | None = None) -> Parsed:
    """P(yes) / (P(yes) + P(no)) at the first position whose generated token is a yes or a no
    (any case, any leading space); mass = P(yes) + P(no) there."""
    chosen = list(chosen) if chosen is not None else [max(p, key=lambda a: a[1])[0] if p else "" for p in top_logprobs]
    for position, token in zip(top_logprobs, chosen):
        if token.strip().lower() not in _YES | _NO:
            continue
        yes = sum(math.exp(lp) for t, lp in position if t.strip().lower() in _YES)
        no = sum(math.exp(lp) for t, lp in position if t.strip().lower() in _NO)
        return yes_no_from_probabilities(yes, no)
    return Parsed(None, error=f"{UNPARSED}: no yes or no in the answer")


def yes_no_from_probabilities(yes: float, no: float) -> Parsed:
    mass = yes + no
    if mass <= 0:
        return Parsed(None, error=f"{UNPARSED}: yes and no have no probability")
    return Parsed(yes / mass, f"P(yes) {yes / mass:.2f} (mass {mass:.2f} on yes/no)", flag=_low_mass(mass),
                  mass=mass)


def score_from_distribution(probs: dict[int, float]) -> Parsed:
    mass = sum(probs.values())
    if mass <= 0:
        return Parsed(None, error=f"{UNPARSED}: the score values have no probability")
    score = sum(k * p for k, p in probs.items()) / mass
    shown = ", ".join(f"{k}: {p / mass:.2f}" for k, p in sorted(probs.items()))
    return Parsed(score, f"expected score over score tokens (mass {mass:.2f}): {shown}", flag=_low_mass(mass),
                  mass=mass)


def _low_mass(mass: float) -> str | None:
    if mass >= LOW_MASS:
        return None
    return f"low confidence: only {mass:.2f} of the probability is on valid answers"
