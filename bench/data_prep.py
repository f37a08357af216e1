"""Data preparation speed: rows/s for single-turn rows and ten-turn chats, cold and cached, against the
encode path the studio had before issue 9 (copied below as the baseline, measured in the same run); and a
generated 100k-row dataset of varied lengths, from prepare() start to done, cold and cached, then
`studio train` on it from launch to its first step, cold and from the cache.

    python bench/data_prep.py [--model NAME] [--rows 20000] [--chats 3000] [--big 100000] [--no-train]

Targets on 2 cores: >= 5,000 single-turn rows/s and >= 1,000 ten-turn chats/s cold, with the masks of the
exact path; the 100k-row dataset cold in under a minute including reading it, cached in seconds (under a
second per 100k rows). The tokenizer batches on several cores unless TOKENIZERS_PARALLELISM=false.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

os.environ.setdefault("HF_HUB_OFFLINE", "1")


# ==== BASELINE ONLY: the encode path before issue 9, copied to measure against. Not used by the studio. ====
# It renders a chat once per assistant answer and twice more, and tokenizes it chunk by chunk.

def baseline_encode(tokenizer, messages, max_length):
    from studio.templates import Encoded

    ids, answers = _baseline_tokenize_chat(tokenizer, messages)
    labels = [-100] * len(ids)
    for start, end in answers:
        labels[start:end] = ids[start:end]
    last_end = answers[-1][1] if answers else 0
    if last_end <= max_length:
        return Encoded(ids[:max_length], labels[:max_length], prompt_truncated=False)
    return None  # overlong="drop"; the bench rows all fit


def _baseline_tokenize_chat(tokenizer, messages):
    from studio.templates import _render

    text = _render(tokenizer, messages, False)
    spans = _baseline_answer_spans(tokenizer, messages, text)
    plain = _baseline_content_specials(tokenizer, messages, text)
    cuts = sorted({0, len(text), *(c for span in spans + plain for c in span)})
    prepends = _baseline_prepends_space(tokenizer)
    ids, token_at = [], {}
    for start, end in zip(cuts, cuts[1:]):
        token_at[start] = len(ids)
        as_text = any(a <= start and end <= b for a, b in plain)
        ids += _baseline_encode_piece(tokenizer, text[start:end], as_text, mid_text=start > 0 and prepends)
    token_at[len(text)] = len(ids)
    return ids, [(token_at[a], token_at[b]) for a, b in spans]


def _baseline_answer_spans(tokenizer, messages, text):
    from studio.templates import _render

    spans = []
    for i, message in enumerate(messages):
        if message.get("role") != "assistant" or i == 0:
            continue
        prompt = _render(tokenizer, messages[:i], add_generation_prompt=True)
        turn = _render(tokenizer, messages[:i + 1], add_generation_prompt=False)
        start = len(os.path.commonprefix([prompt, turn, text]))
        end = len(os.path.commonprefix([turn, text]))
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            spans.append((start, end))
    return spans


def _baseline_content_specials(tokenizer, messages, text):
    from studio.templates import _MARK_END, _MARK_START, _MARKED, _render, _specials_pattern

    pattern = _specials_pattern(tuple(t.content for t in tokenizer.added_tokens_decoder.values() if t.special))
    if not any(isinstance(m.get("content"), str) and pattern.search(m["content"]) for m in messages):
        return []
    marked = _render(tokenizer, [{**m, "content": pattern.sub(lambda s: f"{_MARK_START}{s.group(0)}{_MARK_END}",
                                                              m["content"])} for m in messages], False)
    if marked.replace(_MARK_START, "").replace(_MARK_END, "") != text:
        return []
    spans, markers_before = [], 0
    for match in _MARKED.finditer(marked):
        start = match.start() - markers_before
        spans.append((start, start + len(match.group(1))))
        markers_before += 2
    return spans


def _baseline_prepends_space(tokenizer):
    newline = tokenizer.encode("\n", add_special_tokens=False)
    after_newline = tokenizer.encode("\na", add_special_tokens=False)[len(newline):]
    return tokenizer.encode("a", add_special_tokens=False) != after_newline


def _baseline_encode_piece(tokenizer, piece, as_text, mid_text):
    def encode(text):
        return tokenizer.encode(text, add_special_tokens=False, split_special_tokens=as_text)

    if mid_text:
        newline = encode("\n")
        ids = encode("\n" + piece)
        if ids[:len(newline)] == newline:
            return ids[len(newline):]
    return encode(piece)


def baseline_prepare(cfg, tokenizer):
    """The old prepare()'s work: read, rows to chats, encode each chat, build the dataset from lists."""
    import datasets

    from studio.data import load_rows, to_messages

    encoded = [baseline_encode(tokenizer, to_messages(row, cfg), cfg.max_length) for row in load_rows(cfg)]
    ids = datasets.List(datasets.Value("int32"))
    features = datasets.Features({"input_ids": ids, "labels": ids, "length": datasets.Value("int32")})
    return datasets.Dataset.from_dict({"input_ids": [e.input_ids for e in encoded],
                                       "labels": [e.labels for e in encoded],
                                       "length": [len(e.input_ids) for e in encoded]}, features=features)

# ==== end of the baseline ====


def demo_rows():
    from studio.data import DEMO_ROWS

    return [json.loads(line) for line in DEMO_ROWS.read_text(encoding="utf-8").splitlines() if line.strip()]


def single_turn_rows(count: int) -> list[dict]:
    """Demo question/Yoda pairs, each question and answer made distinct by a number (as real rows are)."""
    demo = demo_rows()
    return [{"question": f"{demo[n % len(demo)]['question']} ({n})", "yoda": f"{demo[n % len(demo)]['yoda']} ({n})"}
            for n in range(count)]


def ten_turn_chats(count: int) -> list[dict]:
    """Chats of ten demo questions, each followed by its Yoda answer, every turn made distinct by a number."""
    demo, rng = demo_rows(), random.Random(0)
    return [{"messages": [m for t, row in enumerate(rng.sample(demo, 10)) for m in (
        {"role": "user", "content": f"{row['question']} ({n}.{t})"},
        {"role": "assistant", "content": f"{row['yoda']} ({n}.{t})"})]} for n in range(count)]


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return str(path)


def encoded_rows(*sets) -> list[tuple]:
    """Every row's (ids, labels), sorted: the same whatever the split."""
    return sorted((tuple(ids), tuple(labels)) for s in sets for ids, labels in zip(s["input_ids"], s["labels"]))


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def compare(name: str, rows: list[dict], baseline_rows: int, tokenizer, folder: Path, max_length: int) -> dict:
    """rows/s of the baseline (on the first `baseline_rows`), and of prepare() cold and cached."""
    from studio.config import DataConfig
    from studio.data import prepare

    whole = DataConfig(dataset=write_jsonl(folder / f"{name}.jsonl", rows), max_length=max_length)
    part = DataConfig(dataset=write_jsonl(folder / f"{name}-part.jsonl", rows[:baseline_rows]), max_length=max_length)
    old, old_s = timed(baseline_prepare, part, tokenizer)
    cpu = time.process_time()
    _, cold_s = timed(prepare, whole, tokenizer, cache=False)
    cpu = time.process_time() - cpu  # all threads: the work, whatever else runs on the machine
    same = prepare(part, tokenizer, cache=False)
    exact = encoded_rows(old) == encoded_rows(same.train, same.eval)
    _, first_s = timed(prepare, whole, tokenizer)  # cold, and writes the cache
    cached, cached_s = timed(prepare, whole, tokenizer)
    assert cached.report.from_cache
    result = {"baseline": baseline_rows / old_s, "cold": len(rows) / cold_s, "cold+write": len(rows) / first_s,
              "cached": len(rows) / cached_s, "cpu_us": cpu / len(rows) * 1e6}
    print(f"{name:12s} baseline {result['baseline']:8.0f} rows/s   cold {result['cold']:8.0f} rows/s "
          f"(x{result['cold'] / result['baseline']:.1f}, {result['cpu_us']:.0f} CPU-us/row)   cold + cache write {result['cold+write']:8.0f} rows/s   "
          f"cached {result['cached']:9.0f} rows/s (x{result['cached'] / result['baseline']:.0f})   "
          f"same ids and labels as the baseline: {exact}", flush=True)
    return result


def big(count: int, tokenizer, folder: Path, max_length: int, model: str, train: bool) -> None:
    """A generated dataset of varied lengths: prepare() from start to done, cold then cached."""
    from bench.varied_data import varied_rows
    from studio import prepared_cache
    from studio.config import DataConfig
    from studio.data import _open, prepare

    cfg = DataConfig(dataset=write_jsonl(folder / "big.jsonl", varied_rows(count, tokenizer)), max_length=max_length)
    size = Path(cfg.dataset).stat().st_size / 2**20
    digest, digest_s = timed(_open(cfg).digest)
    _, key_s = timed(prepared_cache.key, digest, {}, tokenizer)
    calls = []
    cold, cold_s = timed(prepare, cfg, tokenizer, progress=lambda done, total: calls.append(time.perf_counter()))
    cached, cached_s = timed(prepare, cfg, tokenizer)
    assert cached.report.from_cache and cached.fingerprint == cold.fingerprint
    gaps = [b - a for a, b in pairwise(calls)]
    print(f"{count} varied rows ({size:.0f} MB, lengths {cold.report.lengths}): cold {cold_s:.1f} s "
          f"({count / cold_s:.0f} rows/s, {len(calls)} progress calls, longest gap {max(gaps, default=0):.2f} s), "
          f"cached {cached_s:.2f} s; of which hashing the file {digest_s:.2f} s, the cache key {key_s:.2f} s", flush=True)
    if train:
        # A data split of its own: the studio's cache has no entry for it, so the first run prepares cold.
        split = [f"data.dataset={json.dumps(cfg.dataset)}", f"data.max_length={max_length}",
                 f"data.seed={random.randrange(1 << 30)}"]
        for attempt in ("cold", "from the cache"):
            seconds, report = first_step(model, split, folder / f"run {attempt}")
            print(f"`studio train` on them, {attempt}: first training step {seconds:.1f} s after launch "
                  f"(goal < 60 s); {report}", flush=True)


def first_step(model: str, settings: list[str], run_dir: Path) -> tuple[float, str]:
    """Seconds from launching `studio train` (fixed learning rate: the range test is timed elsewhere) to its
    first step event, and whether its loader report said the data came from the cache."""
    import subprocess

    from studio.events import read_events

    overrides = [f"model.name={json.dumps(model)}", "train.learning_rate=2e-4", "train.max_steps=2",
                 "train.eval_every=0", "train.sample_every=0", "train.save_every=0", *settings]
    command = [sys.executable, "-m", "studio.cli", "train", "--run-dir", str(run_dir),
               *(arg for value in overrides for arg in ("--set", value))]
    events, errors = run_dir / "events.jsonl", run_dir.with_name(run_dir.name + " stderr.txt")
    began = time.perf_counter()
    with errors.open("w") as stderr, subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr) as process:
        while process.poll() is None:
            lines = read_events(events)  # a half-written last line is skipped
            if any(e["type"] == "step" for e in lines):
                seconds = time.perf_counter() - began
                process.terminate()
                said = " / ".join(e.get("reason", "") for e in lines if e["type"] == "status")
                return seconds, "prepared data from cache" if "prepared data from cache" in said else "prepared cold"
            time.sleep(0.2)
    raise SystemExit(f"studio train ended before its first step: {errors.read_text()[-2000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="HuggingFaceTB/SmolLM2-135M-Instruct")
    parser.add_argument("--rows", type=int, default=20_000, help="single-turn rows")
    parser.add_argument("--chats", type=int, default=3_000, help="ten-turn chats")
    parser.add_argument("--big", type=int, default=100_000, help="rows of the generated varied dataset (0: skip)")
    parser.add_argument("--no-train", action="store_true", help="skip timing `studio train` on the generated dataset")
    args = parser.parse_args()

    from studio import models, prepared_cache

    tokenizer = models.load_tokenizer(args.model)
    print(f"load before: {os.getloadavg()}, TOKENIZERS_PARALLELISM={os.environ.get('TOKENIZERS_PARALLELISM', '(unset)')}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        prepared_cache.root = lambda: folder / "cache"  # the bench's own cache, empty at the start
        compare("warm-up", single_turn_rows(300), 100, tokenizer, folder, 4096)
        single = compare("single-turn", single_turn_rows(args.rows), 2000, tokenizer, folder, 4096)
        ten = compare("ten-turn", ten_turn_chats(args.chats), 300, tokenizer, folder, 4096)
        if args.big:
            big(args.big, tokenizer, folder, 1024, args.model, not args.no_train)
    print(f"load after: {os.getloadavg()}")
    print(f"targets: single-turn cold {single['cold']:.0f} >= 5000 rows/s: {single['cold'] >= 5000}; "
          f"ten-turn cold {ten['cold']:.0f} >= 1000 chats/s: {ten['cold'] >= 1000}")
    print(f"work: single-turn {single['cpu_us']:.0f}, ten-turn {ten['cpu_us']:.0f} CPU-us/row; two idle cores could "
          f"give at most {2e6 / single['cpu_us']:.0f} and {2e6 / ten['cpu_us']:.0f} rows/s")


if __name__ == "__main__":
    main()
