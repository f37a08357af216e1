"""`studio pairs RUN --prompt yoda --n 4 --out pairs.jsonl`: preference pairs from the run's own answers,
judged (studio.pairs does the work; the judge options are `studio judge`'s)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from studio.judge_cli import _add_judge_options, _confirm, _prompts, _run, _show_progress


def add_pairs_parser(subparsers) -> None:
    p = subparsers.add_parser("pairs", help="sample a run's answers, judge them, write best-vs-worst preference "
                                            "pairs for DPO")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--out", type=Path, help="the pairs JSONL (default: RUN/pairs.jsonl)")
    p.add_argument("--n", type=int, default=4, help="answers sampled per question (default 4)")
    p.add_argument("--min-margin", type=float,
                   help="the least score difference between chosen and rejected (default: a ninth of the judge's "
                        "scale, 1 on 1-10)")
    p.add_argument("--local", action="store_true",
                   help="judge in this process with the local judge (the embedded model unless --model names "
                        "another; the yes/no prompt unless --prompt names another): no endpoint, no key")
    p.add_argument("--temperature", type=float, default=0.8, help="sampling temperature (default 0.8)")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=8, help="prompts generated at once (default 8)")
    p.add_argument("--limit", type=int, help="at most this many training questions")
    p.add_argument("--length-balance", type=float, metavar="RATIO",
                   help="keep only pairs whose longer answer is at most RATIO times the shorter (e.g. 1.2)")
    _add_judge_options(p, "yoda")
    p.set_defaults(func=pairs_command)


def pairs_command(args: argparse.Namespace) -> int:
    from studio import pairs
    from studio.judge.offline import LOCAL_MODEL, OFFLINE_PROMPT, local_prompt

    def command() -> int:
        prompt, *others = _prompts(args, OFFLINE_PROMPT if args.local else "yoda")
        if others:
            raise pairs.PairsError("give one judge prompt that scores answers one by one (not pairwise)")
        if args.local:
            prompt = local_prompt(prompt, model=args.model or LOCAL_MODEL)
        settings = pairs.PairSettings(n=args.n, limit=args.limit, temperature=args.temperature,
                                      max_new_tokens=args.max_new_tokens, seed=args.seed, batch_size=args.batch_size,
                                      min_margin=args.min_margin, length_balance=args.length_balance)
        chosen, report, out = pairs.make_pairs(
            args.run_dir, prompt, settings, out=args.out, confirm=lambda items: _confirm([prompt], items, args, None),
            on_sampled=lambda done, total: print(f"\rsampled {done}/{total} answers", end="\n" if done == total else "",
                                                 file=sys.stderr, flush=True),
            concurrency=args.concurrency, timeout=args.timeout, retries=args.retries,
            on_progress=_show_progress(prompt.id))
        print(report.summary())
        print(f"wrote {out}: train on it with --set train.method=dpo --set data.dataset={out} "
              f"--set model.adapter={args.run_dir / 'adapter'}")
        return 0 if chosen else 1

    return _run(command)
