"""Checkpoints on disk: a kill at any moment of a save leaves a checkpoint to resume from; old ones are pruned."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from studio import checkpoints
from studio.checkpoints import CheckpointError, Fingerprints

PRINTS = Fingerprints({}, "data", "template", "tokenizer")


def stage(root: Path, step: int, weights: bytes = b"weights", ranks: int = 1) -> Path:
    staged = checkpoints.staged(root, step)
    staged.mkdir(parents=True)
    (staged / "adapter_model.safetensors").write_bytes(weights)
    for name in checkpoints.rng_files(ranks):
        (staged / name).write_bytes(b"rng")
    return staged


def save(root: Path, step: int, weights: bytes = b"weights") -> Path:
    return checkpoints.finalize(stage(root, step, weights), root, step, PRINTS)


def test_resume_skips_a_half_written_and_a_corrupt_checkpoint(tmp_path):
    root = tmp_path / "checkpoints"
    save(root, 4)
    stage(root, 8)  # killed mid-save: no manifest, never renamed
    corrupt = root / "step-6"
    shutil.copytree(root / "step-4", corrupt)
    (corrupt / "adapter_model.safetensors").write_bytes(b"torn")  # does not match its manifest

    path, manifest = checkpoints.latest_valid(root)
    assert path.name == "step-4" and manifest["step"] == 4
    checkpoints.recover(root)
    assert not (root / checkpoints.STAGING).exists()
    assert [p.name for p in checkpoints.list_checkpoints(root)] == ["step-4", "step-6"]


def test_saving_a_step_again_never_leaves_it_missing(tmp_path, monkeypatch):
    """Checkpoint now, then stop at the same step: a kill between the two renames used to leave only the
    staging copy, which resume deleted, restarting silently from step 0."""
    root = tmp_path / "checkpoints"
    save(root, 5, b"first")
    real_replace = os.replace

    def killed_after_first_rename(src, dst):
        real_replace(src, dst)
        if Path(dst).name.startswith(".replaced-"):
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(os, "replace", killed_after_first_rename)
    with pytest.raises(KeyboardInterrupt):
        save(root, 5, b"second")
    monkeypatch.setattr(os, "replace", real_replace)

    checkpoints.recover(root)  # the complete staged copy takes the place
    path, manifest = checkpoints.latest_valid(root)
    assert path.name == "step-5" and (path / "adapter_model.safetensors").read_bytes() == b"second"
    assert [p.name for p in root.iterdir()] == ["step-5"]


def test_a_checkpoint_moved_aside_comes_back_when_its_successor_was_incomplete(tmp_path):
    root = tmp_path / "checkpoints"
    save(root, 5, b"first")
    os.replace(root / "step-5", root / ".replaced-step-5")  # moved aside, then killed
    stage(root, 5, b"second")  # ... before the manifest was written
    checkpoints.recover(root)
    path, _ = checkpoints.latest_valid(root)
    assert (path / "adapter_model.safetensors").read_bytes() == b"first"


def test_a_checkpoint_needs_every_process_rng_state(tmp_path):
    root = tmp_path / "checkpoints"
    staged = stage(root, 3, ranks=2)
    (staged / "rng_state_1.pth").unlink()  # rank 1 never wrote its state
    with pytest.raises(CheckpointError, match="rng_state_1.pth"):
        checkpoints.finalize(staged, root, 3, PRINTS, world_size=2)
    assert checkpoints.latest_valid(root) is None

    staged = stage(root / "two", 3, ranks=2)
    final = checkpoints.finalize(staged, root / "two", 3, PRINTS, world_size=2)
    manifest = checkpoints.verify(final)
    assert manifest["world_size"] == 2 and {"rng_state_0.pth", "rng_state_1.pth"} <= set(manifest["files"])


def test_pruning_keeps_the_newest_and_the_newest_valid(tmp_path):
    root = tmp_path / "checkpoints"
    for step in (2, 4, 6, 8):
        save(root, step)
    checkpoints.prune(root, keep=2, newest_valid=root / "step-8")
    assert [p.name for p in checkpoints.list_checkpoints(root)] == ["step-6", "step-8"]

    # The newest valid checkpoint survives even when newer (broken) ones fill the quota.
    checkpoints.prune(root, keep=1, newest_valid=root / "step-6")
    assert [p.name for p in checkpoints.list_checkpoints(root)] == ["step-6", "step-8"]
