"""Control groups for judging a fine-tune, and texts read from files.

From a run and its dataset, for the held-out questions:
  base      the dataset's plain answers (negative control), or, when the dataset has no such
            column, the base model's own answers (the adapter switched off)
  generated the run's adapted model's answers (how far the fine-tune got)
  few-shot  optional: the base model (adapter off) answering with k target-style training chats
            before the question (does the fine-tune beat just prompting?)
  sft       when the run continued an adapter (model.adapter, e.g. the SFT run a DPO run started
            from): that adapter's answers (does this run beat where it started?)
  target    the dataset's target-style answers (positive control)

The questions are the held-out split of the run's dataset; a run that continued another run's adapter
is evaluated on that run's held-out questions (a DPO run's pairs file has no target-style answers).
Every answer but the target's carries the question's target-style answer as its `reference`, with
its ROUGE-L and BLEU against it (studio.judge.reference).
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path

from studio.judge.items import JudgeItem
from studio.judge.prompts import JudgeConfigError

BASE, FEW_SHOT, SFT, GENERATED, TARGET = "base", "few-shot", "sft", "generated", "target"


def load_texts(path: str | Path) -> list[JudgeItem]:
    """Rows of a .jsonl/.json/.csv/.parquet file: `text` and `group`, optional `question` and
    `reference`; other fields are carried through to the output. A bad row is an error naming file and line."""
    from studio.data import DataError, read_file

    path = Path(path)
    try:
        rows = read_file(path)
    except DataError as exc:
        raise JudgeConfigError(str(exc)) from None
    items = []
    for row in rows:
        if not isinstance(row.get("text"), str):
            raise JudgeConfigError(f"{path}:{row['_line']}: each row needs a string `text` field")
        items.append(JudgeItem.from_row({k: v for k, v in row.items() if k != "_line"}))
    if not items:
        raise JudgeConfigError(f"{path}: no rows")
    return items


def answer_pairs(items: list[JudgeItem]) -> list[JudgeItem]:
    """Per question, its generated answer (or, without one, its target answer) as answer A against, as
    answer B, the answer of the adapter the run started from (sft: the win rate of DPO over SFT) or else
    its base answer; items that already are pairs (text_b) stay as they are. Each pair's `versus` field
    names B's group."""
    if items and all(item.text_b is not None for item in items):
        return list(items)
    answers: dict[str | None, dict[str, JudgeItem]] = {}
    for item in items:
        answers.setdefault(item.question, {})[item.group] = item
    pairs = []
    for by_group in answers.values():
        first = by_group.get(GENERATED) or by_group.get(TARGET)
        second = SFT if SFT in by_group else BASE
        if first is not None and second in by_group:
            pairs.append(dataclasses.replace(first, text_b=by_group[second].text, fields={"versus": second}))
    if not pairs:
        raise JudgeConfigError("pairwise mode needs pairs: rows with `text` and `text_b`, or answers of groups base "
                               "and generated (or target) to the same `question`")
    return pairs


def _last_user(messages: list[dict]) -> str:
    return next(m["content"] for m in reversed(messages) if m["role"] == "user")


@dataclass
class EvalGroups:
    """The texts to judge, and the held-out perplexity of the target-style answers under the base
    model and the fine-tune (over `held_out` answers)."""

    items: list[JudgeItem]
    perplexity: dict[str, float | None] = field(default_factory=dict)  # BASE / SFT / GENERATED -> perplexity
    held_out: int = 0

    def perplexity_line(self) -> str | None:
        if not self.held_out:
            return None
        shown = {group: f"{value:.2f}" if value is not None else "-" for group, value in self.perplexity.items()}
        start = f"the adapter it started from {shown[SFT]}, " if SFT in shown else ""
        return (f"perplexity of the {self.held_out} held-out target-style answers: base model {shown[BASE]}, "
                f"{start}fine-tune {shown[GENERATED]}")


def _perplexity(model, rows) -> float | None:
    import torch

    from studio.heldout import mean_token_loss

    batches = [{"input_ids": torch.tensor([row["input_ids"]]), "labels": torch.tensor([row["labels"]])}
               for row in rows]
    loss = mean_token_loss(model, batches)
    return math.exp(min(loss, 50.0)) if loss is not None else None


def few_shot_examples(chats: list[list[dict]], held_out: list[list[dict]], k: int, seed: int) -> list[list[dict]]:
    """k chats chosen by seed among those whose question is not a held-out question (so never from
    the eval split, not even a duplicate question with another answer)."""
    held = {json.dumps(question) for question in held_out}
    candidates = [chat for chat in chats if json.dumps(chat[:-1]) not in held]
    return random.Random(seed).sample(candidates, min(k, len(candidates)))


def few_shot_chat(examples: list[list[dict]], question: list[dict]) -> list[dict]:
    """The question preceded by the examples as earlier turns; the question's system prompt stays first."""
    system = [m for m in question if m["role"] == "system"]
    shots = [m for chat in examples for m in chat if m["role"] != "system"]
    return system + shots + [m for m in question if m["role"] != "system"]


def start_run(adapter: str) -> Path | None:
    """The run directory of the adapter a run continued (its model.adapter = RUN/adapter), if any."""
    from studio.runs import RunPaths

    if not adapter:
        return None
    folder = Path(adapter).expanduser().parent
    return folder if RunPaths(folder).config.exists() else None


def run_groups(run_dir: str | Path, *, base_column: str | None = "plain", limit: int | None = None,
               max_new_tokens: int = 128, batch_size: int = 8, few_shot: int = 0,
               progress=print) -> EvalGroups:
    """The control groups for a run's held-out questions (see the module doc); `few_shot` = k adds
    the few-shot group.

    Generation uses the run's adapter (studio.runs.load_adapted_model) on the held-out split that
    training used (studio.data.prepare with the run's data config and tokenizer), or, for a run that
    continued another run's adapter, that run's held-out split.
    """
    from studio import data, sampling
    from studio.judge.reference import text_scores
    from studio.runs import load_adapted_model, load_config

    cfg = load_config(Path(run_dir))
    start = start_run(cfg.model.adapter)
    data_cfg = load_config(start).data if start is not None else cfg.data
    progress("loading the run's adapted model…")
    model, tokenizer = load_adapted_model(Path(run_dir))
    try:
        prepared = data.prepare(data_cfg, tokenizer)
    except data.DataError as exc:
        hint = (" (a DPO run is evaluated on the held-out questions of the SFT run whose adapter it continues: "
                "model.adapter = RUN/adapter)" if cfg.train.method == "dpo" and start is None else "")
        raise JudgeConfigError(f"{run_dir}: no held-out questions with target-style answers: {exc}{hint}") from None
    held_out = prepared.eval_questions
    questions = held_out[:limit]
    if not questions:
        raise JudgeConfigError(f"{run_dir}: the dataset has no held-out questions to evaluate on")

    answers: dict[str, dict] = {}  # held-out prompt (as JSON) -> the row's answers
    chats = []
    for row in data.load_rows(data_cfg):
        try:
            messages = data.to_messages(row, data_cfg)
        except data.MissingField:
            continue  # the loader's report names it; prepare left it out
        chats.append(messages)
        answers[json.dumps(messages[:-1])] = {TARGET: messages[-1]["content"],
                                              BASE: row.get(base_column) if base_column else None}

    def generate(prompts) -> list[str]:
        out = []
        for first in range(0, len(prompts), batch_size):
            out += sampling.generate(model, tokenizer, prompts[first:first + batch_size], max_new_tokens)
            progress(f"generated {len(out)}/{len(prompts)}")
        return out

    progress(f"perplexity of {len(prepared.eval)} held-out answers…")
    perplexity = {GENERATED: _perplexity(model, prepared.eval)}
    progress(f"generating answers to {len(questions)} held-out questions…")
    groups = {GENERATED: generate(questions)}
    if cfg.model.adapter:
        progress(f"the adapter it started from ({cfg.model.adapter}): perplexity and answers…")
        model.load_adapter(str(Path(cfg.model.adapter).expanduser()), adapter_name=SFT)
        model.set_adapter(SFT)
        perplexity[SFT] = _perplexity(model, prepared.eval)
        groups[SFT] = generate(questions)
        model.set_adapter("default")
    known = [answers.get(json.dumps(q), {}) for q in questions]
    with model.disable_adapter():
        perplexity[BASE] = _perplexity(model, prepared.eval)
        if all(k.get(BASE) for k in known):
            groups[BASE] = [k[BASE] for k in known]
        else:
            progress(f"no {base_column!r} column for every question: the base model answers instead (adapter off)")
            groups[BASE] = generate(questions)
        if few_shot:
            examples = few_shot_examples(chats, held_out, few_shot, data_cfg.seed)
            progress(f"few-shot: the base model answers with {len(examples)} training examples in its prompt…")
            groups[FEW_SHOT] = generate([few_shot_chat(examples, q) for q in questions])

    items = []
    for i, (question, known_answers) in enumerate(zip(questions, known)):
        q, reference = _last_user(question), known_answers.get(TARGET)
        for group in (BASE, FEW_SHOT, SFT, GENERATED):
            if group in groups:
                text = groups[group][i]
                fields = text_scores(text, reference) if reference else {}
                items.append(JudgeItem(text, group, question=q, reference=reference, fields=fields))
        if reference:
            items.append(JudgeItem(reference, TARGET, question=q))
    return EvalGroups(items, perplexity, len(prepared.eval))
