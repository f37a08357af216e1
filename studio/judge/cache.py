"""The judge's persistent cache: one SQLite row per answered (judge, prompt, text), written the
moment the answer arrives, so an interrupted run loses nothing and a re-run asks only for the rest.

The key hashes what determines the answer: backend, base URL, model, system prompt, template,
scale, parse mode, parameters and the item's text/question/reference. Never the API key.
Only real answers are stored: scored, unparsed and out-of-range ones (asking again costs). Failed
texts are not (a re-run retries them), nor answers shaped by the endpoint's condition rather than
the text (empty, truncated, a text score where logprobs were missing): once the endpoint is fixed,
they are asked again. Rows of the older `results` table, written before these rules, are not read.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path

from studio.judge.items import JudgeItem, JudgeResult
from studio.judge.prompts import JudgePrompt
from studio.paths import cache_dir

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY, prompt_id TEXT, backend TEXT, model TEXT, score REAL, reason TEXT, raw TEXT,
    error TEXT, flag TEXT, mass REAL, tokens INTEGER, latency_s REAL, created REAL
)"""


def cache_key(identity: dict, prompt: JudgePrompt, item: JudgeItem) -> str:
    material = {
        **identity, "system": prompt.system, "template": prompt.template, "scale": list(prompt.scale),
        "parse": prompt.parse, "params": prompt.params,
        "text": item.text, "question": item.question, "reference": item.reference, "text_b": item.text_b,
    }
    if item.sample:  # a repeated judgement (test-retest) is its own question; the first keeps the usual key
        material["sample"] = item.sample
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


class JudgeCache:
    """Thread-safe; WAL mode so the UI can read while a run writes."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else cache_dir() / "judge.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)
        self._db.commit()
        self._lock = threading.Lock()

    def get(self, key: str, item: JudgeItem, prompt_id: str) -> JudgeResult | None:
        """The stored answer, labelled with the asking prompt's id (ids are names, not part of the key)."""
        with self._lock:
            row = self._db.execute(
                "SELECT backend, model, score, reason, raw, error, flag, mass, tokens, latency_s FROM answers "
                "WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        backend, model, score, reason, raw, error, flag, mass, tokens, latency = row
        return JudgeResult(item=item, prompt_id=prompt_id, backend=backend, model=model, score=score, reason=reason,
                           raw=raw, error=error, flag=flag, mass=mass, tokens=tokens, latency_s=latency, attempts=0,
                           cached=True)

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM answers WHERE key = ?", (key,)).fetchone() is not None

    def put(self, key: str, result: JudgeResult) -> None:
        if result.failed or not result.cacheable:
            return
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key, result.prompt_id, result.backend, result.model, result.score, result.reason, result.raw,
                 result.error, result.flag, result.mass, result.tokens, result.latency_s, time.time()))
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
