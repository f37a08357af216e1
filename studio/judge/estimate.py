"""What a judge run will cost before it starts (requests, answers the cache already holds, tokens),
and what it cost after. Token counts before a run are estimates: about four characters a token for
the prompt, and the prompt's max_tokens as the most an answer can take."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from studio.judge.backends import endpoint_identity
from studio.judge.cache import JudgeCache, cache_key
from studio.judge.items import JudgeItem, JudgeResult
from studio.judge.prompts import JudgeConfigError, JudgePrompt, render_messages

CONFIRM_ABOVE = 500  # requests; above this, the CLI asks before it sends them (and the pane should too)
CHARS_PER_TOKEN = 4


def judged_items(prompt: JudgePrompt, items: Sequence[JudgeItem]) -> list[JudgeItem]:
    """What the runner sends for these items: pairwise prompts judge every pair in both orders."""
    if prompt.parse != "pairwise":
        return list(items)
    return [*items, *(dataclasses.replace(p, text=p.text_b, text_b=p.text) for p in items)]


@dataclass(frozen=True)
class Estimate:
    texts: int  # judgements the run needs (pairs count twice)
    requests: int  # of them, the ones the cache cannot answer
    cache_hits: int
    prompt_tokens: int  # about, over the requests to send
    completion_tokens: int  # at most, over the requests to send

    def needs_confirmation(self, threshold: int = CONFIRM_ABOVE) -> bool:
        return self.requests > threshold

    def describe(self) -> str:
        answers = f" + up to {self.completion_tokens:,} answer tokens" if self.completion_tokens else ""
        return (f"{self.requests:,} requests ({self.cache_hits:,} of {self.texts:,} judgements already in the "
                f"cache), about {self.prompt_tokens:,} prompt tokens{answers}")


def estimate(prompt: JudgePrompt, items: Sequence[JudgeItem], cache: JudgeCache | None = None) -> Estimate:
    judged = judged_items(prompt, items)
    identity = endpoint_identity(prompt.endpoint)
    to_send = [item for item in judged if cache is None or cache_key(identity, prompt, item) not in cache]
    chars = 0
    for item in to_send:
        try:
            chars += sum(len(m["content"]) for m in render_messages(prompt, item, nonce="00000000"))
        except JudgeConfigError:
            pass  # such an item fails at once, without a request
    local = prompt.endpoint.backend == "local"
    answer_limit = int(prompt.params.get("max_completion_tokens", prompt.params.get("max_tokens", 0)) or 0)
    return Estimate(texts=len(judged), requests=len(to_send), cache_hits=len(judged) - len(to_send),
                    prompt_tokens=round(chars / CHARS_PER_TOKEN),
                    completion_tokens=0 if local else answer_limit * len(to_send))


@dataclass(frozen=True)
class Totals:
    texts: int
    requests: int  # attempts sent, retries included
    cache_hits: int
    tokens: int  # as the endpoint counted them, over the answers it sent in this run
    failed: int

    def describe(self) -> str:
        return (f"{self.texts:,} judgements: {self.requests:,} requests sent, {self.cache_hits:,} from the cache, "
                f"{self.tokens:,} tokens used, {self.failed:,} failed")


def totals(results: Sequence[JudgeResult]) -> Totals:
    return Totals(texts=len(results), requests=sum(r.attempts for r in results),
                  cache_hits=sum(r.cached for r in results),
                  tokens=sum(r.tokens or 0 for r in results if not r.cached), failed=sum(r.failed for r in results))
