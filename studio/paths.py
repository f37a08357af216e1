"""Where the studio keeps things: its assets, its cache, and the runs folder."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path


def _assets() -> Path:
    """The studio's data files: assets/ at the top of the checkout the code runs from (in place with
    PYTHONPATH=., or a git worktree: its own files, not those of the checkout the editable install maps),
    else the `studio.assets` package of an install (a wheel carries assets/ inside the package)."""
    checkout = Path(__file__).resolve().parent.parent / "assets"
    if (checkout / "studio.tcss").exists():
        return checkout
    return Path(str(resources.files("studio.assets")))


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
