"""The Train pane on a DPO run: its rewards in a row of their own, and the form's method and adapter fields."""

from __future__ import annotations

from helpers import add_dpo_steps, wait_for, write_run
from textual.widgets import Label, Select

from screens.app import StudioApp
from screens.config_form import ConfigForm
from screens.monitor import MonitorPane

SIZE = (120, 40)


async def test_a_dpo_run_shows_its_rewards_and_an_sft_run_does_not(tmp_path):
    sft = write_run(tmp_path / "sft", steps=3, final="finished")
    app = StudioApp(watch=sft)
    async with app.run_test(size=SIZE) as pilot:
        monitor = app.query_one(MonitorPane)
        await wait_for(pilot, lambda: monitor.history.status.state == "finished", what="the run to load")
        await pilot.pause()
        assert not app.query_one("#reward-trends").display

    dpo = write_run(tmp_path / "dpo", steps=3, final=None)
    add_dpo_steps(dpo, 3)
    app = StudioApp(watch=dpo)
    async with app.run_test(size=(160, 48)) as pilot:
        monitor = app.query_one(MonitorPane)
        await wait_for(pilot, lambda: monitor.history.status.state == "finished", what="the run to load")
        await pilot.pause()
        assert app.query_one("#reward-trends").display
        labels = [str(label.render()) for label in app.query("#reward-trends .trend-label").results(Label)]
        assert labels == ["reward chosen +0.600", "reward rejected -0.300", "margin +0.900", "accuracy 100%",
                          "held-out margin +3.00"]  # log p(chosen) - log p(rejected) on the held-out pairs
        assert [x for x, _ in monitor.history.rewards["reward_margin"]] == [4, 5, 6]
        assert monitor.history.status.setup.startswith("DPO cpu fp32")
        assert app.query_one("#sample-base-box").border_title == "base (step 0)"

        # At 80 columns the five do not fit ("reward r" was all a label said): short titles above the values.
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        shown = [[str(label.render()) for label in trend.query(Label).results(Label) if label.display]
                 for trend in app.query("#reward-trends Trend")]
        assert shown == [["chosen", "+0.600"], ["rejected", "-0.300"], ["margin", "+0.900"], ["acc", "100%"],
                         ["held-out", "+3.00"]]

    continuing = write_run(tmp_path / "continuing", steps=3, final="finished",
                           overrides=('train.method="dpo"', 'model.adapter="runs/sft/adapter"'))
    app = StudioApp(watch=continuing)
    async with app.run_test(size=SIZE) as pilot:
        monitor = app.query_one(MonitorPane)
        await wait_for(pilot, lambda: monitor.history.status.state == "finished", what="the run to load")
        await pilot.pause()
        # its step-0 answers come from the adapter it continues (the SFT run's), not the base model
        assert app.query_one("#sample-base-box").border_title == "starting adapter (step 0)"


async def test_the_form_sets_the_method_and_the_adapter_to_continue(tmp_path):
    app = StudioApp()
    async with app.run_test(size=SIZE) as pilot:
        form = app.query_one(ConfigForm)
        app.query_one("#field-train-method", Select).value = "dpo"
        await pilot.pause()
        field = app.query_one("#field-model-adapter")
        field.focus()
        await pilot.press(*"runs/yoda/adapter")
        await pilot.pause()
        assert form.config is not None
        assert form.config.train.method == "dpo"
        assert form.config.model.adapter == "runs/yoda/adapter"
        field.value = ""  # empty: a new adapter
        await pilot.pause()
        assert form.config is not None and form.config.model.adapter == ""
