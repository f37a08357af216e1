"""The app shell: panes on 1-5, help, the command palette, errors from workers, quitting."""

from __future__ import annotations

from textual.widgets import TabbedContent

from screens.app import PANES, StudioApp
from screens.messages import ConfigChanged, TaskFailed
from screens.monitor import MonitorPane
from screens.widgets.dialogs import HelpScreen
from studio.config import ConfigError, RunConfig

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


async def test_update_config_reaches_every_pane_once():
    app = StudioApp()
    heard: list[ConfigChanged] = []
    async with app.run_test(size=SIZE, message_hook=lambda m: heard.append(m) if isinstance(m, ConfigChanged) else None) \
            as pilot:
        cfg = RunConfig().with_overrides(["train.max_steps=9"])
        app.update_config(cfg)
        app.update_config(cfg)  # no change: no news
        await pilot.pause()
        assert app.config is cfg
        assert len(heard) == len(PANES) and all(m.config is cfg for m in heard)


async def test_a_failing_worker_is_told_to_the_user_and_the_app_goes_on():
    app = StudioApp()
    failures: list[TaskFailed] = []
    async with app.run_test(size=SIZE, message_hook=lambda m: failures.append(m) if isinstance(m, TaskFailed) else None) \
            as pilot:
        def broken() -> None:
            raise ConfigError("data.dataset: no such file; give a .jsonl path")

        app.run_task(broken, name="load data", description="loading data")
        await pilot.pause(0.3)
        await pilot.pause()
        assert [n.message for n in app._notifications] == ["data.dataset: no such file; give a .jsonl path"]
        assert {(f.name, f.error) for f in failures} == {("load data", "data.dataset: no such file; give a .jsonl path")}
        assert len(failures) == len(PANES)  # every pane hears of it
        assert app.is_running


async def test_q_quits_at_once_when_nothing_trains():
    app = StudioApp()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running
