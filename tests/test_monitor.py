"""The Train pane: the config form checks itself, runs train inside the app, runs are watched from disk."""

from __future__ import annotations

import json
import os
import socket

from helpers import append_events, record_notifications, tiny_config, wait_for, write_run

from screens.app import StudioApp
from screens.config_form import ConfigForm
from screens.monitor import MonitorPane
from screens.widgets.loss_chart import LossChart, downsample
from screens.widgets.samples_view import SamplesView
from screens.widgets.status_bar import StatusBar
from studio.config import RunConfig

SIZE = (120, 40)


def status_text(app) -> str:
    return str(app.query_one(StatusBar).render())


async def type_into(pilot, field_id: str, text: str) -> None:
    field = pilot.app.query_one(f"#{field_id}")
    field.focus()
    field.value = ""
    await pilot.press(*text)
    await pilot.pause()


# -- the config form -------------------------------------------------------------------------------


async def test_a_bad_learning_rate_is_shown_under_its_field_and_start_is_disabled():
    app = StudioApp()
    async with app.run_test(size=SIZE) as pilot:
        form = app.query_one(ConfigForm)
        error = app.query_one("#field-train-learning-rate-error")
        start = app.query_one("#start")
        assert not start.disabled and not error.display

        await type_into(pilot, "field-train-learning-rate", "fast")
        assert error.display and "type a number" in str(error.render())
        assert start.disabled and not form.valid

        await type_into(pilot, "field-train-learning-rate", "3")
        assert "a number in (0, 1)" in str(error.render())  # RunConfig's own check, shown where it applies
        assert start.disabled

        await pilot.press("escape", "s")  # leave the field; s cannot start an invalid config
        monitor = app.query_one(MonitorPane)
        assert monitor.history.status.state == "idle" and app.state.training_run is None
        assert monitor.check_action("start", ()) is None  # dimmed in the footer

        await type_into(pilot, "field-train-learning-rate", "1e-4")
        assert not error.display and not start.disabled
        assert app.state.config.train.learning_rate == 1e-4  # a valid edit becomes the app's config


async def test_a_config_from_another_pane_fills_the_form_without_echo():
    app = StudioApp()
    async with app.run_test(size=SIZE) as pilot:
        cfg = RunConfig().with_overrides(["template.preset=chatml", "train.max_steps=7", "lora.r=4"])
        app.change(config=cfg)
        await pilot.pause()
        assert app.query_one("#field-train-max-steps").value == "7"
        assert app.query_one("#field-lora-r").value == "4"
        assert str(app.query_one("#template-name").render()) == "chatml"
        assert app.state.config is cfg  # the form's reload did not post a copy back


async def test_the_form_hides_and_comes_back():
    app = StudioApp()
    async with app.run_test(size=(80, 24)) as pilot:
        form = app.query_one(ConfigForm)
        await pilot.press("f")
        assert not form.display
        await pilot.press("f")
        assert form.display


def test_downsample_keeps_the_newest_point_and_the_shape():
    points = [(float(i), float(i % 7)) for i in range(10_000)]
    small = downsample(points, 200)
    assert len(small) == 200 and small[-1] == points[-1]
    assert small[0][0] < small[100][0] < small[-1][0]
    assert downsample(points[:10], 200) == points[:10]


# -- watching a run from its directory -------------------------------------------------------------


async def test_watching_a_finished_run_shows_its_curves_and_samples(tmp_path):
    run_dir = write_run(tmp_path / "done", steps=6, final="finished")
    app = StudioApp(watch=run_dir)
    async with app.run_test(size=SIZE) as pilot:
        monitor = app.query_one(MonitorPane)
        await wait_for(pilot, lambda: not monitor.following and monitor.history.status.state == "finished",
                       what="the finished run to load")
        assert [x for x, _ in monitor.history.train] == [1, 2, 3, 4, 5, 6]
        assert [x for x, _ in monitor.history.held_out] == [0, 3, 6]
        assert set(app.query_one(LossChart)._curves) == {"train", "held-out", "style"}
        assert "finished" in status_text(app) and "step 6/6" in status_text(app)
        assert app.state.run_dir == run_dir

        samples = app.query_one(SamplesView)
        now = app.query_one("#sample-now")
        assert str(now.render()) == "answer 0 at 6"  # newest first
        assert str(app.query_one("#sample-base").render()) == "base answer 0"
        await pilot.press("left_square_bracket")
        assert str(now.render()) == "answer 0 at 3"
        await pilot.press("right_square_bracket")
        assert str(now.render()) == "answer 0 at 6"
        await pilot.press("greater_than_sign")
        assert samples.prompt == 1 and str(now.render()) == "answer 1 at 6"
        await pilot.press("less_than_sign")
        assert samples.prompt == 0 and str(now.render()) == "answer 0 at 6"
        await pilot.press("g")  # the sampled answers: this run wrote greedy ones only
        assert samples.mode == "sampled" and not app.query_one("#sample-answers").display
        await pilot.press("g")
        assert samples.mode == "greedy" and str(now.render()) == "answer 0 at 6"


async def test_a_run_whose_process_died_shows_as_killed(tmp_path):
    run_dir = write_run(tmp_path / "dead", steps=4, final=None)
    app = StudioApp(watch=run_dir)
    async with app.run_test(size=SIZE) as pilot:
        monitor = app.query_one(MonitorPane)
        await wait_for(pilot, lambda: monitor.history.status.state == "killed", what="killed")
        assert "resumes it" in status_text(app)


async def test_controls_of_a_watched_live_run_go_through_its_control_channel(tmp_path):
    run_dir = write_run(tmp_path / "live", steps=2, final=None)
    # This process stands in for the one training it: the run directory says it is alive.
    (run_dir / "process.json").write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    app = StudioApp(watch=run_dir)
    async with app.run_test(size=SIZE) as pilot:
        monitor = app.query_one(MonitorPane)
        await wait_for(pilot, lambda: monitor.history.status.step == 2, what="the live run's steps")
        assert monitor.live
        await pilot.press("p", "c", "x")
        commands = [json.loads(line)["command"] for line in (run_dir / "control.jsonl").read_text().splitlines()]
        assert commands == ["pause", "checkpoint", "stop"]
        assert "stop requested" in status_text(app)

        with open(run_dir / "events.jsonl", "a") as f:  # the other process answers
            f.write(json.dumps({"type": "step", "step": 3, "time": 0, "loss": 1.0}) + "\n")
        await wait_for(pilot, lambda: monitor.history.status.step == 3, what="a step written after opening")
        (run_dir / "process.json").unlink()


async def test_opening_a_missing_run_says_so(tmp_path):
    app = StudioApp(watch=tmp_path / "nope")
    toasts = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert any("not a run directory" in text for text in toasts)


# -- training inside the app -----------------------------------------------------------------------


async def test_a_tiny_model_trains_in_the_app_and_the_keys_control_it(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_RUNS", str(tmp_path / "runs"))
    app = StudioApp()
    async with app.run_test(size=SIZE) as pilot:
        app.change(config=tiny_config(tiny_model_dir, max_length=128, learning_rate=0.01, save_every=0, max_steps=400,
                                      eval_every=3, sample_every=3))
        monitor = app.query_one(MonitorPane)
        await pilot.pause()
        await pilot.press("s")
        assert app.query_one("#start").disabled  # no second run while this one starts
        await wait_for(pilot, lambda: len(monitor.history.held_out) >= 2, what="two evals")
        assert len(monitor.history.train) >= 3
        assert "train" in app.query_one(LossChart)._curves
        await wait_for(pilot, lambda: app.query_one("#sample-now-box").border_title != "step 0", what="a sample")
        assert app.query_one("#sample-base-box").border_title == "base (step 0)"

        await pilot.press("p")
        await wait_for(pilot, lambda: monitor.history.status.state == "paused", what="paused")
        assert "paused" in status_text(app)
        paused_at = app.state.training_run.step
        await pilot.pause(0.5)
        assert app.state.training_run.step == paused_at
        await pilot.press("p")
        await wait_for(pilot, lambda: app.state.training_run.step > paused_at, what="resumed steps")

        await pilot.press("x")
        await wait_for(pilot, lambda: monitor.history.status.state == "stopped", what="stopped")
        assert app.state.training_run.join(30)
        assert (app.state.training_run.paths.adapter / "adapter_config.json").exists()
        assert not app.query_one("#start").disabled  # ready for the next run


async def test_a_run_that_cannot_start_says_why_and_the_app_stays(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_RUNS", str(tmp_path / "runs"))
    app = StudioApp()
    async with app.run_test(size=SIZE) as pilot:
        app.change(config=RunConfig().with_overrides([f"model.name={json.dumps(str(tmp_path / 'no-model'))}"]))
        monitor = app.query_one(MonitorPane)
        await pilot.pause()
        await pilot.press("s")
        await wait_for(pilot, lambda: monitor.history.status.state == "failed", what="failure")
        assert monitor.history.status.error
        assert monitor.history.status.error.split()[0] in status_text(app)
        assert not app.query_one("#start").disabled


async def test_a_run_whose_folder_cannot_be_made_is_told_once_and_shown_in_the_status(tmp_path, monkeypatch):
    (tmp_path / "runs").write_text("a file where the runs folder should be")
    monkeypatch.setenv("STUDIO_RUNS", str(tmp_path / "runs"))
    app = StudioApp()
    toasts = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        monitor = app.query_one(MonitorPane)
        await pilot.press("s")
        await wait_for(pilot, lambda: monitor.history.status.state == "failed", what="failure")
        await pilot.pause()
        assert len(toasts) == 1 and toasts[0].startswith(("NotADirectoryError", "FileExistsError"))
        assert monitor.history.status.error == toasts[0]
        assert monitor.history.status.reason == "the run could not start" and toasts[0] in status_text(app)
        assert not app.query_one("#start").disabled


async def test_the_runs_list_shows_runs_and_opens_one(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_RUNS", str(tmp_path))
    write_run(tmp_path / "done", steps=6, final="finished")
    write_run(tmp_path / "dead", steps=4, final=None)
    app = StudioApp()
    toasts = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("o")
        table = app.screen.query_one("#runs-table")
        await wait_for(pilot, lambda: table.row_count == 2, what="the runs")
        columns = [str(column.label) for column in table.columns.values()]
        rows = {row["name"]: row for row in (dict(zip(columns, table.get_row_at(i))) for i in range(2))}
        assert rows["done"]["steps"] == "6/6" and rows["done"]["status"] == "finished"
        assert rows["dead"]["status"] == "killed"

        table.move_cursor(row=[*rows].index("done"))
        await pilot.press("r")  # a finished run has nothing to resume
        assert any("only a killed, stopped or failed run" in text for text in toasts)
        await pilot.press("enter")
        monitor = app.query_one(MonitorPane)
        await wait_for(pilot, lambda: monitor.history.status.state == "finished", what="the opened run")
        assert app.state.run_dir == tmp_path / "done"


async def test_a_resumed_run_shows_each_step_once_with_its_setup_and_observation(tmp_path):
    from studio.events import EventBus, JsonlWriter

    run_dir = write_run(tmp_path / "resumed", steps=6, final=None)
    bus, writer = EventBus(), JsonlWriter(run_dir / "events.jsonl")
    bus.subscribe(writer)  # killed at step 6; resumed from its step-3 checkpoint
    bus.emit("resume", 3, from_step=3)
    bus.emit("setup", 3, device="cpu", dtype="float32", precision="fp32", quantization="none", processes=1,
             trainable_params=10, total_params=100)
    for step in range(4, 7):
        bus.emit("step", step, loss=1.0 / step, lr=1e-4, grad_norm=1.0, tokens_per_s=900.0, memory_mb=500.0,
                 epoch=0.1, step_time_s=0.1, eta_s=1.0, observe_share=0.07)
    bus.emit("eval", 6, eval_loss=1.5, perplexity=4.0, style_loss=2.0)
    bus.emit("sample", 6, prompt="question 0", response="Tools, they are, they are, they are.", mode="greedy",
             index=0, repeats=3)
    bus.emit("status", 6, state="finished", reason="finished")
    writer.close()

    app = StudioApp(watch=run_dir)
    async with app.run_test(size=SIZE) as pilot:
        monitor = app.query_one(MonitorPane)
        await wait_for(pilot, lambda: not monitor.following and monitor.history.status.state == "finished",
                       what="the resumed run to load")
        assert [x for x, _ in monitor.history.train] == [1, 2, 3, 4, 5, 6]
        assert monitor.history.train[-1][1] == 1.0 / 6  # the resumed pass, not the rolled-back one
        assert [x for x, _ in monitor.history.held_out] == [0, 3, 6]
        assert "observing 7%" in status_text(app) and "cpu fp32" in status_text(app)
        assert str(app.query_one("#sample-now").render()).startswith("Tools, they are")
        assert app.query_one("#sample-now-box").border_subtitle == "repeats x3"
        await pilot.press("left_square_bracket")  # the step-6 answer of the first pass is gone
        assert str(app.query_one("#sample-now").render()) == "answer 0 at 3"


def test_the_gpus_field_shows_where_several_gpus_are_visible(monkeypatch):
    from screens.config_form import GPUS, form_fields

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    assert GPUS in form_fields()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert GPUS not in form_fields()


def test_every_choice_fits_the_forms_column_at_80_columns():
    from screens.config_form import CHOICE_LABELS, FIELDS

    for field in FIELDS:
        if isinstance(field.kind, tuple):
            too_long = [c for c in field.kind if len(CHOICE_LABELS.get(c, c)) > 13]
            assert not too_long, f"{field.path}: {too_long} would be cut at 80x24"


async def test_the_judge_curve_is_drawn_on_its_own_axis_with_its_failures(tmp_path):
    run_dir = write_run(tmp_path / "judged", steps=6, final=None)
    append_events(run_dir,
                  ("judge", 3, dict(prompt="yoda", mean=6.5, std=1.0, scored=3, failed=1, skipped=0, note="")),
                  ("judge", 6, dict(prompt="yoda", mean=7.25, std=0.5, scored=4, failed=0, skipped=0, note="")),
                  ("status", 6, dict(state="finished", reason="finished")))
    app = StudioApp(watch=run_dir)
    async with app.run_test(size=SIZE) as pilot:
        monitor = app.query_one(MonitorPane)
        await wait_for(pilot, lambda: monitor.history.status.state == "finished", what="the run")
        assert monitor.history.judge == [(3, 6.5), (6, 7.25)]
        assert "judge" in app.query_one(LossChart)._curves
        assert "judge 7.25 at step 6" in status_text(app)


def test_data_preparation_shows_as_a_bar_with_its_rate():
    from screens.monitor import RunHistory

    history = RunHistory(max_steps=10)
    assert history.add({"type": "prepare", "step": 0, "done": 25_000, "total": 100_000, "rows_per_s": 5000.0,
                        "eta_s": 15.0}) == {"status"}
    assert history.status.reason == ("preparing the data [█████░░░░░░░░░░░░░░░] 25,000/100,000 rows · "
                                     "5,000 rows/s · ETA 00:15")


async def test_a_rate_chosen_by_range_test_is_shown_and_l_opens_its_curve(tmp_path):
    from screens.widgets.range_test import RangeTestChart, RangeTestScreen
    run_dir = write_run(tmp_path / "auto", steps=6, final=None)
    append_events(run_dir, ("lr_range", 0, dict(chosen=6.3e-4, rule="minimum/10", minimum_tenth=6.3e-4, steepest=2e-3,
                                                rates=[1e-6, 1e-4, 1e-2, 1e-1], losses=[3.0, 2.8, 2.0, 9.0])),
                  ("status", 6, dict(state="finished", reason="finished")))
    app = StudioApp(watch=run_dir)
    async with app.run_test(size=SIZE) as pilot:
        monitor = app.query_one(MonitorPane)
        await wait_for(pilot, lambda: monitor.history.status.state == "finished", what="the run")
        assert "lr 6.3e-04 by range test (l: curve)" in status_text(app)
        monitor.focus()
        await pilot.press("l")
        assert isinstance(app.screen, RangeTestScreen)
        assert str(app.screen.query_one("#range-test-title").render()).startswith(
            "lr 6.3e-04 chosen by range test (minimum/10, steepest descent at 2.0e-03; 4 steps)")
        assert app.screen.query_one(RangeTestChart).event["losses"] == [3.0, 2.8, 2.0, 9.0]
        await pilot.press("escape")
        assert not isinstance(app.screen, RangeTestScreen)


async def test_an_empty_answer_says_so_instead_of_an_empty_box(tmp_path):
    run_dir = write_run(tmp_path / "empty", steps=6, final=None)
    append_events(run_dir, ("sample", 6, dict(prompt="question 0", response="  ", mode="greedy", index=0, repeats=0)),
                  ("status", 6, dict(state="finished", reason="finished")))
    app = StudioApp(watch=run_dir)
    async with app.run_test(size=SIZE) as pilot:
        monitor = app.query_one(MonitorPane)
        await wait_for(pilot, lambda: monitor.history.status.state == "finished", what="the run")
        await pilot.pause()
        assert str(app.query_one("#sample-now").render()) == "(an empty answer)"


async def test_the_loss_chart_counts_whole_steps():
    from textual.app import App

    class Chart(App):
        def compose(self):
            yield LossChart()

    async with Chart().run_test(size=(80, 20)) as pilot:
        chart = pilot.app.query_one(LossChart)
        chart.show({"train": [(step, 3 - step / 30) for step in range(1, 58)]})  # a run stopped at step 57
        await pilot.pause()
        axis = chart.render().plain.splitlines()[-2]
        assert axis.split() == ["0", "20", "40"], axis  # round steps, not 1.0 15.0 29.0 43.0 57.0
