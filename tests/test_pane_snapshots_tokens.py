"""SVG snapshots of the Tokens and Template panes at 80x24 and 160x48 (regenerate: pytest --snapshot-update).

Each picture is taken once the tokenizer has loaded and the debounced inspection or rendering has
run, with the pane itself focused so no cursor blinks in it.
"""

from __future__ import annotations

from helpers import BROKEN_TEMPLATE, at_both_sizes, settle, text_of
from textual.widgets import TextArea

from screens.template_editor import JinjaArea
from studio.config import TemplateConfig


def on_tokens(*keys: str, text: str | None = None):
    async def run_before(pilot):
        await pilot.press("2")
        await settle(pilot, lambda: "tokens" in text_of(pilot.app, "#tok-counts"))
        if text is not None:
            pilot.app.query_one("#tok-text", TextArea).load_text(text)
        await pilot.press(*keys)
        await settle(pilot)

    return run_before


def on_template(edit: str | None = None):
    async def run_before(pilot):
        await pilot.press("3")
        await settle(pilot, lambda: "tokens:" in text_of(pilot.app, "#tpl-summary"))
        if edit is not None:
            pilot.app.query_one(JinjaArea).load_text(edit)
            await settle(pilot, lambda: bool(text_of(pilot.app, "#tpl-error")))

    return run_before


@at_both_sizes
def test_tokens_pane(snap_compare, make_studio, size):
    assert snap_compare(make_studio(), terminal_size=size, run_before=on_tokens())


@at_both_sizes
def test_tokens_pane_comparing_with_ids(snap_compare, make_studio, size):
    app = make_studio(template=TemplateConfig(preset="human-bot"))
    run_before = on_tokens("i", "c", text="###HUMAN### What is a token?\n###BOT### A piece of text.###STOP###")
    assert snap_compare(app, terminal_size=size, run_before=run_before)


@at_both_sizes
def test_template_pane(snap_compare, make_studio, size):
    assert snap_compare(make_studio(), terminal_size=size, run_before=on_template())


@at_both_sizes
def test_template_pane_with_an_error(snap_compare, make_studio, size):
    assert snap_compare(make_studio(), terminal_size=size, run_before=on_template(BROKEN_TEMPLATE))
