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
                                  SessionKeys,
                                  TransientError,
                                  check_backend,
                                  make_judge,
)
from studio.judge.cache import JudgeCache, cache_key
from studio.judge.estimate import CONFIRM_ABOVE, Estimate, Totals, estimate, totals
from studio.judge.groups import BASE, GENERATED, TARGET, load_texts, run_groups
from studio.judge.items import JudgeItem, JudgeResult, text_hash
from studio.judge.labels import Agreement, LabelStore, agreement, labels_path
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
from studio.judge.rating import (
                                  PairedDifference,
                                  Separation,
                                  length_bias,
                                  paired_difference,
                                  position_bias,
                                  retest,
                                  separation,
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
    "BASE", "CONFIRM_ABOVE", "GENERATED", "TARGET", "Agreement", "Comparison", "Endpoint", "Estimate", "GroupStats",
    "JudgeCache", "JudgeConfigError", "JudgeItem", "JudgePrompt", "JudgeResult", "LabelStore", "LocalJudge",
    "OpenAIJudge", "PairedDifference", "PairwiseStats", "Parsed", "PermanentError", "Progress", "RetryPolicy",
    "Separation", "SessionKeys", "Totals", "TransientError", "agreement", "auc", "cache_key", "check_backend",
    "compare_prompts", "endpoint_preset", "endpoint_presets", "estimate", "expected_score", "group_stats",
    "histogram", "labels_path", "length_bias", "load_prompt", "load_texts", "make_judge", "paired_difference",
    "pairwise_stats", "parse_answer", "position_bias", "preset_ids", "presets", "probe", "prompt_diff",
    "prompt_toml", "render_messages", "retest", "retest_items", "run_groups", "run_judge", "run_judge_sync",
    "run_pairwise", "save_prompt", "separation", "spearman", "text_hash", "totals",
]
