"""Scoring many items: bounded concurrency, per-request timeout, retries with exponential backoff
and jitter (honouring Retry-After), cancellation, progress callbacks, and the cache.

Every item comes back exactly once, in input order: scored, unparsed or out of range (raw kept),
or failed (error says why: "timeout", "HTTP 500: ...", "malformed reply: ...", "truncated: ...",
"cancelled"). Nothing one text does ends the run for the others.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from studio.judge.backends import Judge, PermanentError, TransientError, check_backend, make_judge
from studio.judge.cache import JudgeCache, cache_key
from studio.judge.items import JudgeItem, JudgeResult
from studio.judge.prompts import JudgePrompt

MAX_WAIT_S = 120.0  # longest single wait between attempts, even if Retry-After asks for more


@dataclass(frozen=True)
class Progress:
    """Sent after every finished item (on the runner's thread: a UI must only post a message)."""

    done: int
    total: int
    scored: int
    unparsed: int  # out-of-range answers included, as in JudgeResult.unparsed
    failed: int
    cached: int
    result: JudgeResult
    out_of_range: int = 0


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 4  # attempts = retries + 1
    base_s: float = 0.5
    cap_s: float = 20.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with jitter (half fixed, half random, so clients spread out),
        and never shorter than what the server asked for."""
        backoff = min(self.cap_s, self.base_s * 2 ** (attempt - 1))
        backoff = backoff / 2 + random.uniform(0, backoff / 2)
        return min(MAX_WAIT_S, max(backoff, retry_after or 0.0))


class _Cancelled(Exception):
    pass


async def _sleep_unless_cancelled(seconds: float, cancel_event: threading.Event | None) -> None:
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if cancel_event is not None and cancel_event.is_set():
            raise _Cancelled
        await asyncio.sleep(min(left, 0.05))


async def _attempts(judge: Judge, prompt: JudgePrompt, item: JudgeItem, timeout: float, policy: RetryPolicy,
                    cancel_event: threading.Event | None) -> JudgeResult:
    attempt, error = 0, ""
    while True:
        if cancel_event is not None and cancel_event.is_set():
            raise _Cancelled
        attempt += 1
        start = time.perf_counter()
        retry_after = None
        try:
            call = judge.score(prompt, item)
            result = await (asyncio.wait_for(call, timeout) if judge.remote else call)
            result.attempts, result.latency_s = attempt, time.perf_counter() - start
            return result
        except TimeoutError:
            error = "timeout"
        except TransientError as exc:
            error, retry_after = str(exc), exc.retry_after
        except PermanentError as exc:
            return JudgeResult(item, prompt.id, judge.backend, judge.model, attempts=attempt, error=str(exc))
        except (asyncio.CancelledError, _Cancelled):
            raise
        except Exception as exc:  # noqa: BLE001 (a bug or a reply no rule foresaw: this text fails, the run goes on)
            return JudgeResult(item, prompt.id, judge.backend, judge.model, attempts=attempt,
                               error=f"unexpected error: {type(exc).__name__}: {exc}")
        if attempt > policy.retries:
            return JudgeResult(item, prompt.id, judge.backend, judge.model, attempts=attempt, error=error,
                               latency_s=time.perf_counter() - start)
        await _sleep_unless_cancelled(policy.delay(attempt, retry_after), cancel_event)


async def run_judge(
    prompt: JudgePrompt,
    items: Sequence[JudgeItem],
    *,
    judge: Judge | None = None,
    api_key: str | None = None,
    concurrency: int = 8,
    timeout: float = 60.0,
    retries: int = 4,
    policy: RetryPolicy | None = None,
    cache: JudgeCache | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    cancel_event: threading.Event | None = None,
) -> list[JudgeResult]:
    """Score every item with the prompt; one result per item, in order.

    judge: a backend to reuse (e.g. a loaded LocalJudge); by default one is made from the prompt's
    endpoint (api_key overrides the environment variable) and closed afterwards.
    cancel_event: set it (from any thread) to stop; unfinished items come back failed, "cancelled".
    """
    own_judge = judge is None
    check_backend(prompt)
    judge = judge or make_judge(prompt, api_key=api_key, timeout=timeout)
    policy = policy or RetryPolicy(retries=retries)
    identity = judge.cache_identity()
    # An in-process judge scores one text at a time on its model: more in flight would only queue
    # threads that a cancel cannot stop.
    semaphore = asyncio.Semaphore(max(1, concurrency) if judge.remote else 1)
    counts = {"scored": 0, "unparsed": 0, "out_of_range": 0, "failed": 0, "cached": 0}
    done = 0

    def finish(result: JudgeResult) -> JudgeResult:
        nonlocal done
        done += 1
        counts["failed" if result.failed else "unparsed" if result.unparsed else "scored"] += 1
        counts["out_of_range"] += result.out_of_range
        counts["cached"] += result.cached
        if on_progress is not None:
            on_progress(Progress(done=done, total=len(items), result=result, **counts))
        return result

    async def one(item: JudgeItem) -> JudgeResult:
        key = cache_key(identity, prompt, item) if cache is not None else None
        if cache is not None and (hit := cache.get(key, item, prompt.id)) is not None:
            return finish(hit)
        try:
            async with semaphore:
                result = await _attempts(judge, prompt, item, timeout, policy, cancel_event)
        except (_Cancelled, asyncio.CancelledError):
            return finish(JudgeResult(item, prompt.id, judge.backend, judge.model, error="cancelled"))
        if cache is not None:
            cache.put(key, result)  # at once: a crash after this line loses nothing
        return finish(result)

    tasks = [asyncio.ensure_future(one(item)) for item in items]

    async def watch_cancel() -> None:
        # A request in flight is abandoned rather than awaited, so cancelling feels immediate.
        while not all(t.done() for t in tasks):
            if cancel_event.is_set():
                for task in tasks:
                    task.cancel()
                return
            await asyncio.sleep(0.05)

    watcher = asyncio.ensure_future(watch_cancel()) if cancel_event is not None else None
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        if watcher is not None:
            watcher.cancel()
        if own_judge:
            await judge.aclose()


def run_judge_sync(prompt: JudgePrompt, items: Sequence[JudgeItem], **kwargs) -> list[JudgeResult]:
    """run_judge for a worker thread or a script: its own event loop, same arguments."""
    return asyncio.run(run_judge(prompt, items, **kwargs))


def probe(prompt: JudgePrompt, text: str, *, question: str | None = None, reference: str | None = None,
          **kwargs) -> JudgeResult:
    """Score a single text now (no cache unless given one): for trying a prompt by hand."""
    return run_judge_sync(prompt, [JudgeItem(text, question=question, reference=reference)], **kwargs)[0]


def retest_items(items: Sequence[JudgeItem], samples: int) -> list[JudgeItem]:
    """Each item `samples` times (sample 0, 1, ...), for test-retest at temperature > 0: each
    repetition is its own question to the cache, so it is really asked again."""
    return [dataclasses.replace(item, sample=k) for k in range(samples) for item in items]


async def run_pairwise(prompt: JudgePrompt, pairs: Sequence[JudgeItem],
                       **kwargs) -> tuple[list[JudgeResult], list[JudgeResult]]:
    """Judge each pair (item.text as answer A, item.text_b as B) in both orders, all in one run.
    Returns (forward, backward) for stats.pairwise_stats."""
    swapped = [dataclasses.replace(p, text=p.text_b, text_b=p.text) for p in pairs]
    results = await run_judge(prompt, [*pairs, *swapped], **kwargs)
    return results[:len(pairs)], results[len(pairs):]
