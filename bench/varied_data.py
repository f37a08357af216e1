"""A varied-length instruction dataset made from the demo's text, for benches that need rows like real
instruction data (short and long, a long right tail) rather than the demo's even ones. Works offline.

Each row's content length in tokens is drawn from a log-normal distribution (median 120, sigma 0.8: p10
about 45, p90 about 330) clipped to 20..1000; a random share of it is the question, the rest the answer.
The text is running demo prose (questions, plain and Yoda answers, about 18k tokens), cut at token boundaries.

    rows = varied_rows(10_000, tokenizer)        # [{"question": ..., "yoda": ...}, ...], all distinct
    python bench/varied_data.py [--rows 5000]    # prints the length percentiles and a histogram
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

LOW, HIGH = 20, 1000  # tokens per row (question and answer contents, without the template)


def varied_rows(count: int, tokenizer, seed: int = 0, median: float = 120.0, sigma: float = 0.8) -> list[dict]:
    """`count` distinct question/answer rows whose content lengths (tokens of question + answer) follow a
    log-normal distribution clipped to [LOW, HIGH]."""
    from studio.data import DEMO_ROWS

    rng = random.Random(seed)
    demo = [json.loads(line) for line in DEMO_ROWS.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = [row[key] for row in demo for key in ("question", "plain", "yoda")]
    rng.shuffle(texts)
    prose = " ".join(texts)
    offsets = tokenizer(prose, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    rows = []
    for n in range(count):
        length = min(HIGH, max(LOW, round(rng.lognormvariate(0.0, sigma) * median)))
        asked = max(4, round(length * rng.uniform(0.15, 0.5)))
        question = _cut(prose, offsets, rng.randrange(len(offsets) - asked), asked)
        answer = _cut(prose, offsets, rng.randrange(len(offsets) - (length - asked)), length - asked)
        rows.append({"question": f"{question}? (#{n})", "yoda": answer})
    return rows


def _cut(prose: str, offsets: list, start: int, tokens: int) -> str:
    """The prose's `tokens` tokens from token `start` on, as text."""
    return prose[offsets[start][0]:offsets[start + tokens - 1][1]].strip()


def main() -> None:
    import numpy as np

    from studio import models

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--model", default="HuggingFaceTB/SmolLM2-135M-Instruct")
    args = parser.parse_args()
    tokenizer = models.load_tokenizer(args.model)
    rows = varied_rows(args.rows, tokenizer)
    texts = [row["question"] + " " + row["yoda"] for row in rows]
    lengths = np.array([len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]])
    print("tokens per row: " + ", ".join(f"p{q} {int(np.percentile(lengths, q))}" for q in (10, 50, 90, 99))
          + f", min {lengths.min()}, max {lengths.max()}")
    edges = [LOW, 40, 80, 160, 320, 640, HIGH + 10]
    counts, _ = np.histogram(lengths, bins=edges)
    for low, high, n in zip(edges, edges[1:], counts):
        print(f"  {low:4d}-{high - 1:<4d} {n:6d} {'#' * round(60 * n / counts.max())}")
    assert len({row["question"] for row in rows}) == len(rows), "rows must be distinct"
    assert LOW - 5 <= lengths.min() and lengths.max() <= HIGH + 20, "lengths outside 20..1000 tokens"


if __name__ == "__main__":
    main()
