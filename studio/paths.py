"""Where the studio keeps things: its assets, its cache, and the runs folder."""

from __future__ import annotations

import os
from pathlib import Path

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def cache_dir() -> Path:
    """The studio's cache (converted models, judge cache): $STUDIO_CACHE, else XDG's cache home."""
    root = os.environ.get("STUDIO_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "finetune-studio"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def runs_dir() -> Path:
    """Where new runs go: $STUDIO_RUNS, else ./runs."""
    return Path(os.environ.get("STUDIO_RUNS", "runs"))
