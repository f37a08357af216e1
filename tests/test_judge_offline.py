"""The offline default judge: with no key, the in-process judge on the embedded model with the yes/no
question, labelled as weak; with the default endpoint's key set, the shipped prompt on that endpoint."""

from __future__ import annotations

from studio.judge import Endpoint, JudgeItem, LocalJudge, run_judge_sync
from studio.judge.offline import LOCAL_LABEL, default_judge, local_prompt


def test_with_the_default_key_set_the_shipped_prompt_judges(monkeypatch):
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-x")
    judge = default_judge("yoda")
    assert judge.label is None and judge.prompt.id == "yoda" and judge.prompt.endpoint.backend == "openai"


def test_without_a_key_the_local_judge_is_labelled_weak(monkeypatch):
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    judge = default_judge()
    assert judge.label == LOCAL_LABEL == "local, weak: set OPENROUTER_API_KEY or pick an endpoint for a real judge"
    assert judge.prompt.endpoint == Endpoint(backend="local", model="HuggingFaceTB/SmolLM2-135M-Instruct")
    assert judge.prompt.parse == "yesno" and judge.prompt.scale == (0, 1)


def test_the_offline_prompt_scores_on_a_local_model(tiny_model_dir):
    prompt = local_prompt(model=str(tiny_model_dir))
    result = run_judge_sync(prompt, [JudgeItem("Strong, you are.")], judge=LocalJudge(str(tiny_model_dir),
                                                                                       device="cpu"))[0]
    assert 0 <= result.score <= 1 and result.raw.startswith("P(yes)")
