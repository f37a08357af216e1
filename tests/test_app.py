"""The app shell: panes on 1-5, help, the command palette, errors from workers, quitting."""

from __future__ import annotations

from helpers import record_notifications, wait_for
from textual.widgets import TabbedContent

from screens.app import PANES, StudioApp
from screens.monitor import MonitorPane
from screens.state import StateChanged
from screens.widgets.dialogs import HelpScreen
from screens.workers import WorkerFailed
from studio.config import RunConfig

SIZE = (120, 40)


async def test_keys_1_to_5_switch_panes_from_any_pane():
    app = StudioApp()
    async with app.run_test(size=SIZE) as pilot:
        tabs = app.query_one(TabbedContent)
        assert isinstance(app.focused, MonitorPane)  # its keys work at once, and show in the footer
        for n, (pane_id, _, _) in [*reversed(list(enumerate(PANES, 1))), (1, PANES[0])]:
            await pilot.press(str(n))  # a text field focused on arrival would swallow the next digit
            assert tabs.active == pane_id


async def test_help_lists_every_pane_and_the_train_keys():
    app = StudioApp()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        sections = dict(app.screen.sections)
        assert list(sections) == ["App"] + [title for _, title, _ in PANES]
        train = dict(sections["Train"])
        assert train["s"] == "Start" and train["p"] == "Pause/Resume" and train["["] == "Older sample"
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_the_command_palette_runs_pane_actions():
    app = StudioApp()
    async with app.run_test(size=SIZE) as pilot:
        names = [name for name, _, _ in app.palette_entries()]
        for action in ("Start", "Pause/Resume", "Stop", "Checkpoint", "Runs"):
            assert f"Train: {action}" in names
        await pilot.press("ctrl+p")
        await pilot.press(*"Show the Judge pane")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert app.query_one(TabbedContent).active == "judge"


async def test_a_state_change_reaches_every_pane_once():
    app = StudioApp()
    heard: list[StateChanged] = []
    async with app.run_test(size=SIZE, message_hook=lambda m: heard.append(m) if isinstance(m, StateChanged) else None) \
            as pilot:
        cfg = RunConfig().with_overrides(["train.max_steps=9"])
        app.change(config=cfg)
        app.change(config=cfg)  # no change: no news
        await pilot.pause()
        assert app.state.config is cfg
        assert len(heard) == len(PANES) and all(m.state.config is cfg and m.changed == {"config"} for m in heard)


async def test_a_failing_worker_is_told_to_the_user_once_and_the_app_goes_on(tmp_path, monkeypatch):
    # The runs list's worker reads every run; a run folder whose config.toml is not a file breaks it.
    monkeypatch.setenv("STUDIO_RUNS", str(tmp_path))
    (tmp_path / "broken" / "config.toml").mkdir(parents=True)
    app = StudioApp()
    failed: list[WorkerFailed] = []
    async with app.run_test(size=SIZE, message_hook=lambda m: failed.append(m) if isinstance(m, WorkerFailed) else None) \
            as pilot:
        toasts = record_notifications(app)
        await pilot.press("o")
        await wait_for(pilot, lambda: toasts)
        await pilot.pause()
        assert len(toasts) == 1 and toasts[0].startswith("IsADirectoryError") and "config.toml" in toasts[0]
        assert len({id(f) for f in failed}) == 1  # one message, from the screen that started the worker up to the app
        assert str(app.screen.query_one("#runs-hint").render()).startswith(f"cannot list the runs: {toasts[0]}")
        assert app.is_running


async def test_q_quits_at_once_when_nothing_trains():
    app = StudioApp()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running
