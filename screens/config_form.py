"""The run config form: one row per setting, checked as you type by building a RunConfig from it.

Errors come from `RunConfig` itself (`ConfigError("train.learning_rate: must be ...")`), so the
form and the TOML file / CLI say the same thing; the message is shown under the field it names.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Input, Label, Select, Static

from studio.config import AUTO, METHODS, SCHEDULERS, ConfigError, RunConfig


@dataclass(frozen=True)
class Field:
    path: str  # section.key in RunConfig
    label: str
    kind: type | tuple[str, ...]  # int, float, str, Path (may be empty), list (comma-separated), or the choices

    @property
    def id(self) -> str:
        return "field-" + self.path.replace(".", "-").replace("_", "-")


FIELDS = (
    Field("model.name", "model", str),
    Field("model.adapter", "adapter", Path),  # a run's adapter to continue; empty: a new one
    Field("train.method", "method", METHODS),
    Field("data.dataset", "dataset", str),
    Field("lora.r", "LoRA r", int),
    Field("lora.alpha", "LoRA alpha", int),
    Field("lora.dropout", "LoRA dropout", float),
    Field("lora.target_modules", "LoRA targets", list),
    Field("model.quantization", "quantization", ("none", "4bit", "8bit", "auto")),
    Field("train.learning_rate", "learning rate", float),
    Field("train.scheduler", "scheduler", SCHEDULERS),
    Field("train.max_steps", "max steps", int),
    Field("train.batch_size", "batch size", int),
    Field("train.grad_accum", "grad accum", int),
    Field("data.max_length", "max length", int),
    Field("train.eval_every", "eval every", int),
    Field("train.sample_every", "sample every", int),
)
# Choices too long for the form's 13 columns at 80x24 ("constant_with" was all the default schedule showed).
CHOICE_LABELS = {"constant_with_warmup": "warm+constant", "warmup_stable_decay": "stable+decay",
                 "cosine_with_restarts": "cos restarts", "cosine_with_min_lr": "cos to 10%",
                 "cosine_warmup_with_min_lr": "warm+cos 10%"}
GPUS = Field("train.gpus", "GPUs", int)  # shown where more than one GPU is visible


def visible_gpus() -> int:
    """How many NVIDIA GPUs this process may use, without importing torch (the app must open at once)."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return len([d for d in listed.split(",") if d.strip() and d.strip() != "-1"])
    gpus = Path("/proc/driver/nvidia/gpus")
    return len(list(gpus.iterdir())) if gpus.is_dir() else 0


def form_fields() -> tuple[Field, ...]:
    return FIELDS + (GPUS,) if visible_gpus() > 1 else FIELDS
PARSE_HINTS = {int: "type a whole number, e.g. 60", float: "type a number, e.g. 2e-4 or 0.05 (the learning rate may be auto)",
               str: "must not be empty", list: "list module names separated by commas, or all-linear"}


def _show(value) -> str:
    return ", ".join(value) if isinstance(value, list) else str(value)


def _parse(field: Field, text: str):
    """The typed value of a field's text; ValueError with a hint when it cannot be one."""
    text = text.strip()
    if field.kind is int:
        return int(text)
    if field.kind is float:
        return AUTO if text.lower() == AUTO else float(text)  # only the learning rate takes "auto" (config checks)
    if field.kind is list:
        items = [part.strip() for part in text.split(",") if part.strip()]
        if not items:
            raise ValueError
        return items
    if field.kind is str and not text:
        raise ValueError
    return text


class ConfigForm(VerticalScroll):
    """Posts `Edited` after every change: the config when it is valid, else None."""

    class Edited(Message):
        def __init__(self, config: RunConfig | None) -> None:
            super().__init__()
            self.config = config

    def __init__(self, config: RunConfig, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._base = config  # keeps what the form does not show (template, name, ...)
        self.config: RunConfig | None = config
        self.errors: dict[str, str] = {}
        self.busy = False  # a run is starting or training: Start stays off
        self.fields = form_fields()

    def set_busy(self, busy: bool) -> None:
        self.busy = busy
        self.query_one("#start", Button).disabled = not self.valid or busy

    def compose(self) -> ComposeResult:
        for field in self.fields:
            with Horizontal(classes="field-row"):
                yield Label(field.label, classes="field-label")
                value = _show(self._value(field.path))
                if isinstance(field.kind, tuple):
                    choices = field.kind if value in field.kind else (*field.kind, value)
                    yield Select([(CHOICE_LABELS.get(c, c), c) for c in choices], value=value, allow_blank=False,
                                 compact=True, id=field.id)
                else:
                    yield Input(value, compact=True, id=field.id)
            yield Static("", classes="field-error", id=f"{field.id}-error")
            if field.path == "data.dataset":
                with Horizontal(classes="field-row"):
                    yield Label("template", classes="field-label")
                    yield Static(self._base.template.preset, id="template-name")
        yield Static("", classes="field-error", id="form-error")
        yield Button("Start (s)", id="start", variant="success", compact=True)

    def _value(self, path: str):
        section, key = path.split(".")
        return getattr(getattr(self._base, section), key)

    @property
    def valid(self) -> bool:
        return self.config is not None

    def load(self, config: RunConfig) -> None:
        """Show a config from elsewhere (another pane, an opened run) without echoing it back as an edit."""
        self._base = config
        with self.prevent(Input.Changed, Select.Changed):
            for field in self.fields:
                widget = self.query_one(f"#{field.id}")
                value = _show(self._value(field.path))
                if isinstance(widget, Select):
                    if value not in field.kind:
                        widget.set_options([(c, c) for c in (*field.kind, value)])
                    widget.value = value
                else:
                    widget.value = value
        template = config.template
        self.query_one("#template-name", Static).update("custom jinja" if template.jinja.strip() else template.preset)
        self._check()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._check()
        self.post_message(self.Edited(self.config))

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        self._check()
        self.post_message(self.Edited(self.config))

    def _check(self) -> None:
        """Build a RunConfig from the fields; remember it, or the error under the field it names."""
        raw = self._base.to_dict()
        errors: dict[str, str] = {}
        for field in self.fields:
            widget = self.query_one(f"#{field.id}")
            section, key = field.path.split(".")
            try:
                raw[section][key] = _parse(field, str(widget.value))
            except ValueError:
                errors[field.path] = PARSE_HINTS[field.kind]
        config = None
        if not errors:
            try:
                config = RunConfig.from_dict(raw)
            except ConfigError as exc:
                path, _, message = str(exc).partition(": ")
                errors[path] = message or str(exc)
        self.config, self.errors = config, errors
        self._show_errors()

    def _show_errors(self) -> None:
        paths = {field.path for field in self.fields}
        for field in self.fields:
            message = self.errors.get(field.path, "")
            widget = self.query_one(f"#{field.id}-error", Static)
            widget.update(message)
            widget.display = bool(message)
            self.query_one(f"#{field.id}").set_class(bool(message), "-invalid")
        elsewhere = [f"{path}: {message}" for path, message in self.errors.items() if path not in paths]
        form_error = self.query_one("#form-error", Static)
        form_error.update("\n".join(elsewhere))
        form_error.display = bool(elsewhere)
        self.query_one("#start", Button).disabled = not self.valid or self.busy

    def on_mount(self) -> None:
        self._check()
