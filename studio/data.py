"""Datasets for fine-tuning: read rows (the demo, a local file, a hub dataset), turn them into chats,
check them, and encode them into train/eval sets, with a report of every row dropped and why.

    rows = load_rows(cfg)                 # dicts, each with "_line": its line in the file
    chat = to_messages(rows[0], cfg)      # [{"role": "system"?}, {"role": "user"}, {"role": "assistant"}]
    data = prepare(cfg, tokenizer)        # data.train, data.eval, data.report.summary(), ...
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from studio.config import DataConfig
from studio.errors import StudioError
from studio.paths import ASSETS

DEMO_ROWS = ASSETS / "demo" / "yoda.jsonl"
DEMO_STYLE = ASSETS / "demo" / "style_heldout.txt"
ROLES = ("system", "user", "assistant")
SHOWN_LINES = 5  # line numbers listed per reason in a report; the rest are counted

Row = dict[str, Any]


class DataError(StudioError):
    """The data cannot be used; the message names the file and line (1-based) and what to do."""


class MissingField(DataError):
    """A row lacks a configured field or has it empty: `prepare` drops and reports the row."""

    def __init__(self, source: str, line: int, field_name: str) -> None:
        super().__init__(f"{source}:{line}: empty or missing {field_name!r}")
        self.line = line
        self.field = field_name


# -- reading rows -------------------------------------------------------------------------------------


def load_rows(cfg: DataConfig) -> list[Row]:
    """The dataset's rows as dicts, each with "_line": its line in the file (for .parquet and hub
    datasets, its row number from 1). Raises DataError when a configured column is in no row."""
    rows = _read(cfg)
    _check_columns(rows, cfg)
    return rows


def _read(cfg: DataConfig) -> list[Row]:
    if cfg.dataset == "demo":
        return read_file(DEMO_ROWS)
    path = Path(cfg.dataset).expanduser()
    if path.is_file() or path.suffix.lower() in {".jsonl", ".json", ".csv", ".parquet"}:
        return read_file(path)
    if path.is_dir():
        raise DataError(f"{path}: is a folder; name a .jsonl, .json, .csv or .parquet file in it")
    if not re.fullmatch(r"[\w.-]+(/[\w.-]+)?", cfg.dataset):
        raise DataError(f"{cfg.dataset}: no such file, and not a hub dataset id (owner/name)")
    return _read_hub(cfg.dataset, cfg.split)


def read_file(path: Path) -> list[Row]:
    suffix = path.suffix.lower()
    readers = {".jsonl": _read_jsonl, ".json": _read_json, ".csv": _read_csv}
    if suffix not in readers and suffix != ".parquet":
        raise DataError(f"{path}: unsupported file type {suffix!r}; use .jsonl, .json, .csv or .parquet")
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if suffix == ".parquet":
        return _read_parquet(path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not UTF-8 text ({exc.reason})") from None
    return readers[suffix](path, text)


def _as_row(value: Any, path: Path, line: int) -> Row:
    if not isinstance(value, dict):
        raise DataError(f"{path}:{line}: expected an object of columns, got a JSON {type(value).__name__}")
    return {**value, "_line": line}


def _read_jsonl(path: Path, text: str) -> list[Row]:
    rows = []
    # split("\n"), not splitlines(): JSON strings may hold U+2028 and other characters splitlines breaks on.
    for line, content in enumerate(text.split("\n"), start=1):
        if not content.strip():
            continue
        try:
            value = json.loads(content)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{line}: not valid JSON: {exc.msg} (column {exc.colno})") from None
        rows.append(_as_row(value, path, line))
    return rows


def _read_json(path: Path, text: str) -> list[Row]:
    """A list of objects, or {"data": [objects]}; each row gets the line where its object starts."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg} (column {exc.colno})") from None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        items, start = data["data"], _value_offset(text, _skip_space(text, 0), "data")
    elif isinstance(data, list):
        items, start = data, _skip_space(text, 0)
    else:
        raise DataError(f"{path}:1: expected a list of objects, or an object with a \"data\" list")
    return [_as_row(item, path, line) for item, line in zip(items, _lines(text, _array_offsets(text, start)))]


# json.loads gives no positions; these walk the (already validated) text to find where each row starts.
_decoder = json.JSONDecoder()


def _skip_space(text: str, pos: int) -> int:
    while text[pos] in " \t\r\n":
        pos += 1
    return pos


def _array_offsets(text: str, pos: int) -> list[int]:
    """Offsets of the elements of the valid JSON array that starts at text[pos]."""
    offsets = []
    pos = _skip_space(text, pos + 1)
    while text[pos] != "]":
        offsets.append(pos)
        _, end = _decoder.raw_decode(text, pos)
        pos = _skip_space(text, end)
        if text[pos] == ",":
            pos = _skip_space(text, pos + 1)
    return offsets


def _value_offset(text: str, pos: int, key: str) -> int:
    """Offset of `key`'s value in the valid JSON object that starts at text[pos] and holds `key`."""
    pos = _skip_space(text, pos + 1)
    while True:
        name, end = _decoder.raw_decode(text, pos)
        pos = _skip_space(text, _skip_space(text, end) + 1)  # past the colon
        if name == key:
            return pos
        _, end = _decoder.raw_decode(text, pos)
        pos = _skip_space(text, _skip_space(text, end) + 1)  # past the comma


def _lines(text: str, offsets: list[int]) -> list[int]:
    lines, line, last = [], 1, 0
    for offset in offsets:
        line += text.count("\n", last, offset)
        last = offset
        lines.append(line)
    return lines


def _read_csv(path: Path, text: str) -> list[Row]:
    """Rows under the header line; "_line" is the file line where a row starts (quoted values may span lines)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[Row] = []
    try:
        header = next(reader, None)
        if header is None:
            return rows
        start = reader.line_num + 1
        for values in reader:
            if len(values) > len(header):
                raise DataError(f"{path}:{start}: {len(values)} values but the header names {len(header)} "
                                f"columns; quote values that hold commas")
            if any(value.strip() for value in values):  # skip blank lines
                rows.append({**dict(zip(header, values)), "_line": start})
            start = reader.line_num + 1
    except csv.Error as exc:
        raise DataError(f"{path}:{reader.line_num}: not valid CSV: {exc}") from None
    return rows


def _read_parquet(path: Path) -> list[Row]:
    import pyarrow
    import pyarrow.parquet

    try:
        table = pyarrow.parquet.read_table(path)
    except pyarrow.ArrowException as exc:
        raise DataError(f"{path}: not a readable parquet file: {exc}") from None
    return [{**row, "_line": number} for number, row in enumerate(table.to_pylist(), start=1)]


def _read_hub(name: str, split: str) -> list[Row]:
    import datasets
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    if not datasets.config.HF_HUB_OFFLINE:
        # One quick request first: with the hub unreachable, load_dataset retries for ~25 s before failing.
        try:
            HfApi().dataset_info(name, timeout=10)
        except RepositoryNotFoundError:
            raise DataError(f"{name}: no such file, and no such dataset on the hub (or it is private: "
                            f"log in with `hf auth login`)") from None
        except Exception as exc:  # DNS, proxy, timeout, server errors: all mean "cannot reach it now"
            raise DataError(f"{name}: no network or not cached: the hub cannot be reached ({exc}); use a local "
                            f"file, or set HF_HUB_OFFLINE=1 to load a cached copy") from None
    try:
        dataset = datasets.load_dataset(name, split=split)
    except ConnectionError as exc:
        raise DataError(f"{name}: no network or not cached: {exc}") from None
    except Exception as exc:  # unknown split, unreadable files...: datasets' own message says which
        raise DataError(f"{name} (split {split!r}): {exc}") from None
    return [{**row, "_line": number} for number, row in enumerate(dataset.to_list(), start=1)]


# Column names that usually hold the question and the answer, for the fix a missing column suggests.
_USUAL_COLUMNS = {"prompt_column": ("prompt", "instruction", "question", "input", "query"),
                  "response_column": ("response", "output", "answer", "completion", "chosen")}


def _check_columns(rows: list[Row], cfg: DataConfig) -> None:
    """A configured column that no row has is a config mistake, not a few bad rows: say what exists."""
    if not rows or any(cfg.messages_column in row for row in rows):
        return
    present = list(dict.fromkeys(key for row in rows for key in row if key != "_line"))
    wanted = {"prompt_column": cfg.prompt_column, "response_column": cfg.response_column,
              "system_column": cfg.system_column, "context_column": cfg.context_column}
    missing = {key: column for key, column in wanted.items() if column and column not in present}
    if missing:
        names = " or ".join(f"{column!r} (data.{key})" for key, column in missing.items())
        fixes = " ".join(f"--set data.{key}={_guess(key, present)}" for key in missing)
        raise DataError(f"{cfg.dataset}: no row has {names}; its columns are: {', '.join(present)}. "
                        f"Name yours, e.g. {fixes} (or --set data.messages_column=NAME for a column of chat lists)")


def _guess(key: str, present: list[str]) -> str:
    return next((c for c in _USUAL_COLUMNS.get(key, ()) if c in present), present[0] if present else "NAME")


# -- rows to chats ------------------------------------------------------------------------------------


def to_messages(row: Row, cfg: DataConfig) -> list[dict]:
    """The row as a chat that ends with the answer to learn. A row with cfg.messages_column is taken as
    its own chat; otherwise it is a prompt/response pair (plus optional system and context columns).
    cfg.system_prompt adds a system turn where the row has none. Content is stripped of outer whitespace,
    so stray newlines are not learned. Raises MissingField for an empty field, DataError for a bad chat."""
    messages = _chat(row, cfg) if cfg.messages_column in row else _pair(row, cfg)
    if cfg.system_prompt.strip() and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": cfg.system_prompt.strip()})
    return messages


def _text(row: Row, column: str, cfg: DataConfig, required: bool = True) -> str:
    value = row.get(column)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if value is not None and not isinstance(value, str):
        raise DataError(f"{cfg.dataset}:{row.get('_line')}: {column!r} holds a {type(value).__name__}, expected text")
    text = (value or "").strip()
    if required and not text:
        raise MissingField(cfg.dataset, row.get("_line"), column)
    return text


def _pair(row: Row, cfg: DataConfig) -> list[dict]:
    prompt = _text(row, cfg.prompt_column, cfg)
    answer = _text(row, cfg.response_column, cfg)
    context = _text(row, cfg.context_column, cfg, required=False) if cfg.context_column else ""
    system = _text(row, cfg.system_column, cfg, required=False) if cfg.system_column else ""
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": f"{prompt}\n\n{context}" if context else prompt})
    messages.append({"role": "assistant", "content": answer})
    return messages


def _chat(row: Row, cfg: DataConfig) -> list[dict]:
    where, line, column = cfg.dataset, row.get("_line"), cfg.messages_column
    turns = row[column]
    if not turns:
        raise MissingField(where, line, column)
    if not isinstance(turns, list):
        raise DataError(f"{where}:{line}: {column!r} holds a {type(turns).__name__}, expected a list of "
                        f"{{\"role\", \"content\"}} objects")
    messages = []
    for index, turn in enumerate(turns):
        name = f"{column}[{index}]"
        if not isinstance(turn, dict) or "role" not in turn:
            raise DataError(f"{where}:{line}: {name} must be an object with \"role\" and \"content\"")
        if turn["role"] not in ROLES:
            raise DataError(f"{where}:{line}: {name} has the role {turn['role']!r}; roles must be "
                            f"system, user or assistant")
        content = turn.get("content")
        if content is not None and not isinstance(content, str):
            raise DataError(f"{where}:{line}: {name}.content holds a {type(content).__name__}, expected text")
        if not (content or "").strip():
            raise MissingField(where, line, f"{name}.content")
        messages.append({"role": turn["role"], "content": content.strip()})
    if messages[-1]["role"] != "assistant":
        raise DataError(f"{where}:{line}: the chat ends with a {messages[-1]['role']} turn; it must end with "
                        f"the assistant's answer (the text the model learns)")
    return messages


# -- preparing train and eval sets --------------------------------------------------------------------


@dataclass
class DataReport:
    """What happened to every row; lines are the rows' "_line" numbers."""

    source: str
    rows: int  # rows read
    max_length: int
    overlong: str
    used: int = 0
    train: int = 0
    eval: int = 0
    empty_fields: list[tuple[int, str]] = field(default_factory=list)  # (line, field)
    duplicates: list[tuple[int, int]] = field(default_factory=list)  # (line kept, line dropped)
    dropped_overlong: list[int] = field(default_factory=list)
    truncated: list[int] = field(default_factory=list)  # prompt cut to fit (overlong = "truncate_prompt")
    no_labels: list[int] = field(default_factory=list)  # no answer token left to learn from
    lengths: dict[str, int] = field(default_factory=dict)  # p50, p90, p99, max tokens of the used rows

    def summary(self) -> str:
        lines = [f"{self.source}: {self.rows} rows read, {self.used} used ({self.train} train, {self.eval} eval)"]
        reasons = [
            ("dropped {} with an empty or missing field", [f"{line} ({name})" for line, name in self.empty_fields]),
            ("dropped {} exact duplicates", [f"{dup} (= line {kept})" for kept, dup in self.duplicates]),
            (f"dropped {{}} longer than max_length={self.max_length}", self.dropped_overlong),
            (f"cut the prompt of {{}} to fit max_length={self.max_length}", self.truncated),
            ("dropped {} with no answer token left", self.no_labels),
        ]
        lines += [f"  {text.format(len(items))}: line{'s' if len(items) > 1 else ''} {_listed(items)}"
                  for text, items in reasons if items]
        if self.lengths:
            lines.append("  tokens per row: " + ", ".join(f"{k} {v}" for k, v in self.lengths.items()))
        return "\n".join(lines)

    def why_all_dropped(self) -> str:
        if not self.rows:
            return f"{self.source}: no rows"
        reasons, fixes = [], []
        if self.empty_fields:
            line, name = self.empty_fields[0]
            reasons.append(f"{len(self.empty_fields)} with an empty or missing field (line {line}: {name!r})")
            fixes.append("check the data.*_column settings")
        if self.duplicates:
            reasons.append(f"{len(self.duplicates)} duplicates")
        if self.dropped_overlong:
            reasons.append(f"{len(self.dropped_overlong)} longer than max_length={self.max_length}")
            fixes.append("raise data.max_length" if self.overlong != "drop" else
                         "raise data.max_length or set data.overlong=\"truncate_prompt\"")
        if self.no_labels:
            reasons.append(f"{len(self.no_labels)} with no answer token left")
        return f"all {self.rows} rows were dropped: {', '.join(reasons)}" + "".join(f"; {fix}" for fix in fixes)


def _listed(items: list) -> str:
    shown = ", ".join(str(item) for item in items[:SHOWN_LINES])
    return shown + (f" and {len(items) - SHOWN_LINES} more" if len(items) > SHOWN_LINES else "")


@dataclass
class Prepared:
    train: Any  # datasets.Dataset: input_ids, labels, length
    eval: Any  # datasets.Dataset, same columns; may be empty for a one-row dataset
    report: DataReport
    eval_questions: list[list[dict]]  # the held-out chats without their last (assistant) turn, in file order
    style_text: str | None  # the demo's held-out style paragraph; None for other datasets
    fingerprint: str  # sha256 of the usable chats and the settings that shape the sets


class _Example(NamedTuple):
    line: int
    messages: list[dict]
    key: str  # canonical JSON of the chat: the identity used for duplicates, the split and the fingerprint


class _Encoded(NamedTuple):
    example: _Example
    input_ids: list[int]
    labels: list[int]


def prepare(cfg: DataConfig, tokenizer) -> Prepared:
    """Load, check, encode and split the dataset with the tokenizer's chat template (apply the studio's
    template to the tokenizer first). Raises DataError when no row is left to train on."""
    from studio import templates

    rows = load_rows(cfg)
    report = DataReport(cfg.dataset, len(rows), cfg.max_length, cfg.overlong)
    examples = _usable(rows, cfg, report)
    encoded = []
    for example in examples:
        result = templates.encode(tokenizer, example.messages, cfg.max_length, cfg.overlong)
        if result is None:
            report.dropped_overlong.append(example.line)
        elif all(label == -100 for label in result.labels):  # nothing to learn: a zero-loss row
            report.no_labels.append(example.line)
        else:
            if result.prompt_truncated:
                report.truncated.append(example.line)
            encoded.append(_Encoded(example, result.input_ids, result.labels))
    if not encoded:
        raise DataError(report.why_all_dropped())

    train, held_out = _split(encoded, cfg)
    report.used, report.train, report.eval = len(encoded), len(train), len(held_out)
    report.lengths = _percentiles([len(e.input_ids) for e in encoded])
    return Prepared(
        train=_dataset(train), eval=_dataset(held_out), report=report,
        eval_questions=[e.example.messages[:-1] for e in held_out],
        style_text=DEMO_STYLE.read_text(encoding="utf-8").strip() if cfg.dataset == "demo" else None,
        fingerprint=_fingerprint(examples, cfg),
    )


def _usable(rows: list[Row], cfg: DataConfig, report: DataReport) -> list[_Example]:
    """Every row as a chat, less the rows with empty fields and repeats of an earlier chat."""
    examples, first_line = [], {}
    for row in rows:
        try:
            messages = to_messages(row, cfg)
        except MissingField as missing:
            report.empty_fields.append((missing.line, missing.field))
            continue
        key = json.dumps(messages, ensure_ascii=False, sort_keys=True)
        if key in first_line:
            report.duplicates.append((first_line[key], row["_line"]))
            continue
        first_line[key] = row["_line"]
        examples.append(_Example(row["_line"], messages, key))
    return examples


def _split(encoded: list[_Encoded], cfg: DataConfig) -> tuple[list[_Encoded], list[_Encoded]]:
    """Hold out the rows that rank first by a seeded hash of their content. The same seed holds out the
    same rows whatever the file order, and editing a few rows barely moves the rest between the sets."""
    count = len(encoded)
    n_eval = min(cfg.eval_max_rows, max(1, round(count * cfg.eval_fraction))) if count > 1 else 0
    ranked = sorted(encoded, key=lambda e: hashlib.sha256(f"{cfg.seed}\n{e.example.key}".encode()).digest())
    held = {e.example.line for e in ranked[:n_eval]}
    return ([e for e in encoded if e.example.line not in held],
            [e for e in encoded if e.example.line in held])


def _dataset(encoded: list[_Encoded]):
    import datasets

    ids = datasets.List(datasets.Value("int32"))
    features = datasets.Features({"input_ids": ids, "labels": ids, "length": datasets.Value("int32")})
    return datasets.Dataset.from_dict({"input_ids": [e.input_ids for e in encoded],
                                       "labels": [e.labels for e in encoded],
                                       "length": [len(e.input_ids) for e in encoded]}, features=features)


def _percentiles(lengths: list[int]) -> dict[str, int]:
    """Nearest-rank percentiles: each is a length some row really has."""
    ordered = sorted(lengths)
    ranks = {"p50": 0.5, "p90": 0.9, "p99": 0.99}
    return {**{name: ordered[max(0, math.ceil(q * len(ordered)) - 1)] for name, q in ranks.items()}, "max": ordered[-1]}


def _fingerprint(examples: list[_Example], cfg: DataConfig) -> str:
    """Changes when the chats or the settings that decide the train set change (checkpoints refuse to
    resume on other data); the same data gives the same fingerprint in every run."""
    names = ("max_length", "overlong", "eval_fraction", "eval_max_rows", "seed")
    settings = {name: getattr(cfg, name) for name in names}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for example in examples:
        digest.update(example.key.encode())
        digest.update(b"\n")
    return digest.hexdigest()


# -- control groups for the judge ---------------------------------------------------------------------


def control_texts(cfg: DataConfig, base_column: str) -> list[dict]:
    """Answers of known style for calibrating a judge: each row's `base_column` answer (group "base")
    and its cfg.response_column answer (group "target"), with the question both answer."""
    controls = []
    for row in load_rows(cfg):
        question, base, target = (row.get(c) for c in (cfg.prompt_column, base_column, cfg.response_column))
        if question and base and target:
            controls += [{"question": question, "text": base, "group": "base"},
                         {"question": question, "text": target, "group": "target"}]
    if not controls:
        raise DataError(f"{cfg.dataset}: no row has {cfg.prompt_column!r}, {base_column!r} and {cfg.response_column!r}")
    return controls


def demo_controls() -> list[dict]:
    """The demo's plain answers ("base") and Yoda answers ("target") to the same questions."""
    return control_texts(DataConfig(dataset="demo", prompt_column="question", response_column="yoda"), "plain")
