"""The Train pane on a DPO run: its rewards in a row of their own, and the form's method and adapter fields."""

from __future__ import annotations

from helpers import wait_for, write_run
from textual.widgets import Label, Select

from screens.app import StudioApp
from screens.config_form import ConfigForm
from screens.monitor import MonitorPane
from studio.events import EventBus, JsonlWriter

SIZE = (120, 40)


def add_dpo_steps(run_dir, steps: int) -> None:
    bus, writer = EventBus(), JsonlWriter(run_dir / "events.jsonl")
    bus.subscribe(writer)
    bus.emit("setup", steps, method="dpo", device="cpu", dtype="float32", precision="fp32", quantization="none",
             processes=1, trainable_params=10, total_params=100)
    for step in range(steps + 1, 2 * steps + 1):
        bus.emit("step", step, loss=0.7 - 0.05 * step, lr=1e-4, grad_norm=1.0, tokens_per_s=100.0, memory_mb=1.0,
                 reward_chosen=0.1 * step, reward_rejected=-0.05 * step, reward_margin=0.15 * step,
                 reward_accuracy=min(1.0, 0.2 * step))
        bus.emit("eval", step, eval_loss=0.7 - 0.04 * step, pair_margin=0.5 * step, pair_accuracy=0.75)
    bus.emit("status", 2 * steps, state="finished", reason="done")
    writer.close()


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
    async with app.run_test(size=SIZE) as pilot:
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
