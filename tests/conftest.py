"""Shared fixtures: the real SmolLM2 tokenizer and a tiny random Llama that uses it.

The embedded default is converted from its GGUF once per machine (the studio's cache), so the
first test session pays ~20 s and later ones nothing.
"""

from __future__ import annotations

import os

import pytest

# No test may reach a model hub: fail fast instead of waiting on the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def smol_tokenizer():
    from studio.models import load_tokenizer

    return load_tokenizer("HuggingFaceTB/SmolLM2-135M-Instruct")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    from studio.models import tiny_model_dir

    return tiny_model_dir(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture
def tmp_run_dir(tmp_path):
    return tmp_path / "run"
