"""Judge prompts: TOML files (system prompt, user template, scale, parse mode, endpoint), the shipped
presets, saving an edited prompt exactly as it will be used, a diff of two prompts, and the user
message that puts the judged text inside delimiters it cannot forge."""

from __future__ import annotations

import dataclasses
import difflib
import re
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from studio.errors import StudioError
from studio.judge.items import JudgeItem
from studio.paths import ASSETS

PRESETS_DIR = ASSETS / "judge"
ENDPOINTS_FILE = PRESETS_DIR / "endpoints.toml"
PARSE_MODES = ("number", "score", "json", "logprobs", "pairwise", "yesno")
LOGPROB_MODES = ("logprobs", "yesno")  # scored from the judge's token probabilities where it gives them
BACKENDS = ("openai", "local")
PLACEHOLDERS = ("text", "question", "reference", "answer_a", "answer_b")
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r"|nonce)\}")


class JudgeConfigError(StudioError, ValueError):
    """A prompt file, endpoint or key is unusable; the message says which and what to do."""


def host_of(url: str) -> str:
    return urlsplit(url).hostname or ""


@dataclass(frozen=True)
class Endpoint:
    """Where a judge runs. Holds the NAME of the key's environment variable, never the key.

    A key variable is bound to the host it was named for (key_host, set from base_url when the
    endpoint is made): moving the endpoint to another host with with_overrides drops the key
    unless a variable is named again, and a key is never sent to a host it is not bound to."""

    backend: str = "openai"  # openai (any OpenAI-compatible HTTP server) | local (in-process transformers)
    base_url: str = ""
    model: str = ""
    api_key_env: str = ""  # empty: the server wants no key (a local vLLM/Ollama/llama.cpp)
    key_host: str = ""  # the host the key variable is for; empty: bound to base_url's host

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise JudgeConfigError(f"endpoint.backend: {self.backend!r} is not one of {', '.join(BACKENDS)}")
        if not self.model:
            raise JudgeConfigError("endpoint.model: name the judge model")
        if self.backend == "openai" and not self.base_url:
            raise JudgeConfigError("endpoint.base_url: give the server's URL, e.g. https://openrouter.ai/api/v1")
        # Naming a key variable together with a URL binds it to that URL's host; no variable, no binding.
        object.__setattr__(self, "key_host", (self.key_host or host_of(self.base_url)) if self.api_key_env else "")

    def with_overrides(self, base_url: str | None = None, model: str | None = None,
                       api_key_env: str | None = None) -> Endpoint:
        """This endpoint with fields changed as a user changes them: a new host gets no key unless
        api_key_env names one (for that host)."""
        changes = {k: v for k, v in (("base_url", base_url), ("model", model), ("api_key_env", api_key_env))
                   if v is not None}
        url = base_url if base_url is not None else self.base_url
        if api_key_env is not None:
            changes["key_host"] = host_of(url)
        elif host_of(url) != host_of(self.base_url):
            changes["api_key_env"] = changes["key_host"] = ""  # a key is bound to its host
        if base_url is not None and self.backend == "local":
            changes["backend"] = "openai"  # a URL means an HTTP server
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class JudgePrompt:
    id: str
    system: str
    template: str
    scale: tuple[float, float] = (1, 10)
    parse: str = "score"
    endpoint: Endpoint = field(default_factory=lambda: endpoint_preset("openrouter"))
    params: dict[str, Any] = field(default_factory=lambda: {"temperature": 0.0, "max_tokens": 256})
    name: str = ""
    description: str = ""
    path: Path | None = field(default=None, compare=False)  # where it was loaded from; not part of the prompt

    def __post_init__(self) -> None:
        where = self.path or self.id
        if self.parse not in PARSE_MODES:
            raise JudgeConfigError(f"{where}: parse = {self.parse!r} is not one of {', '.join(PARSE_MODES)}")
        lo, hi = self.scale
        if not lo < hi:
            raise JudgeConfigError(f"{where}: scale = [{lo}, {hi}] must go from low to high")
        if self.parse == "yesno" and tuple(self.scale) != (0, 1):
            raise JudgeConfigError(f"{where}: parse = \"yesno\" scores the probability of yes: set scale = [0, 1]")
        needed = ("answer_a", "answer_b") if self.parse == "pairwise" else ("text",)
        for name in needed:
            if "{" + name + "}" not in self.template:
                raise JudgeConfigError(f"{where}: the template must contain {{{name}}}")

    def with_endpoint(self, **overrides: str | None) -> JudgePrompt:
        return dataclasses.replace(self, endpoint=self.endpoint.with_overrides(**overrides))

    def uses(self, placeholder: str) -> bool:
        return "{" + placeholder + "}" in self.template


def _endpoint_tables() -> dict[str, dict]:
    return tomllib.loads(ENDPOINTS_FILE.read_text(encoding="utf-8"))


def endpoint_preset(name: str) -> Endpoint:
    """An endpoint from assets/judge/endpoints.toml: openrouter, openai, vllm, ollama, llamacpp, local."""
    tables = _endpoint_tables()
    if name not in tables:
        raise JudgeConfigError(f"unknown endpoint preset {name!r}; known: {', '.join(tables)}")
    table = {k: v for k, v in tables[name].items() if k != "description"}
    return Endpoint(**table)


def endpoint_presets() -> dict[str, Endpoint]:
    return {name: endpoint_preset(name) for name in _endpoint_tables()}


def _endpoint_from(table: dict[str, Any], where: Path) -> Endpoint:
    table = dict(table)
    base = endpoint_preset(table.pop("preset")) if "preset" in table else None
    unknown = set(table) - {f.name for f in dataclasses.fields(Endpoint)}
    if unknown:
        raise JudgeConfigError(f"{where}: unknown endpoint keys {sorted(unknown)}")
    if base is None:
        return Endpoint(**table)
    # A file that moves a preset to another host without naming a key variable gets no key.
    moved = base.with_overrides(**{k: table.pop(k) for k in ("base_url", "model", "api_key_env") if k in table})
    return dataclasses.replace(moved, **table)


_DEFAULT_PARAMS = {"temperature": 0.0, "max_tokens": 256}


def _params(raw: dict[str, Any]) -> dict[str, Any]:
    defaults = dict(_DEFAULT_PARAMS)
    if "max_completion_tokens" in raw:  # a reasoning model's limit replaces max_tokens, never joins it
        del defaults["max_tokens"]
    return {**defaults, **raw}


def load_prompt(source: str | Path) -> JudgePrompt:
    """A prompt from a TOML file, or a preset by id ("yoda", "leprechaun", "helpfulness", "faithfulness")."""
    path = Path(source)
    if not path.exists():
        preset = PRESETS_DIR / f"{source}.toml"
        if str(source) in preset_ids():
            path = preset
        else:
            raise JudgeConfigError(f"{source}: no such prompt file or preset (presets: {', '.join(preset_ids())})")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise JudgeConfigError(f"{path}: not valid TOML: {exc}") from exc
    for key in ("system", "template", "scale", "parse"):
        if key not in raw:
            raise JudgeConfigError(f"{path}: missing `{key}`")
    known = {"id", "name", "description", "system", "template", "scale", "parse", "endpoint", "params"}
    if set(raw) - known:
        raise JudgeConfigError(f"{path}: unknown keys {sorted(set(raw) - known)}")
    scale = raw["scale"]
    if not (isinstance(scale, list) and len(scale) == 2 and all(isinstance(x, (int, float)) for x in scale)):
        raise JudgeConfigError(f"{path}: scale must be [low, high], e.g. [1, 10]")
    endpoint = _endpoint_from(raw["endpoint"], path) if "endpoint" in raw else endpoint_preset("openrouter")
    return JudgePrompt(
        id=raw.get("id", path.stem), name=raw.get("name", path.stem), description=raw.get("description", ""),
        system=raw["system"], template=raw["template"], scale=(scale[0], scale[1]), parse=raw["parse"],
        endpoint=endpoint, params=_params(raw.get("params", {})), path=path,
    )


def prompt_toml(prompt: JudgePrompt) -> str:
    """The prompt as a TOML file that load_prompt reads back to an equal prompt: the whole prompt
    (template, system prompt, scale, parse mode, endpoint, parameters), never a key."""
    import tomli_w

    endpoint = {f.name: getattr(prompt.endpoint, f.name) for f in dataclasses.fields(Endpoint)}
    if endpoint["key_host"] == host_of(endpoint["base_url"]):
        del endpoint["key_host"]  # the usual binding, which loading derives again
    table = {"id": prompt.id, "name": prompt.name, "description": prompt.description,
             "scale": list(prompt.scale), "parse": prompt.parse, "system": prompt.system, "template": prompt.template,
             "endpoint": {k: v for k, v in endpoint.items() if v != ""}, "params": dict(prompt.params)}
    # Multi-line strings read best, but TOML readers turn a "\r\n" inside them into "\n": escape those.
    readable = not any("\r" in str(v) for v in (prompt.system, prompt.template, prompt.description))
    return tomli_w.dumps(table, multiline_strings=readable)


def save_prompt(prompt: JudgePrompt, path: str | Path) -> Path:
    """Write the prompt where `studio judge --prompt PATH` and `studio eval --prompt PATH` read it.
    A folder gets PROMPT_ID.toml inside it (e.g. RUN/eval/prompts/)."""
    path = Path(path)
    if path.is_dir() or not path.suffix:
        path = path / f"{prompt.id}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(prompt_toml(prompt), encoding="utf-8")
    tmp.replace(path)
    return path


def prompt_diff(a: JudgePrompt, b: JudgePrompt) -> str:
    """A unified diff of two prompts as their TOML files: what B changes from A, line by line."""
    return "".join(difflib.unified_diff(prompt_toml(a).splitlines(keepends=True),
                                        prompt_toml(b).splitlines(keepends=True), fromfile=f"A: {a.id}",
                                        tofile=f"B: {b.id}"))


def preset_ids() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.toml") if p != ENDPOINTS_FILE)


def presets() -> dict[str, JudgePrompt]:
    return {name: load_prompt(PRESETS_DIR / f"{name}.toml") for name in preset_ids()}


# -- the user message ---------------------------------------------------------------------------

_TAG_LIKE = re.compile(r"<(/?)\s*(" + "|".join(PLACEHOLDERS) + r")-", re.IGNORECASE)


def _neutralise(value: str) -> str:
    """Defuse anything shaped like our delimiters. The nonce is fresh per request, so a text cannot
    guess it; this also keeps a text from even looking like it closes or opens a block."""
    return _TAG_LIKE.sub(lambda m: f"‹{m.group(1)}{m.group(2)}-", value)


def render_messages(prompt: JudgePrompt, item: JudgeItem, nonce: str | None = None) -> list[dict[str, str]]:
    """System prompt plus the user message, each judged value wrapped as <text-NONCE>...</text-NONCE>.

    Raises JudgeConfigError when the template asks for a field this item lacks (a question, a
    reference), rather than judging with a silent blank.
    """
    nonce = nonce or secrets.token_hex(4)
    values = {"text": item.text, "question": item.question, "reference": item.reference,
              "answer_a": item.text, "answer_b": item.text_b}

    def fill(match: re.Match) -> str:
        name = match.group(1)
        if name == "nonce":  # lets a rubric refer to the tags by name
            return nonce
        if values[name] is None:
            raise JudgeConfigError(f"prompt {prompt.id!r} uses {{{name}}} but this item has no {name}")
        return f"<{name}-{nonce}>\n{_neutralise(values[name])}\n</{name}-{nonce}>"

    # One pass: a value that itself contains "{question}" or "{nonce}" is never substituted again.
    user = _PLACEHOLDER.sub(fill, prompt.template)
    messages = [{"role": "user", "content": user}]
    if prompt.system.strip():
        messages.insert(0, {"role": "system", "content": prompt.system.replace("{nonce}", nonce)})
    return messages
