"""The Tokens pane in the real app: typing, ids, look-up, comparing tokenizers, dataset rows."""

from __future__ import annotations

from helpers import record_notifications, settle, text_of
from textual.widgets import Input, Static, TextArea

from screens.tokenizer import TokenizerPane, roundtrip_difference
from screens.widgets.token_view import TokenSpans
from studio.config import ModelConfig, TemplateConfig

SIZE = (120, 40)


async def open_tokens(pilot) -> TokenizerPane:
    await pilot.press("2")
    pane = pilot.app.query_one(TokenizerPane)
    await settle(pilot, lambda: "tokens" in text_of(pilot.app, "#tok-counts"))
    return pane


async def test_typing_updates_the_counts_and_the_pieces(make_studio):
    app = make_studio()
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_tokens(pilot)
        assert pane.has_focus  # the pane's keys work at once
        assert "round-trip ✓" in text_of(app, "#tok-counts")
        await pilot.press("e")
        app.query_one("#tok-text", TextArea).clear()
        await pilot.press(*"Hello world")
        await settle(pilot, lambda: text_of(app, "#tok-counts").startswith("11 chars"))
        assert "11 chars · 2 tokens · 2 words · 1.00 tokens/word" in text_of(app, "#tok-counts")
        assert [t.piece for t in app.query_one("#spans-a", TokenSpans).tokens] == ["Hello", "·world"]


def test_a_failed_roundtrip_says_where_the_decoded_text_differs():
    # Byte-level tokenizers such as SmolLM2's always round-trip; normalizing ones (NFKC, lowercasing) do not.
    assert roundtrip_difference("Naïve ﬁsh", "Naïve fish") == "at char 6: text 'ﬁsh', decoded 'fish'"
    assert roundtrip_difference("text ", "text") == "at char 4: text ' ', decoded ''"


async def test_key_i_shows_and_hides_the_ids(make_studio):
    app = make_studio()
    async with app.run_test(size=SIZE) as pilot:
        await open_tokens(pilot)
        spans = app.query_one("#spans-a", TokenSpans)
        first_id = str(spans.tokens[0].token_id).translate(str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉"))
        assert first_id not in str(spans.content)
        await pilot.press("i")
        assert first_id in str(spans.content)
        await pilot.press("i")
        assert first_id not in str(spans.content)


async def test_lookup_by_id_and_by_piece(make_studio):
    app = make_studio()
    async with app.run_test(size=SIZE) as pilot:
        await open_tokens(pilot)
        await pilot.press("slash", "1")
        assert isinstance(app.focused, Input)
        await settle(pilot, lambda: text_of(app, "#lookup-result").startswith("1 → <|im_start|>"))
        app.query_one("#lookup", Input).value = ""
        await pilot.press(*"world")
        await settle(pilot, lambda: "→ ·world" in text_of(app, "#lookup-result"))
        assert text_of(app, "#lookup-result").startswith("6693 → world")
        await pilot.press(*"qqqqzzzz")
        await settle(pilot, lambda: text_of(app, "#lookup-result") == "no token 'worldqqqqzzzz' in this tokenizer")


async def test_compare_shows_the_template_tokens_against_the_base(make_studio):
    app = make_studio(template=TemplateConfig(preset="human-bot"))
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_tokens(pilot)
        app.query_one("#tok-text", TextArea).load_text("###HUMAN### hi")
        await settle(pilot, lambda: text_of(app, "#tok-counts").startswith("14 chars"))
        assert not app.query_one("#col-b").display
        await pilot.press("c")
        await settle(pilot)
        assert pane.comparing and app.query_one("#col-b").display
        as_trained = app.query_one("#spans-a", TokenSpans).tokens
        base = app.query_one("#spans-b", TokenSpans).tokens
        assert [t.piece for t in as_trained] == ["###HUMAN###", "·hi"] and as_trained[0].special
        assert len(base) > len(as_trained) and not any(t.special for t in base)
        assert app.query_one("#col-b").border_subtitle == f"{len(base)} tokens, different ids"
        await pilot.press("c")
        assert not app.query_one("#col-b").display


async def test_compare_with_another_model_by_name(make_studio, tiny_model_dir):
    app = make_studio()
    async with app.run_test(size=SIZE) as pilot:
        await open_tokens(pilot)
        await pilot.click("#compare-with")
        await pilot.press(*str(tiny_model_dir), "enter")
        await settle(pilot, lambda: "tokens, the same ids" in (app.query_one("#col-b").border_subtitle or ""))
        assert app.query_one("#col-b").border_title == str(tiny_model_dir)


async def test_a_model_that_cannot_load_is_reported_in_its_column(make_studio):
    app = make_studio()
    toasts = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await open_tokens(pilot)
        await pilot.click("#compare-with")
        await pilot.press(*"/no/such/model", "enter")
        await settle(pilot, lambda: "loading" not in (app.query_one("#col-b").border_title or ""))
        assert "/no/such/model" in app.query_one("#col-b").border_title
        assert toasts == [app.query_one("#col-b").border_title]  # the one error display, and the column


async def test_a_model_that_cannot_load_is_reported_in_the_pane(make_studio):
    app = make_studio(model=ModelConfig(name="/no/such/model"))
    toasts = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        status = app.query_one("#tok-status", Static)
        await settle(pilot, lambda: status.has_class("-error"))
        assert text_of(app, "#tok-status") == "/no/such/model: no such folder (a hub id looks like org/name)"
        assert toasts == [text_of(app, "#tok-status")]
        await pilot.press("i", "c", "right_square_bracket")  # nothing to show, and nothing breaks
        assert app.is_running


async def test_dataset_rows_are_shown_as_trained(make_studio):
    app = make_studio()
    async with app.run_test(size=SIZE) as pilot:
        await open_tokens(pilot)
        await pilot.press("right_square_bracket")
        await settle(pilot, lambda: text_of(app, "#tok-status").startswith("dataset row 1 of"))
        first = app.query_one("#tok-text", TextArea).text
        assert "<|im_start|>assistant" in first  # the tokenizer's own template, as the default config says
        await pilot.press("right_square_bracket")
        await settle(pilot, lambda: text_of(app, "#tok-status").startswith("dataset row 2 of"))
        assert app.query_one("#tok-text", TextArea).text != first
        await pilot.press("left_square_bracket", "left_square_bracket")
        await settle(pilot, lambda: "row 1 of" not in text_of(app, "#tok-status"))
        assert text_of(app, "#tok-status").startswith("dataset row ")  # wrapped round to the last row
