"""Which judge works best offline? The embedded SmolLM2-135M and any GGUF model given with --gguf
(such as those PyPI packages ship: Gemma-3-270M, Qwen2.5-Coder-0.5B-Instruct), scored with the
in-process judge in two ways: the shipped yoda prompt on its 1-10 scale (expected score over the
scale's values) and the yes/no prompt (the probability of "yes"), on the demo's held-out questions:
their plain answers (negative control) against their Yoda answers (positive control).

Prints one row per judge: AUC with its 95% bootstrap interval, the group means, seconds per text,
and each judge's AUC difference from the baseline on the same texts (the embedded SmolLM2-135M on the
1-10 scale, the default before issue 10) with its paired bootstrap interval. CPU-heavy: run it alone, e.g.

    flock /work/heavy.lock env OMP_NUM_THREADS=2 python bench/offline_judges.py --questions 60

--only NAME runs some judges (names as printed), --method picks 1-10 or yes/no, --gguf NAME=PATH adds a
GGUF file as a candidate. --results DIR keeps each judge's scores there and prints the table over every
judge kept for the same texts, with each judge's paired AUC difference against the baseline (the same
texts resampled for both), so judges can be measured one at a time and compared together.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from studio.judge import Endpoint, JudgeItem, JudgeResult, LocalJudge, load_prompt, run_judge_sync
from studio.judge.offline import LOCAL_MODEL
from studio.judge.rating import paired_difference, separation

METHODS = {"1-10": "yoda", "yes/no": "yoda-yesno"}


def held_out_items(questions: int) -> list[JudgeItem]:
    """Plain and Yoda answers to the demo's held-out questions (the split training uses, widened so
    that `questions` of them are held out)."""
    from studio import data
    from studio.config import DataConfig
    from studio.models import load_tokenizer

    cfg = DataConfig(dataset="demo", eval_fraction=0.3, eval_max_rows=max(questions, 1))
    held = data.prepare(cfg, load_tokenizer("HuggingFaceTB/SmolLM2-135M-Instruct")).eval_questions[:questions]
    rows = {row["question"]: row for row in data.load_rows(cfg)}
    items = []
    for chat in held:
        row = rows[chat[-1]["content"]]
        items += [JudgeItem(row["plain"], "plain", question=row["question"]),
                  JudgeItem(row["yoda"], "yoda", question=row["question"])]
    return items


def measure(name: str, model_path: str, method: str, items: list[JudgeItem]) -> dict:
    prompt = load_prompt(METHODS[method])
    prompt = dataclasses.replace(prompt, parse="yesno" if method == "yes/no" else "logprobs",
                                 endpoint=Endpoint(backend="local", model=model_path))
    judge = LocalJudge(model_path, device="cpu")
    run_judge_sync(prompt, items[:1], judge=judge)  # load the model outside the timing
    start = time.perf_counter()
    results = run_judge_sync(prompt, items, judge=judge)
    seconds = (time.perf_counter() - start) / len(items)
    s = separation(results, prompt.scale, "plain", "yoda")
    means = {g: sum(r.score for r in results if r.group == g and r.score is not None) /
             max(1, sum(r.group == g and r.score is not None for r in results)) for g in ("plain", "yoda")}
    return {"judge": f"{name}, {method}", "auc": s.auc, "ci": s.ci, "plain": means["plain"], "yoda": means["yoda"],
            "seconds": seconds, "verdict": s.verdict, "failed": sum(r.score is None for r in results),
            "scores": [r.score for r in results]}


def _texts_id(items: list[JudgeItem]) -> str:
    return hashlib.sha256("\n".join(f"{i.group}\t{i.text}" for i in items).encode()).hexdigest()[:12]


def _kept(results_dir: Path | None, items: list[JudgeItem], rows: list[dict]) -> list[dict]:
    """Save this run's rows and return every row kept for these texts (this run's last)."""
    if results_dir is None:
        return rows
    results_dir.mkdir(parents=True, exist_ok=True)
    texts = _texts_id(items)
    for row in rows:
        slug = re.sub(r"[^A-Za-z0-9.]+", "-", row["judge"])
        (results_dir / f"{texts}-{slug}.json").write_text(json.dumps(row))
    fresh = {r["judge"] for r in rows}
    kept = [json.loads(p.read_text()) for p in sorted(results_dir.glob(f"{texts}-*.json"))]
    return [r for r in kept if r["judge"] not in fresh] + rows


def _as_results(row: dict, items: list[JudgeItem]) -> list[JudgeResult]:
    return [JudgeResult(item, row["judge"], "local", row["judge"], score=score, raw="")
            for item, score in zip(items, row["scores"])]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=60)
    parser.add_argument("--only", action="append", default=None, metavar="NAME")
    parser.add_argument("--gguf", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--method", action="append", choices=list(METHODS), default=None)
    parser.add_argument("--results", type=Path, default=None, metavar="DIR")
    args = parser.parse_args()
    candidates = [("SmolLM2-135M", LOCAL_MODEL)] + [tuple(spec.split("=", 1)) for spec in args.gguf]
    items = held_out_items(args.questions)
    print(f"{len(items) // 2} held-out demo questions: {len(items) // 2} plain vs {len(items) // 2} Yoda answers, "
          "in-process judge on CPU")
    rows = []
    for name, model in candidates:
        for method in args.method or METHODS:
            label = f"{name}, {method}"
            if args.only and not any(o in label for o in args.only):
                continue
            rows.append(measure(name, model, method, items))
            print(f"  measured {label}: AUC {rows[-1]['auc']:.3f}", file=sys.stderr, flush=True)
    rows = _kept(args.results, items, rows)
    if not rows:
        print("no judge measured")
        return 1
    baseline = next((r for r in rows if r["judge"] == "SmolLM2-135M, 1-10"), rows[0])
    base_results = _as_results(baseline, items)
    print(f"{'judge':34} {'AUC':>6} {'95% CI':>13} {'plain':>6} {'yoda':>6} {'s/text':>7}  AUC - baseline (95% CI)")
    for r in rows:
        d = paired_difference(base_results, _as_results(r, items), "plain", "yoda")
        print(f"{r['judge']:34} {r['auc']:6.3f} {r['ci'][0]:6.3f}..{r['ci'][1]:<5.3f} {r['plain']:6.2f} "
              f"{r['yoda']:6.2f} {r['seconds']:7.2f}  {d.difference:+.3f} ({d.ci[0]:+.3f}..{d.ci[1]:+.3f})")
    print(f"(baseline: {baseline['judge']}; s/text as measured in each judge's own run)")
    for r in rows:
        print(f"  {r['judge']}: {r['verdict']}" + (f"; {r['failed']} texts without a score" if r["failed"] else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
