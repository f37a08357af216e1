"""SVG snapshots of the app shell and the Train pane at 120x40 (regenerate: pytest --snapshot-update).

Only states without clocks, memory figures or randomness are captured: a fresh app, a field in
error, the help screen, and a finished run opened from a directory written here.
"""

from __future__ import annotations

from helpers import wait_for, write_run

from screens.app import StudioApp
from screens.monitor import MonitorPane

SIZE = (120, 40)


def test_train_pane_fresh(snap_compare):
    assert snap_compare(StudioApp(), terminal_size=SIZE)


def test_train_pane_with_a_bad_learning_rate(snap_compare):
    async def type_bad_rate(pilot):
        field = pilot.app.query_one("#field-train-learning-rate")
        field.value = "3"
        pilot.app.query_one(MonitorPane).focus()  # no blinking cursor in the picture
        await pilot.pause()

    assert snap_compare(StudioApp(), terminal_size=SIZE, run_before=type_bad_rate)


def test_help_screen(snap_compare):
    assert snap_compare(StudioApp(), terminal_size=SIZE, press=["question_mark"])


def test_train_pane_on_a_finished_run(snap_compare, tmp_path):
    run_dir = write_run(tmp_path / "finished-run", steps=6, final="finished")

    async def loaded(pilot):
        monitor = pilot.app.query_one(MonitorPane)
        await wait_for(pilot, lambda: not monitor.following and monitor.history.status.state == "finished")
        await pilot.pause()

    assert snap_compare(StudioApp(watch=run_dir), terminal_size=SIZE, run_before=loaded)
