"""`studio judge` (score a JSONL of texts with one or two prompts, rate how well each separates a
positive from a negative group, compare them) and `studio eval` (score a run's control groups and
write RUN/eval/). studio/cli.py calls add_judge_parsers."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from studio.formatting import format_number
from studio.judge import (
    BASE,
    TARGET,
    JudgeCache,
    JudgeConfigError,
    JudgePrompt,
    answer_pairs,
    compare_prompts,
    load_prompt,
    load_texts,
    pairwise_stats,
    run_groups,
    run_judge_sync,
    run_pairwise,
)
from studio.judge.estimate import CONFIRM_ABOVE, estimate, totals
from studio.judge.labels import LabelStore
from studio.judge.rating import position_bias, retest
from studio.judge.report import comparison_lines, reference_lines, summary_text, write_eval, write_jsonl
from studio.judge.runner import retest_items


def _add_judge_options(p: argparse.ArgumentParser, default_prompt: str | None) -> None:
    p.add_argument("--prompt", action="append", default=None, metavar="TOML",
                   help="a judge prompt file or preset id (yoda, leprechaun, helpfulness, faithfulness); "
                        f"give two to compare them{f' (default: {default_prompt})' if default_prompt else ''}")
    p.add_argument("--base-url", help="override the prompt's endpoint URL (e.g. http://127.0.0.1:8000/v1); "
                                      "a different host gets no key unless --api-key-env names one")
    p.add_argument("--model", help="override the judge model")
    p.add_argument("--api-key-env", help="the environment variable holding the API key (the key itself is never "
                                         "taken on the command line)")
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight at once (default 8)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per request (default 60)")
    p.add_argument("--retries", type=int, default=4, help="retries on 429/5xx/timeouts (default 4)")
    p.add_argument("--no-cache", action="store_true", help="ask the judge again even for texts it already scored")
    p.add_argument("--yes", action="store_true", help="send the requests without asking, however many")
    p.add_argument("--confirm-above", type=int, default=CONFIRM_ABOVE, metavar="N",
                   help=f"ask before sending more than N requests (default {CONFIRM_ABOVE})")


def add_judge_parsers(subparsers) -> None:
    p = subparsers.add_parser("judge", help="score texts (JSONL rows with text and group) with LLM-judge prompts")
    p.add_argument("--texts", type=Path, required=True, help="JSONL: text, group, optional question, reference")
    p.add_argument("--out", type=Path, help="write one JSONL row per text and prompt here")
    p.add_argument("--positive", metavar="GROUP", help="the group that should score high (e.g. yoda), for the AUC "
                                                       "and the comparison (default: target, when present)")
    p.add_argument("--negative", metavar="GROUP", help="the group that should score low (e.g. plain) (default: base, "
                                                       "when present)")
    p.add_argument("--labels", type=Path, help="human labels (labels.jsonl) to measure each prompt's agreement with")
    p.add_argument("--samples", type=int, default=1, metavar="N",
                   help="judge every text N times and report the spread (test-retest, for temperature > 0)")
    _add_judge_options(p, None)
    p.set_defaults(func=judge_command)

    p = subparsers.add_parser("eval", help="generate a run's answers, judge the control groups, write RUN/eval/",
                              description="Generate a run's answers to its held-out questions and judge them beside "
                                          "the control groups (base, target; sft, the adapter a DPO run continued). "
                                          "A pairwise prompt (--prompt pairwise) judges each generated answer "
                                          "against the sft answer (or the base one) in both orders: the win rate.")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--texts", type=Path, help="judge these groups (JSONL) instead of generating them")
    p.add_argument("--limit", type=int, help="at most this many held-out questions")
    p.add_argument("--base-column", default="plain",
                   help="dataset column with the negative-control answers (default: plain; when absent, "
                        "the base model answers)")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--few-shot", type=int, nargs="?", const=3, default=0, metavar="K",
                   help="add a few-shot group: the base model answering with K target-style training examples "
                        "in its prompt (K default 3; never from the held-out split)")
    _add_judge_options(p, "yoda")
    p.set_defaults(func=eval_command)


def _prompts(args: argparse.Namespace, default: str | None) -> list[JudgePrompt]:
    sources = args.prompt or ([default] if default else [])
    if not sources:
        raise JudgeConfigError("give a judge prompt: --prompt yoda (or a TOML file)")
    if len(sources) > 2:
        raise JudgeConfigError("compare at most two prompts at a time")
    prompts = [load_prompt(s).with_endpoint(base_url=args.base_url, model=args.model, api_key_env=args.api_key_env)
               for s in sources]
    if len(prompts) == 2 and prompts[0].id == prompts[1].id:
        raise JudgeConfigError(f"both prompts are called {prompts[0].id!r}: give one an `id`")
    return prompts


def _show_progress(prompt_id: str):
    def show(p) -> None:
        end = "\n" if p.done == p.total else ""
        print(f"\r{prompt_id}: {p.done}/{p.total}  scored {p.scored}  unparsed {p.unparsed - p.out_of_range}"
              f"  out of range {p.out_of_range}  failed {p.failed}  cached {p.cached}", end=end, file=sys.stderr,
              flush=True)
    return show


def _score(prompt: JudgePrompt, items, args, cache):
    kwargs = dict(concurrency=args.concurrency, timeout=args.timeout, retries=args.retries, cache=cache,
                  on_progress=_show_progress(prompt.id))
    if prompt.parse == "pairwise":
        import asyncio

        return asyncio.run(run_pairwise(prompt, items, **kwargs))
    return run_judge_sync(prompt, items, **kwargs)


def _print_pairwise(prompt: JudgePrompt, forward, backward, first: str = "first answer") -> list:
    """A pairwise prompt's win and flip rates; returns every verdict (both orders)."""
    s = pairwise_stats(forward, backward)
    print(f"prompt {prompt.id} (pairwise, {s.n} pairs judged both ways, {s.unjudged} without a verdict)\n"
          f"  {first} wins {s.wins}, loses {s.losses}, ties {s.ties}, order flips {s.flips}\n"
          f"  win rate {s.win_rate if s.win_rate is None else round(s.win_rate, 3)}, "
          f"position-bias flip rate {s.flip_rate if s.flip_rate is None else round(s.flip_rate, 3)}")
    for b in position_bias(forward, backward).values():
        if b.first_wins is not None:
            print(f"  {b.group or '(none)'}: the answer shown first wins {b.first_wins:.2f} of verdicts "
                  f"(0.50 is unbiased), flip rate {b.flip_rate:.2f} (n={b.n})")
    print(f"  totals: {totals(forward + backward).describe()}")
    return forward + backward


def _confirm(prompts: list[JudgePrompt], items, args, cache) -> None:
    """Say what the run will send; above --confirm-above requests, ask first (or want --yes)."""
    estimates = [estimate(p, items, cache) for p in prompts]
    for prompt, e in zip(prompts, estimates):
        print(f"{prompt.id}: {e.describe()}", file=sys.stderr)
    requests = sum(e.requests for e in estimates)
    if args.yes or requests <= args.confirm_above:
        return
    if not sys.stdin.isatty():
        raise JudgeConfigError(f"{requests:,} requests is more than --confirm-above {args.confirm_above}: pass --yes "
                               "to send them")
    if input(f"send {requests:,} requests? [y/N] ").strip().lower() not in ("y", "yes"):
        raise JudgeConfigError("nothing sent")


def _groups(args: argparse.Namespace, items) -> tuple[str | None, str | None]:
    """The negative and positive control groups: as named, or base and target when the texts have them."""
    present = {item.group for item in items}
    if (args.negative is None) != (args.positive is None):
        raise JudgeConfigError("name both groups: --negative GROUP --positive GROUP")
    if args.negative is None:
        return (BASE, TARGET) if {BASE, TARGET} <= present else (None, None)
    for group in (args.negative, args.positive):
        if group not in present:
            raise JudgeConfigError(f"{args.texts}: no texts in group {group!r} (groups: "
                                   f"{', '.join(sorted(present)) or 'none'})")
    return args.negative, args.positive


def _run(command) -> int:
    try:
        return command()
    except JudgeConfigError as exc:
        print(f"judge: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: every answer received so far is in the cache; run the same command to continue",
              file=sys.stderr)
        return 130


def judge_command(args: argparse.Namespace) -> int:
    def command() -> int:
        prompts = _prompts(args, None)
        items = load_texts(args.texts)
        negative, positive = _groups(args, items)
        labels = LabelStore(args.labels) if args.labels else None
        if labels is not None and not args.labels.exists():
            raise JudgeConfigError(f"{args.labels}: no such labels file")
        if args.samples < 1:
            raise JudgeConfigError("--samples must be at least 1")
        cache = None if args.no_cache else JudgeCache()
        judged = retest_items(items, args.samples)
        _confirm(prompts, judged, args, cache)
        results = {}
        every = []
        for prompt in prompts:
            scored = _score(prompt, judged, args, cache)
            if prompt.parse == "pairwise":
                every += _print_pairwise(prompt, *scored)
                continue
            every += scored
            results[prompt.id] = scored[:len(items)]  # the first judgement of each text: the statistics' sample
            print(summary_text(prompt, results[prompt.id], negative, positive, labels))
            if args.samples > 1:
                r = retest(scored)
                spread = "-" if r.mean_sd is None else f"{r.mean_sd:.2f}"
                print(f"  test-retest over {r.samples} samples of {r.texts} texts (temperature "
                      f"{prompt.params.get('temperature', 0):g}): mean within-text sd {spread}, largest range "
                      f"{'-' if r.max_range is None else f'{r.max_range:g}'}, Spearman first vs second "
                      f"{'-' if r.rho is None else f'{r.rho:.2f}'}")
            print(f"  totals: {totals(scored).describe()}")
        if len(results) == 2:
            a, b = prompts
            if negative and positive:
                for line in comparison_lines(a, b, results[a.id], results[b.id], negative, positive):
                    print(line)
            cmp = compare_prompts(results[a.id], results[b.id], a.scale, b.scale, top=5)
            rho = format_number(cmp.spearman, 3)
            print(f"{a.id} vs {b.id}: Spearman {rho} over {cmp.n} texts; largest disagreements:")
            for x, y, gap in cmp.disagreements:
                print(f"  [{x.group}] {x.score:g} vs {y.score:g} (gap {gap:.2f}): {x.text[:80]!r}")
        if args.out:
            write_jsonl(every, args.out)
            print(f"wrote {len(every)} rows to {args.out}")
        return 0

    return _run(command)


def eval_command(args: argparse.Namespace) -> int:
    def command() -> int:
        prompts = _prompts(args, "yoda")
        scoring = [p for p in prompts if p.parse != "pairwise"]
        pairwise = [p for p in prompts if p.parse == "pairwise"]  # each generated answer against its sft (or base) one
        extra = []
        if args.texts:
            items = load_texts(args.texts)
        else:
            groups = run_groups(args.run_dir, base_column=args.base_column or None, limit=args.limit,
                                max_new_tokens=args.max_new_tokens, few_shot=args.few_shot,
                                progress=lambda m: print(m, file=sys.stderr, flush=True))
            items = groups.items
            extra = [line for line in [groups.perplexity_line()] if line]
        extra += reference_lines(items)
        print("\n".join(extra))
        pairs = answer_pairs(items) if pairwise else []
        cache = None if args.no_cache else JudgeCache()
        _confirm(scoring, items, args, cache)
        _confirm(pairwise, pairs, args, cache)
        results = {p.id: _score(p, items, args, cache) for p in scoring}
        for prompt in scoring:
            print(summary_text(prompt, results[prompt.id]))
            print(f"  totals: {totals(results[prompt.id]).describe()}")
        paths = []
        for prompt in pairwise:
            verdicts = _print_pairwise(prompt, *_score(prompt, pairs, args, cache),
                                       first=f"{pairs[0].group} (over {pairs[0].fields['versus']})")
            paths.append(args.run_dir / "eval" / f"pairwise-{prompt.id}.jsonl")
            write_jsonl(verdicts, paths[-1])
        if scoring:
            paths += write_eval(args.run_dir / "eval", scoring, results, title=f"Judge evaluation of {args.run_dir.name}",
                                extra=extra)
        print("wrote " + ", ".join(str(p) for p in paths))
        return 0

    return _run(command)
