"""The `studio` command's headless subcommands.

The `studio` console script is `screens.launcher`: it opens the app for `studio` and `studio watch`
and hands every other subcommand to `main` here, so the engine never imports the UI.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from studio.config import DEFAULT_MODEL, ConfigError, RunConfig
from studio.errors import StudioError
from studio.paths import runs_dir
from studio.runs import RunPaths
from studio.terminal import threads_sleep_while_waiting


def build_parser() -> argparse.ArgumentParser:
    from studio.judge_cli import add_judge_parsers
    from studio.pairs_cli import add_pairs_parser

    parser = argparse.ArgumentParser(prog="studio", description="Fine-tune chat LLMs with LoRA and judge them.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    parser.add_argument("--config", type=Path, metavar="TOML",
                        help="open the app with this run config in the Train pane's form")
    sub = parser.add_subparsers(dest="command")

    p = sub.add_parser("train", help="fine-tune headless (default: the embedded model on the demo data)")
    p.add_argument("config", nargs="?", help="a run config TOML (default: the built-in defaults)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config value, e.g. --set train.max_steps=50 (repeatable)")
    p.add_argument("--run-dir", type=Path, help="where to write the run (default: runs/<name>)")
    p.add_argument("--gpus", type=int, metavar="N",
                   help="train data-parallel on N processes, one per GPU (= --set train.gpus=N)")
    p.set_defaults(func=train_command)

    p = sub.add_parser("resume", help="continue a run from its last valid checkpoint")
    p.add_argument("run_dir", type=Path)
    p.set_defaults(func=resume_command)

    p = sub.add_parser("runs", help="list runs")
    p.add_argument("--root", type=Path, default=None, help="folder of runs (default: runs/ or $STUDIO_RUNS)")
    p.set_defaults(func=runs_command)

    p = sub.add_parser("sweep", help="train a grid of runs (--set key=v1,v2 ...), then compare them")
    p.add_argument("config", nargs="?", help="a run config TOML (default: the built-in defaults)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=V1,V2",
                   help="a value, or several comma-separated ones to sweep (repeatable: the grid is every combination)")
    p.add_argument("--sweep-dir", type=Path, help="the sweep's folder (default: runs/sweep-TIME); the same "
                                                  "command with the same folder continues the sweep")
    p.add_argument("--parallel", type=int, default=1, metavar="N", help="runs at once, one GPU each (default 1)")
    p.set_defaults(func=sweep_command)

    p = sub.add_parser("compare", help="compare runs: a table of final figures, config differences, a PNG of curves")
    p.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN")
    p.add_argument("--x", choices=["step", "tokens"], default="step", help="the curves' x axis (default: step)")
    p.add_argument("--png", type=Path, help="where to write the curves (default: studio-exports/compare-TIME.png)")
    p.set_defaults(func=compare_command)

    p = sub.add_parser("control", help="pause, resume, stop or checkpoint a run training in another process")
    p.add_argument("run_dir", type=Path)
    p.add_argument("action", choices=["pause", "resume", "stop", "checkpoint"])
    p.set_defaults(func=control_command)

    p = sub.add_parser("chat", help="chat in the terminal with a run's adapted model, or a base model")
    p.add_argument("run_dir", type=Path, nargs="?")
    p.add_argument("--model", help=f"chat with a base model instead (e.g. {DEFAULT_MODEL})")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--repetition-penalty", type=float, default=1.1,
                   help="above 1 discourages the loops small models fall into (default 1.1; 1 = off)")
    p.set_defaults(func=chat_command)

    p = sub.add_parser("export", help="write a merged standalone model, or push it to the hub")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--merge", type=Path, metavar="OUT", help="folder for the merged model")
    p.add_argument("--push-to-hub", metavar="REPO", help="push the merged model to this hub repo")
    p.set_defaults(func=export_command)

    p = sub.add_parser("watch", help="open the app on a run directory (live if it is still training)")
    p.add_argument("run_dir", type=Path)  # opened by screens.launcher, like `studio` with no command

    add_judge_parsers(sub)
    add_pairs_parser(sub)
    return parser


def package_version() -> str:
    try:
        return version("finetune-studio")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "(not installed)"


def main(argv: list[str] | None = None) -> int:
    threads_sleep_while_waiting()
    args = build_parser().parse_args(argv)
    if args.command in (None, "watch"):  # the app's commands: the engine has no UI
        print("the app opens with the `studio` command: `studio`, or `studio watch RUN_DIR`", file=sys.stderr)
        return 2
    try:
        return args.func(args) or 0
    except ConfigError as exc:  # a wrong value on the command line or in a config file
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except StudioError as exc:  # something the user can fix: the message says what
        print(f"error: {exc}", file=sys.stderr)
        return 1


# -- training -----------------------------------------------------------------------------------


def train_command(args: argparse.Namespace) -> int:
    from studio import distributed, headless
    from studio.runs import new_run_dir
    from studio.train import TrainingRun

    cfg = RunConfig.load(args.config) if args.config else RunConfig()
    cfg = cfg.with_overrides(args.overrides + ([f"train.gpus={args.gpus}"] if args.gpus else []))
    if distributed.world_size() > 1:  # one of the processes torchrun (or `launch`) started
        distributed.init()
        cfg = cfg.with_overrides([f"train.gpus={distributed.world_size()}"])  # what really trains it
        run_dir = distributed.broadcast(args.run_dir or new_run_dir(cfg, runs_dir()))  # rank 0's name
        return headless.drive(TrainingRun(cfg, run_dir))
    run_dir = args.run_dir or new_run_dir(cfg, runs_dir())
    if cfg.train.gpus > 1:
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg.with_local_paths_resolved().save(RunPaths(run_dir).config)
        return headless.launch(run_dir, cfg.train.gpus, resume=False)
    return headless.drive(TrainingRun(cfg, run_dir))


def resume_command(args: argparse.Namespace) -> int:
    from studio import distributed, headless
    from studio.runs import load_config
    from studio.train import TrainingRun

    cfg = load_config(args.run_dir)
    if distributed.world_size() > 1:
        distributed.init()
    elif cfg.train.gpus > 1:
        return headless.launch(args.run_dir, cfg.train.gpus, resume=True)
    return headless.drive(TrainingRun(cfg, args.run_dir, resume=True))


def runs_command(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from studio.formatting import format_number
    from studio.runs import list_runs

    root = args.root or runs_dir()
    found = list_runs(root)
    if not found:
        print(f"no runs in {root}/ yet: `studio train` makes one")
        return 0
    table = Table("name", "model", "dataset", "steps", "loss", "held-out", "style", "status")

    for r in found:
        table.add_row(r.name, r.model, r.dataset, f"{r.step}/{r.max_steps}", format_number(r.last_loss, 3),
                      format_number(r.eval_loss, 3), format_number(r.style_loss, 3),
                      r.status + (" (live)" if r.alive else ""))
    Console().print(table)
    return 0


def sweep_command(args: argparse.Namespace) -> int:
    import shlex
    import time

    from studio.sweep import run_sweep

    cfg = RunConfig.load(args.config) if args.config else RunConfig()
    sweep_dir = args.sweep_dir or runs_dir() / f"sweep-{time.strftime('%Y%m%d-%H%M%S')}"
    again = shlex.join(["studio", "sweep", *([args.config] if args.config else []),
                        *[arg for s in args.overrides for arg in ("--set", s)], "--sweep-dir", str(sweep_dir)])
    print(f"sweep in {sweep_dir}; to continue it after a stop: {again}", flush=True)
    run_dirs = run_sweep(cfg, args.overrides, sweep_dir, args.parallel)
    present = [d for d in run_dirs if RunPaths(d).events.exists()]
    if present:
        print_comparison(present, sweep_dir / "compare.png", "step")
    return 0


def compare_command(args: argparse.Namespace) -> int:
    import time

    png = args.png or Path("studio-exports") / f"compare-{time.strftime('%Y%m%d-%H%M%S')}.png"
    print_comparison(args.run_dirs, png, args.x)
    return 0


def print_comparison(run_dirs: list[Path], png: Path, x: str) -> None:
    """The compare table, the config differences and the curves' PNG of these runs."""
    from rich.console import Console
    from rich.table import Table

    from studio.compare import config_differences, load_run, plot_curves, table_rows

    runs = [load_run(path) for path in run_dirs]
    header, rows = table_rows(runs)
    table = Table(*header)
    for row in rows:
        table.add_row(*row)
    console = Console()
    console.print(table)
    differences = config_differences(runs)
    if differences:
        diff = Table("config", *[run.name for run in runs], title="what the configs differ in")
        for key, values in differences.items():
            diff.add_row(key, *[str(v) for v in values])
        console.print(diff)
    else:
        console.print("the configs are the same (but for the run names)")
    console.print(f"curves by {x}: {plot_curves(runs, png, x=x)}")


def control_command(args: argparse.Namespace) -> int:
    from studio.runs import is_alive, send_command

    if not is_alive(args.run_dir):
        print(f"{args.run_dir}: no process is training this run (use `studio resume {args.run_dir}`)",
              file=sys.stderr)
        return 1
    send_command(args.run_dir, args.action)
    print(f"sent {args.action} to {args.run_dir}")
    return 0


# -- using the result ---------------------------------------------------------------------------


def chat_command(args: argparse.Namespace) -> int:
    from studio import models, sampling
    from studio.config import ModelConfig

    if (args.run_dir is None) == (args.model is None):
        print("give a run directory, or --model NAME", file=sys.stderr)
        return 2
    print("loading…", flush=True)
    if args.run_dir is not None:
        from studio.runs import load_adapted_model

        model, tokenizer = load_adapted_model(args.run_dir)
        label = f"{args.run_dir} (adapted)"
    else:
        tokenizer = models.load_tokenizer(args.model)
        model = models.load_model(ModelConfig(name=args.model))
        label = args.model
    print(f"chatting with {label} (temperature {args.temperature or 'greedy'}, repetition_penalty "
          f"{args.repetition_penalty}). /reset clears the history, Ctrl-D quits.")
    history: list[dict[str, str]] = []
    while True:
        try:
            text = input("you> ").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if text == "/reset":
            history.clear()
            continue
        if not text:
            continue
        history.append({"role": "user", "content": text})
        answer = sampling.generate(model, tokenizer, [history], args.max_new_tokens, args.temperature or None,
                                   repetition_penalty=args.repetition_penalty)[0]
        history.append({"role": "assistant", "content": answer})
        print(f"model> {answer}")


def export_command(args: argparse.Namespace) -> int:
    from studio.export import ExportError, merge, push_to_hub

    if not args.merge and not args.push_to_hub:
        print("say what to export: --merge OUT and/or --push-to-hub REPO", file=sys.stderr)
        return 2
    try:
        out, note = merge(args.run_dir, args.merge)
        print(f"merged model written to {out}: {note}")
        if args.push_to_hub:
            url = push_to_hub(out, args.push_to_hub)
            print(f"pushed to {url}")
    except ExportError as exc:
        print(f"error: export failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
