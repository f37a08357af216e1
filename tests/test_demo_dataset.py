"""The demo dataset itself: well-formed rows, topic coverage, plain answers free of Yoda, Yoda answers
marked as Yoda, and a held-out style paragraph that shares no sentence with the training text.

Pure Python and fast: no torch, no tokenizer, no network.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parent.parent / "assets" / "demo"
ROWS_PATH = DEMO / "yoda.jsonl"
HELDOUT_PATH = DEMO / "style_heldout.txt"
FIELDS = ("id", "topic", "question", "plain", "yoda")

# Unmistakable Yoda: none may appear in a plain answer (the judge's negative control).
PLAIN_FORBIDDEN = [
    r"\bhm+\b",  # Hmm, Hmmm
    r"\bherh\b",
    r"\byou must\b",
    r"\bmust you\b",
    r"\bstrong with\b",
    r"\bmuch to learn\b",
    r"\bpadawan\b",
    r"\byoung one\b",
]

# What marks an answer as Yoda's: the forbidden markers, his other stock phrases, and the inverted
# clause that ends on its verb ("Canberra, the capital is." / "and sink they do.").
YODA_MARKERS = [
    *PLAIN_FORBIDDEN,
    r"\bpatience\b",
    r"\bpatient\b",
    r"\byes[.!]",  # "Yes." on its own, or "hmm, yes."
    r"\b(is|are|was|were|do|does|did|will|must)[.!?;]",
]


def read_rows() -> list[tuple[int, str]]:
    return list(enumerate(ROWS_PATH.read_text(encoding="utf-8").splitlines(), start=1))


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return [json.loads(line) for _, line in read_rows()]


def has_any(text: str, patterns: list[str]) -> list[str]:
    return [p for p in patterns if re.search(p, text, flags=re.IGNORECASE)]


def sentences(text: str) -> list[str]:
    """Sentences, lower-cased with punctuation and spacing normalised; very short ones ("Hmm.") skipped."""
    out = []
    for part in re.split(r"(?<=[.!?])\s+", text):
        norm = " ".join(re.sub(r"[^\w\s']", " ", part.lower()).split())
        if len(norm.split()) >= 4:
            out.append(norm)
    return out


def test_every_line_is_a_json_object_with_every_field_filled():
    lines = read_rows()
    assert lines, "the demo dataset is empty"
    for number, line in lines:
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            pytest.fail(f"yoda.jsonl:{number}: not valid JSON ({exc})")
        assert isinstance(row, dict), f"yoda.jsonl:{number}: not an object"
        for field in FIELDS:
            value = row.get(field)
            assert isinstance(value, str) and value.strip(), f"yoda.jsonl:{number}: {field!r} missing or empty"


def test_ids_are_unique(rows):
    repeated = [i for i, n in Counter(r["id"] for r in rows).items() if n > 1]
    assert not repeated, f"repeated ids: {repeated}"


def test_questions_are_unique_ignoring_case(rows):
    counts = Counter(" ".join(r["question"].lower().split()) for r in rows)
    repeated = [q for q, n in counts.items() if n > 1]
    assert not repeated, f"repeated questions: {repeated}"


def test_there_are_enough_rows_over_enough_topics(rows):
    assert len(rows) >= 200
    per_topic = Counter(r["topic"] for r in rows)
    big = {t: n for t, n in per_topic.items() if n >= 10}
    assert len(big) >= 10, f"topics with >= 10 rows: {big} (all: {dict(per_topic)})"


def test_answers_are_short(rows):
    for r in rows:
        for field in ("plain", "yoda"):
            words = len(r[field].split())
            assert 12 <= words <= 70, f"{r['id']}: {field} has {words} words"


def test_plain_answers_carry_no_yoda_markers(rows):
    offenders = {r["id"]: has_any(r["plain"], PLAIN_FORBIDDEN) for r in rows}
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, f"plain answers that sound like Yoda: {offenders}"


def test_yoda_answers_are_marked_as_yoda(rows):
    unmarked = [r["id"] for r in rows if not has_any(r["yoda"], YODA_MARKERS)]
    assert len(unmarked) <= 0.10 * len(rows), f"{len(unmarked)} of {len(rows)} Yoda answers carry no marker: {unmarked}"


def test_the_markers_tell_the_two_styles_apart(rows):
    """The Yoda markers must be about Yoda: plain English should rarely trip them."""
    tripped = [r["id"] for r in rows if has_any(r["plain"], YODA_MARKERS)]
    assert len(tripped) <= 0.05 * len(rows), f"plain answers matching a Yoda marker: {tripped}"


def test_yoda_answers_differ_from_plain_ones(rows):
    same = [r["id"] for r in rows if " ".join(r["plain"].split()) == " ".join(r["yoda"].split())]
    assert not same, f"Yoda answer identical to the plain one: {same}"


def test_the_held_out_paragraph_is_yoda_and_shares_no_sentence_with_the_dataset(rows):
    text = HELDOUT_PATH.read_text(encoding="utf-8").strip()
    assert "\n\n" not in text, "the held-out text should be one paragraph"
    assert 120 <= len(text.split()) <= 250
    assert has_any(text, YODA_MARKERS)
    seen = {s for r in rows for field in ("question", "plain", "yoda") for s in sentences(r[field])}
    shared = [s for s in sentences(text) if s in seen]
    assert not shared, f"held-out sentences also in the dataset: {shared}"
