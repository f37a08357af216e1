"""Preference pairs from the judge (studio.pairs, `studio pairs`): which pairs are kept, what is counted."""

from __future__ import annotations

import json
import threading

import pytest
from helpers import tiny_config
from katan import Katan

from studio.judge import JudgeItem, JudgeResult, load_prompt
from studio.judge.runner import run_judge_sync
from studio.pairs import (
    PairsCancelled,
    PairSettings,
    choose_pairs,
    judge_items,
    make_pairs,
    sample_answers,
    training_questions,
)

QUESTIONS = [[{"role": "user", "content": f"Question {i}?"}] for i in range(5)]


def result(question: int, sample: int, text: str, score: float | None, raw: str | None = "x") -> JudgeResult:
    item = JudgeItem(text, question=f"Question {question}?", fields={"question": question, "sample": sample})
    return JudgeResult(item, "yoda", "openai", "m", score=score, reason=f"reason {text}", raw=raw)


def test_best_and_worst_make_a_pair_and_everything_else_is_counted():
    results = [result(0, 0, "good, hmm", 8), result(0, 1, "bad", 3), result(0, 2, "fair", 5),  # pair 8 vs 3
               result(1, 0, "same a", 5), result(1, 1, "same b", 5),                           # tie
               result(2, 0, "alone", 7), result(2, 1, "failed", None, raw=None),               # too few
               result(3, 0, "close a", 6), result(3, 1, "close b", 5.5),                       # below margin
               result(4, 0, "no score", None), result(4, 1, "top, yes", 9), result(4, 2, "low", 2)]
    answers = [[r.text for r in results if r.item.fields["question"] == i] for i in range(5)]
    pairs, report = choose_pairs(QUESTIONS, answers, results, min_margin=1.0)

    assert [(p["chosen"], p["rejected"], p["margin"]) for p in pairs] == [("good, hmm", "bad", 5), ("top, yes", "low", 7)]
    assert (report.kept, report.ties, report.too_few, report.below_margin) == (2, 1, 1, 1)
    assert (report.failed, report.unparsed, report.answers, report.questions) == (1, 1, 12, 5)
    first = pairs[0]
    assert first["question"] == "Question 0?"
    assert (first["chosen_score"], first["rejected_score"]) == (8, 3)
    assert (first["chosen_reason"], first["rejected_reason"]) == ("reason good, hmm", "reason bad")
    assert first["judge_prompt"] == "yoda" and len(first["prompt_hash"]) == 16
    summary = report.summary()
    assert "2 pairs kept from 5 questions (12 answers)" in summary
    assert "1 ties, 1 below the margin, 1 with fewer than two scored answers" in summary
    assert "1 failed, 1 unparsed" in summary
    bars = [line for line in summary.splitlines() if " to " in line]  # the margin histogram
    assert sum(int(line.split()[-1]) for line in bars) == 2 and bars[0].split()[0] == "5"
    assert "warning: the judge may prefer long answers" in summary  # chosen longer in both pairs

    balanced, report = choose_pairs(QUESTIONS, answers, results, min_margin=1.0, length_balance=2.7)
    assert [p["chosen"] for p in balanced] == ["top, yes"] and report.unbalanced == 1  # 9 vs 3 characters: 3x; 8 vs 3: 2.67x
    assert "only 2 pairs: DPO learns little from so few" in summary  # a weak judge or a high margin: said

    summary = choose_pairs(QUESTIONS, answers, results, min_margin=6.0)[1].summary()
    assert "1 pair kept from 5 questions" in summary and "2 below the margin" in summary
    assert "  7       " in summary and " to " not in summary  # one margin: no bins around it reaching below 0


def test_pairs_judged_by_a_flaky_server_lose_nothing(tmp_path):
    """llm-katan echoes the text, so each answer's `Score: N` is its verdict; 30% of requests fail with HTTP 500."""
    answers = [[f"A{i}{k}. Score: {score}" for k, score in enumerate(scores)]
               for i, scores in enumerate([(9, 2, 5), (4, 4, 4), (7, 6, 1), (3, 8, 8), (6, 5, 6)])]
    answers[4][1] = "no verdict here"  # unparsed
    with Katan(tmp_path, "--error-rate", "0.3") as server:
        prompt = load_prompt("yoda").with_endpoint(base_url=server.base_url, model="judge-echo")
        results = run_judge_sync(prompt, judge_items(QUESTIONS, answers), retries=8, timeout=10)
    pairs, report = choose_pairs(QUESTIONS, answers, results, min_margin=2.0)
    assert report.failed == 0  # retried until answered
    assert [(p["chosen"], p["rejected"]) for p in pairs] == [
        ("A00. Score: 9", "A01. Score: 2"), ("A20. Score: 7", "A22. Score: 1"), ("A31. Score: 8", "A30. Score: 3")]
    assert (report.ties, report.unparsed, report.too_few, report.below_margin) == (2, 1, 0, 0)


def test_studio_pairs_samples_the_run_seeded_and_reports(tiny_model_dir, tmp_path, capsys):
    from studio import runs
    from studio.cli import main
    from studio.train import TrainingRun

    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps({"question": f"What is {i} plus {i}?", "answer": f"{2 * i}, it is."}) + "\n"
                            for i in range(4)))
    cfg = tiny_config(tiny_model_dir, data, max_steps=1, eval_every=0, sample_every=0, save_every=0)
    run = TrainingRun(cfg, tmp_path / "run")
    run.start()
    assert run.join(120) and run.state == "finished", run.error

    questions = training_questions(run.paths.root, limit=3)
    assert [q[-1]["content"] for q in questions] == ["What is 0 plus 0?", "What is 1 plus 1?", "What is 2 plus 2?"]
    model, tokenizer = runs.load_adapted_model(run.paths.root)
    once = sample_answers(model, tokenizer, questions, n=2, temperature=1.0, max_new_tokens=6, seed=3, batch_size=4)
    again = sample_answers(model, tokenizer, questions, n=2, temperature=1.0, max_new_tokens=6, seed=3, batch_size=4)
    assert once == again and [len(a) for a in once] == [2, 2, 2]

    with Katan(tmp_path) as server:  # the random model's answers hold no `Score: N`: all unparsed, no pair
        out = tmp_path / "pairs.jsonl"
        code = main(["pairs", str(run.paths.root), "--n", "2", "--limit", "3", "--max-new-tokens", "6",
                     "--out", str(out), "--base-url", server.base_url, "--model", "judge-echo"])
    printed = capsys.readouterr().out
    assert code == 1 and out.read_text() == ""
    assert "0 pairs kept from 3 questions (6 answers)" in printed
    assert "0 failed, 6 unparsed" in printed

    # The local judge (here the tiny model itself, on the yes/no prompt): no endpoint, every answer scored.
    code = main(["pairs", str(run.paths.root), "--local", "--model", str(tiny_model_dir), "--n", "2", "--limit", "2",
                 "--max-new-tokens", "6", "--min-margin", "0", "--out", str(out)])
    printed = capsys.readouterr().out
    assert "from 2 questions (4 answers)" in printed and "0 failed, 0 unparsed" in printed
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert code == (0 if written else 1)
    assert all(0 <= p["rejected_score"] < p["chosen_score"] <= 1 and p["judge_prompt"] == "yoda-yesno"
               for p in written)

    stop = threading.Event()
    stop.set()  # stopped (from the app) while sampling: nothing is written
    with pytest.raises(PairsCancelled, match="no pairs written"):
        make_pairs(run.paths.root, load_prompt("yoda"), PairSettings(n=2, limit=2, max_new_tokens=4),
                   out=tmp_path / "stopped.jsonl", cancel_event=stop)
    assert not (tmp_path / "stopped.jsonl").exists()


def test_the_pairs_set_up_a_dpo_run_that_continues_the_runs_adapter(tmp_path):
    from studio.config import RunConfig
    from studio.pairs import dpo_config

    run = tmp_path / "run"
    run.mkdir()
    sft = RunConfig().with_overrides(['name="yoda-sft"', 'data.prompt_column="instruction"', 'data.response_column="out"',
                                      'data.overlong="truncate_prompt"', "train.learning_rate=0.001", "lora.r=8"])
    sft.save(run / "config.toml")
    cfg = dpo_config(run, tmp_path / "pairs.jsonl")
    assert (cfg.train.method, cfg.train.learning_rate, cfg.name) == ("dpo", "auto", "")
    assert cfg.model.adapter == str(run / "adapter") and cfg.lora.r == 8  # the adapter's own shape
    assert (cfg.data.dataset, cfg.data.prompt_column, cfg.data.overlong) == (str(tmp_path / "pairs.jsonl"), "question",
                                                                            "drop")


def test_a_pairs_file_trains_a_dpo_run_as_it_is(tmp_path, smol_tokenizer):
    from studio.config import DataConfig
    from studio.pairs import write_pairs
    from studio.preferences import prepare

    results = [result(i, k, f"answer {i}{k}" + ", hmm" * (k == 0), 9 - 5 * k) for i in range(4) for k in range(2)]
    answers = [[f"answer {i}0, hmm", f"answer {i}1"] for i in range(4)]
    pairs, _ = choose_pairs(QUESTIONS[:4], answers, results, min_margin=1.0)
    path = write_pairs(pairs, tmp_path / "pairs.jsonl")
    data = prepare(DataConfig(dataset=str(path)), smol_tokenizer)
    assert data.report.used == 4
    assert data.train[0]["chosen"][0]["content"].endswith(", hmm")


@pytest.mark.parametrize("n", ["1"])
def test_one_answer_per_question_is_refused(tmp_path, n, capsys):
    from studio.cli import main

    assert main(["pairs", str(tmp_path), "--n", n]) == 1
    assert "--n must be at least 2" in capsys.readouterr().err
