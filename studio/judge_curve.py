"""A judge score curve during training: the answers sampled at some steps, scored off the training thread.

Subscribed to a run's bus, it collects the `sample` events of every step that is a multiple of
`train.judge_every` (and of the last step), and once a step's answers are all in, hands them to
one background thread that judges them and emits a `judge` event for that step: the mean score, its
spread, how many were scored and how many failed. Training never waits for it: a judge that is slow,
down or answers garbage only shows up in those counts, and a step that comes due while the previous
one is still being judged is skipped (and counted). At the end of the run, what is in flight gets a
bounded time to finish.
"""

from __future__ import annotations

import statistics
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from studio.events import EventBus

FINISH_TIMEOUT_S = 30.0


class JudgeCurve:
    def __init__(self, bus: EventBus, prompt_source: str, every: int, max_steps: int, answers_per_step: int,
                 timeout_s: float = 60.0) -> None:
        from studio.judge.offline import default_judge
        from studio.judge.prompts import load_prompt

        # Imported here, before training: an import on the judge's thread holds the GIL for a second or
        # more while the trainer waits for it.
        from studio.judge.runner import run_judge_sync  # noqa: F401

        self.bus = bus
        self.prompt = load_prompt(prompt_source) if prompt_source else default_judge().prompt
        if self.prompt.endpoint.backend == "openai":
            import openai  # noqa: F401
        self.every, self.max_steps, self.expected = every, max_steps, answers_per_step
        self.timeout_s = timeout_s
        self.skipped = 0
        self._answers: dict[int, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="judge-curve")
        self._pending: Future | None = None
        self._unsubscribe = bus.subscribe(self._on_event)

    def _due(self, step: int) -> bool:
        return step % self.every == 0 or step >= self.max_steps

    def _on_event(self, event: dict[str, Any]) -> None:
        """On the training thread: collect, and hand a complete step over (never waits for the judge)."""
        if event["type"] != "sample" or not self._due(event["step"]):
            return
        step = event["step"]
        with self._lock:
            answers = self._answers.setdefault(step, [])
            answers.append(event)
            if len(answers) < self.expected:
                return
            del self._answers[step]
            if self._pending is not None and not self._pending.done():
                self.skipped += 1
                self.bus.emit("judge", step, prompt=self.prompt.id, mean=None, std=None, scored=0, failed=0,
                              skipped=self.skipped, note="skipped: the judge was still busy with an earlier step")
                return
            self._pending = self._pool.submit(self._judge, step, answers)

    def _judge(self, step: int, answers: list[dict[str, Any]]) -> None:
        """On the judge's thread."""
        from studio.judge.items import JudgeItem
        from studio.judge.runner import run_judge_sync

        items = [JudgeItem(text=a["response"], group=a.get("mode", ""), question=a.get("prompt")) for a in answers]
        try:
            results = run_judge_sync(self.prompt, items, timeout=self.timeout_s, retries=2)
        except Exception as exc:  # a judge that cannot even start (no key, no model): counted, never raised
            self.bus.emit("judge", step, prompt=self.prompt.id, mean=None, std=None, scored=0, failed=len(items),
                          skipped=self.skipped, note=f"{type(exc).__name__}: {exc}")
            return
        scores = [r.score for r in results if r.score is not None]
        self.bus.emit("judge", step, prompt=self.prompt.id, mean=statistics.fmean(scores) if scores else None,
                      std=statistics.pstdev(scores) if len(scores) > 1 else None, scored=len(scores),
                      failed=len(results) - len(scores), skipped=self.skipped, note="")

    def close(self, timeout: float = FINISH_TIMEOUT_S) -> None:
        """Stop collecting; give what is being judged `timeout` seconds to finish."""
        self._unsubscribe()
        pending = self._pending
        if pending is not None:
            try:
                pending.result(timeout=timeout)
            except Exception:  # noqa: BLE001 - a judge still running is left behind, never awaited forever
                pass
        self._pool.shutdown(wait=False, cancel_futures=True)
