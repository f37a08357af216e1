"""One judge of the A/B workbench, as the pane shows it: its prompt's name, judge and scale; a line
saying whether its endpoint can be asked (a missing key named, with how to give it; the local judge
named as weak); how well it did on the last run (AUC with its interval, agreement with the human
labels); its answer to the last probe; and, when there is room, the start of its prompt.

The prompt itself is edited in PromptEditor (the pane opens it). The API key is checked, never
shown: only the NAME of its environment variable, or that one was typed for this session.
"""

from __future__ import annotations

import dataclasses
import os

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from studio.judge import JudgeConfigError, JudgePrompt, JudgeResult, SessionKeys, check_backend, load_prompt
from studio.judge.backends import is_loopback, resolve_key
from studio.judge.offline import LOCAL_LABEL, LOCAL_MODEL
from studio.judge.prompts import host_of

PAIRWISE_PRESET = "pairwise"  # MT-Bench's pairwise judge, both orders


def _one_line(text: str) -> str:
    return " ".join(text.split())


def labelled(prompt: JudgePrompt, label: str) -> JudgePrompt:
    """The prompt with an id that names its side (A-yoda, B-yoda), so two prompts from one preset stay apart."""
    base = prompt.id.removeprefix("A-").removeprefix("B-")
    return dataclasses.replace(prompt, id=f"{label}-{base}")


def endpoint_status(prompt: JudgePrompt, keys: SessionKeys, label: str) -> tuple[str, bool]:
    """(what to say about where this judge runs, whether that stops it from running)."""
    endpoint = prompt.endpoint
    try:
        check_backend(prompt)
    except JudgeConfigError as error:
        return str(error), True
    if endpoint.backend == "local":
        if endpoint.model == LOCAL_MODEL:
            return LOCAL_LABEL, False
        return f"a model in this process, loaded on first use: {endpoint.model}", False
    typed = keys.get(endpoint) or None
    variable = endpoint.api_key_env
    if variable and not typed and not os.environ.get(variable):
        return (f"{variable} is not set: press {label.lower()} to type the key (kept in memory), or "
                f"`export {variable}=...` in your shell, then restart studio"), True
    try:
        resolve_key(endpoint, typed)  # refuses a key over plain http to another host; the key is dropped at once
    except JudgeConfigError as error:
        return str(error), True
    host = host_of(endpoint.base_url)
    if typed:
        return f"API key typed for {host} (in memory for this session only)", False
    if variable:
        return f"API key from ${variable} (set)", False
    return ("no API key sent (a local server)" if is_loopback(host) else f"no API key sent to {host}"), False


class JudgeSide(Vertical):
    def __init__(self, label: str, prompt: JudgePrompt, keys: SessionKeys, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.label = label
        self.keys = keys
        self._prompt = labelled(prompt, label)
        self._scoring: JudgePrompt | None = None  # the prompt to go back to when pairwise mode ends

    def compose(self) -> ComposeResult:
        side = self.label.lower()
        yield Static("", id=f"key-{side}", classes="judge-key", markup=False)
        yield Static("r: run A and B to rate this prompt", id=f"rating-{side}", classes="judge-rating", markup=False)
        yield Static("probe: p, then a text for both judges", id=f"probe-{side}", classes="judge-probe -unasked",
                     markup=False)
        yield Static("", id=f"preview-{side}", classes="judge-preview", markup=False)

    def on_mount(self) -> None:
        self._show_prompt()

    # -- the prompt ------------------------------------------------------------------------------

    def prompt(self) -> JudgePrompt:
        return self._prompt

    def set_prompt(self, prompt: JudgePrompt) -> None:
        changed = labelled(prompt, self.label)
        if changed != self._prompt:
            self._prompt = changed
            self.show_rating(["r: run A and B to rate this prompt"])
        self._show_prompt()

    def set_pairwise(self, on: bool) -> None:
        """Pairwise mode judges with MT-Bench's pairwise prompt on this side's endpoint; off brings the
        prompt back as it was."""
        if on and self._scoring is None:
            self._scoring = self._prompt
            self.set_prompt(dataclasses.replace(load_prompt(PAIRWISE_PRESET), endpoint=self._prompt.endpoint))
        elif not on and self._scoring is not None:
            self.set_prompt(dataclasses.replace(self._scoring, endpoint=self._prompt.endpoint))
            self._scoring = None

    def _show_prompt(self) -> None:
        prompt = self._prompt
        lo, hi = prompt.scale
        model = prompt.endpoint.model.rstrip("/").rsplit("/", 1)[-1]
        self.border_title = f"{self.label} · {prompt.name or prompt.id} · {model}"
        self.border_subtitle = f"scale {lo:g}-{hi:g} · parse {prompt.parse}"
        preview = "\n".join(_one_line(paragraph) for paragraph in
                            f"{prompt.system}\n\ntemplate: {prompt.template}".split("\n\n") if paragraph.strip())
        self.query_one(".judge-preview", Static).update(preview)
        self.show_endpoint_status()

    def endpoint_problem(self) -> str | None:
        """Why this judge cannot be asked now, in words that say what to do; None when it can."""
        text, problem = endpoint_status(self._prompt, self.keys, self.label)
        return text if problem else None

    def show_endpoint_status(self) -> None:
        text, problem = endpoint_status(self._prompt, self.keys, self.label)
        status = self.query_one(".judge-key", Static)
        status.update(text)
        status.set_class(problem, "-error")

    # -- what the judge said ---------------------------------------------------------------------

    def show_rating(self, lines: list[str]) -> None:
        self.query_one(".judge-rating", Static).update("\n".join(lines))

    def show_probe(self, result: JudgeResult | None = None, error: str | None = None) -> None:
        """The judge's verdict on the probe, or why there is none (an error, or an answer without a score)."""
        if result is not None and result.score is not None:
            flag = f" [{result.flag}]" if result.flag else ""
            text = f"{result.score:g}{flag}  {_one_line(result.reason or '')}"
        elif result is not None:
            text = f"no score: {result.error}" + (f" ({_one_line(result.raw)})" if result.raw else "")
        else:
            text = error or ""
        probe = self.query_one(".judge-probe", Static)
        probe.update(text)
        probe.remove_class("-unasked")
        probe.set_class(result is None or result.score is None, "-error")

    def probe_pending(self) -> None:
        probe = self.query_one(".judge-probe", Static)
        probe.update("asking the judge…")
        probe.remove_class("-error", "-unasked")
