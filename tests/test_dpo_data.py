"""Preference pairs for DPO (studio.preferences): formats, the loader report, and errors that name file:line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio.config import DataConfig
from studio.data import DataError
from studio.preferences import load_pairs, prepare


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_the_demo_gives_yoda_over_plain_pairs(smol_tokenizer):
    rows, pairs, _ = load_pairs(DataConfig(dataset="demo"))
    assert len(pairs) == len(rows) == 256
    first = json.loads(Path("assets/demo/yoda.jsonl").read_text().splitlines()[0])
    assert pairs[0].prompt == [{"role": "user", "content": first["question"]}]
    assert pairs[0].chosen == [{"role": "assistant", "content": first["yoda"]}]
    assert pairs[0].rejected == [{"role": "assistant", "content": first["plain"]}]

    data = prepare(DataConfig(dataset="demo"), smol_tokenizer)
    assert data.report.train + data.report.eval == 256 and data.report.eval > 0
    assert set(data.train.column_names) >= {"prompt", "chosen", "rejected", "length"}
    assert data.style_text  # the demo's held-out style paragraph


def test_the_report_names_every_dropped_pair_by_line(tmp_path, smol_tokenizer):
    good = {"prompt": "Why?", "chosen": "Because, hmm.", "rejected": "Because."}
    rows = [good,                                                       # 1
            {"prompt": "Who?", "chosen": "", "rejected": "Me."},        # 2: empty chosen
            good,                                                       # 3: duplicate of 1
            {"prompt": "Same?", "chosen": "Yes.", "rejected": "Yes."},  # 4: nothing to prefer
            {"prompt": "Long?", "chosen": "word " * 200, "rejected": "No."},  # 5: longer than max_length
            {"prompt": "How?", "chosen": "Thus, hmm.", "rejected": "Thus."}]  # 6
    cfg = DataConfig(dataset=str(write_jsonl(tmp_path / "pairs.jsonl", rows)), prompt_column="prompt", max_length=64)
    data = prepare(cfg, smol_tokenizer)
    report = data.report
    assert (report.rows, report.used) == (6, 2)
    assert report.empty_fields == [(2, "chosen")]
    assert report.duplicates == [(1, 3)]
    assert report.same_answers == [4]
    assert report.dropped_overlong == [5]
    summary = report.summary()
    assert "6 rows read, 2 used" in summary
    assert "chosen and rejected answers are the same: line 4" in summary
    assert "longer than max_length=64: line 5" in summary
    assert "(= line 1)" in summary and "2 (chosen)" in summary
    assert "tokens per row" in summary


def test_chat_lists_and_renamed_columns(tmp_path, smol_tokenizer):
    rows = [{"q": [{"role": "system", "content": "Be Yoda."}, {"role": "user", "content": "Hi?"}],
             "win": [{"role": "assistant", "content": "Hello, I say."}], "lose": "Hello."},
            {"q": "Bye?", "win": "Goodbye, I say.", "lose": [{"role": "assistant", "content": "Bye."}]}]
    cfg = DataConfig(dataset=str(write_jsonl(tmp_path / "chats.jsonl", rows)), prompt_column="q",
                     chosen_column="win", rejected_column="lose")
    _, pairs, _ = load_pairs(cfg)
    assert pairs[0].prompt[0] == {"role": "system", "content": "Be Yoda."}
    assert pairs[0].rejected == [{"role": "assistant", "content": "Hello."}]
    assert pairs[1].chosen == [{"role": "assistant", "content": "Goodbye, I say."}]


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".json"])
def test_csv_parquet_and_json_files(tmp_path, suffix):
    import pandas

    rows = [{"prompt": f"Q{i}?", "chosen": f"A{i}, hmm.", "rejected": f"A{i}."} for i in range(3)]
    path = tmp_path / f"pairs{suffix}"
    frame = pandas.DataFrame(rows)
    {".csv": lambda: frame.to_csv(path, index=False), ".parquet": lambda: frame.to_parquet(path),
     ".json": lambda: path.write_text(json.dumps(rows))}[suffix]()
    _, pairs, report = load_pairs(DataConfig(dataset=str(path), prompt_column="prompt"))
    assert len(pairs) == report.rows == 3
    assert pairs[2].chosen == [{"role": "assistant", "content": "A2, hmm."}]


def test_errors_name_the_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"prompt": "A?", "chosen": "x", "rejected": "y"}) + "\n{not json\n")
    pairs_cfg = DataConfig(dataset=str(path), prompt_column="prompt")
    with pytest.raises(DataError, match=r"bad.jsonl:2"):
        load_pairs(pairs_cfg)

    write_jsonl(path, [{"prompt": "A?", "chosen": "x", "rejected": "y"},
                       {"prompt": "B?", "chosen": [{"role": "user", "content": "x"}], "rejected": "y"}])
    with pytest.raises(DataError, match=r"bad.jsonl:2: 'chosen' must be text or a list of assistant turns"):
        load_pairs(pairs_cfg)

    write_jsonl(path, [{"question": "A?", "good": "x", "bad": "y"}])
    with pytest.raises(DataError, match=r"no row has 'prompt' \(data.prompt_column\).*its columns are: question, "
                                        r"good, bad.*--set data.prompt_column=question"):
        load_pairs(pairs_cfg)


def test_no_usable_pair_says_why(tmp_path, smol_tokenizer):
    path = write_jsonl(tmp_path / "same.jsonl", [{"prompt": "A?", "chosen": "x", "rejected": "x"}] * 2)
    with pytest.raises(DataError, match="same chosen and rejected"):
        prepare(DataConfig(dataset=str(path), prompt_column="prompt"), smol_tokenizer)
