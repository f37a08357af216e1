"""Judge backends: any OpenAI-compatible HTTP server (through the async `openai` client), and a
model loaded in-process with transformers that scores from the probabilities of the score tokens.

A backend's `score` makes ONE attempt and raises TransientError (worth retrying) or
PermanentError; the runner owns retries, timeouts and caching. A reply that is no chat completion
(an HTML page, a body that is not JSON, no `choices`) is a TransientError naming what came back.

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

from studio.judge.items import TRUNCATED, UNPARSED, JudgeItem, JudgeResult
from studio.judge.parse import (
    Parsed,
    expected_score,
    parse_answer,
    score_from_distribution,
    yes_no_from_probabilities,
    yes_probability,
)
from studio.judge.prompts import (
    LOGPROB_MODES,
    Endpoint,
    JudgeConfigError,
    JudgePrompt,
    host_of,
    render_messages,
)

# Request parameters the chat completions call takes by name; anything else goes in extra_body.
_NAMED_PARAMS = ("temperature", "max_tokens", "max_completion_tokens", "top_p", "seed", "stop", "frequency_penalty",
                 "presence_penalty")
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
    """The key for this endpoint (None when it wants none), after checking it may be sent there: a
    key variable only to the host it is bound to, and any key over plain http only to loopback.
    api_key: a key typed in for this endpoint (SessionKeys), used instead of the variable."""
    url = urlsplit(endpoint.base_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise JudgeConfigError(f"base_url {endpoint.base_url!r} is not an http(s) URL")
    if api_key is None and endpoint.api_key_env:
        if endpoint.key_host != url.hostname:
            raise JudgeConfigError(f"the key variable {endpoint.api_key_env} was named for {endpoint.key_host}, not "
                                   f"{url.hostname}: name a key variable for {url.hostname} (or none, for a server "
                                   "that wants no key)")
        api_key = os.environ.get(endpoint.api_key_env)
        if not api_key:
            raise JudgeConfigError(f"the judge endpoint {endpoint.base_url} needs an API key: set the environment "
                                   f"variable {endpoint.api_key_env} (e.g. export {endpoint.api_key_env}=...)")
    if api_key and url.scheme == "http" and not is_loopback(url.hostname):
        raise JudgeConfigError(f"refusing to send an API key over plain http to {url.hostname}: use https, or a "
                               "loopback address (127.0.0.1, ::1, localhost) for a local server")
    return api_key


def endpoint_identity(endpoint: Endpoint) -> dict:
    """What about the judge decides its answers, for the cache key: never the key."""
    if endpoint.backend == "local":
        return {"backend": "local", "model": endpoint.model}
    return {"backend": endpoint.backend, "base_url": endpoint.base_url, "model": endpoint.model}


class SessionKeys:
    """API keys typed in by the user, held in this process's memory only, each for the host it was
    typed for: never written to a config, cache, log or result. Pass `keys.get(endpoint)` as api_key."""

    def __init__(self) -> None:
        self._keys: dict[str, str] = {}

    def set(self, endpoint: Endpoint, key: str) -> None:
        self._keys[host_of(endpoint.base_url)] = key

    def get(self, endpoint: Endpoint) -> str | None:
        return self._keys.get(host_of(endpoint.base_url)) if endpoint.backend != "local" else None

    def __repr__(self) -> str:
        return f"SessionKeys(hosts={sorted(self._keys)})"


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
            tokens: int | None, cacheable: bool = True) -> JudgeResult:
    return JudgeResult(item=item, prompt_id=prompt.id, backend=backend, model=model, score=parsed.score,
                       reason=parsed.reason, raw=raw, tokens=tokens, error=parsed.error, flag=parsed.flag,
                       mass=parsed.mass, cacheable=cacheable)


def check_backend(prompt: JudgePrompt) -> None:
    """Refuse, before any request, a prompt that its endpoint's backend cannot judge."""
    if prompt.endpoint.backend == "local" and prompt.parse == "pairwise":
        raise JudgeConfigError(f"{prompt.id}: the local judge scores one text at a time from score probabilities "
                               "and cannot compare two answers; use an HTTP endpoint for pairwise prompts")


def _malformed(body: object) -> TransientError:
    text = body if isinstance(body, str) else repr(body)
    shown = " ".join(text.split())[:80]
    kind = "an HTML page" if shown.lstrip().lower().startswith(("<!doctype", "<html")) else "not a chat completion"
    return TransientError(f"malformed reply: the server answered 200 with {kind} ({shown!r})")


def _logprob_positions(choice) -> tuple[list[list[tuple[str, float]]], list[str]] | None:
    """(alternatives per position, generated tokens), or None when the reply carries no logprobs."""
    content = choice.logprobs.content if choice.logprobs else None
    if not content:
        return None
    alternatives = [[(t.token, t.logprob) for t in (pos.top_logprobs or [])] or [(pos.token, pos.logprob)]
                    for pos in content]
    return alternatives, [pos.token for pos in content]


def _reasoning(message) -> str | None:
    """The thinking of a reasoning model, under either name servers use for it."""
    extra = message.model_extra or {}
    text = extra.get("reasoning_content") or extra.get("reasoning")
    return text.strip() if isinstance(text, str) and text.strip() else None


class OpenAIJudge:
    """An OpenAI-compatible chat completions endpoint: OpenRouter, OpenAI, vLLM, Ollama, llama.cpp."""

    backend = "openai"
    remote = True  # the runner's per-request timeout applies

    def __init__(self, endpoint: Endpoint, api_key: str | None = None, timeout: float = 60.0) -> None:
        import openai

        self.endpoint = endpoint
        self.model = endpoint.model
        self._completion_tokens = False  # True once the server asked for max_completion_tokens
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
        return endpoint_identity(self.endpoint)

    def _request(self, prompt: JudgePrompt, item: JudgeItem) -> dict:
        params = dict(prompt.params)
        request = {"model": self.model, "messages": render_messages(prompt, item)}
        request.update({k: params.pop(k) for k in _NAMED_PARAMS if k in params})
        if self._completion_tokens and "max_tokens" in request:  # the server said so once: keep to it
            request["max_completion_tokens"] = request.pop("max_tokens")
        json_mode = params.pop("json_mode", True)
        top_logprobs = params.pop("top_logprobs", 20)
        if prompt.parse == "json" and json_mode:
            request["response_format"] = {"type": "json_object"}
        if prompt.parse in LOGPROB_MODES:
            request.update(logprobs=True, top_logprobs=top_logprobs)
        extra = {k: v for k, v in params.items() if k not in _STUDIO_PARAMS}
        if extra:
            request["extra_body"] = extra
        return request

    async def _create(self, request: dict):
        import openai

        try:
            return await self._client.chat.completions.create(**request)
        except openai.APITimeoutError as exc:
            raise TransientError("timeout") from exc
        except openai.APIConnectionError as exc:
            raise TransientError(self._scrub(f"connection error: {exc}")) from exc
        except openai.APIStatusError as exc:
            message = self._scrub(f"HTTP {exc.status_code}: {exc.message}")
            if exc.status_code == 400 and "max_completion_tokens" in str(exc.message) and "max_tokens" in request:
                # Reasoning models (o1, o3, gpt-5...) take max_completion_tokens instead: switch and ask again.
                self._completion_tokens = True
                retry = {k: v for k, v in request.items() if k != "max_tokens"}
                return await self._create({**retry, "max_completion_tokens": request["max_tokens"]})
            if exc.status_code in (408, 409, 429) or exc.status_code >= 500:
                raise TransientError(message, _retry_after(exc.response.headers)) from exc
            raise PermanentError(message) from exc
        except (ValueError, TypeError) as exc:  # a body that is not JSON
            raise _malformed(str(exc)) from exc

    async def score(self, prompt: JudgePrompt, item: JudgeItem) -> JudgeResult:
        try:
            request = self._request(prompt, item)
        except JudgeConfigError as exc:
            raise PermanentError(str(exc)) from exc
        response = await self._create(request)
        try:
            choice = response.choices[0]
            message = choice.message
            content, reasoning = message.content, _reasoning(message)
            truncated = choice.finish_reason == "length"
            positions = _logprob_positions(choice) if prompt.parse in LOGPROB_MODES else None
            tokens = response.usage.total_tokens if response.usage else None
        except (AttributeError, IndexError, KeyError, TypeError) as exc:
            raise _malformed(response) from exc
        answer = content if content and content.strip() else None
        if answer is None and reasoning is None:  # unparsed, and asked again next time: it may be the endpoint's doing
            return _result(prompt, item, self.backend, self.model,
                           Parsed(None, error=f"{UNPARSED}: empty answer (finish_reason {choice.finish_reason!r})"),
                           content or "", tokens, cacheable=False)
        if answer is None:  # the final answer is missing: only the reasoning came back
            if truncated:
                return _result(prompt, item, self.backend, self.model, Parsed(
                    None, error=f"{TRUNCATED}: the reasoning used up the token limit before an answer; raise "
                                "max_completion_tokens (or max_tokens) in the prompt's [params]"), reasoning, tokens)
            answer, positions = reasoning, None
        parsed = self._parse(prompt, answer, positions, truncated)
        cacheable = True
        if prompt.parse in LOGPROB_MODES and positions is None and parsed.score is not None:
            # Asked for logprobs, got none: the text's own score, flagged, and asked again next time.
            parsed = Parsed(parsed.score, parsed.reason, flag="text score: the endpoint returned no logprobs")
            cacheable = False
        if reasoning and parsed.score is not None:
            parsed = Parsed(parsed.score, reasoning, parsed.error, parsed.flag, parsed.mass)
        return _result(prompt, item, self.backend, self.model, parsed, answer, tokens, cacheable)

    @staticmethod
    def _parse(prompt: JudgePrompt, answer: str, positions, truncated: bool) -> Parsed:
        text_mode = {"logprobs": "number"}.get(prompt.parse, prompt.parse)
        text = parse_answer(answer, text_mode, prompt.scale, truncated=truncated)
        if positions is None or text.score is None:  # no answer to read probabilities at
            return text
        alternatives, chosen = positions
        if prompt.parse == "yesno":
            return yes_probability(alternatives, chosen)
        return expected_score(alternatives, prompt.scale, chosen)

    async def aclose(self) -> None:
        await self._client.close()


class LocalJudge:
    """A causal LM in this process, scoring from token probabilities (no sampling, no parsing).

    Scale prompts: the assistant turn is primed with "Score: " and each value of the scale is scored
    as its own token sequence followed by a token that ends the number, so "1" never takes the
    probability of "10" and the values' probabilities sum to at most 1. Yes/no prompts: P(yes)
    against P(no) for the answer's first token. One forward pass over the prompt, then one batched
    pass over the values on its KV cache. Forward passes are serialised: one model, one lock.
    """

    backend = "local"
    remote = False  # a forward pass in a thread cannot be cut short; the model load may take a while
    PRIME = "Score: "

    def __init__(self, model_name: str, device: str = "auto", *, model=None, tokenizer=None) -> None:
        self.model = model_name
        self.device = device
        self._model, self._tokenizer = model, tokenizer
        self._digit_ids = None  # tokens that start with a digit: they would carry a number on
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LocalJudge(model={self.model!r})"

    def cache_identity(self) -> dict:
        return endpoint_identity(Endpoint(backend="local", model=self.model))

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        """Load the model now (the first score loads it otherwise): a UI can say that it waits for it."""
        with self._lock:
            self._load()

    def _load(self) -> None:
        if self._model is None:
            from studio import models
            from studio.config import ModelConfig

            self._tokenizer = models.load_tokenizer(self.model)
            self._model = models.load_model(ModelConfig(name=self.model, device=self.device))
            self._model.eval()
        if self._digit_ids is None:
            import torch

            tokens = self._tokenizer.convert_ids_to_tokens(list(range(len(self._tokenizer))))
            self._digit_ids = torch.tensor([i for i, t in enumerate(tokens) if t and t[0].isascii() and t[0].isdigit()],
                                           device=self._model.device)

    def _score_sequences(self, prompt: JudgePrompt) -> dict[int, list[int]]:
        lo, hi = prompt.scale
        if lo != int(lo) or hi != int(hi) or hi - lo > 100:
            raise PermanentError(f"the local judge scores integer scales only (got {lo}-{hi})")
        return {k: self._tokenizer.encode(str(k), add_special_tokens=False) for k in range(int(lo), int(hi) + 1)}

    def _chat_text(self, messages: list[dict[str, str]]) -> str:
        if self._tokenizer.chat_template:
            return self._tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return "\n\n".join(m["content"] for m in messages) + "\n\n"  # a base model without a chat template

    def _forward(self, ids: list[int]):
        """The prompt through the model: logits at its last position only (the vocabulary projection of
        every position would cost a fifth of the pass), and its KV cache."""
        import torch

        with torch.no_grad():
            return self._model(input_ids=torch.tensor([ids], device=self._model.device), use_cache=True,
                               logits_to_keep=1)

    def _value_probabilities(self, prompt_ids: list[int], sequences: dict[int, list[int]]) -> dict[int, float]:
        """P(the answer goes on with value k's tokens, then a token that does not start with a digit)."""
        import torch

        out = self._forward(prompt_ids)
        first = torch.softmax(out.logits[0, -1].float(), dim=-1)
        values = list(sequences)
        longest = max(len(seq) for seq in sequences.values())
        batch = torch.zeros((len(values), longest), dtype=torch.long, device=self._model.device)
        mask = torch.ones((len(values), len(prompt_ids) + longest), dtype=torch.long, device=self._model.device)
        for row, k in enumerate(values):
            batch[row, :len(sequences[k])] = torch.tensor(sequences[k])
            mask[row, len(prompt_ids) + len(sequences[k]):] = 0  # right padding: it never reaches earlier tokens
        cache = out.cache
        cache.batch_repeat_interleave(len(values))
        with torch.no_grad():
            following = torch.softmax(self._model(input_ids=batch, attention_mask=mask, cache=cache,
                                                  use_cache=True).logits.float(), dim=-1)
        probs = {}
        for row, k in enumerate(values):
            seq = sequences[k]
            p = float(first[seq[0]])
            for i in range(1, len(seq)):
                p *= float(following[row, i - 1, seq[i]])
            ends = 1.0 - float(following[row, len(seq) - 1, self._digit_ids].sum())
            probs[k] = p * max(0.0, ends)
        return probs

    def _yes_no_ids(self, word: str) -> list[int]:
        variants = {word, word.capitalize(), word.upper(), " " + word, " " + word.capitalize()}
        ids = {tuple(self._tokenizer.encode(v, add_special_tokens=False)) for v in variants}
        return sorted({seq[0] for seq in ids if len(seq) == 1})

    def _score_sync(self, prompt: JudgePrompt, item: JudgeItem) -> tuple[Parsed, str, int]:
        import torch

        with self._lock:
            self._load()
            text = self._chat_text(render_messages(prompt, item))
            if prompt.parse == "yesno":
                if not self._tokenizer.chat_template:
                    text += "Answer:"  # a base model continues a document: give the answer its place
                prompt_ids = self._tokenizer.encode(text, add_special_tokens=False)
                probs = torch.softmax(self._forward(prompt_ids).logits[0, -1].float(), dim=-1)
                yes, no = (float(probs[self._yes_no_ids(w)].sum()) for w in ("yes", "no"))
                return yes_no_from_probabilities(yes, no), f"P(yes) {yes:.4f}, P(no) {no:.4f}", len(prompt_ids)
            prompt_ids = self._tokenizer.encode(text + self.PRIME, add_special_tokens=False)
            probs = self._value_probabilities(prompt_ids, self._score_sequences(prompt))
        raw = self.PRIME + ", ".join(f"{k}: {p:.4f}" for k, p in probs.items() if not math.isnan(p))
        return score_from_distribution(probs), raw, len(prompt_ids)

    async def score(self, prompt: JudgePrompt, item: JudgeItem) -> JudgeResult:
        try:
            check_backend(prompt)
            parsed, raw, tokens = await asyncio.to_thread(self._score_sync, prompt, item)
        except JudgeConfigError as exc:
            raise PermanentError(str(exc)) from exc
        return _result(prompt, item, self.backend, self.model, parsed, raw, tokens)

    async def aclose(self) -> None:
        """The model stays loaded: a LocalJudge is meant to be reused across runs."""


Judge = OpenAIJudge | LocalJudge


def make_judge(prompt: JudgePrompt, api_key: str | None = None, timeout: float = 60.0) -> Judge:
    """The backend the prompt's endpoint names. Raises JudgeConfigError at once for a missing key, or a
    prompt the backend cannot judge."""
    check_backend(prompt)
    if prompt.endpoint.backend == "local":
        return LocalJudge(prompt.endpoint.model)
    return OpenAIJudge(prompt.endpoint, api_key=api_key, timeout=timeout)
