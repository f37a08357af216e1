"""Which judge works best offline? Each local model that an installed package ships, scored with the
in-process judge in two ways: the shipped yoda prompt on its 1-10 scale (expected score over the
scale's values) and the yes/no prompt (the probability of "yes"), on the demo's held-out questions:
their plain answers (negative control) against their Yoda answers (positive control).

Prints one row per judge: AUC with its 95% bootstrap interval, the group means, seconds per text,
and the AUC and speed against the baseline measured in the same run (the embedded SmolLM2-135M on
the 1-10 scale, the default before issue 10). CPU-heavy: run it alone, e.g.

    flock /work/heavy.lock env OMP_NUM_THREADS=2 python bench/offline_judges.py --questions 60

--only NAME runs some judges (names as printed), --method picks 1-10 or yes/no, --gguf NAME=PATH adds a
GGUF file as a candidate.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from studio.judge import Endpoint, JudgeItem, LocalJudge, load_prompt, run_judge_sync, separation
from studio.judge.offline import LOCAL_MODELS

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
            "seconds": seconds, "verdict": s.verdict, "failed": sum(r.score is None for r in results)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=60)
    parser.add_argument("--only", action="append", default=None, metavar="NAME")
    parser.add_argument("--gguf", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--method", action="append", choices=list(METHODS), default=None)
    args = parser.parse_args()
    candidates = [(m.name, m) for m in LOCAL_MODELS if m.available()]
    candidates += [(spec.split("=", 1)[0], spec.split("=", 1)[1]) for spec in args.gguf]
    items = held_out_items(args.questions)
    print(f"{len(items) // 2} held-out demo questions: {len(items) // 2} plain vs {len(items) // 2} Yoda answers, "
          "in-process judge on CPU")
    rows = []
    for name, model in candidates:
        path = model if isinstance(model, str) else model.ref()
        for method in args.method or METHODS:
            label = f"{name}, {method}"
            if args.only and not any(o in label for o in args.only):
                continue
            rows.append(measure(name, str(path), method, items))
            print(f"  measured {label}: AUC {rows[-1]['auc']:.3f}", file=sys.stderr, flush=True)
    baseline = next((r for r in rows if r["judge"] == f"{LOCAL_MODELS[-1].name}, 1-10"), rows[0] if rows else None)
    print(f"{'judge':42} {'AUC':>6} {'95% CI':>13} {'plain':>6} {'yoda':>6} {'s/text':>7} {'dAUC':>6} {'speed':>6}")
    for r in rows:
        print(f"{r['judge']:42} {r['auc']:6.3f} {r['ci'][0]:6.3f}..{r['ci'][1]:<5.3f} {r['plain']:6.2f} "
              f"{r['yoda']:6.2f} {r['seconds']:7.2f} {r['auc'] - baseline['auc']:+6.3f} "
              f"{baseline['seconds'] / r['seconds']:5.2f}x")
    print(f"(dAUC and speed against {baseline['judge']}, measured in this run)")
    for r in rows:
        print(f"  {r['judge']}: {r['verdict']}" + (f"; {r['failed']} texts without a score" if r["failed"] else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
