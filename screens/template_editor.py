"""The template editor: pick a preset or edit the Jinja chat template, and see a dataset row exactly
as the model will be trained on it (which tokens carry loss) and the prompt sampling will use.

Rendering copies the tokenizer and runs Jinja, so it happens on a thread worker once typing pauses;
the worker only posts a message back. The template goes into the run config when the user applies
it (key a): a half-typed template is often invalid, and the config should only hold chosen ones.
"""

from __future__ import annotations

import copy
import re
import threading
from dataclasses import dataclass, replace
from typing import Any

from rich.style import Style
from rich.text import Text
from textual import on, work
from textual.binding import Binding
from textual.containers import Container, Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import Select, Static, TextArea
from textual.widgets.text_area import TextAreaTheme
from textual.worker import get_current_worker

from screens.shared import cached_tokenizer, describe_error
from screens.state import StateChanged
from screens.widgets.token_view import NEWLINE, Token, TokenSpans
from screens.workers import ReportsWorkerErrors, WorkerFailed

RENDER_DEBOUNCE_S = 0.2

# Jinja markup, one line at a time (chat templates rarely split a tag across lines).
_TAG = re.compile(r"(\{[%{]-?)(.*?)(-?[%}]\})")
_COMMENT = re.compile(r"\{#.*?#\}")
_STRING = re.compile(r"'[^']*'|\"[^\"]*\"")
_KEYWORD = re.compile(r"\b(for|in|endfor|if|elif|else|endif|set|endset|not|and|or|is|"
                      r"macro|endmacro|true|false|none)\b")
_SYNTAX = TextAreaTheme.get_builtin_theme("css").syntax_styles  # the editor's default theme
_ERROR_LINE = Style(bgcolor="#5f1f1f")


class JinjaArea(TextArea):
    """A TextArea that colours Jinja tags, strings and keywords, and marks the line of an error.

    Textual ships no Jinja grammar, so the colours come from regular expressions applied in
    `get_line`, the documented hook for styling a line.
    """

    error_line: reactive[int | None] = reactive(None)  # 1-based, as TemplateError.line

    def get_line(self, line_index: int) -> Text:
        line = super().get_line(line_index)
        for tag in _TAG.finditer(line.plain):
            line.stylize(_SYNTAX["tag"], *tag.span(1))
            line.stylize(_SYNTAX["type.builtin"], *tag.span(2))
            line.stylize(_SYNTAX["tag"], *tag.span(3))
            start, inside = tag.start(2), tag.group(2)
            for pattern, name in ((_KEYWORD, "keyword"), (_STRING, "string")):
                for match in pattern.finditer(inside):
                    line.stylize(_SYNTAX[name], start + match.start(), start + match.end())
        for comment in _COMMENT.finditer(line.plain):
            line.stylize(_SYNTAX["comment"], *comment.span())
        if self.error_line == line_index + 1:
            line.stylize(_ERROR_LINE)
        return line

    def watch_error_line(self) -> None:
        self.notify_style_update()  # drops the TextArea's cache of rendered lines
        self.refresh()


@dataclass
class Rendering:
    """One dataset row as trained with one template, or why it cannot be."""

    template: Any  # the TemplateConfig rendered
    tokens: list[Token]
    summary: str
    generation_prompt: str
    diagnostics: list[Any]  # studio.templates.Diagnostic
    error: str = ""
    error_line: int | None = None


class Loaded(Message):
    def __init__(self, tokenizer: Any, rows: list[dict], presets: dict[str, Any]) -> None:
        super().__init__()
        self.tokenizer, self.rows, self.presets = tokenizer, rows, presets


class Rendered(Message):
    def __init__(self, rendering: Rendering) -> None:
        super().__init__()
        self.rendering = rendering


def _load(config) -> tuple[Any, list[dict], dict[str, Any]]:
    from studio import templates
    from studio.data import load_rows

    return cached_tokenizer(config.model.name), load_rows(config.data), templates.PRESETS


def _trained_tokens(tokenizer, input_ids: list[int], labels: list[int]) -> list[Token]:
    """Each token as the model sees it, marked by whether it carries loss."""
    from studio import tokens

    return [Token(tokens.lookup(tokenizer, token_id)[0][1], token_id, loss=label != -100)
            for token_id, label in zip(input_ids, labels)]


class TemplatePane(ReportsWorkerErrors, Container, can_focus=True):
    """Pick or edit the chat template; see a dataset row as trained; apply it to the run config."""

    BINDINGS = [
        Binding("left_square_bracket", "row(-1)", "Prev row", key_display="[",
                tooltip="Render the previous dataset row"),
        Binding("right_square_bracket", "row(1)", "Next row", key_display="]",
                tooltip="Render the next dataset row"),
        Binding("a", "apply", "Apply", tooltip="Use this template in the run config"),
        Binding("p", "pick_preset", "Preset", tooltip="Choose a preset template"),
        Binding("e", "edit", "Edit", tooltip="Edit the Jinja template (Tab leaves the editor)"),
    ]

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._loaded: Any = None  # the RunConfig whose model and dataset are loaded (or loading)
        self._tokenizer: Any = None
        self._presets: dict[str, Any] = {}
        self._rows: list[dict] = []
        self._row = 0
        self._rendering: Rendering | None = None
        self._apply_when_rendered = False
        self._pending: Timer | None = None
        self._copies: dict[tuple[str, str], Any] = {}  # tokenizer copies, by (model, preset or "" for custom)
        self._copies_lock = threading.Lock()

    def compose(self):
        with Horizontal(id="tpl-bar"):
            yield Select([], prompt="loading presets…", allow_blank=True, compact=True, id="preset")
            yield Static("", id="tpl-row", classes="tpl-label", markup=False)
            yield Static("", id="tpl-state", classes="tpl-label", markup=False)
        yield Static("", id="tpl-about", markup=False)
        with Horizontal(id="tpl-main"):
            with Vertical(id="tpl-left"):
                yield JinjaArea("", id="jinja", show_line_numbers=True, highlight_cursor_line=False)
                yield Static("", id="tpl-error", markup=False)
                yield Static("", id="tpl-diagnostics", markup=False)
            with Vertical(id="tpl-right"):
                yield Static("loading tokenizer and dataset…", id="tpl-summary", markup=False)
                with VerticalScroll(id="tpl-render"):
                    yield TokenSpans(id="tpl-tokens")
                yield Static("", id="tpl-generation", markup=False)

    def on_mount(self) -> None:
        self.query_one("#tpl-render").border_title = "as trained: green carries loss"
        self.query_one("#tpl-generation").border_title = "generation prompt (for sampling)"

    def on_show(self) -> None:
        # A tokenizer takes seconds of CPU to load: only once the pane is first looked at.
        if self._loaded is None:
            self._start_loading(self.app.state.config)

    def on_state_changed(self, message: StateChanged) -> None:
        if self._loaded is None or "config" not in message.changed:  # never shown: on_show reads the config
            return
        config = message.state.config
        if (config.model, config.data) != (self._loaded.model, self._loaded.data):
            self._start_loading(config)  # shows the config's template once loaded
        elif self._tokenizer is not None:
            if config.template != self._template_config():
                self._show_template(config.template)
            self._update_state()

    # -- loading ---------------------------------------------------------------------------------

    def _start_loading(self, config) -> None:
        self._loaded = config
        self._tokenizer = None
        self.query_one("#tpl-summary", Static).update(f"loading tokenizer {config.model.name} and dataset…")
        self._load_worker(config)

    @work(thread=True, exclusive=True, group="template-load", exit_on_error=False,
          description="loading the tokenizer, presets and dataset rows")
    def _load_worker(self, config) -> None:
        tokenizer, rows, presets = _load(config)
        if not get_current_worker().is_cancelled:
            self.post_message(Loaded(tokenizer, rows, presets))

    def on_loaded(self, message: Loaded) -> None:
        self._tokenizer, self._rows, self._presets = message.tokenizer, message.rows, message.presets
        self._row = min(self._row, max(len(self._rows) - 1, 0))
        select = self.query_one("#preset", Select)
        select.set_options((name, name) for name in self._presets)
        self._show_template(self.app.state.config.template)

    def on_worker_failed(self, message: WorkerFailed) -> None:
        """A missing model or a bad dataset is said here too (the app's toast says it once for all)."""
        if message.worker.group == "template-load":
            self.query_one("#tpl-summary", Static).update(Text(message.text, style="bold red"))

    def _show_template(self, template_cfg) -> None:
        """Show a TemplateConfig: its preset in the picker and its Jinja (or the preset's) in the editor."""
        select = self.query_one("#preset", Select)
        known = template_cfg.preset in self._presets
        with select.prevent(Select.Changed):  # the editor text below is the config's, not the preset's
            select.value = template_cfg.preset if known else Select.BLANK
        self._describe_preset()
        if not known:  # the config file or form named a preset that does not exist
            self.query_one("#tpl-error", Static).update(f"✗ no preset {template_cfg.preset!r}: pick one above")
            return
        self.query_one("#jinja", JinjaArea).load_text(template_cfg.jinja or self._preset_source(template_cfg.preset))

    def _preset_source(self, name: str) -> str:
        """The Jinja of a preset; the "tokenizer" preset's is the tokenizer's own chat template."""
        jinja = self._presets[name].jinja
        return jinja if jinja is not None else (self._tokenizer.chat_template or "")

    # -- editing and rendering -------------------------------------------------------------------

    @on(Select.Changed, "#preset")
    def _preset_chosen(self, event: Select.Changed) -> None:
        if event.value in self._presets:
            self.query_one("#jinja", JinjaArea).load_text(self._preset_source(event.value))
        self._describe_preset()

    def _describe_preset(self) -> None:
        preset = self._presets.get(self.query_one("#preset", Select).value)
        self.query_one("#tpl-about", Static).update(preset.description if preset else "")

    @on(TextArea.Changed, "#jinja")
    def _template_edited(self) -> None:
        self._update_state()
        # Typing fires one change per key: render once the burst settles.
        if self._pending is not None:
            self._pending.stop()
        self._pending = self.set_timer(RENDER_DEBOUNCE_S, self._rerender)

    def _template_config(self):
        """The editor's template as a TemplateConfig: the preset, plus the Jinja if it was edited."""
        from studio.config import TemplateConfig

        preset = self.query_one("#preset", Select).value
        if preset not in self._presets:
            return None
        text = self.query_one("#jinja", JinjaArea).text
        return TemplateConfig(preset=preset, jinja="" if text == self._preset_source(preset) else text)

    def _update_state(self) -> None:
        state = self.query_one("#tpl-state", Static)
        applied = self._template_config() == self.app.state.config.template
        state.update("applied to the run config" if applied else "not applied: press a")
        state.set_class(not applied, "-edited")

    def _rerender(self) -> None:
        template_cfg = self._template_config()
        if template_cfg is None or not self._rows:
            return
        row = self._rows[self._row]
        self.query_one("#tpl-row", Static).update(f"row {self._row + 1} of {len(self._rows)} (line {row['_line']})")
        self._render_worker(self._tokenizer, template_cfg, row, self._loaded)

    @work(thread=True, exclusive=True, group="template-render", exit_on_error=False,
          description="rendering a dataset row with the template")
    def _render_worker(self, tokenizer, template_cfg, row: dict, config) -> None:
        rendering = self._render_row(tokenizer, template_cfg, row, config)
        if not get_current_worker().is_cancelled:
            self.post_message(Rendered(rendering))

    def _render_row(self, base, template_cfg, row: dict, config) -> Rendering:
        """The row as trained with the template: its tokens and loss mask, the generation prompt and
        the engine's diagnostics; or the error that stops it. Runs on a worker thread."""
        from studio import templates
        from studio.data import to_messages

        try:
            messages = to_messages(row, config.data)
        except Exception as error:  # the row lacks a configured column: the data config's problem
            return Rendering(template_cfg, [], "not rendered: the row does not fit the data config", "", [],
                             error=f"✗ {describe_error(error)}")
        with self._copies_lock:  # a stale render may still be running when the next one starts
            try:
                # As in training: a fresh copy of the shared tokenizer gets the template, and only a
                # preset (not custom Jinja) adds its tokens. A copy takes ~0.1 s, so one is kept per case.
                key = (config.model.name, "" if template_cfg.jinja.strip() else template_cfg.preset)
                if key not in self._copies:
                    self._copies[key] = copy.deepcopy(base)
                tokenizer = self._copies[key]
                templates.apply_template(tokenizer, template_cfg)
                encoded = templates.encode(tokenizer, messages, config.data.max_length, config.data.overlong)
                prompt = messages[:-1] if messages[-1]["role"] == "assistant" else messages
                generation = tokenizer.decode(templates.generation_prompt_ids(tokenizer, prompt))
                diagnostics = templates.diagnostics(tokenizer, messages)
            except Exception as error:  # whatever a user's template does wrong is shown, not raised
                line = error.line if isinstance(error, templates.TemplateError) else None
                return Rendering(template_cfg, [], "not rendered: the template has an error", "", [],
                                 error=f"✗ {describe_error(error)}", error_line=line)
            if encoded is None:
                return Rendering(template_cfg, [], f"this row is dropped: its answer does not fit in "
                                 f"max_length {config.data.max_length}", generation, diagnostics)
            trained = _trained_tokens(tokenizer, encoded.input_ids, encoded.labels)
        carrying = sum(token.loss for token in trained)
        summary = f"{len(trained)} tokens: {carrying} carry loss, {len(trained) - carrying} masked"
        if encoded.prompt_truncated:
            summary += " (prompt truncated to fit max_length)"
        return Rendering(template_cfg, trained, summary, generation, diagnostics)

    def on_rendered(self, message: Rendered) -> None:
        rendering = self._rendering = message.rendering
        self.query_one("#jinja", JinjaArea).error_line = rendering.error_line
        self.query_one("#tpl-error", Static).update(rendering.error)
        self.query_one("#tpl-summary", Static).update(rendering.summary)
        self.query_one("#tpl-tokens", TokenSpans).set_tokens(rendering.tokens)
        self.query_one("#tpl-generation", Static).update(
            Text(rendering.generation_prompt.replace("\n", f"{NEWLINE}\n")))
        self.query_one("#tpl-diagnostics", Static).update(self._diagnostics_text(rendering))
        if self._apply_when_rendered and rendering.template == self._template_config():
            self._apply_when_rendered = False
            self.action_apply()

    @staticmethod
    def _diagnostics_text(rendering: Rendering) -> Text:
        if rendering.error:
            return Text("")
        if not rendering.diagnostics:
            return Text("✓ no problems found", style="green")
        text = Text()
        for diagnostic in rendering.diagnostics:
            text.append(f"⚠ {diagnostic.message}\n", style="bold yellow")
            text.append(f"  fix: {diagnostic.fix}\n")
        text.rstrip()
        return text

    # -- actions ---------------------------------------------------------------------------------

    def action_row(self, step: int) -> None:
        if self._rows:
            self._row = (self._row + step) % len(self._rows)
            self._rerender()

    def action_apply(self) -> None:
        template_cfg = self._template_config()
        if template_cfg is None:
            self.notify("nothing to apply: the tokenizer and dataset have not loaded", severity="warning")
        elif self._rendering is None or self._rendering.template != template_cfg:
            # Only a template that rendered goes into the config: render this one now, apply after.
            self._apply_when_rendered = True
            self._rerender()
        elif self._rendering.error:
            self.notify(f"fix the template first: {self._rendering.error}", severity="error")
        else:
            self.app.change(config=replace(self.app.state.config, template=template_cfg))
            self._update_state()

    def action_pick_preset(self) -> None:
        select = self.query_one("#preset", Select)
        select.focus()
        select.expanded = True

    def action_edit(self) -> None:
        self.query_one("#jinja", JinjaArea).focus()
