"""Checkpoints you can trust: written aside, described by a manifest, then renamed into place.

Every process of a run writes its files (rank 0 the adapter, optimizer and scheduler; each rank
its RNG state) into one staging folder; rank 0 then hashes them into a manifest, written last,
and renames the folder into place. A kill at any moment leaves either the old checkpoint or the
new one whole (`recover` finishes or undoes a rename cut short), and resume only uses
checkpoints whose manifest exists and whose files match it.
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
STAGING = ".staging"  # the trainer's output_dir: it writes checkpoint-N/ in here
_REPLACED = ".replaced-"  # a checkpoint of the same step moved aside while its successor is renamed in


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


def staged(checkpoints: Path, step: int) -> Path:
    """Where the trainer writes the checkpoint of `step` before it is finalized."""
    return checkpoints / STAGING / f"checkpoint-{step}"


def rng_files(world_size: int) -> list[str]:
    """The RNG state files a checkpoint of a run on `world_size` processes must hold (one per rank)."""
    return ["rng_state.pth"] if world_size <= 1 else [f"rng_state_{rank}.pth" for rank in range(world_size)]


def finalize(staging: Path, checkpoints: Path, step: int, fingerprints: Fingerprints, world_size: int = 1) -> Path:
    """Hash the staged files, write the manifest last, then rename the folder into place.

    A checkpoint of the same step (checkpoint now, then stop) is moved aside first and removed only
    after its successor is in place, so a kill between the renames never leaves neither."""
    missing = [name for name in rng_files(world_size) if not (staging / name).is_file()]
    if missing:
        raise CheckpointError(f"{staging}: {', '.join(missing)} missing: not every process saved its state")
    files = {str(p.relative_to(staging)): file_sha256(p) for p in sorted(staging.rglob("*")) if p.is_file()}
    manifest = {"step": step, "created": time.time(), "world_size": world_size, "files": files,
                "fingerprints": {"config": fingerprints.config, "dataset": fingerprints.dataset,
                                 "template": fingerprints.template, "tokenizer": fingerprints.tokenizer}}
    manifest_path = staging / MANIFEST
    with open(manifest_path, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    final = checkpoints / f"{PREFIX}{step}"
    replaced = checkpoints / f"{_REPLACED}{final.name}"
    if final.exists():
        shutil.rmtree(replaced, ignore_errors=True)
        os.replace(final, replaced)
    os.replace(staging, final)
    shutil.rmtree(replaced, ignore_errors=True)
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


def recover(checkpoints: Path) -> None:
    """Finish or undo a save that a kill cut short, then remove what is left of it.

    A staged checkpoint whose manifest verifies was complete: it goes into place. A checkpoint moved
    aside comes back when nothing took its place. Staged files without a manifest are garbage."""
    staging_root = checkpoints / STAGING
    if staging_root.is_dir():
        for folder in staging_root.glob("checkpoint-*"):
            step = folder.name.removeprefix("checkpoint-")
            final = checkpoints / f"{PREFIX}{step}"
            if step.isdigit() and not final.exists() and _verifies(folder):
                os.replace(folder, final)
        shutil.rmtree(staging_root, ignore_errors=True)
    for aside in checkpoints.glob(f"{_REPLACED}{PREFIX}*"):
        final = checkpoints / aside.name.removeprefix(_REPLACED)
        if final.exists():
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.replace(aside, final)


def _verifies(checkpoint: Path) -> bool:
    try:
        verify(checkpoint)
    except CheckpointError:
        return False
    return True


def prune(checkpoints: Path, keep: int, newest_valid: Path) -> list[Path]:
    """Remove all but the `keep` newest checkpoints; `newest_valid` is never removed. Returns the removed."""
    found = list_checkpoints(checkpoints)
    doomed = [p for p in found[: max(len(found) - keep, 0)] if p != newest_valid]
    for path in doomed:
        shutil.rmtree(path, ignore_errors=True)
    return doomed
