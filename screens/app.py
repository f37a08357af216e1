"""The studio app: five panes in tabs, app-wide state, the command palette, and the process's signals.

`screens.launcher` opens it (`studio`, `studio watch DIR`). Nothing here imports torch or
transformers: the app opens at once, and the trainer is imported on a worker thread when a run starts.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Footer, Input, TabbedContent, TabPane, TextArea

from screens.histogram import HistogramPane
from screens.judge import JudgePane
from screens.monitor import MonitorPane
from screens.state import StateChanged, StudioState
from screens.template_editor import TemplatePane
from screens.tokenizer import TokenizerPane
from screens.widgets.dialogs import HelpScreen, KeySection, QuitDialog
from screens.workers import WorkerFailed
from studio.judge import SessionKeys
from studio.paths import ASSETS
from studio.terminal import detach_terminal

# (tab id, tab title, pane class), in tab order; keys 1-5 follow it.
PANES = (
    ("train", "Train", MonitorPane),
    ("tokens", "Tokens", TokenizerPane),
    ("template", "Template", TemplatePane),
    ("judge", "Judge", JudgePane),
    ("scores", "Scores", HistogramPane),
)


def own_bindings(node: Widget) -> list[Binding]:
    """The keys a studio class declares; Textual's own widgets' keys (Input's, DataTable's) are left out."""
    found = []
    for cls in type(node).__mro__:
        if cls.__module__.startswith("screens.") and "BINDINGS" in cls.__dict__:
            found.extend(Binding.make_bindings(cls.__dict__["BINDINGS"]))
    return found


def pane_actions(pane: Widget) -> list[tuple[Widget, Binding]]:
    """Every key of a pane and of the studio widgets inside it, with the widget that handles it."""
    seen, found = set(), []
    for node in [pane, *pane.query("*")]:
        for binding in own_bindings(node):
            if (type(node), binding.action) not in seen:
                seen.add((type(node), binding.action))
                found.append((node, binding))
    return found


class StudioCommands(Provider):
    """Ctrl+P: every pane's actions by name, plus switching panes and help."""

    async def discover(self) -> Hits:
        for name, help, command in self.app.palette_entries():
            yield DiscoveryHit(name, command, help=help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help, command in self.app.palette_entries():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), command, help=help)


class StudioApp(App):
    CSS_PATH = str(ASSETS / "studio.tcss")
    TITLE = "finetune-studio"
    COMMANDS = App.COMMANDS | {StudioCommands}
    BINDINGS = [
        *(Binding(str(n), f"show_pane('{pane_id}')", f"{title} pane", show=False)
          for n, (pane_id, title, _) in enumerate(PANES, 1)),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit", show=False),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(self, watch: Path | None = None, handle_signals: bool = False,
                 state: StudioState | None = None) -> None:
        super().__init__()
        self.state = state or StudioState()  # what the panes share; changed only by `change`
        self.watch = watch
        self.handle_signals = handle_signals  # only the real terminal app owns the process's signals
        self.detached = False  # the terminal hung up; the process trains on headless
        self.exit_choice: str | None = None  # "stop" or "keep" when quitting during a run
        # API keys typed in the Judge pane's editor, for the hosts they were typed for: this process's memory
        # only; every pane that asks a judge (Judge runs, Scores' pairs) sends them.
        self.api_keys = SessionKeys()

    def compose(self) -> ComposeResult:
        with TabbedContent(initial="train", id="panes"):
            for n, (pane_id, title, pane_class) in enumerate(PANES, 1):
                with TabPane(f"{n} {title}", id=pane_id):
                    yield pane_class()
        yield Footer()

    def on_mount(self) -> None:
        if self.handle_signals:
            self._loop = asyncio.get_running_loop()
            # SIGHUP through signal.signal, not the loop: Python runs pending handlers in signal-number order,
            # so this one runs before the SIGCONT that comes with a hang-up, whose Textual handler would
            # start drawing again on the dead terminal (and deadlock on its writer queue).
            signal.signal(signal.SIGHUP, self._hang_up)
            self._loop.add_signal_handler(signal.SIGTERM, self._terminate)
        self._focus_pane("train")
        if self.watch is not None:
            self.query_one(MonitorPane).open_run(self.watch)

    # -- app-wide state ----------------------------------------------------------------------------

    def panes(self) -> list[Widget]:
        return [self.query_one(f"#{pane_id}", TabPane).children[0] for pane_id, _, _ in PANES]

    def broadcast(self, make: Callable[[], Message]) -> None:
        """Post a fresh message to every pane (a message object is delivered once)."""
        for pane in self.panes():
            pane.post_message(make())

    def change(self, **changes: Any) -> None:
        """The one way to change what the panes share: set fields of `state`, and tell every pane
        (one `StateChanged` naming the fields that changed). Setting a field to what it is says nothing."""
        changed = frozenset(name for name, value in changes.items() if getattr(self.state, name) != value)
        if not changed:
            return
        self.state = state = replace(self.state, **{name: changes[name] for name in changed})
        self.broadcast(lambda: StateChanged(state, changed))

    # -- the one place a worker's error goes (screens/workers.py) -----------------------------------

    def on_worker_failed(self, message: WorkerFailed) -> None:
        self.notify(message.text, title=f"failed: {message.worker.description}", severity="error", timeout=10)

    # -- panes, help, palette ----------------------------------------------------------------------

    def action_show_pane(self, pane_id: str) -> None:
        self.query_one(TabbedContent).active = pane_id
        self._focus_pane(pane_id)

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self._focus_pane(event.pane.id)

    def _focus_pane(self, pane_id: str) -> None:
        """Focus the pane, or its first focusable widget that is not a text field, so the footer shows the
        pane's keys and the keys 1-5 still switch panes (a text field would take them as typing)."""
        pane = self.query_one(f"#{pane_id}", TabPane).children[0]
        target = pane if pane.focusable else next(
            (w for w in pane.query("*") if w.focusable and not isinstance(w, (Input, TextArea))), None)
        self.screen.set_focus(target)

    def key_help(self) -> list[KeySection]:
        app_keys = [(self.get_key_display(b), b.description) for b in own_bindings(self)]
        app_keys.append(("ctrl+p", "Command palette: every action by name"))
        sections = [("App", app_keys)]
        for (_, title, _), pane in zip(PANES, self.panes()):
            keys = [(self.get_key_display(b), b.description or b.action) for _, b in pane_actions(pane)]
            sections.append((title, keys or [("", "no keys of its own")]))
        return sections

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.key_help()))

    def palette_entries(self) -> list[tuple[str, str, Callable]]:
        entries = [(f"Show the {title} pane", f"key {n}", partial(self.action_show_pane, pane_id))
                   for n, (pane_id, title, _) in enumerate(PANES, 1)]
        entries.append(("Help: list every key", "key ?", self.action_help))
        for (pane_id, title, _), pane in zip(PANES, self.panes()):
            for node, binding in pane_actions(pane):
                entries.append((f"{title}: {binding.description or binding.action}",
                                f"key {self.get_key_display(binding)}", partial(self._run_pane_action, pane_id,
                                                                                node, binding.action)))
        return entries

    async def _run_pane_action(self, pane_id: str, node: Widget, action: str) -> None:
        self.action_show_pane(pane_id)
        await node.run_action(action)

    # -- leaving -----------------------------------------------------------------------------------

    async def action_quit(self) -> None:
        run = self.state.training_run
        if run is None or not run.alive:
            self.exit()
            return

        def answer(choice: str | None) -> None:
            if choice is None:
                return
            if choice == "stop":
                run.stop()
            self.exit_choice = choice
            self.exit()

        self.push_screen(QuitDialog(run.paths.root), answer)

    def _hang_up(self, _signum, _frame) -> None:
        """SIGHUP (the SSH connection dropped): let go of the terminal; the run trains on headless."""
        signal.signal(signal.SIGCONT, signal.SIG_DFL)
        detach_terminal()
        self.detached = True
        try:
            self._loop.call_soon_threadsafe(self.exit)  # a signal handler must not run the app's code itself
        except RuntimeError:
            pass  # the app's loop has already closed

    def _terminate(self) -> None:
        """SIGTERM: the run saves a checkpoint and its adapter, then the process ends."""
        run = self.state.training_run
        if run is not None and run.alive:
            run.stop()
            self.exit_choice = "stop"
        self.exit()

