"""Datasets for fine-tuning: read rows (the demo, a local file, a hub dataset), turn them into chats,
check them, and encode them into train/eval sets, with a report of every row dropped and why.

    rows = load_rows(cfg)                 # dicts, each with "_line": its line in the file
    chat = to_messages(rows[0], cfg)      # [{"role": "system"?}, {"role": "user"}, {"role": "assistant"}]
    data = prepare(cfg, tokenizer)        # data.train, data.eval, data.report.summary(), ...
    data = prepare(cfg, tokenizer, progress=lambda done, total: ..., should_stop=lambda: cancelled)
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
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


class PreparationCancelled(StudioError):
    """`prepare` stopped because its `should_stop` said so."""

    def __init__(self) -> None:
        super().__init__("data preparation cancelled")


# -- reading rows -------------------------------------------------------------------------------------

_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")


def load_rows(cfg: DataConfig) -> list[Row]:
    """The dataset's rows as dicts, each with "_line": its line in the file (for .parquet and hub
    datasets, its row number from 1). Raises DataError when a configured column is in no row."""
    rows = _open(cfg).rows()
    _check_columns(rows, cfg)
    return rows


@dataclass
class _Source:
    """Where a dataset's rows come from: a file, or a hub split already loaded by `datasets`."""

    path: Path | None = None
    hub: Any = None  # datasets.Dataset

    def rows(self) -> list[Row]:
        if self.path is not None:
            return read_file(self.path)
        return [{**row, "_line": number} for number, row in enumerate(self.hub.to_list(), start=1)]

    def digest(self) -> str:
        """What the rows are made of: sha256 of the file's bytes (a second per GB), or the fingerprint
        `datasets` gives the hub split (from its files' hashes and the split)."""
        if self.path is None:
            return self.hub._fingerprint  # what datasets itself keys its caches by
        _check_file(self.path)
        with self.path.open("rb") as file:
            return hashlib.file_digest(file, "sha256").hexdigest()


def _open(cfg: DataConfig) -> _Source:
    if cfg.dataset == "demo":
        return _Source(DEMO_ROWS)
    path = Path(cfg.dataset).expanduser()
    if path.is_file() or path.suffix.lower() in _SUFFIXES:
        return _Source(path)
    if path.is_dir():
        raise DataError(f"{path}: is a folder; name a .jsonl, .json, .csv or .parquet file in it")
    if not re.fullmatch(r"[\w.-]+(/[\w.-]+)?", cfg.dataset):
        raise DataError(f"{cfg.dataset}: no such file, and not a hub dataset id (owner/name)")
    return _Source(hub=_load_hub(cfg.dataset, cfg.split))


def _check_file(path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise DataError(f"{path}: unsupported file type {suffix!r}; use .jsonl, .json, .csv or .parquet")
    if not path.is_file():
        raise DataError(f"{path}: no such file")


def read_file(path: Path) -> list[Row]:
    _check_file(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return _read_parquet(path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not UTF-8 text ({exc.reason})") from None
    readers = {".jsonl": _read_jsonl, ".json": _read_json, ".csv": _read_csv}
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


def _load_hub(name: str, split: str):
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
        return datasets.load_dataset(name, split=split)
    except ConnectionError as exc:
        raise DataError(f"{name}: no network or not cached: {exc}") from None
    except Exception as exc:  # unknown split, unreadable files...: datasets' own message says which
        raise DataError(f"{name} (split {split!r}): {exc}") from None


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
    from_cache: bool = False  # loaded from the studio's cache of prepared data, not encoded again

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
        if self.from_cache:
            lines.append("  prepared data from cache")
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


BATCH_SECONDS = 0.1  # rows are encoded in batches of about this long: progress and cancel checks between them


def prepare(cfg: DataConfig, tokenizer, progress: Callable[[int, int], None] | None = None,
            should_stop: Callable[[], bool] | None = None, cache: bool = True) -> Prepared:
    """Load, check, encode and split the dataset with the tokenizer's chat template (apply the studio's
    template to the tokenizer first). Raises DataError when no row is left to train on.

    While rows are encoded, `progress(done, total)` is called with the rows done so far, about ten times a
    second and once at the end (done == total), and `should_stop()` is asked as often: True raises
    PreparationCancelled. The result is kept in the studio's cache (studio.prepared_cache) and loaded from
    it while the data's content, the tokenizer, its template and every data setting stay the same (the
    report then says "prepared data from cache"); cache=False neither reads nor writes it.
    """
    from studio import prepared_cache

    source = _open(cfg)
    settings = {name: value for name, value in asdict(cfg).items() if name != "dataset"}
    key = prepared_cache.key(source.digest(), settings, tokenizer) if cache else None
    hit = prepared_cache.load(key) if key else None
    if hit:
        prepared = _from_cache(*hit, cfg)
        if progress is not None:
            progress(prepared.report.rows, prepared.report.rows)
        return prepared
    _stop_if_asked(should_stop)
    rows = source.rows()
    _check_columns(rows, cfg)
    prepared = _prepare_rows(rows, cfg, tokenizer, progress, should_stop)
    if key:
        meta = {"report": asdict(prepared.report), "eval_questions": prepared.eval_questions,
                "fingerprint": prepared.fingerprint}
        prepared_cache.save(key, {"train": prepared.train, "eval": prepared.eval}, meta)
    return prepared


def _stop_if_asked(should_stop: Callable[[], bool] | None) -> None:
    if should_stop is not None and should_stop():
        raise PreparationCancelled()


def _prepare_rows(rows: list[Row], cfg: DataConfig, tokenizer, progress, should_stop) -> Prepared:
    import pyarrow
    import pyarrow.compute

    from studio import templates

    tokens = pyarrow.list_(pyarrow.int32())

    report = DataReport(cfg.dataset, len(rows), cfg.max_length, cfg.overlong)
    examples: list[_Example] = []  # every usable chat, in file order
    kept: list[_Example] = []  # those encoded into a training row
    ids_chunks, labels_chunks = [], []  # their token ids and labels, one Arrow array per batch
    first_line: dict[str, int] = {}
    for start, end in _batches(len(rows), progress, should_stop):
        batch = _usable(rows[start:end], cfg, report, first_line)
        examples += batch
        batch_ids, batch_labels = [], []
        encoded = templates.encode_many(tokenizer, [e.messages for e in batch], cfg.max_length, cfg.overlong)
        for example, result in zip(batch, encoded):
            if result is None:
                report.dropped_overlong.append(example.line)
            elif result.labels.count(-100) == len(result.labels):  # nothing to learn: a zero-loss row
                report.no_labels.append(example.line)
            else:
                if result.prompt_truncated:
                    report.truncated.append(example.line)
                kept.append(example)
                batch_ids.append(result.input_ids)
                batch_labels.append(result.labels)
        # Arrow arrays, not lists of Python ints: a quarter of the memory, and no conversion at the end.
        ids_chunks.append(pyarrow.array(batch_ids, type=tokens))
        labels_chunks.append(pyarrow.array(batch_labels, type=tokens))
    if not kept:
        raise DataError(report.why_all_dropped())

    ids = pyarrow.chunked_array(ids_chunks, type=tokens)
    table = pyarrow.table({"input_ids": ids, "labels": pyarrow.chunked_array(labels_chunks, type=tokens),
                           "length": pyarrow.compute.list_value_length(ids).cast(pyarrow.int32())})
    train, held_out = _split(kept, cfg)
    report.used, report.train, report.eval = len(kept), len(train), len(held_out)
    report.lengths = _percentiles(table["length"].to_numpy())
    return Prepared(
        train=_dataset(table, train), eval=_dataset(table, held_out), report=report,
        eval_questions=[kept[i].messages[:-1] for i in held_out],
        style_text=_style_text(cfg), fingerprint=_fingerprint(examples, cfg),
    )


def _batches(total: int, progress, should_stop):
    """(start, end) ranges of rows, each about BATCH_SECONDS of work; reports progress after each and
    stops before the next when asked."""
    size, start = 32, 0
    while start < total:
        _stop_if_asked(should_stop)
        end = min(total, start + size)
        began = time.perf_counter()
        yield start, end
        took = time.perf_counter() - began
        size = max(16, min(2 * size, int(size * BATCH_SECONDS / max(took, 1e-3))))
        start = end
        if progress is not None:
            progress(start, total)


def _from_cache(sets: dict, meta: dict, cfg: DataConfig) -> Prepared:
    report = DataReport(**meta["report"])
    report.empty_fields = [tuple(item) for item in report.empty_fields]  # JSON gave lists
    report.duplicates = [tuple(item) for item in report.duplicates]
    report.source, report.from_cache = cfg.dataset, True
    return Prepared(train=sets["train"], eval=sets["eval"], report=report, eval_questions=meta["eval_questions"],
                    style_text=_style_text(cfg), fingerprint=meta["fingerprint"])


def _style_text(cfg: DataConfig) -> str | None:
    return DEMO_STYLE.read_text(encoding="utf-8").strip() if cfg.dataset == "demo" else None


def _usable(rows: list[Row], cfg: DataConfig, report: DataReport, first_line: dict[str, int]) -> list[_Example]:
    """Every row as a chat, less the rows with empty fields and repeats of an earlier chat (`first_line`
    maps the chats seen so far to their lines)."""
    examples = []
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


def _split(kept: list[_Example], cfg: DataConfig) -> tuple[list[int], list[int]]:
    """Indices (in file order) of the train and held-out rows. Hold out the rows that rank first by a seeded
    hash of their content. The same seed holds out the same rows whatever the file order, and editing a few
    rows barely moves the rest between the sets."""
    count = len(kept)
    n_eval = min(cfg.eval_max_rows, max(1, round(count * cfg.eval_fraction))) if count > 1 else 0
    ranked = sorted(range(count), key=lambda i: hashlib.sha256(f"{cfg.seed}\n{kept[i].key}".encode()).digest())
    held = set(ranked[:n_eval])
    return [i for i in range(count) if i not in held], sorted(held)


def _dataset(table, indices: list[int]):
    """The table's rows at `indices` as a datasets.Dataset (input_ids, labels, length)."""
    import datasets
    import pyarrow

    return datasets.Dataset(table.take(pyarrow.array(indices, type=pyarrow.int64())).combine_chunks())


def _percentiles(lengths) -> dict[str, int]:
    """Nearest-rank percentiles: each is a length some row really has."""
    ordered = sorted(lengths)
    ranks = {"p50": 0.5, "p90": 0.9, "p99": 0.99}
    return {**{name: int(ordered[max(0, math.ceil(q * len(ordered)) - 1)]) for name, q in ranks.items()},
            "max": int(ordered[-1])}


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
