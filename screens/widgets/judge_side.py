"""One judge of the A/B workbench: its prompt preset, its endpoint, its editable system prompt, a
line saying whether the endpoint can be used (a missing API key named, with how to set it), and
its answer to the last probe.

The widget only reads and shows; the pane starts the workers. The API key is looked up to check it
is there, and never shown: only the NAME of its environment variable is.
"""

from __future__ import annotations

import dataclasses
import os

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Select, Static, TextArea

from studio.judge import Endpoint, JudgeConfigError, JudgePrompt, JudgeResult, endpoint_presets, presets
from studio.judge.backends import resolve_key


def _one_line(text: str) -> str:
    return " ".join(text.split())


class JudgeSide(Vertical):
    def __init__(self, label: str, preset: str = "yoda", *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.label = label
        self._presets = presets()
        self._endpoints = endpoint_presets()
        self._preset = preset

    def compose(self) -> ComposeResult:
        prompt = self._presets[self._preset]
        endpoint = prompt.endpoint
        known = next((name for name, e in self._endpoints.items() if e == endpoint), Select.NULL)
        side = self.label.lower()
        with Horizontal(classes="judge-row"):
            yield Select([(p.name or key, key) for key, p in self._presets.items()], value=self._preset,
                         allow_blank=False, compact=True, id=f"preset-{side}")
            yield Select([(name, name) for name in self._endpoints], value=known, prompt="custom endpoint",
                         compact=True, id=f"endpoint-{side}")
        with Horizontal(classes="judge-row"):
            yield Input(endpoint.base_url, placeholder="base URL (empty: a model in this process)", compact=True,
                        id=f"url-{side}", classes="judge-url")
            yield Input(endpoint.model, placeholder="judge model", compact=True, id=f"model-{side}")
            yield Input(endpoint.api_key_env, placeholder="API key variable", compact=True, id=f"keyenv-{side}")
        yield TextArea(prompt.system, soft_wrap=True, compact=True, id=f"system-{side}")
        yield Static("", id=f"key-{side}", classes="judge-key", markup=False)
        yield Static("probe: type a sentence below and press enter", id=f"probe-{side}", classes="judge-probe",
                     markup=False)

    def on_mount(self) -> None:
        self._set_title()
        self.show_endpoint_status()

    def _field(self, name: str) -> Input:
        return self.query_one(f"#{name}-{self.label.lower()}", Input)

    def _set_title(self) -> None:
        prompt = self._presets[self._preset]
        lo, hi = prompt.scale
        self.border_title = f"{self.label} · {prompt.name or prompt.id}"
        self.border_subtitle = f"scale {lo:g}-{hi:g} · parse {prompt.parse}"

    # -- what the user picks and types -----------------------------------------------------------

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if event.select.id.startswith("preset-"):
            if event.value != self._preset:  # also fired on mount: keep the user's edits then
                self._preset = event.value
                self.query_one(TextArea).load_text(self._presets[self._preset].system)
                self._set_title()
        elif event.value is not Select.NULL:
            endpoint = self._endpoints[event.value]
            self._field("url").value = endpoint.base_url
            self._field("model").value = endpoint.model
            self._field("keyenv").value = endpoint.api_key_env

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        # Fields that no longer match the chosen endpoint preset make it a custom endpoint.
        chooser = self.query_one(f"#endpoint-{self.label.lower()}", Select)
        if chooser.value is not Select.NULL and self._endpoint_fields() != self._endpoints[chooser.value]:
            chooser.clear()
        self.show_endpoint_status()

    def _endpoint_fields(self) -> Endpoint:
        """The endpoint as typed. No URL means the in-process model backend."""
        url = self._field("url").value.strip()
        return Endpoint(backend="openai" if url else "local", base_url=url, model=self._field("model").value.strip(),
                        api_key_env=self._field("keyenv").value.strip())

    def prompt(self) -> JudgePrompt:
        """The judge as edited. Raises JudgeConfigError naming what to fix."""
        base = self._presets[self._preset]
        return dataclasses.replace(base, id=f"{self.label}-{base.id}", system=self.query_one(TextArea).text,
                                   endpoint=self._endpoint_fields())

    def endpoint_problem(self) -> str | None:
        """Why this judge cannot be asked now, in words that say what to do; None when it can."""
        try:
            endpoint = self._endpoint_fields()
        except JudgeConfigError as error:
            return str(error)
        if endpoint.backend == "local":
            return None
        variable = endpoint.api_key_env
        if variable and not os.environ.get(variable):
            return f"{variable} is not set: `export {variable}=...` in your shell, then restart studio"
        try:
            resolve_key(endpoint)  # refuses a key over plain http to another host; the key is dropped at once
        except JudgeConfigError as error:
            return str(error)
        return None

    def show_endpoint_status(self) -> None:
        problem = self.endpoint_problem()
        if problem:
            text = problem
        elif not self._field("url").value.strip():
            text = "a model loaded in this process on first use (slow on CPU)"
        elif self._field("keyenv").value.strip():
            text = f"API key from ${self._field('keyenv').value.strip()} (set)"
        else:
            text = "no API key sent (a local server)"
        status = self.query_one(".judge-key", Static)
        status.update(text)
        status.set_class(problem is not None, "-error")

    # -- the probe -------------------------------------------------------------------------------

    def show_probe(self, result: JudgeResult | None = None, error: str | None = None) -> None:
        """The judge's verdict on the probe, or why there is none (an error, or an answer without a score)."""
        if result is not None and result.score is not None:
            text = f"{result.score:g}  {_one_line(result.reason or '')}"
        elif result is not None:
            text = f"no score: {result.error}" + (f" ({_one_line(result.raw)})" if result.raw else "")
        else:
            text = error or ""
        probe = self.query_one(".judge-probe", Static)
        probe.update(text)
        probe.set_class(result is None or result.score is None, "-error")

    def probe_pending(self) -> None:
        probe = self.query_one(".judge-probe", Static)
        probe.update("asking the judge…")
        probe.remove_class("-error")
