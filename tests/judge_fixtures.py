"""Fixtures shared by the judge tests (imported by them; conftest.py belongs to the lead)."""

from __future__ import annotations

import pytest
from katan import Katan

from studio.judge import JudgeCache, JudgeItem, load_prompt


@pytest.fixture(scope="module")
def echo_katan(tmp_path_factory):
    """A fault-free echo server: it answers with the user message, so a text's own `Score: N` is the verdict."""
    with Katan(tmp_path_factory.mktemp("katan")) as server:
        yield server


def echo_prompt(server: Katan, prompt: str = "yoda"):
    return load_prompt(prompt).with_endpoint(base_url=server.base_url, model="judge-echo")


def numbered_items(n: int, group: str = "g") -> list[JudgeItem]:
    """Texts that carry their own score (1-10) and a unique id, so losses and duplicates show."""
    return [JudgeItem(f"text {i}. Score: {i % 10 + 1}", group, fields={"id": i}) for i in range(n)]


@pytest.fixture
def cache(tmp_path):
    c = JudgeCache(tmp_path / "judge.sqlite")
    yield c
    c.close()
