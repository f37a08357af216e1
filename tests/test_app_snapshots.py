"""SVG snapshots of the app shell, the Train pane and the runs list at 80x24 and 160x48
(regenerate: pytest --snapshot-update, then look at each picture before accepting it).

Only states without clocks, memory figures or randomness are captured: a fresh app, a field in
error, the help screen, a finished run opened from a directory written here, and the runs list.
"""

from __future__ import annotations

import os

from helpers import add_dpo_steps, append_events, at_both_sizes, wait_for, write_run

from screens.app import StudioApp
from screens.monitor import MonitorPane


@at_both_sizes
def test_train_pane_fresh(snap_compare, size):
    assert snap_compare(StudioApp(), terminal_size=size)


@at_both_sizes
def test_train_pane_with_a_bad_learning_rate(snap_compare, size):
    async def type_bad_rate(pilot):
        field = pilot.app.query_one("#field-train-learning-rate")
        field.value = "3"
        pilot.app.query_one(MonitorPane).focus()  # no blinking cursor in the picture
        await pilot.pause()

    assert snap_compare(StudioApp(), terminal_size=size, run_before=type_bad_rate)


@at_both_sizes
def test_help_screen(snap_compare, size):
    assert snap_compare(StudioApp(), terminal_size=size, press=["question_mark"])


@at_both_sizes
def test_train_pane_on_a_finished_run(snap_compare, tmp_path, size):
    run_dir = write_run(tmp_path / "finished-run", steps=6, final="finished")

    async def loaded(pilot):
        monitor = pilot.app.query_one(MonitorPane)
        await wait_for(pilot, lambda: not monitor.following and monitor.history.status.state == "finished")
        await pilot.pause()

    assert snap_compare(StudioApp(watch=run_dir), terminal_size=size, run_before=loaded)


@at_both_sizes
def test_train_pane_on_a_finished_dpo_run(snap_compare, tmp_path, size):
    # Its rewards get a row of their own; at 80 columns, short titles over the values.
    run_dir = write_run(tmp_path / "dpo-run", steps=3, final=None, overrides=('train.method="dpo"',))
    add_dpo_steps(run_dir, 3)

    async def loaded(pilot):
        monitor = pilot.app.query_one(MonitorPane)
        await wait_for(pilot, lambda: not monitor.following and monitor.history.status.state == "finished")
        await pilot.pause()

    assert snap_compare(StudioApp(watch=run_dir), terminal_size=size, run_before=loaded)


@at_both_sizes
def test_runs_list(snap_compare, tmp_path, monkeypatch, size):
    monkeypatch.chdir(tmp_path)  # the list's title names the folder: runs/, the same on every machine
    monkeypatch.setenv("STUDIO_RUNS", "runs")
    for age, (name, final) in enumerate([("yoda-finished", "finished"), ("yoda-killed", None)]):
        run_dir = write_run(tmp_path / "runs" / name, steps=4, final=final)
        os.utime(run_dir, (1_700_000_000 - age, 1_700_000_000 - age))  # newest first: a fixed order

    async def listed(pilot):
        await pilot.press("o")
        await wait_for(pilot, lambda: pilot.app.screen.query_one("#runs-table").row_count == 2)
        await pilot.pause()

    assert snap_compare(StudioApp(), terminal_size=size, run_before=listed)


@at_both_sizes
def test_range_test_curve(snap_compare, tmp_path, size):
    run_dir = write_run(tmp_path / "auto-run", steps=6, final=None)
    rates = [1e-6 * 10 ** (i / 5) for i in range(26)]
    losses = [3.0 - 0.06 * i if i < 20 else 1.8 + 0.9 * (i - 20) for i in range(26)]
    append_events(run_dir, ("lr_range", 0, dict(chosen=rates[19] / 10, rule="minimum/10", minimum_tenth=rates[19] / 10,
                                                steepest=rates[12], rates=rates, losses=losses)),
                  ("status", 6, dict(state="finished", reason="finished")))

    async def opened(pilot):
        monitor = pilot.app.query_one(MonitorPane)
        await wait_for(pilot, lambda: not monitor.following and monitor.history.status.state == "finished")
        monitor.focus()
        await pilot.press("l")
        await pilot.pause()

    assert snap_compare(StudioApp(watch=run_dir), terminal_size=size, run_before=opened)
