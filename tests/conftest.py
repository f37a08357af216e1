"""Shared fixtures: the real SmolLM2 tokenizer and a tiny random Llama that uses it.

The embedded default is converted from its GGUF once per machine (the studio's cache), so the
first test session pays ~20 s and later ones nothing.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace

import pytest

# No test may reach a model hub: fail fast instead of waiting on the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The suite runs one worker per core (pytest-xdist): a torch thread pool per worker would oversubscribe
# the cores, and tiny models gain nothing from intra-op threads anyway.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")


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


QA_ROWS = [("What is a token?", "A piece of text, a token is."),
           ("Why count tokens?", "Pay for them, you do."),
           ("What is a template?", "How a chat is written, it is."),
           ("Is loss on every token?", "Only on the answer, hmm.")]


@pytest.fixture
def make_studio(tmp_path, smol_tokenizer):
    """Makes the real app on a small question/answer file, with config sections replaced as given.

    `smol_tokenizer` puts the default model's tokenizer in the studio's cache before any app opens.
    """
    from screens.app import StudioApp
    from screens.state import StudioState
    from studio.config import DataConfig, RunConfig

    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps({"question": q, "yoda": a}) + "\n" for q, a in QA_ROWS))

    def make(**sections) -> StudioApp:
        return StudioApp(state=StudioState(config=replace(RunConfig(), data=DataConfig(dataset=str(data)), **sections)))

    return make
