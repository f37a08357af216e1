"""The tokenizer inspector: how the model will see a text, piece by piece.

Tokenizers and dataset rows load on thread workers that only post messages back. Inspecting a few
KB of text takes a few milliseconds, so that runs on the UI loop, once typing pauses.
"""

from __future__ import annotations

import copy
from typing import Any

from textual import on, work
from textual.binding import Binding
from textual.containers import Container, Horizontal, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import Input, Static, TextArea
from textual.worker import get_current_worker

from screens.shared import cached_tokenizer, describe_error
from screens.state import StateChanged
from screens.widgets.token_view import TokenSpans, tokens_from_view
from screens.workers import ReportsWorkerErrors, WorkerFailed

SAMPLE_TEXT = ("The quick brown fox jumps over the lazy dog.\n"
               "    Indented, with  two spaces; café, naïve, 1234567.\n"
               "<|im_start|>user\nWhat is a token?<|im_end|>")

INSPECT_DEBOUNCE_S = 0.15


class TokenizersLoaded(Message):
    """The model's tokenizer, and a copy with the run's template applied (the tokenizer as trained)."""

    def __init__(self, base: Any, templated: Any, added: list[str], problem: str) -> None:
        super().__init__()
        self.base, self.templated, self.added, self.problem = base, templated, added, problem


class OtherLoaded(Message):
    """Another model's tokenizer to compare with."""

    def __init__(self, name: str, tokenizer: Any) -> None:
        super().__init__()
        self.name, self.tokenizer = name, tokenizer


class RowsLoaded(Message):
    def __init__(self, rows: list[dict]) -> None:
        super().__init__()
        self.rows = rows


class LookedUp(Message):
    def __init__(self, query: str, matches: list[tuple[int, str]]) -> None:
        super().__init__()
        self.query, self.matches = query, matches


def roundtrip_difference(text: str, decoded: str) -> str:
    """Where decode(encode(text)) first differs from the text, shown on both sides."""
    at = next((i for i, (a, b) in enumerate(zip(text, decoded)) if a != b), min(len(text), len(decoded)))
    return f"at char {at}: text {text[at:at + 12]!r}, decoded {decoded[at:at + 12]!r}"


class TokenizerPane(ReportsWorkerErrors, Container, can_focus=True):
    """Type or paste text, or step through dataset rows, and see its tokens.

    The pane itself takes focus when shown, so its letter keys work at once; in a text box they
    type, and Tab leaves the box.
    """

    BINDINGS = [
        Binding("i", "toggle_ids", "Ids", tooltip="Show or hide each token's id"),
        Binding("c", "toggle_compare", "Compare",
                tooltip="Side by side with the base tokenizer (no template tokens), or the model named above"),
        Binding("left_square_bracket", "row(-1)", "Prev row", key_display="[",
                tooltip="Show the previous dataset row as trained (rendered with the template)"),
        Binding("right_square_bracket", "row(1)", "Next row", key_display="]",
                tooltip="Show the next dataset row as trained (rendered with the template)"),
        Binding("slash", "focus_lookup", "Find", key_display="/", tooltip="Look up a token by id or piece"),
        Binding("e", "focus_text", "Edit", tooltip="Type or paste the text to inspect"),
    ]

    show_ids: reactive[bool] = reactive(False)
    comparing: reactive[bool] = reactive(False)

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._config: Any = None  # the RunConfig shown: the app's, as of the last StateChanged
        self._templated: Any = None  # the tokenizer as trained: the model's, with the template applied
        self._base: Any = None
        self._other_name = ""  # another model to compare with; "": compare with the base tokenizer
        self._other: Any = None  # its tokenizer, once loaded
        self._rows: list[dict] | None = None
        self._row = -1
        self._pending: Timer | None = None  # the debounced inspection
        self._pending_lookup: Timer | None = None

    def compose(self):
        with Horizontal(id="tok-bar"):
            yield Input(placeholder="look up a token: id or piece", compact=True, id="lookup")
            yield Input(placeholder="model to compare with (enter)", compact=True, id="compare-with",
                        tooltip="A model's tokenizer to compare with; empty: the base tokenizer, no template")
        yield Static("", id="tok-status", classes="tok-line", markup=False)
        yield TextArea(SAMPLE_TEXT, id="tok-text", soft_wrap=True)
        yield Static("", id="tok-counts", classes="tok-line", markup=False)
        yield Static("", id="lookup-result", classes="tok-line", markup=False)
        with Horizontal(id="tok-columns"):
            with VerticalScroll(id="col-a", classes="tok-column"):
                yield TokenSpans(id="spans-a")
            with VerticalScroll(id="col-b", classes="tok-column"):
                yield TokenSpans(id="spans-b")

    def on_show(self) -> None:
        # A tokenizer takes seconds of CPU to load: only once the pane is first looked at.
        if self._config is None:
            self._config = self.app.state.config
            self._load(self._config)

    def on_state_changed(self, message: StateChanged) -> None:
        if self._config is None or "config" not in message.changed:  # never shown: on_show reads the config
            return
        config, shown = message.state.config, self._config
        self._config = config
        if config.data != shown.data:
            self._rows, self._row = None, -1
        if (config.model, config.template) != (shown.model, shown.template):
            self._load(config)

    # -- loading (thread workers: they only post messages) ---------------------------------------

    def _load(self, config) -> None:
        self._templated = None
        self._set_status(f"loading tokenizer {config.model.name}…")
        self._load_tokenizers(config.model.name, config.template)

    @work(thread=True, exclusive=True, group="tokens-load", exit_on_error=False,
          description="loading the tokenizer and applying the template")
    def _load_tokenizers(self, model: str, template_cfg) -> None:
        from studio import templates

        base = cached_tokenizer(model)
        templated = copy.deepcopy(base)  # the cached tokenizer is shared: never change it in place
        try:
            added, problem = templates.apply_template(templated, template_cfg), ""
        except templates.TemplateError as error:
            templated, added, problem = base, [], f"template not applied: {describe_error(error)}"
        if not get_current_worker().is_cancelled:
            self.post_message(TokenizersLoaded(base, templated, added, problem))

    def on_tokenizers_loaded(self, message: TokenizersLoaded) -> None:
        config = self._config
        self._base, self._templated = message.base, message.templated
        added = f", +{len(message.added)} tokens" if message.added else ""
        self.query_one("#col-a").border_title = f"as trained: {config.template.preset}{added}"
        self._set_status(message.problem, error=bool(message.problem))
        self._inspect()

    @on(Input.Submitted, "#compare-with")
    def _compare_with(self, event: Input.Submitted) -> None:
        name = event.value.strip()
        self._other, self._other_name = None, name
        self.comparing = True
        if name:
            self.query_one("#col-b").border_title = f"loading tokenizer {name}…"
            self.query_one("#col-b").border_subtitle = ""
            self._load_other(name)
        else:
            self._inspect()

    @work(thread=True, exclusive=True, group="tokens-other", exit_on_error=False,
          description="loading a tokenizer to compare with")
    def _load_other(self, name: str) -> None:
        tokenizer = cached_tokenizer(name)
        if not get_current_worker().is_cancelled:
            self.post_message(OtherLoaded(name, tokenizer))

    def on_other_loaded(self, message: OtherLoaded) -> None:
        self._other = message.tokenizer
        self._inspect()

    @work(thread=True, exclusive=True, group="tokens-rows", exit_on_error=False, description="loading dataset rows")
    def _load_rows(self, data_cfg) -> None:
        from studio.data import load_rows

        self.post_message(RowsLoaded(load_rows(data_cfg)))

    def on_rows_loaded(self, message: RowsLoaded) -> None:
        self._rows = message.rows
        self._show_row(1)

    def on_worker_failed(self, message: WorkerFailed) -> None:
        """Said where it happened too (the app's toast says it once for all)."""
        group = message.worker.group
        if group == "tokens-other":
            self.query_one("#col-b").border_title = message.text
        elif group == "tokens-lookup":
            self.query_one("#lookup-result", Static).update(message.text)
        else:
            self._set_status(message.text, error=True)

    def _set_status(self, text: str, error: bool = False) -> None:
        status = self.query_one("#tok-status", Static)
        status.update(text)
        status.set_class(error, "-error")

    # -- inspecting ------------------------------------------------------------------------------

    @on(TextArea.Changed, "#tok-text")
    def _text_changed(self) -> None:
        # Typing fires one change per key: inspect once the burst settles.
        if self._pending is not None:
            self._pending.stop()
        self._pending = self.set_timer(INSPECT_DEBOUNCE_S, self._inspect)

    def _inspect(self) -> None:
        if self._templated is None:
            return
        from studio import tokens

        text = self.query_one("#tok-text", TextArea).text
        target, label = self._compare_target()
        if self.comparing and target is not None:
            comparison = tokens.compare(self._templated, target, text)
            view = comparison.a
            self.query_one("#spans-b", TokenSpans).set_tokens(tokens_from_view(comparison.b))
            same = "different ids" if comparison.ids_differ else "the same ids"
            self.query_one("#col-b").border_title = label
            self.query_one("#col-b").border_subtitle = f"{comparison.b.counts.tokens} tokens, {same}"
            self.query_one("#col-a").border_subtitle = f"{view.counts.tokens} tokens"
        else:
            view = tokens.inspect(self._templated, text)
        self.query_one("#spans-a", TokenSpans).set_tokens(tokens_from_view(view))
        self.query_one("#tok-counts", Static).update(self._counts_line(view))

    def _compare_target(self) -> tuple[Any, str]:
        """The right column's tokenizer (None while the named model loads) and its label."""
        if self._other_name:
            return self._other, self._other_name
        return self._base, "base: no template tokens"

    def _counts_line(self, view) -> str:
        counts = view.counts
        roundtrip = "round-trip ✓" if view.roundtrip_ok else \
            f"round-trip ✗ {roundtrip_difference(view.text, self._templated.decode(view.ids))}"
        return (f"{counts.chars} chars · {counts.tokens} tokens · {counts.words} words · "
                f"{counts.tokens_per_word:.2f} tokens/word · {roundtrip}")

    # -- looking up ------------------------------------------------------------------------------

    @on(Input.Changed, "#lookup")
    def _lookup_changed(self) -> None:
        # Looking a piece up scans the whole vocabulary (~0.2 s): on a thread, once typing pauses.
        if self._pending_lookup is not None:
            self._pending_lookup.stop()
        self._pending_lookup = self.set_timer(INSPECT_DEBOUNCE_S, self._lookup)

    def _lookup(self) -> None:
        query = self.query_one("#lookup", Input).value.strip()
        if not query or self._templated is None:
            self.query_one("#lookup-result", Static).update("")
        else:
            self._lookup_worker(self._templated, query)

    @work(thread=True, exclusive=True, group="tokens-lookup", exit_on_error=False,
          description="looking a token up in the vocabulary")
    def _lookup_worker(self, tokenizer, query: str) -> None:
        from studio import tokens

        matches = tokens.lookup(tokenizer, int(query) if query.isdigit() else query)
        if not get_current_worker().is_cancelled:
            self.post_message(LookedUp(query, matches))

    def on_looked_up(self, message: LookedUp) -> None:
        result = self.query_one("#lookup-result", Static)
        if not message.matches:
            result.update(f"no token {message.query!r} in this tokenizer")
        else:
            result.update("   ".join(f"{token_id} → {piece}" for token_id, piece in message.matches[:8]))

    # -- actions ---------------------------------------------------------------------------------

    def action_toggle_ids(self) -> None:
        self.show_ids = not self.show_ids

    def watch_show_ids(self, show: bool) -> None:
        for spans in self.query(TokenSpans):
            spans.show_ids = show

    def action_toggle_compare(self) -> None:
        self.comparing = not self.comparing

    def watch_comparing(self, comparing: bool) -> None:
        self.set_class(comparing, "-comparing")
        self.query_one("#col-a").border_subtitle = ""
        self._inspect()

    def action_focus_lookup(self) -> None:
        self.query_one("#lookup", Input).focus()

    def action_focus_text(self) -> None:
        self.query_one("#tok-text", TextArea).focus()

    def action_row(self, step: int) -> None:
        if self._templated is None:
            self.notify("no tokenizer loaded yet", severity="warning")
        elif self._rows is None:
            self._set_status(f"loading dataset {self._config.data.dataset}…")
            self._load_rows(self._config.data)
        else:
            self._show_row(step)

    def _show_row(self, step: int) -> None:
        """Put a dataset row, rendered with the template, in the text box (and so, inspect it)."""
        from studio import templates
        from studio.data import to_messages

        config = self._config
        if not self._rows:
            self._set_status(f"dataset {config.data.dataset} has no rows", error=True)
            return
        self._row = (self._row + step) % len(self._rows)
        row = self._rows[self._row]
        try:
            text = templates.render(self._templated, to_messages(row, config.data))
        except Exception as error:  # a row without the configured columns, or a template error
            self._set_status(f"row {self._row + 1}: {describe_error(error)}", error=True)
            return
        self._set_status(f"dataset row {self._row + 1} of {len(self._rows)} (line {row['_line']}), "
                         f"rendered with template {config.template.preset}")
        self.query_one("#tok-text", TextArea).load_text(text)
