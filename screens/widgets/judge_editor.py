"""The whole of one judge prompt, editable: its preset, where it runs (endpoint, model, the key's
variable, or a key typed for this session), its scale and parse mode, its system prompt and its
template; loaded from a prompt TOML and saved as one, exactly as `studio judge --prompt` and
`studio eval --prompt` read it.

Where it runs is edited the way the CLI edits it: every change is applied to the endpoint as it was
(`Endpoint.with_overrides`), so a key variable stays bound to the host it was named for, and moving
the URL to another host drops it until a variable is named for the new host. A key typed here is
kept in `SessionKeys` (this process's memory) for the host it was typed for, and nowhere else.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Select, Static, TextArea

from screens.widgets.judge_side import endpoint_status, labelled
from studio.judge import (Endpoint, JudgeConfigError, JudgePrompt, SessionKeys, endpoint_presets, load_prompt,
                          presets, save_prompt)
from studio.judge.prompts import PARSE_MODES, PRESETS_DIR, host_of

TEMPLATE_HELP = "template: {text} is the judged text; also {question}, {reference}, {answer_a}, {answer_b}, {nonce}"


EDITED = " (edited)"


def _number(value: float) -> str:
    return f"{value:g}"


class PromptEditor(ModalScreen[JudgePrompt | None]):
    """Dismisses with the edited prompt (escape, when it is a valid prompt), or None (escape twice
    on one that is not: the edits are dropped)."""

    BINDINGS = [
        Binding("escape", "done", "Done", tooltip="Use the edited prompt (a second escape drops invalid edits)"),
        Binding("ctrl+s", "save", "Save", tooltip="Save the prompt as a TOML (the file field, or RUN/eval/prompts/)"),
        Binding("ctrl+o", "load", "Load", tooltip="Load the prompt TOML named in the file field"),
    ]

    def __init__(self, label: str, prompt: JudgePrompt, keys: SessionKeys, save_dir: Path) -> None:
        super().__init__()
        self.label = label
        self.keys = keys
        self.save_dir = save_dir  # where ctrl+s writes when the file field is empty
        self._base = prompt  # what the fields do not show (id, name, params) comes from here
        self._endpoint = prompt.endpoint  # the endpoint as last edited; every change is applied to it
        self._errors: dict[str, str] = {}  # field -> why its value could not be applied
        self._presets = presets()
        self._endpoints = endpoint_presets()
        self._dropping = False  # escape was pressed on an invalid prompt: a second one drops the edits

    def compose(self) -> ComposeResult:
        prompt, side = self._base, self.label.lower()
        with Vertical(id="editor-dialog"):
            yield Static("", id="editor-title", markup=False)
            with Horizontal(classes="editor-row"):
                yield Static("preset", classes="editor-label")
                yield Select([(p.name or key, key) for key, p in self._presets.items()], value=self._preset_of(prompt),
                             prompt="(from a file)", compact=True, id=f"preset-{side}")
                yield Static("endpoint", classes="editor-label")
                yield Select([(name, name) for name in self._endpoints], value=self._endpoint_name(),
                             prompt="custom endpoint", compact=True, id=f"endpoint-{side}")
            with Horizontal(classes="editor-row"):
                yield Input(self._endpoint.base_url, placeholder="base URL (empty: a model in this process)",
                            compact=True, id=f"url-{side}", classes="editor-url")
                yield Input(self._endpoint.model, placeholder="judge model", compact=True, id=f"model-{side}")
                yield Input(self._endpoint.api_key_env, placeholder="API key variable", compact=True,
                            id=f"keyenv-{side}")
            with Horizontal(classes="editor-row", id="typed-key-row"):
                yield Static("API key", classes="editor-label")
                yield Input(self.keys.get(self._endpoint) or "", password=True, compact=True, id=f"typed-key-{side}")
            yield Static("", id="editor-endpoint", markup=False)
            with Horizontal(classes="editor-row"):
                yield Static("scale", classes="editor-label")
                yield Input(_number(prompt.scale[0]), compact=True, id=f"scale-lo-{side}", classes="editor-number")
                yield Static("to", classes="editor-label")
                yield Input(_number(prompt.scale[1]), compact=True, id=f"scale-hi-{side}", classes="editor-number")
                yield Static("parse", classes="editor-label")
                yield Select([(mode, mode) for mode in PARSE_MODES], value=prompt.parse, allow_blank=False,
                             compact=True, id=f"parse-{side}")
            yield Static("system prompt", classes="editor-heading")
            yield TextArea(prompt.system, soft_wrap=True, compact=True, id=f"system-{side}")
            yield Static(TEMPLATE_HELP, classes="editor-heading", markup=False)
            yield TextArea(prompt.template, soft_wrap=True, compact=True, id=f"template-{side}")
            with Horizontal(classes="editor-row"):
                yield Static("file", classes="editor-label")
                yield Input(placeholder=f"prompt TOML: ctrl+o loads it; ctrl+s saves here (empty: {self.save_dir}/)",
                            compact=True, id=f"file-{side}")
            yield Static("", id="editor-message", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self._show_title()
        self._show_endpoint()
        self.query_one(f"#system-{self.label.lower()}", TextArea).focus()

    # -- the fields ------------------------------------------------------------------------------

    def _field(self, name: str):
        return self.query_one(f"#{name}-{self.label.lower()}")

    def _preset_of(self, prompt: JudgePrompt):
        """The preset a prompt started from; NULL for one loaded from a file of the user's."""
        preset = prompt.id.removeprefix(f"{self.label}-")
        from_file = prompt.path is not None and prompt.path.parent != PRESETS_DIR
        return preset if preset in self._presets and not from_file else Select.NULL

    def _endpoint_name(self):
        return next((name for name, e in self._endpoints.items() if e == self._endpoint), Select.NULL)

    def _show_title(self) -> None:
        prompt = self._base
        self.query_one("#editor-title", Static).update(f"prompt {self.label} · {prompt.name or prompt.id}")

    def _fill(self, prompt: JudgePrompt) -> None:
        """Every field from a prompt (a preset's text, or a loaded file)."""
        self._field("system").load_text(prompt.system)
        self._field("template").load_text(prompt.template)
        self._field("scale-lo").value = _number(prompt.scale[0])
        self._field("scale-hi").value = _number(prompt.scale[1])
        self._field("parse").value = prompt.parse
        self._show_title()

    def _fill_endpoint(self) -> None:
        """The endpoint's fields from the endpoint (their change events then find nothing to apply)."""
        for name, value in (("url", self._endpoint.base_url), ("model", self._endpoint.model),
                            ("keyenv", self._endpoint.api_key_env)):
            if self._field(name).value != value:
                self._field(name).value = value
        self._field("typed-key").value = self.keys.get(self._endpoint) or ""

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        event.stop()
        kind = event.select.id.rsplit("-", 1)[0]
        if kind == "preset" and event.value is not Select.NULL and event.value != self._preset_of(self._base):
            preset = self._presets[event.value]
            self._base = dataclasses.replace(preset, id=f"{self.label}-{preset.id}", endpoint=self._endpoint)
            self._fill(preset)  # where it runs stays as the user set it
        elif kind == "endpoint" and event.value is not Select.NULL and self._endpoints[event.value] != self._endpoint:
            self._endpoint = self._endpoints[event.value]
            self._errors.clear()
            self._fill_endpoint()
        self._check()

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        event.stop()
        kind = event.input.id.rsplit("-", 1)[0]
        if kind in ("url", "model", "keyenv"):
            self._edit_endpoint(kind, event.value.strip())
        elif kind == "typed-key":
            if event.value != (self.keys.get(self._endpoint) or ""):
                self.keys.set(self._endpoint, event.value)  # for this host only, in memory only
            self._show_endpoint()
        self._check()

    @on(TextArea.Changed)
    def _text_changed(self, event: TextArea.Changed) -> None:
        event.stop()
        self._check()

    def _edit_endpoint(self, kind: str, value: str) -> None:
        current = {"url": self._endpoint.base_url, "model": self._endpoint.model,
                   "keyenv": self._endpoint.api_key_env}[kind]
        if value == current:  # a field filled from the endpoint, or a change already applied
            self._errors.pop(kind, None)
            return
        try:
            if kind == "url" and not value:
                edited = Endpoint(backend="local", model=self._endpoint.model)  # no URL: a model in this process
            else:
                edited = self._endpoint.with_overrides(**{{"url": "base_url", "model": "model",
                                                          "keyenv": "api_key_env"}[kind]: value})
        except JudgeConfigError as error:
            self._errors[kind] = str(error)
            return
        self._errors.pop(kind, None)
        moved = host_of(edited.base_url) != host_of(self._endpoint.base_url)
        self._endpoint = edited
        if edited.api_key_env != self._field("keyenv").value:
            self._field("keyenv").value = edited.api_key_env  # the key variable did not follow the URL
        if moved:
            self._field("typed-key").value = self.keys.get(edited) or ""
        chooser = self._field("endpoint")
        if chooser.value is not Select.NULL and self._endpoints[chooser.value] != edited:
            chooser.clear()
        self._show_endpoint()

    def _show_endpoint(self) -> None:
        """The endpoint's status line, and the key field when the environment holds no key for it."""
        endpoint = self._endpoint
        wants_key = endpoint.backend != "local" and not (endpoint.api_key_env and os.environ.get(endpoint.api_key_env))
        row = self.query_one("#typed-key-row")
        row.display = wants_key
        self._field("typed-key").placeholder = (f"typed here: kept in memory for this session, sent only to "
                                                f"{host_of(endpoint.base_url)}")
        try:
            prompt = self.prompt()
        except JudgeConfigError:
            prompt = dataclasses.replace(self._base, endpoint=endpoint)  # the message line says what to fix
        text, problem = endpoint_status(prompt, self.keys, self.label)
        status = self.query_one("#editor-endpoint", Static)
        status.update(text)
        status.set_class(problem, "-error")

    # -- the prompt ------------------------------------------------------------------------------

    def prompt(self) -> JudgePrompt:
        """The prompt as edited. Raises JudgeConfigError naming what to fix."""
        if self._errors:
            raise JudgeConfigError(next(iter(self._errors.values())))
        try:
            scale = tuple(float(self._field(f"scale-{end}").value) for end in ("lo", "hi"))
        except ValueError:
            raise JudgeConfigError("scale: give two numbers, low and high (e.g. 1 and 10)") from None
        scale = tuple(int(x) if x.is_integer() else x for x in scale)
        # Its id names its side, as the pane's does: what ctrl+s saves is the prompt the pane runs.
        edited = dataclasses.replace(labelled(self._base, self.label), system=self._field("system").text,
                                     template=self._field("template").text, scale=scale,
                                     parse=self._field("parse").value, endpoint=self._endpoint)
        return self._named(edited)

    def _named(self, prompt: JudgePrompt) -> JudgePrompt:
        """A prompt whose words, scale or parse mode differ from what it started as is named "(edited)", so
        A and B from one preset are told apart in both panes and in the report."""
        base = self._base
        if (prompt.system, prompt.template, prompt.scale, prompt.parse) == (base.system, base.template, base.scale,
                                                                            base.parse):
            return prompt
        name = prompt.name or prompt.id
        return prompt if name.endswith(EDITED) else dataclasses.replace(prompt, name=name + EDITED)

    def _check(self) -> None:
        self._dropping = False
        try:
            self.prompt()
        except JudgeConfigError as error:
            self._say(str(error), error=True)
        else:
            self._say("")
        self._show_endpoint()

    def _say(self, text: str, error: bool = False) -> None:
        message = self.query_one("#editor-message", Static)
        message.update(text)
        message.set_class(error, "-error")

    # -- keys ------------------------------------------------------------------------------------

    def action_done(self) -> None:
        try:
            prompt = self.prompt()
        except JudgeConfigError as error:
            if self._dropping:
                self.dismiss(None)
                return
            self._dropping = True
            self._say(f"{error} (fix it, or press escape again to drop these edits)", error=True)
            return
        self.dismiss(prompt)

    def _path(self) -> Path | None:
        typed = self._field("file").value.strip()
        return Path(typed).expanduser() if typed else None

    def action_save(self) -> None:
        try:
            path = save_prompt(self.prompt(), self._path() or self.save_dir)
        except (JudgeConfigError, OSError) as error:
            self._say(f"not saved: {error}", error=True)
            return
        self._say(f"saved {path}: `studio judge --prompt {path}` uses it as it is")

    def action_load(self) -> None:
        path = self._path()
        if path is None:
            self._say("type the path of a prompt TOML in the file field, then ctrl+o", error=True)
            return
        try:
            loaded = load_prompt(path)
        except (JudgeConfigError, OSError) as error:
            self._say(f"not loaded: {error}", error=True)
            return
        self._base = loaded
        self._endpoint = loaded.endpoint
        self._errors.clear()
        self._fill(loaded)
        self._fill_endpoint()
        self._field("preset").value = self._preset_of(loaded)
        self._field("endpoint").value = self._endpoint_name()
        self._check()
        self._say(f"loaded {path}")
