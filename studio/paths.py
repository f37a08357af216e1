"""Where the studio keeps things: its assets, its cache, and the runs folder."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path


def _assets() -> Path:
    """The studio's data files: the `studio.assets` package of an install (a wheel carries assets/
    inside the package, an editable install maps it to the checkout's), or assets/ at the top of a
    checkout run in place (PYTHONPATH=.)."""
    try:
        return Path(str(resources.files("studio.assets")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "assets"


ASSETS = _assets()


def cache_dir() -> Path:
    """The studio's cache (converted models, judge cache): $STUDIO_CACHE, else XDG's cache home."""
    root = os.environ.get("STUDIO_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "finetune-studio"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def runs_dir() -> Path:
    """Where new runs go: $STUDIO_RUNS, else ./runs."""
    return Path(os.environ.get("STUDIO_RUNS", "runs"))
