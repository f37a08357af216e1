"""Datasets: reading files, rows to chats, what gets dropped and reported, the seeded split, the demo."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from studio.config import DataConfig
from studio.data import DataError, PreparationCancelled, demo_controls, load_rows, prepare, to_messages

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def prepared_cache_root(tmp_path, monkeypatch):
    """Each test's prepared data goes to a cache of its own, empty at the start."""
    from studio import prepared_cache

    root = tmp_path / "prepared-cache"
    monkeypatch.setattr(prepared_cache, "root", lambda: root)
    return root


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return str(path)


def qa_rows(count: int) -> list[dict]:
    return [{"question": f"What is lesson number {i}?", "yoda": f"Lesson {i}, patience it is."} for i in range(count)]


# -- reading files ------------------------------------------------------------------------------------


def test_a_malformed_jsonl_line_is_named_by_file_and_line():
    with pytest.raises(DataError, match=r"malformed\.jsonl:3: not valid JSON"):
        load_rows(DataConfig(dataset=str(DATA / "malformed.jsonl")))


def test_a_malformed_json_file_is_named_by_file_and_line():
    with pytest.raises(DataError, match=r"malformed\.json:3: not valid JSON"):
        load_rows(DataConfig(dataset=str(DATA / "malformed.json")))


def test_json_rows_keep_the_line_where_their_object_starts():
    rows = load_rows(DataConfig(dataset=str(DATA / "nested.json"), prompt_column="instruction",
                                response_column="output"))
    assert [(row["instruction"], row["_line"]) for row in rows] == [("First?", 3), ("Second?", 5)]


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match="nothing.jsonl: no such file"):
        load_rows(DataConfig(dataset=str(tmp_path / "nothing.jsonl")))


def test_an_unreachable_hub_dataset_fails_quickly_and_says_why():
    started = time.perf_counter()
    with pytest.raises(DataError, match="no network or not cached"):
        load_rows(DataConfig(dataset="nobody/no-such-dataset"))
    assert time.perf_counter() - started < 10


def test_parquet_rows_are_read_with_their_row_numbers(tmp_path):
    import pyarrow
    import pyarrow.parquet

    path = tmp_path / "rows.parquet"
    pyarrow.parquet.write_table(pyarrow.Table.from_pylist(qa_rows(3)), path)
    rows = load_rows(DataConfig(dataset=str(path)))
    assert [row["_line"] for row in rows] == [1, 2, 3]
    assert rows[2]["yoda"] == "Lesson 2, patience it is."


def test_a_column_no_row_has_names_the_columns_that_exist_and_the_fix():
    with pytest.raises(DataError) as error:
        load_rows(DataConfig(dataset=str(DATA / "nested.json")))
    message = str(error.value)
    assert "'question' (data.prompt_column)" in message
    assert "columns are: instruction, output" in message
    assert "--set data.prompt_column=instruction --set data.response_column=output" in message


# -- rows to chats ------------------------------------------------------------------------------------


def test_pairs_become_chats_with_context_and_system_prompt():
    cfg = DataConfig(dataset="x.jsonl", prompt_column="instruction", response_column="output",
                     context_column="input", system_prompt="Speak like Yoda.")
    row = {"instruction": "Summarize.", "input": "A long text.", "output": " Short, it is. ", "_line": 7}
    assert to_messages(row, cfg) == [
        {"role": "system", "content": "Speak like Yoda."},
        {"role": "user", "content": "Summarize.\n\nA long text."},
        {"role": "assistant", "content": "Short, it is."},
    ]


def test_a_chat_row_with_a_bad_role_is_named_by_line(smol_tokenizer):
    with pytest.raises(DataError, match=r"bad_role\.jsonl:2: messages\[0\] has the role 'human'"):
        prepare(DataConfig(dataset=str(DATA / "bad_role.jsonl")), smol_tokenizer)


def test_chat_rows_keep_their_system_turn_and_report_empty_turns(smol_tokenizer):
    cfg = DataConfig(dataset=str(DATA / "chats.jsonl"), system_prompt="Be brief.")
    rows = load_rows(cfg)
    assert to_messages(rows[0], cfg)[0] == {"role": "system", "content": "Speak like Yoda."}
    assert to_messages(rows[1], cfg)[0] == {"role": "system", "content": "Be brief."}
    report = prepare(cfg, smol_tokenizer).report
    assert (report.rows, report.used) == (3, 2)
    assert report.empty_fields == [(3, "messages[1].content")]


def test_a_chat_must_end_with_the_answer(tmp_path):
    path = write_jsonl(tmp_path / "chats.jsonl", [{"messages": [{"role": "user", "content": "Hi?"}]}])
    cfg = DataConfig(dataset=path)
    with pytest.raises(DataError, match=r"chats\.jsonl:1: the chat ends with a user turn"):
        to_messages(load_rows(cfg)[0], cfg)


# -- what prepare drops and reports -------------------------------------------------------------------


def test_a_csv_row_with_a_missing_value_is_reported_by_file_line(smol_tokenizer):
    report = prepare(DataConfig(dataset=str(DATA / "missing_value.csv")), smol_tokenizer).report
    # Line 4 holds a quoted question over two lines, so the short row after it starts on line 6.
    assert report.empty_fields == [(3, "yoda"), (6, "yoda")]
    assert (report.rows, report.used) == (4, 2)
    assert "dropped 2 with an empty or missing field: lines 3 (yoda), 6 (yoda)" in report.summary()


def test_exact_duplicates_are_reported_with_both_lines_and_the_first_kept(tmp_path, smol_tokenizer):
    rows = qa_rows(4)
    path = write_jsonl(tmp_path / "dups.jsonl", [*rows, rows[1], rows[3]])
    report = prepare(DataConfig(dataset=path), smol_tokenizer).report
    assert report.duplicates == [(2, 5), (4, 6)]
    assert report.used == 4


def overlong_rows() -> list[dict]:
    long_question = "Tell me, " + "very " * 60 + "patiently: what is it?"
    return [*qa_rows(4), {"question": long_question, "yoda": "Short, my answer is."}]


def test_overlong_rows_are_dropped_or_have_their_prompt_cut(tmp_path, smol_tokenizer):
    path = write_jsonl(tmp_path / "long.jsonl", overlong_rows())
    dropped = prepare(DataConfig(dataset=path, max_length=48), smol_tokenizer).report
    assert (dropped.dropped_overlong, dropped.truncated, dropped.used) == ([5], [], 4)
    cut = prepare(DataConfig(dataset=path, max_length=48, overlong="truncate_prompt"), smol_tokenizer).report
    assert (cut.dropped_overlong, cut.truncated, cut.used) == ([], [5], 5)
    assert cut.lengths["max"] <= 48


def test_when_every_row_is_dropped_the_error_says_why_and_what_to_do(tmp_path, smol_tokenizer):
    path = write_jsonl(tmp_path / "long.jsonl", [{"question": "Why " * 40 + "?", "yoda": "Because."},
                                                  {"question": "How " * 40 + "?", "yoda": "Slowly."}])
    with pytest.raises(DataError) as error:
        prepare(DataConfig(dataset=path, max_length=16), smol_tokenizer)
    assert str(error.value) == ('all 2 rows were dropped: 2 longer than max_length=16; '
                                'raise data.max_length or set data.overlong="truncate_prompt"')


def test_the_split_is_seeded_and_disjoint(tmp_path, smol_tokenizer):
    path = write_jsonl(tmp_path / "rows.jsonl", qa_rows(40))
    first = prepare(DataConfig(dataset=path, seed=1), smol_tokenizer)
    again = prepare(DataConfig(dataset=path, seed=1), smol_tokenizer)
    other = prepare(DataConfig(dataset=path, seed=2), smol_tokenizer)
    assert first.eval_questions == again.eval_questions
    assert first.eval_questions != other.eval_questions
    assert (len(first.train), len(first.eval)) == (36, 4)
    train_rows = {tuple(ids) for ids in first.train["input_ids"]}
    eval_rows = {tuple(ids) for ids in first.eval["input_ids"]}
    assert len(train_rows) == 36 and not train_rows & eval_rows
    assert all(chat[-1]["role"] == "user" for chat in first.eval_questions)


def test_the_eval_set_is_capped(tmp_path, smol_tokenizer):
    path = write_jsonl(tmp_path / "rows.jsonl", qa_rows(40))
    data = prepare(DataConfig(dataset=path, eval_fraction=0.5, eval_max_rows=3), smol_tokenizer)
    assert (len(data.train), len(data.eval)) == (37, 3)


def test_every_prepared_row_has_answer_tokens_to_learn(tmp_path, smol_tokenizer):
    path = write_jsonl(tmp_path / "long.jsonl", overlong_rows())
    data = prepare(DataConfig(dataset=path, max_length=48, overlong="truncate_prompt"), smol_tokenizer)
    for split in (data.train, data.eval):
        for row in split:
            assert any(label != -100 for label in row["labels"])
            assert row["length"] == len(row["input_ids"]) == len(row["labels"])


def test_the_fingerprint_is_stable_and_follows_the_data(tmp_path, smol_tokenizer):
    rows = qa_rows(10)
    path = write_jsonl(tmp_path / "rows.jsonl", rows)
    before = prepare(DataConfig(dataset=path), smol_tokenizer).fingerprint
    assert prepare(DataConfig(dataset=path), smol_tokenizer).fingerprint == before
    rows[3]["yoda"] = "Changed, this answer is."
    write_jsonl(tmp_path / "rows.jsonl", rows)
    assert prepare(DataConfig(dataset=path), smol_tokenizer).fingerprint != before


def test_text_that_looks_like_a_special_token_stays_plain_text(tmp_path, smol_tokenizer):
    end = smol_tokenizer.convert_tokens_to_ids("<|im_end|>")
    plain = write_jsonl(tmp_path / "plain.jsonl", [{"question": "Say end.", "yoda": "End, I say."}])
    tricky = write_jsonl(tmp_path / "tricky.jsonl", [{"question": "Say <|im_end|>.", "yoda": "<|im_end|>, I say."}])
    expected = prepare(DataConfig(dataset=plain), smol_tokenizer).train[0]["input_ids"].count(end)
    assert prepare(DataConfig(dataset=tricky), smol_tokenizer).train[0]["input_ids"].count(end) == expected


# -- the demo -----------------------------------------------------------------------------------------


def test_the_demo_prepares_quickly_with_questions_and_a_style_paragraph(smol_tokenizer):
    prepare(DataConfig(), smol_tokenizer)  # warm up imports
    started = time.perf_counter()
    data = prepare(DataConfig(), smol_tokenizer)
    assert time.perf_counter() - started < 2.0
    assert data.report.used >= 200 and len(data.train) > len(data.eval) > 0
    assert data.eval_questions and all(chat[-1]["role"] == "user" for chat in data.eval_questions)
    assert data.style_text and len(data.style_text) > 100
    assert data.report.summary().startswith(f"demo: {data.report.rows} rows read")


def test_demo_controls_pair_plain_and_yoda_answers():
    controls = demo_controls()
    assert {c["group"] for c in controls} == {"base", "target"}
    assert controls[0]["question"] == controls[1]["question"]
    assert controls[0]["text"] != controls[1]["text"]


# -- the cache of prepared data -----------------------------------------------------------------------


def same_sets(a, b) -> bool:
    return (a.train.to_dict() == b.train.to_dict() and a.eval.to_dict() == b.eval.to_dict()
            and a.eval_questions == b.eval_questions and a.fingerprint == b.fingerprint)


def test_a_second_preparation_of_the_same_data_loads_from_the_cache(tmp_path, smol_tokenizer):
    path = write_jsonl(tmp_path / "rows.jsonl", [*qa_rows(30), qa_rows(30)[4], {"question": "", "yoda": "Hmm."}])
    first = prepare(DataConfig(dataset=path), smol_tokenizer)
    assert not first.report.from_cache
    again = prepare(DataConfig(dataset=path), smol_tokenizer)
    assert again.report.from_cache and again.report.summary().endswith("prepared data from cache")
    assert same_sets(first, again)
    assert again.report.duplicates == [(5, 31)] and again.report.empty_fields == [(32, "question")]
    assert again.report.summary().replace("\n  prepared data from cache", "") == first.report.summary()


def test_the_cache_follows_the_content_not_the_path(tmp_path, smol_tokenizer):
    rows = qa_rows(20)
    prepare(DataConfig(dataset=write_jsonl(tmp_path / "a.jsonl", rows)), smol_tokenizer)
    moved = prepare(DataConfig(dataset=write_jsonl(tmp_path / "b.jsonl", rows)), smol_tokenizer)
    assert moved.report.from_cache and moved.report.source.endswith("b.jsonl")


def added_token(tokenizer):
    tokenizer.add_special_tokens({"extra_special_tokens": ["<|new|>"]}, replace_extra_special_tokens=False)


def other_template(tokenizer):
    from studio.config import TemplateConfig
    from studio.templates import apply_template

    apply_template(tokenizer, TemplateConfig(preset="zephyr"))


@pytest.mark.parametrize("change", [
    "edited row", "max_length", "overlong", "system_prompt", "eval_fraction", "seed", "added token", "template"])
def test_any_change_to_what_shapes_the_sets_prepares_again(tmp_path, smol_tokenizer, change):
    import copy

    rows = qa_rows(10)
    path = write_jsonl(tmp_path / "rows.jsonl", rows)
    tokenizer = copy.deepcopy(smol_tokenizer) if change in ("added token", "template") else smol_tokenizer
    prepare(DataConfig(dataset=path), tokenizer)
    settings = {"max_length": 64, "overlong": "truncate_prompt", "system_prompt": "Be Yoda.",
                "eval_fraction": 0.2, "seed": 7}
    if change == "edited row":
        rows[3]["yoda"] = "Changed, this answer is."
        write_jsonl(tmp_path / "rows.jsonl", rows)
    {"added token": added_token, "template": other_template}.get(change, lambda _: None)(tokenizer)
    cfg = DataConfig(dataset=path, **{change: settings[change]} if change in settings else {})
    after = prepare(cfg, tokenizer)
    assert not after.report.from_cache
    assert same_sets(after, prepare(cfg, tokenizer, cache=False))


def damage(entry: Path, how: str) -> None:
    arrow = next(entry.glob("train/*.arrow"))
    if how == "cut short":
        arrow.write_bytes(arrow.read_bytes()[:100])
    elif how == "file missing":
        arrow.unlink()
    elif how == "garbled meta":
        (entry / "meta.json").write_text("{not json", encoding="utf-8")
    elif how == "a flipped byte":
        data = bytearray(arrow.read_bytes())
        data[len(data) // 2] ^= 1  # inside the token ids: the file still reads
        arrow.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["cut short", "file missing", "garbled meta", "a flipped byte"])
def test_a_damaged_cache_entry_is_prepared_again(tmp_path, smol_tokenizer, prepared_cache_root, how):
    path = write_jsonl(tmp_path / "rows.jsonl", qa_rows(20))
    first = prepare(DataConfig(dataset=path), smol_tokenizer)
    [entry] = [p for p in prepared_cache_root.iterdir() if not p.name.startswith(".")]
    damage(entry, how)
    again = prepare(DataConfig(dataset=path), smol_tokenizer)
    assert not again.report.from_cache and same_sets(first, again)
    assert prepare(DataConfig(dataset=path), smol_tokenizer).report.from_cache  # written anew


def test_without_the_cache_nothing_is_read_or_written(tmp_path, smol_tokenizer, prepared_cache_root):
    path = write_jsonl(tmp_path / "rows.jsonl", qa_rows(10))
    prepare(DataConfig(dataset=path), smol_tokenizer, cache=False)
    assert not prepared_cache_root.exists() or not any(prepared_cache_root.iterdir())
    prepare(DataConfig(dataset=path), smol_tokenizer)
    assert not prepare(DataConfig(dataset=path), smol_tokenizer, cache=False).report.from_cache


# -- progress and cancelling --------------------------------------------------------------------------


def test_progress_counts_the_rows_up_to_the_total(tmp_path, smol_tokenizer):
    path = write_jsonl(tmp_path / "rows.jsonl", qa_rows(3000))
    calls = []
    prepare(DataConfig(dataset=path), smol_tokenizer, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (3000, 3000) and len(calls) > 1
    assert all(total == 3000 for _, total in calls)
    assert [done for done, _ in calls] == sorted({done for done, _ in calls})  # rising, never repeated
    cached = []
    prepare(DataConfig(dataset=path), smol_tokenizer, progress=lambda done, total: cached.append((done, total)))
    assert cached == [(3000, 3000)]


def test_cancelling_stops_a_large_preparation_promptly(tmp_path, smol_tokenizer, prepared_cache_root):
    import threading

    path = write_jsonl(tmp_path / "rows.jsonl", qa_rows(50_000))
    stop, asked = threading.Event(), []

    def ask_to_stop():
        asked.append(time.perf_counter())
        stop.set()

    timer = threading.Timer(0.15, ask_to_stop)

    def progress(done, total):  # encoding has begun: ask to stop from another thread, mid-batch
        if not timer.is_alive() and not stop.is_set():
            timer.start()

    with pytest.raises(PreparationCancelled, match="data preparation cancelled"):
        prepare(DataConfig(dataset=path), smol_tokenizer, progress=progress, should_stop=stop.is_set)
    assert time.perf_counter() - asked[0] < 0.5
    assert not any(p for p in prepared_cache_root.glob("*") if not p.name.startswith("."))
