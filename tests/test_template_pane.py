"""The Template pane in the real app: presets, live rendering with the loss mask, errors with their
line, the engine's diagnostics, dataset rows, and applying the template to the run config."""

from __future__ import annotations

from dataclasses import replace

from helpers import BROKEN_TEMPLATE, record_notifications, settle, text_of
from textual.widgets import Select

from screens.template_editor import JinjaArea, TemplatePane
from screens.widgets.token_view import TokenSpans
from studio.config import ModelConfig, TemplateConfig
from studio.templates import PRESETS

SIZE = (120, 40)
NO_END_OF_TURN = "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}"


async def open_template(pilot) -> TemplatePane:
    await pilot.press("3")
    pane = pilot.app.query_one(TemplatePane)
    await settle(pilot, lambda: "tokens:" in text_of(pilot.app, "#tpl-summary"))
    return pane


def rendered(app) -> list:
    return app.query_one("#tpl-tokens", TokenSpans).tokens


async def test_a_row_is_rendered_as_trained_with_the_loss_mask(make_studio):
    app = make_studio()
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_template(pilot)
        assert pane.has_focus
        tokens = rendered(app)
        carrying = [t for t in tokens if t.loss]
        assert carrying and len(carrying) < len(tokens)
        assert carrying[-1].piece == "<|im_end|>"  # the end-of-turn token is learned too
        assert text_of(app, "#tpl-summary").startswith(f"{len(tokens)} tokens: {len(carrying)} carry loss")
        assert text_of(app, "#tpl-generation").endswith("<|im_start|>assistant⏎\n")
        assert text_of(app, "#tpl-row").startswith("row 1 of")


async def test_row_keys_move_between_rows(make_studio):
    app = make_studio()
    async with app.run_test(size=SIZE) as pilot:
        await open_template(pilot)
        first = rendered(app)
        await pilot.press("right_square_bracket")
        await settle(pilot, lambda: text_of(app, "#tpl-row").startswith("row 2 of"))
        assert rendered(app) != first
        await pilot.press("left_square_bracket")
        await settle(pilot, lambda: text_of(app, "#tpl-row").startswith("row 1 of"))
        assert rendered(app) == first


async def test_choosing_a_preset_rerenders_with_it(make_studio):
    app = make_studio()
    async with app.run_test(size=SIZE) as pilot:
        await open_template(pilot)
        await pilot.press("p", *"llama3", "enter")  # the picker opens; typing finds the preset
        await settle(pilot, lambda: any("start_header_id" in t.piece for t in rendered(app)))
        assert app.query_one("#preset", Select).value == "llama3"
        assert app.query_one(JinjaArea).text == PRESETS["llama3"].jinja
        assert "not applied" in text_of(app, "#tpl-state")


async def test_a_broken_template_shows_the_error_and_its_line(make_studio):
    app = make_studio()
    async with app.run_test(size=SIZE) as pilot:
        await open_template(pilot)
        editor = app.query_one(JinjaArea)
        await pilot.press("e")
        assert editor.has_focus
        editor.load_text(BROKEN_TEMPLATE)
        await settle(pilot, lambda: bool(text_of(app, "#tpl-error")))
        assert "line 2" in text_of(app, "#tpl-error")
        assert editor.error_line == 2
        assert rendered(app) == []
        await pilot.press("tab", "a")  # out of the editor; a broken template never reaches the config
        await settle(pilot)
        assert editor.text == BROKEN_TEMPLATE and app.state.config.template == TemplateConfig()
        editor.load_text(PRESETS["chatml"].jinja)
        await settle(pilot, lambda: not text_of(app, "#tpl-error"))
        assert editor.error_line is None and rendered(app)


async def test_diagnostics_are_listed_with_their_fix(make_studio):
    app = make_studio()
    async with app.run_test(size=SIZE) as pilot:
        await open_template(pilot)
        assert text_of(app, "#tpl-diagnostics").startswith("✓")
        app.query_one(JinjaArea).load_text(NO_END_OF_TURN)
        await settle(pilot, lambda: "⚠" in text_of(app, "#tpl-diagnostics"))
        assert "fix:" in text_of(app, "#tpl-diagnostics")


async def test_apply_puts_the_template_in_the_run_config(make_studio):
    app = make_studio()
    async with app.run_test(size=SIZE) as pilot:
        await open_template(pilot)
        app.query_one("#preset", Select).value = "chatml"
        await settle(pilot, lambda: app.query_one(JinjaArea).text == PRESETS["chatml"].jinja)
        await pilot.press("a")
        await settle(pilot, lambda: app.state.config.template.preset == "chatml")
        assert app.state.config.template == TemplateConfig(preset="chatml")
        assert text_of(app, "#tpl-state") == "applied to the run config"

        app.query_one(JinjaArea).load_text(NO_END_OF_TURN)
        await pilot.press("a")  # applied once this very text has rendered
        await settle(pilot, lambda: app.state.config.template.jinja == NO_END_OF_TURN)
        assert app.state.config.template == TemplateConfig(preset="chatml", jinja=NO_END_OF_TURN)


async def test_a_template_chosen_elsewhere_shows_in_the_editor(make_studio):
    app = make_studio()
    async with app.run_test(size=SIZE) as pilot:
        await open_template(pilot)
        app.change(config=replace(app.state.config, template=TemplateConfig(preset="zephyr")))
        await settle(pilot, lambda: app.query_one("#preset", Select).value == "zephyr")
        assert app.query_one(JinjaArea).text == PRESETS["zephyr"].jinja
        assert text_of(app, "#tpl-state") == "applied to the run config"


async def test_a_model_that_cannot_load_is_reported_in_the_pane(make_studio):
    app = make_studio(model=ModelConfig(name="/no/such/model"))
    toasts = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await settle(pilot, lambda: "no such folder" in text_of(app, "#tpl-summary"))
        assert toasts == [text_of(app, "#tpl-summary")]  # the one error display, and the pane
        await pilot.press("right_square_bracket", "a")  # nothing to render or apply, and nothing breaks
        await settle(pilot)
        assert app.is_running and app.state.config.template == TemplateConfig()
