"""The cache of prepared datasets: a second run (or a resume) on the same data loads the encoded train
and eval sets in a fraction of a second instead of tokenizing every row again.

An entry is a folder under `<studio cache>/prepared/`, named by a key that changes with everything that
shapes the encoding: the data's content, every data setting, the tokenizer's whole definition (vocabulary,
merges, normalizer, added and special tokens), its chat template, and the code and library versions that
encode. It holds the sets as `datasets` saved them (`save_to_disk`) and a meta.json written last, with
the sha256 of every file. An entry is written aside and renamed into place, so a crash never leaves a half
entry under a key; one damaged anyway (a file missing, cut short or changed, unreadable meta) is found on
load, deleted and prepared again.
The least recently used entries beyond KEEP are deleted.

    key = prepared_cache.key(data_digest, settings, tokenizer)
    hit = prepared_cache.load(key)        # ({"train": Dataset, ...}, meta) or None
    prepared_cache.save(key, {"train": train, "eval": held_out}, meta)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from studio.paths import cache_dir

KEEP = 8  # entries kept; a 200k-row chat dataset takes a few hundred MB
_META = "meta.json"
_STALE_S = 3600  # a folder still being written after this long belongs to a process that died


def root() -> Path:
    return cache_dir() / "prepared"


def key(data_digest: str, settings: dict[str, Any], tokenizer) -> str:
    """sha256 of what decides the prepared sets: the data's content digest, the data settings, the tokenizer
    and its template, and the encoding code and library versions."""
    import datasets
    import jinja2
    import pyarrow
    import tokenizers
    import transformers

    from studio import data, templates

    code = hashlib.sha256()
    for source in (data.__file__, templates.__file__, __file__):
        code.update(Path(source).read_bytes())
    versions = [m.__version__ for m in (datasets, jinja2, pyarrow, tokenizers, transformers)]
    parts = {"data": data_digest, "settings": settings, "tokenizer": _tokenizer_digest(tokenizer),
             "code": code.hexdigest(), "versions": versions}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=repr).encode()).hexdigest()


def _tokenizer_digest(tokenizer) -> str:
    definition = tokenizer.backend_tokenizer.to_str() if tokenizer.is_fast else repr(sorted(tokenizer.get_vocab().items()))
    whole = [type(tokenizer).__name__, definition, repr(sorted(tokenizer.added_tokens_decoder.items())),
             tokenizer.special_tokens_map, tokenizer.chat_template]
    return hashlib.sha256(json.dumps(whole, sort_keys=True, default=repr).encode()).hexdigest()


def load(entry_key: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The datasets and meta saved under the key, or None when there is no entry (a damaged one is deleted)."""
    import datasets

    entry = root() / entry_key
    if not entry.is_dir():
        return None
    try:
        meta = json.loads((entry / _META).read_text(encoding="utf-8"))
        if any(_sha256(entry / name) != digest for name, digest in meta["files"].items()):
            raise ValueError("a file differs from when it was written")
        sets = {name: datasets.load_from_disk(str(entry / name)) for name in meta["rows"]}
        if any(len(sets[name]) != rows for name, rows in meta["rows"].items()):
            raise ValueError("a set's row count differs from when it was written")
    except Exception:  # missing, cut short or garbled: any of these means "prepare again"
        shutil.rmtree(entry, ignore_errors=True)
        return None
    os.utime(entry / _META)  # recently used: pruned last
    return sets, meta["meta"]


def save(entry_key: str, sets: dict[str, Any], meta: dict[str, Any]) -> None:
    """Write the datasets and meta under the key: into a folder aside, renamed into place when complete.
    A full disk or a read-only cache only costs the next run its cache hit."""
    import datasets

    folder = root()
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{entry_key}.{os.getpid()}.{uuid.uuid4().hex[:8]}.partial"
    shown = not datasets.are_progress_bars_disabled()
    try:
        datasets.disable_progress_bars()  # save_to_disk draws a bar per set; the caller reports progress its own way
        for name, dataset in sets.items():
            dataset.save_to_disk(str(partial / name))
        files = {str(p.relative_to(partial)): _sha256(p) for p in partial.rglob("*") if p.is_file()}
        rows = {name: len(dataset) for name, dataset in sets.items()}
        (partial / _META).write_text(json.dumps({"files": files, "rows": rows, "meta": meta}), encoding="utf-8")
        os.rename(partial, folder / entry_key)
    except OSError:  # no space, no permission, or another process wrote the same entry first
        shutil.rmtree(partial, ignore_errors=True)
    finally:
        if shown:
            datasets.enable_progress_bars()
    _prune(folder)


def _sha256(path: Path) -> str:
    with path.open("rb") as file:  # about a tenth of a second per 100k prepared rows
        return hashlib.file_digest(file, "sha256").hexdigest()


def _prune(folder: Path) -> None:
    """Delete the least recently used entries beyond KEEP, and folders left half-written by dead processes."""
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    for old in sorted(entries, key=lambda p: _modified(p / _META), reverse=True)[KEEP:]:
        shutil.rmtree(old, ignore_errors=True)
    for partial in folder.glob(".*.partial"):
        if time.time() - _modified(partial) > _STALE_S:
            shutil.rmtree(partial, ignore_errors=True)


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:  # gone: another process pruned it, or it was never completed
        return 0.0
