"""The judge that works with no key and no network: the embedded SmolLM2-135M in this process, asked
a yes/no question ("Is this text written in Yoda's style?") and scored by the probability of yes.

Measured with bench/offline_judges.py on the demo's held-out plain and Yoda answers, this beat every
local model that PyPI packages ship (Gemma-3-270M, Qwen2.5-Coder-0.5B-Instruct) and every 1-10 scale
(which the small models cannot use at all), so no package beyond the embedded model is needed. It is
still a weak judge: its AUC interval is wide, and the workbench says so.

default_judge() is what the Judge pane starts from: the shipped prompt on the default endpoint when
its key is set, else this local judge, labelled as weak.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from studio.config import DEFAULT_MODEL
from studio.judge.prompts import Endpoint, JudgePrompt, endpoint_preset, load_prompt

LOCAL_LABEL = "local, weak: set OPENROUTER_API_KEY or pick an endpoint for a real judge"
LOCAL_MODEL = DEFAULT_MODEL  # the best offline judge measured (see the module doc)
OFFLINE_PROMPT = "yoda-yesno"  # the yes/no question: the 1-10 scale does not separate on small models


def local_prompt(preset: str | JudgePrompt = OFFLINE_PROMPT, model: str = LOCAL_MODEL) -> JudgePrompt:
    """The prompt on the in-process judge with `model` (default: the embedded SmolLM2-135M)."""
    prompt = load_prompt(preset) if isinstance(preset, str) else preset
    return dataclasses.replace(prompt, endpoint=Endpoint(backend="local", model=model))


@dataclass(frozen=True)
class DefaultJudge:
    prompt: JudgePrompt
    label: str | None  # LOCAL_LABEL for the local fallback; None for a real endpoint


def default_judge(preset: str = "yoda") -> DefaultJudge:
    """The shipped `preset` on the default endpoint when its key is set; otherwise the local judge
    with the offline prompt (the yes/no question), labelled as weak."""
    endpoint = endpoint_preset("openrouter")
    if endpoint.api_key_env and os.environ.get(endpoint.api_key_env):
        return DefaultJudge(load_prompt(preset), None)
    return DefaultJudge(local_prompt(), LOCAL_LABEL)
