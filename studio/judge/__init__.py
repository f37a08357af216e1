"""The judge engine: LLM judges (OpenAI-compatible HTTP or a local model) scoring texts with a
prompt, many at a time, cached, with statistics to compare prompts and control groups.

    prompt = load_prompt("yoda")                       # or a TOML path
    results = run_judge_sync(prompt, [JudgeItem("Strong, the Force is.", "target")], cache=JudgeCache())
    group_stats(results, prompt.scale)
"""

from studio.judge.backends import (
                                  LocalJudge,
                                  OpenAIJudge,
                                  PermanentError,
                                  TransientError,
                                  make_judge,
)
from studio.judge.cache import JudgeCache, cache_key
from studio.judge.groups import BASE, GENERATED, TARGET, load_texts, run_groups
from studio.judge.items import JudgeItem, JudgeResult
from studio.judge.parse import Parsed, expected_score, parse_answer
from studio.judge.prompts import (
                                  Endpoint,
                                  JudgeConfigError,
                                  JudgePrompt,
                                  endpoint_preset,
                                  endpoint_presets,
                                  load_prompt,
                                  preset_ids,
                                  presets,
                                  render_messages,
)
from studio.judge.runner import (
                                  Progress,
                                  RetryPolicy,
                                  probe,
                                  run_judge,
                                  run_judge_sync,
                                  run_pairwise,
)
from studio.judge.stats import (
                                  Comparison,
                                  GroupStats,
                                  PairwiseStats,
                                  auc,
                                  compare_prompts,
                                  group_stats,
                                  histogram,
                                  pairwise_stats,
                                  spearman,
)

__all__ = [
    "BASE", "GENERATED", "TARGET", "Comparison", "Endpoint", "GroupStats", "JudgeCache", "JudgeConfigError",
    "JudgeItem", "JudgePrompt", "JudgeResult", "LocalJudge", "OpenAIJudge", "PairwiseStats", "Parsed",
    "PermanentError", "Progress", "RetryPolicy", "TransientError", "auc", "cache_key", "compare_prompts",
    "endpoint_preset", "endpoint_presets", "expected_score", "group_stats", "histogram", "load_prompt",
    "load_texts", "make_judge", "pairwise_stats", "parse_answer", "preset_ids", "presets", "probe",
    "render_messages", "run_groups", "run_judge", "run_judge_sync", "run_pairwise", "spearman",
]
