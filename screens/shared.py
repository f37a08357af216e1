"""Helpers any pane may use. Engine modules are imported inside functions: the app must open fast."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

_tokenizers: dict[str, Any] = {}
_tokenizers_lock = threading.Lock()


def cached_tokenizer(name: str) -> Any:
    """The tokenizer of a model (hub id, folder or .gguf), loaded once per process.

    Safe to call from several worker threads at once: the first caller loads, the others wait.
    The instance is shared: copy it (`copy.deepcopy`) before changing it, e.g. before
    `studio.templates.apply_template`.
    """
    with _tokenizers_lock:
        if name not in _tokenizers:
            from studio.models import load_tokenizer

            _tokenizers[name] = load_tokenizer(name)
        return _tokenizers[name]


def describe_error(error: BaseException) -> str:
    """An engine error in the user's words: engine errors already say what to do, others get their type."""
    from studio.errors import StudioError

    return str(error) if isinstance(error, StudioError) else f"{type(error).__name__}: {error}"


def has_adapter(run_dir: Path | None) -> bool:
    """Whether the run has its final adapter (its answers can be generated)."""
    from studio.runs import RunPaths

    return run_dir is not None and RunPaths(Path(run_dir)).adapter.is_dir()
