"""The judge engine: LLM judges (OpenAI-compatible HTTP or a local model) scoring texts with a
prompt, many at a time, cached, with statistics to compare prompts and control groups.

    prompt = load_prompt("yoda")                       # or a TOML path
    results = run_judge_sync(prompt, [JudgeItem("Strong, the Force is.", "target")], cache=JudgeCache())
    group_stats(results, prompt.scale)

Rating prompts (intervals, paired A/B differences, biases) is in studio.judge.rating and human labels
in studio.judge.labels: imported where used, since they bring numpy and scipy.
"""

from studio.judge.backends import (
                                  LocalJudge,
                                  OpenAIJudge,
                                  PermanentError,
                                  SessionKeys,
                                  TransientError,
                                  check_backend,
                                  make_judge,
)
from studio.judge.cache import JudgeCache, cache_key
from studio.judge.estimate import CONFIRM_ABOVE, Estimate, Totals, estimate, totals
from studio.judge.groups import BASE, FEW_SHOT, GENERATED, SFT, TARGET, answer_pairs, load_texts, run_groups
from studio.judge.items import JudgeItem, JudgeResult, text_hash
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
                                  prompt_diff,
                                  prompt_toml,
                                  render_messages,
                                  save_prompt,
)
from studio.judge.runner import (
                                  Progress,
                                  RetryPolicy,
                                  probe,
                                  retest_items,
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
    "BASE", "CONFIRM_ABOVE", "FEW_SHOT", "GENERATED", "SFT", "TARGET", "Comparison", "Endpoint", "Estimate", "GroupStats",
    "JudgeCache", "JudgeConfigError", "JudgeItem", "JudgePrompt", "JudgeResult", "LocalJudge",
    "OpenAIJudge", "PairwiseStats", "Parsed", "PermanentError", "Progress", "RetryPolicy",
    "SessionKeys", "Totals", "TransientError", "answer_pairs", "auc", "cache_key", "check_backend",
    "compare_prompts", "endpoint_preset", "endpoint_presets", "estimate", "expected_score", "group_stats",
    "histogram", "load_prompt", "load_texts", "make_judge",
    "pairwise_stats", "parse_answer", "preset_ids", "presets", "probe", "prompt_diff",
    "prompt_toml", "render_messages", "retest_items", "run_groups", "run_judge", "run_judge_sync",
    "run_pairwise", "save_prompt", "spearman", "text_hash", "totals",
]
