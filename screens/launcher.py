"""The `studio` command: the app for `studio` and `studio watch DIR`, the engine for everything else.

    studio              the app on the embedded default config
    studio --config F   the app with the run config F in the Train pane's form
    studio watch DIR    the app on a run directory (live if it still trains)
    studio SUBCOMMAND   headless, in studio.cli (train, resume, runs, control, chat, export, judge, eval)

The entry point lives on the UI side so the engine never imports the UI. The app is imported only
when it opens: a headless command does not pay for Textual.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from studio import cli
from studio.run_state import RunState
from studio.terminal import detach_terminal, threads_sleep_while_waiting


def main(argv: list[str] | None = None) -> int:
    threads_sleep_while_waiting()  # before torch loads (the app loads it when a run starts)
    args = cli.build_parser().parse_args(argv)  # one parser: `studio --help` lists every command
    if args.command is None:
        return run_studio(config=args.config)
    if args.command == "watch":
        return run_studio(watch=args.run_dir)
    return cli.main(argv)


def run_studio(watch: Path | None = None, config: Path | None = None) -> int:
    """The app. Returns when it has closed and no run of this process trains."""
    from screens.app import StudioApp
    from screens.state import StudioState
    from studio.config import ConfigError, RunConfig

    state = None
    if config is not None:
        try:
            state = StudioState(config=RunConfig.load(config))
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    app = StudioApp(watch=watch, handle_signals=True, state=state)
    app.run()
    run = app.state.training_run
    if run is None or not run.alive:
        return 0
    return _train_on_headless(run, quiet=app.detached, stopping=app.exit_choice == "stop")


def _train_on_headless(run, quiet: bool, stopping: bool) -> int:
    """The app has closed but this process trains: stay alive until the run ends.

    SIGHUP lets go of the terminal and trains on; SIGTERM and Ctrl+C stop the run (checkpoint and
    adapter saved), then the process ends.
    """

    def say(text: str) -> None:
        if not quiet:
            print(text, flush=True)

    def on_signal(signum, _frame) -> None:
        nonlocal quiet
        if signum == signal.SIGHUP:
            detach_terminal()
            quiet = True
            return
        say(f"{signal.Signals(signum).name}: stopping at the end of this step (checkpoint and adapter)...")
        run.stop()

    for signum in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    root = run.paths.root
    if stopping:
        say(f"stopping {root}: saving a checkpoint and the adapter...")
    else:
        say(f"training goes on in this process (pid {os.getpid()}): {root}\n"
            f"  watch it:  studio watch {root}\n"
            f"  stop it:   studio control {root} stop   (or Ctrl+C here)")
    while not run.join(timeout=0.5):
        pass
    say(f"{run.state}: {root}" + (f"\n{run.error}" if run.error else ""))
    return 1 if run.state == RunState.FAILED else 0


if __name__ == "__main__":
    raise SystemExit(main())
