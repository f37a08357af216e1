"""Control groups for judging a fine-tune, and texts read from files.

From a run and its dataset, for the held-out questions:
  base      the dataset's plain answers (negative control), or, when the dataset has no such
            column, the base model's own answers (the adapter switched off)
  generated the run's adapted model's answers (how far the fine-tune got)
  target    the dataset's target-style answers (positive control)
"""

from __future__ import annotations

import json
from pathlib import Path

from studio.judge.items import JudgeItem
from studio.judge.prompts import JudgeConfigError

BASE, GENERATED, TARGET = "base", "generated", "target"


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


def _last_user(messages: list[dict]) -> str:
    return next(m["content"] for m in reversed(messages) if m["role"] == "user")


def run_groups(run_dir: str | Path, *, base_column: str | None = "plain", limit: int | None = None,
               max_new_tokens: int = 128, batch_size: int = 8, progress=print) -> list[JudgeItem]:
    """The three control groups for a run's held-out questions (see the module doc).

    Generation uses the run's adapter (studio.runs.load_adapted_model) on the held-out split that
    training used (studio.data.prepare with the run's data config and tokenizer).
    """
    from studio import data, sampling
    from studio.runs import load_adapted_model, load_config

    cfg = load_config(Path(run_dir))
    progress("loading the run's adapted model…")
    model, tokenizer = load_adapted_model(Path(run_dir))
    questions = data.prepare(cfg.data, tokenizer).eval_questions[:limit]
    if not questions:
        raise JudgeConfigError(f"{run_dir}: the dataset has no held-out questions to evaluate on")

    answers: dict[str, dict] = {}  # held-out prompt (as JSON) -> the row's answers
    for row in data.load_rows(cfg.data):
        messages = data.to_messages(row, cfg.data)
        answers[json.dumps(messages[:-1])] = {TARGET: messages[-1]["content"],
                                              BASE: row.get(base_column) if base_column else None}

    def generate(chats) -> list[str]:
        out = []
        for start in range(0, len(chats), batch_size):
            out += sampling.generate(model, tokenizer, chats[start:start + batch_size], max_new_tokens)
            progress(f"generated {len(out)}/{len(chats)}")
        return out

    progress(f"generating answers to {len(questions)} held-out questions…")
    generated = generate(questions)
    known = [answers.get(json.dumps(q), {}) for q in questions]
    if all(k.get(BASE) for k in known):
        base = [k[BASE] for k in known]
    else:
        progress(f"no {base_column!r} column for every question: the base model answers instead (adapter off)")
        with model.disable_adapter():
            base = generate(questions)

    items = []
    for question, known_answers, base_text, generated_text in zip(questions, known, base, generated):
        q = _last_user(question)
        items.append(JudgeItem(base_text, BASE, question=q))
        items.append(JudgeItem(generated_text, GENERATED, question=q))
        if known_answers.get(TARGET):
            items.append(JudgeItem(known_answers[TARGET], TARGET, question=q))
    return items
