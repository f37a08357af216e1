"""Preference pairs for DPO: rows with a prompt, a chosen and a rejected answer, read with studio.data's
readers (the demo, .jsonl/.json/.csv/.parquet, a hub id), checked, split and reported like SFT data.

    data = prepare(cfg, tokenizer)   # data.train: prompt/chosen/rejected chats for trl.DPOTrainer
    print(data.report.summary())     # rows, empty fields and duplicates by line, chosen == rejected, lengths

A prompt is text (with the optional system and context columns, as for SFT) or a list of chat turns; an
answer is text or a list of assistant turns. The demo's pairs come free: its Yoda answer over its plain one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from studio import data
from studio.config import DataConfig
from studio.data import DataError, MissingField, Row

DEMO_COLUMNS = {"prompt_column": "question", "chosen_column": "yoda", "rejected_column": "plain"}


@dataclass
class PreferenceReport(data.DataReport):
    """DataReport's counts for pairs (a "row" is a pair), plus the pairs that prefer nothing."""

    same_answers: list[int] = field(default_factory=list)  # chosen == rejected: nothing to learn

    def summary(self) -> str:
        lines = super().summary().split("\n")
        if self.same_answers:
            lines.insert(len(lines) - bool(self.lengths),
                         f"  dropped {len(self.same_answers)} whose chosen and rejected answers are the same: "
                         f"line{'s' if len(self.same_answers) > 1 else ''} {_listed(self.same_answers)}")
        return "\n".join(lines)

    def why_all_dropped(self) -> str:
        why = super().why_all_dropped()
        if self.same_answers:
            why += f"; {len(self.same_answers)} pairs had the same chosen and rejected answer"
        return why


def _listed(lines: list[int]) -> str:
    shown = ", ".join(str(line) for line in lines[:data.SHOWN_LINES])
    return shown + (f" and {len(lines) - data.SHOWN_LINES} more" if len(lines) > data.SHOWN_LINES else "")


@dataclass
class PreferenceData:
    """What a DPO run trains and measures on; the same names as studio.data.Prepared."""

    train: Any  # datasets.Dataset: prompt, chosen, rejected (chat lists, as trl.DPOTrainer reads them), length
    eval: Any  # datasets.Dataset: chosen_input_ids/labels, rejected_input_ids/labels of the held-out pairs
    report: PreferenceReport
    eval_questions: list[list[dict]]  # the held-out prompts, in file order
    style_text: str | None  # the demo's held-out style paragraph; None for other datasets
    fingerprint: str


class Pair(NamedTuple):
    line: int
    prompt: list[dict]
    chosen: list[dict]
    rejected: list[dict]

    @property
    def key(self) -> str:
        """The chosen chat as studio.data keys an SFT row: on the demo, SFT and DPO hold out the same questions."""
        return json.dumps(self.prompt + self.chosen, ensure_ascii=False, sort_keys=True)


# -- rows to pairs -------------------------------------------------------------------------------------


def pair_config(cfg: DataConfig) -> DataConfig:
    """The config pairs are read with: the demo's own columns for the demo."""
    return dataclasses.replace(cfg, **DEMO_COLUMNS) if cfg.dataset == "demo" else cfg


def load_pairs(cfg: DataConfig) -> tuple[list[Row], list[Pair], PreferenceReport]:
    """The rows read and the usable pairs, with empty fields, duplicates and same answers reported."""
    cfg = pair_config(cfg)
    # The SFT column check is switched off (no column named): pairs name other columns, checked below.
    rows = data.load_rows(dataclasses.replace(cfg, prompt_column="", response_column="", system_column="",
                                              context_column=""))
    _check_columns(rows, cfg)
    report = PreferenceReport(cfg.dataset, len(rows), cfg.max_length, cfg.overlong)
    pairs, first_line = [], {}
    for row in rows:
        try:
            pair = to_pair(row, cfg)
        except MissingField as missing:
            report.empty_fields.append((missing.line, missing.field))
            continue
        if pair.chosen == pair.rejected:
            report.same_answers.append(pair.line)
            continue
        key = json.dumps([pair.prompt, pair.chosen, pair.rejected], ensure_ascii=False, sort_keys=True)
        if key in first_line:
            report.duplicates.append((first_line[key], pair.line))
            continue
        first_line[key] = pair.line
        pairs.append(pair)
    return rows, pairs, report


def _check_columns(rows: list[Row], cfg: DataConfig) -> None:
    """A configured column no row has is a config mistake, not a few bad rows: say which columns exist."""
    present = list(dict.fromkeys(key for row in rows for key in row if key != "_line"))
    wanted = {"prompt_column": cfg.prompt_column, "chosen_column": cfg.chosen_column,
              "rejected_column": cfg.rejected_column, "system_column": cfg.system_column,
              "context_column": cfg.context_column}
    missing = {key: column for key, column in wanted.items() if column and column not in present}
    if rows and missing:
        names = " or ".join(f"{column!r} (data.{key})" for key, column in missing.items())
        fixes = " ".join(f"--set data.{key}={data._guess(key, present)}" for key in missing)
        raise DataError(f"{cfg.dataset}: no row has {names}; its columns are: {', '.join(present)}. "
                        f"Name yours, e.g. {fixes}")


def to_pair(row: Row, cfg: DataConfig) -> Pair:
    """The row as a prompt and two answers. Raises MissingField for an empty field, DataError for a bad one."""
    for column in (cfg.prompt_column, cfg.chosen_column, cfg.rejected_column):
        value = row.get(column)
        if value is None or value == [] or (isinstance(value, str) and not value.strip()):
            raise MissingField(cfg.dataset, row["_line"], column)
    chosen, chosen_turns = _chat(row, cfg, cfg.chosen_column)
    rejected, rejected_turns = _chat(row, cfg, cfg.rejected_column)
    prompt = chosen[:-chosen_turns]
    return Pair(row["_line"], prompt, chosen[-chosen_turns:], rejected[-rejected_turns:])


def _chat(row: Row, cfg: DataConfig, answer_column: str) -> tuple[list[dict], int]:
    """The chat ending with `answer_column`'s answer, checked by studio.data.to_messages (roles, empty
    turns, system prompt), and how many turns the answer takes."""
    prompt, answer = row[cfg.prompt_column], row[answer_column]
    if not isinstance(prompt, list) and not isinstance(answer, list):
        # Text: read as an SFT row whose response is this answer (system and context columns included).
        as_sft = dataclasses.replace(cfg, response_column=answer_column, messages_column=f"{cfg.prompt_column}+")
        return data.to_messages(row, as_sft), 1
    prompt_turns = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
    answer_turns = answer if isinstance(answer, list) else [{"role": "assistant", "content": answer}]
    if not all(isinstance(turn, dict) and turn.get("role") == "assistant" for turn in answer_turns):
        raise DataError(f"{cfg.dataset}:{row['_line']}: {answer_column!r} must be text or a list of assistant turns")
    column = f"{cfg.prompt_column}+{answer_column}"  # named in errors: "prompt+chosen[1].content"
    return data.to_messages({**row, column: prompt_turns + answer_turns},
                            dataclasses.replace(cfg, messages_column=column)), len(answer_turns)


# -- preparing train and eval sets --------------------------------------------------------------------


class _Encoded(NamedTuple):
    pair: Pair
    chosen: Any  # templates.Encoded
    rejected: Any


def prepare(cfg: DataConfig, tokenizer, progress: Callable[[int, int], None] | None = None,
            should_stop: Callable[[], bool] | None = None) -> PreferenceData:
    """Load, check, encode and split the pairs (apply the studio's template to the tokenizer first). A pair
    either of whose chats is longer than max_length is dropped. Raises DataError when none is left.
    `progress(done, total)` and `should_stop()` work as for studio.data.prepare (pairs instead of rows)."""
    import datasets

    from studio import templates

    _, pairs, report = load_pairs(cfg)
    encoded = []
    for start, end in data._batches(len(pairs), progress, should_stop):
        batch = pairs[start:end]
        chosen_chats = templates.encode_many(tokenizer, [p.prompt + p.chosen for p in batch], cfg.max_length, "drop")
        rejected_chats = templates.encode_many(tokenizer, [p.prompt + p.rejected for p in batch], cfg.max_length,
                                               "drop")
        for pair, chosen, rejected in zip(batch, chosen_chats, rejected_chats):
            if chosen is None or rejected is None:
                report.dropped_overlong.append(pair.line)
            elif all(label == -100 for label in chosen.labels + rejected.labels):
                report.no_labels.append(pair.line)
            else:
                encoded.append(_Encoded(pair, chosen, rejected))
    if not encoded:
        raise DataError(report.why_all_dropped())

    train, held_out = _split(encoded, cfg)
    report.used, report.train, report.eval = len(encoded), len(train), len(held_out)
    report.lengths = _percentiles([max(len(e.chosen.input_ids), len(e.rejected.input_ids)) for e in encoded])
    # "length": the tokens a pair takes in a padded batch (its two chats, each as long as the longer one),
    # for train.batch_tokens and train.group_by_length.
    train_set = datasets.Dataset.from_list([
        {"prompt": e.pair.prompt, "chosen": e.pair.chosen, "rejected": e.pair.rejected,
         "length": 2 * max(len(e.chosen.input_ids), len(e.rejected.input_ids))} for e in train])
    eval_set = datasets.Dataset.from_dict({
        "chosen_input_ids": [e.chosen.input_ids for e in held_out], "chosen_labels": [e.chosen.labels for e in held_out],
        "rejected_input_ids": [e.rejected.input_ids for e in held_out],
        "rejected_labels": [e.rejected.labels for e in held_out]})
    return PreferenceData(
        train=train_set, eval=eval_set, report=report, eval_questions=[e.pair.prompt for e in held_out],
        style_text=data.DEMO_STYLE.read_text(encoding="utf-8").strip() if cfg.dataset == "demo" else None,
        fingerprint=_fingerprint([e.pair for e in encoded], cfg))


def _percentiles(lengths: list[int]) -> dict[str, int]:
    """Nearest-rank percentiles of the longer chat of each pair, as studio.data reports SFT rows."""
    ordered = sorted(lengths)
    ranks = {"p50": 0.5, "p90": 0.9, "p99": 0.99}
    return {**{name: ordered[max(0, math.ceil(q * len(ordered)) - 1)] for name, q in ranks.items()}, "max": ordered[-1]}


def _split(encoded: list[_Encoded], cfg: DataConfig) -> tuple[list[_Encoded], list[_Encoded]]:
    """Held out as studio.data holds out SFT rows: those first by a seeded hash of the chosen chat, so the
    demo's SFT and DPO runs hold out the same questions and a DPO run never trains on SFT's held-out ones."""
    count = len(encoded)
    n_eval = min(cfg.eval_max_rows, max(1, round(count * cfg.eval_fraction))) if count > 1 else 0
    ranked = sorted(encoded, key=lambda e: hashlib.sha256(f"{cfg.seed}\n{e.pair.key}".encode()).digest())
    held = {e.pair.line for e in ranked[:n_eval]}
    return [e for e in encoded if e.pair.line not in held], [e for e in encoded if e.pair.line in held]


def _fingerprint(pairs: list[Pair], cfg: DataConfig) -> str:
    """Changes when the pairs or the settings that decide the train set change (resume refuses other data)."""
    settings = {name: getattr(cfg, name) for name in ("max_length", "eval_fraction", "eval_max_rows", "seed")}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for pair in pairs:
        digest.update(json.dumps([pair.prompt, pair.chosen, pair.rejected], ensure_ascii=False,
                                 sort_keys=True).encode() + b"\n")
    return digest.hexdigest()
