"""Datasets: reading files, rows to chats, what gets dropped and reported, the seeded split, the demo."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from studio.config import DataConfig
from studio.data import DataError, demo_controls, load_rows, prepare, to_messages

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
