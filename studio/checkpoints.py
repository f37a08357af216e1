"""Checkpoints you can trust: written aside, described by a manifest, then renamed into place.

A kill during a save leaves the previous checkpoint intact (the new one is still a `.tmp-*`
folder), and resume only uses checkpoints whose manifest exists and whose files match it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.errors import StudioError

MANIFEST = "manifest.json"
PREFIX = "step-"


class CheckpointError(StudioError):
    """A checkpoint cannot be used; the message says why and what to do."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class Fingerprints:
    """What a checkpoint was trained on; resume refuses when any of these changed."""

    config: dict[str, Any]  # the hyperparameters that shape training (see train.resume_relevant)
    dataset: str
    template: str
    tokenizer: str

    def differences(self, other: Fingerprints) -> list[str]:
        diffs = [f"{key}: {self.config.get(key)!r} -> {other.config.get(key)!r}"
                 for key in sorted(set(self.config) | set(other.config))
                 if self.config.get(key) != other.config.get(key)]
        for name in ("dataset", "template", "tokenizer"):
            if getattr(self, name) != getattr(other, name):
                diffs.append(f"{name} changed (fingerprint {getattr(self, name)[:12]} -> {getattr(other, name)[:12]})")
        return diffs


def staging_dir(checkpoints: Path, step: int) -> Path:
    return checkpoints / f".tmp-{PREFIX}{step}-{os.getpid()}"


def finalize(staging: Path, checkpoints: Path, step: int, fingerprints: Fingerprints) -> Path:
    """Hash the staged files, write the manifest last, then rename the folder into place."""
    files = {str(p.relative_to(staging)): file_sha256(p) for p in sorted(staging.rglob("*")) if p.is_file()}
    manifest = {"step": step, "created": time.time(), "files": files,
                "fingerprints": {"config": fingerprints.config, "dataset": fingerprints.dataset,
                                 "template": fingerprints.template, "tokenizer": fingerprints.tokenizer}}
    manifest_path = staging / MANIFEST
    with open(manifest_path, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    final = checkpoints / f"{PREFIX}{step}"
    if final.exists():  # a checkpoint of the same step (checkpoint-now, then stop) is replaced whole
        shutil.rmtree(final)
    os.replace(staging, final)
    return final


def read_manifest(checkpoint: Path) -> dict[str, Any]:
    try:
        return json.loads((checkpoint / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{checkpoint}: no manifest (the save was interrupted)") from None
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{checkpoint}: manifest is not valid JSON ({exc})") from None


def verify(checkpoint: Path) -> dict[str, Any]:
    """The manifest, after checking every file it lists still has its hash."""
    manifest = read_manifest(checkpoint)
    for name, digest in manifest["files"].items():
        path = checkpoint / name
        if not path.is_file():
            raise CheckpointError(f"{checkpoint}: {name} is missing")
        if file_sha256(path) != digest:
            raise CheckpointError(f"{checkpoint}: {name} does not match its manifest hash (corrupted)")
    return manifest


def manifest_fingerprints(manifest: dict[str, Any]) -> Fingerprints:
    return Fingerprints(**manifest["fingerprints"])


def list_checkpoints(checkpoints: Path) -> list[Path]:
    """Finished checkpoints (staging folders excluded), oldest step first."""
    if not checkpoints.is_dir():
        return []
    found = [p for p in checkpoints.iterdir() if p.is_dir() and p.name.startswith(PREFIX)
             and p.name[len(PREFIX):].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX):]))


def latest_valid(checkpoints: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint whose manifest verifies; broken ones are skipped, not trusted."""
    for checkpoint in reversed(list_checkpoints(checkpoints)):
        try:
            return checkpoint, verify(checkpoint)
        except CheckpointError:
            continue
    return None


def remove_stale_staging(checkpoints: Path) -> None:
    """Staging folders left by a killed save are garbage: the manifest never made it."""
    if checkpoints.is_dir():
        for path in checkpoints.glob(f".tmp-{PREFIX}*"):
            shutil.rmtree(path, ignore_errors=True)
