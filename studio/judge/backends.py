"""Judge backends: any OpenAI-compatible HTTP server (through the async `openai` client), and a
model loaded in-process with transformers that scores from the probabilities of the score tokens.

A backend's `score` makes ONE attempt and raises TransientError (worth retrying) or
PermanentError; the runner owns retries, timeouts and caching.

API keys: read from the environment variable the endpoint names (or handed over in memory),
kept only inside the HTTP client, sent only to the configured host (redirects are not followed),
never over plain http except to loopback, and scrubbed from every error message.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import math
import os
import threading
import time
from urllib.parse import urlsplit

from studio.judge.items import JudgeItem, JudgeResult
from studio.judge.parse import (
    Parsed,
    expected_score,
    parse_answer,
    score_from_distribution,
)
from studio.judge.prompts import (
    Endpoint,
    JudgeConfigError,
    JudgePrompt,
    render_messages,
)

# Request parameters the chat completions call takes by name; anything else goes in extra_body.
_NAMED_PARAMS = ("temperature", "max_tokens", "top_p", "seed", "stop", "frequency_penalty", "presence_penalty")
_STUDIO_PARAMS = ("json_mode", "top_logprobs")  # ours, not the server's


class TransientError(Exception):
    """Worth retrying (429, 5xx, timeout, connection). retry_after: seconds the server asked for."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(Exception):
    """Retrying will not help (bad key, unknown model, a prompt that cannot be rendered)."""


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_key(endpoint: Endpoint, api_key: str | None = None) -> str | None:
    """The key for this endpoint (None when it wants none), after checking it may be sent there."""
    if api_key is None and endpoint.api_key_env:
        api_key = os.environ.get(endpoint.api_key_env)
        if not api_key:
            raise JudgeConfigError(f"the judge endpoint {endpoint.base_url} needs an API key: set the environment "
                                   f"variable {endpoint.api_key_env} (e.g. export {endpoint.api_key_env}=...)")
    url = urlsplit(endpoint.base_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise JudgeConfigError(f"base_url {endpoint.base_url!r} is not an http(s) URL")
    if api_key and url.scheme == "http" and not is_loopback(url.hostname):
        raise JudgeConfigError(f"refusing to send an API key over plain http to {url.hostname}: use https, or a "
                               "loopback address (127.0.0.1, ::1, localhost) for a local server")
    return api_key


def _retry_after(headers) -> float | None:
    """Seconds from Retry-After (seconds or an HTTP date) or retry-after-ms."""
    if headers is None:
        return None
    if headers.get("retry-after-ms"):
        try:
            return float(headers["retry-after-ms"]) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value) if email.utils.parsedate_tz(value) else None
        return max(0.0, when.timestamp() - time.time()) if when else None


def _result(prompt: JudgePrompt, item: JudgeItem, backend: str, model: str, parsed: Parsed, raw: str,
            tokens: int | None) -> JudgeResult:
    return JudgeResult(item=item, prompt_id=prompt.id, backend=backend, model=model, score=parsed.score,
                       reason=parsed.reason, raw=raw, tokens=tokens, error=parsed.error)


class OpenAIJudge:
    """An OpenAI-compatible chat completions endpoint: OpenRouter, OpenAI, vLLM, Ollama, llama.cpp."""

    backend = "openai"
    remote = True  # the runner's per-request timeout applies

    def __init__(self, endpoint: Endpoint, api_key: str | None = None, timeout: float = 60.0) -> None:
        import openai

        self.endpoint = endpoint
        self.model = endpoint.model
        key = resolve_key(endpoint, api_key)
        # The key lives only in the client; _scrub needs it to keep it out of error messages.
        self._scrub = (lambda text: text.replace(key, "[key]")) if key else (lambda text: text)
        self._client = openai.AsyncOpenAI(
            base_url=endpoint.base_url, api_key=key or "no-key", timeout=timeout,
            max_retries=0,  # our runner retries, so attempts are counted and Retry-After honoured once
            http_client=openai.DefaultAsyncHttpxClient(follow_redirects=False, timeout=timeout),
        )

    def __repr__(self) -> str:
        return f"OpenAIJudge(base_url={self.endpoint.base_url!r}, model={self.model!r})"

    def cache_identity(self) -> dict:
        return {"backend": self.backend, "base_url": self.endpoint.base_url, "model": self.model}

    def _request(self, prompt: JudgePrompt, item: JudgeItem) -> dict:
        params = dict(prompt.params)
        request = {"model": self.model, "messages": render_messages(prompt, item)}
        request.update({k: params.pop(k) for k in _NAMED_PARAMS if k in params})
        json_mode = params.pop("json_mode", True)
        top_logprobs = params.pop("top_logprobs", 20)
        if prompt.parse == "json" and json_mode:
            request["response_format"] = {"type": "json_object"}
        if prompt.parse == "logprobs":
            request.update(logprobs=True, top_logprobs=top_logprobs)
        extra = {k: v for k, v in params.items() if k not in _STUDIO_PARAMS}
        if extra:
            request["extra_body"] = extra
        return request

    async def score(self, prompt: JudgePrompt, item: JudgeItem) -> JudgeResult:
        import openai

        try:
            request = self._request(prompt, item)
        except JudgeConfigError as exc:
            raise PermanentError(str(exc)) from exc
        try:
            response = await self._client.chat.completions.create(**request)
        except openai.APITimeoutError as exc:
            raise TransientError("timeout") from exc
        except openai.APIConnectionError as exc:
            raise TransientError(self._scrub(f"connection error: {exc}")) from exc
        except openai.APIStatusError as exc:
            message = self._scrub(f"HTTP {exc.status_code}: {exc.message}")
            if exc.status_code in (408, 409, 429) or exc.status_code >= 500:
                raise TransientError(message, _retry_after(exc.response.headers)) from exc
            raise PermanentError(message) from exc
        if not response.choices:
            raise TransientError("the server returned no choices")
        choice = response.choices[0]
        raw = choice.message.content or ""
        if prompt.parse == "logprobs":
            content = choice.logprobs.content if choice.logprobs else None
            if not content:
                parsed = Parsed(None, error="unparsed: the endpoint returned no logprobs; use parse = \"score\"")
            else:
                parsed = expected_score([[(t.token, t.logprob) for t in pos.top_logprobs] for pos in content],
                                        prompt.scale)
        else:
            parsed = parse_answer(raw, prompt.parse, prompt.scale)
        tokens = response.usage.total_tokens if response.usage else None
        return _result(prompt, item, self.backend, self.model, parsed, raw, tokens)

    async def aclose(self) -> None:
        await self._client.close()


class LocalJudge:
    """A causal LM in this process, scoring from score-token probabilities (no sampling, no parsing).

    The assistant turn is primed with "Score: " and the next-token distribution is read over the
    integers of the scale. A number that spans several tokens (e.g. "10" as "1","0") is scored by
    its full token sequence, and a shorter number that is a prefix of a longer one ("1" of "10")
    only counts when the next token ends it. Forward passes are serialised: one model, one lock.
    """

    backend = "local"
    remote = False  # a forward pass in a thread cannot be cut short; the model load may take a while
    PRIME = "Score: "

    def __init__(self, model_name: str, device: str = "auto", *, model=None, tokenizer=None) -> None:
        self.model = model_name
        self.device = device
        self._model, self._tokenizer = model, tokenizer
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LocalJudge(model={self.model!r})"

    def cache_identity(self) -> dict:
        return {"backend": self.backend, "model": self.model}

    def _load(self) -> None:
        if self._model is None:
            from studio import models
            from studio.config import ModelConfig

            self._tokenizer = models.load_tokenizer(self.model)
            self._model = models.load_model(ModelConfig(name=self.model, device=self.device))
            self._model.eval()

    def _score_sequences(self, prompt: JudgePrompt) -> dict[int, list[int]]:
        lo, hi = prompt.scale
        if lo != int(lo) or hi != int(hi) or hi - lo > 100:
            raise PermanentError(f"the local judge scores integer scales only (got {lo}-{hi})")
        return {k: self._tokenizer.encode(str(k), add_special_tokens=False) for k in range(int(lo), int(hi) + 1)}

    def _distribution(self, prompt_ids: list[int], sequences: dict[int, list[int]]) -> dict[int, float]:
        import torch

        cache: dict[tuple[int, ...], torch.Tensor] = {}

        def next_probs(prefix: tuple[int, ...]) -> torch.Tensor:
            if prefix not in cache:
                ids = torch.tensor([prompt_ids + list(prefix)], device=self._model.device)
                with torch.no_grad():
                    logits = self._model(input_ids=ids).logits[0, -1].float()
                cache[prefix] = torch.softmax(logits, dim=-1)
            return cache[prefix]

        continuing = {tuple(seq[:i]) for seq in sequences.values() for i in range(1, len(seq))}
        digit_ids = [seq[0] for seq in sequences.values() if len(seq) == 1]
        probs = {}
        for k, seq in sequences.items():
            p = 1.0
            for i, token in enumerate(seq):
                p *= float(next_probs(tuple(seq[:i]))[token])
            if tuple(seq) in continuing:  # "1" only means 1 when no further digit follows
                p *= 1.0 - float(next_probs(tuple(seq))[digit_ids].sum())
            probs[k] = p
        return probs

    def _score_sync(self, prompt: JudgePrompt, item: JudgeItem) -> tuple[Parsed, str, int]:
        with self._lock:
            self._load()
            messages = render_messages(prompt, item)
            text = self._tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            prompt_ids = self._tokenizer.encode(text + self.PRIME, add_special_tokens=False)
            probs = self._distribution(prompt_ids, self._score_sequences(prompt))
        parsed = score_from_distribution(probs)
        raw = self.PRIME + ", ".join(f"{k}: {p:.4f}" for k, p in probs.items() if not math.isnan(p))
        return parsed, raw, len(prompt_ids)

    async def score(self, prompt: JudgePrompt, item: JudgeItem) -> JudgeResult:
        try:
            parsed, raw, tokens = await asyncio.to_thread(self._score_sync, prompt, item)
        except JudgeConfigError as exc:
            raise PermanentError(str(exc)) from exc
        return _result(prompt, item, self.backend, self.model, parsed, raw, tokens)

    async def aclose(self) -> None:
        """The model stays loaded: a LocalJudge is meant to be reused across runs."""


Judge = OpenAIJudge | LocalJudge


def make_judge(prompt: JudgePrompt, api_key: str | None = None, timeout: float = 60.0) -> Judge:
    """The backend the prompt's endpoint names. Raises JudgeConfigError at once for a missing key."""
    if prompt.endpoint.backend == "local":
        return LocalJudge(prompt.endpoint.model)
    return OpenAIJudge(prompt.endpoint, api_key=api_key, timeout=timeout)
