"""Reference metrics checked on hand-computed pairs, and the few-shot baseline's prompts."""

from __future__ import annotations

import pytest

from studio.judge import JudgeItem, JudgeResult, load_prompt
from studio.judge.groups import few_shot_chat, few_shot_examples
from studio.judge.reference import reference_scores, text_scores
from studio.judge.report import fine_tune_lines


def test_rouge_l_and_bleu_match_hand_computed_figures():
    # ROUGE-L: the longest common subsequence is 5 words; precision 5/5, recall 5/6, F1 = 10/11.
    assert text_scores("the cat on the mat", "the cat sat on the mat")["rouge_l"] == pytest.approx(10 / 11)
    # BLEU: n-gram precisions 6/6, 4/5, 3/4, 2/3; brevity penalty exp(1 - 7/6).
    hand = 100 * 2.718281828 ** (1 - 7 / 6) * (1 * 0.8 * 0.75 * (2 / 3)) ** 0.25
    assert text_scores("the cat sat on the mat", "the cat sat on the red mat")["bleu"] == pytest.approx(hand, abs=1e-3)


def test_reference_scores_per_group_leave_the_target_out():
    items = [JudgeItem("the cat sat on the mat", "generated", reference="the cat sat on the mat"),
             JudgeItem("a dog", "base", reference="the cat sat on the mat"),
             JudgeItem("the cat sat on the mat", "target"),
             JudgeItem("no reference here", "generated")]
    found = {s.group: s for s in reference_scores(items)}
    assert set(found) == {"generated", "base"}
    assert found["generated"].n == 1 and found["generated"].rouge_l == pytest.approx(1.0)
    assert found["generated"].bleu == pytest.approx(100.0)
    assert found["base"].rouge_l == 0.0 and found["base"].bleu == pytest.approx(0.0, abs=1e-6)


def chat(i: int, answer: str = "") -> list[dict]:
    return [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": answer or f"answer {i}"}]


def test_few_shot_examples_never_come_from_the_held_out_questions():
    chats = [chat(i) for i in range(20)] + [chat(3, "another answer to a held-out question")]
    held_out = [chat(i)[:-1] for i in (1, 3, 5, 7)]
    for seed in range(20):
        examples = few_shot_examples(chats, held_out, 3, seed)
        assert len(examples) == 3
        assert not {e[0]["content"] for e in examples} & {"question 1", "question 3", "question 5", "question 7"}
    assert few_shot_examples(chats, held_out, 3, 7) == few_shot_examples(chats, held_out, 3, 7)  # seeded


def test_a_few_shot_prompt_holds_k_examples_before_the_question_with_the_system_prompt_first():
    question = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "question 9"}]
    prompt = few_shot_chat([chat(1), chat(2), chat(4)], question)
    assert prompt[0] == {"role": "system", "content": "Be brief."}
    assert [m["role"] for m in prompt[1:]] == ["user", "assistant"] * 3 + ["user"]
    assert prompt[-1]["content"] == "question 9" and prompt[2]["content"] == "answer 1"


def scored(group: str, scores: list[float]) -> list[JudgeResult]:
    return [JudgeResult(JudgeItem(f"{group} {i}", group), "yoda", "openai", "m", score=s) for i, s in enumerate(scores)]


def test_the_report_says_in_words_whether_the_fine_tune_beats_the_few_shot_baseline():
    prompt = load_prompt("yoda")
    base = scored("base", [1, 2, 1, 2, 1, 2, 1, 2])
    better = fine_tune_lines(prompt, base + scored("few-shot", [3, 4, 3, 4, 3, 4, 3, 4]) +
                             scored("generated", [8, 9, 8, 9, 8, 9, 8, 9]))
    assert better[0] == "AUC base vs generated (how far the fine-tune got): 1.000"
    assert better[1].startswith("the fine-tune beats the few-shot baseline (AUC few-shot vs generated 1.00")
    worse = fine_tune_lines(prompt, base + scored("few-shot", [8, 9] * 4) + scored("generated", [3, 4] * 4))
    assert worse[1].startswith("the few-shot baseline beats the fine-tune")
    same = fine_tune_lines(prompt, base + scored("few-shot", [3, 8] * 4) + scored("generated", [8, 3] * 4))
    assert same[1].startswith("no detectable difference")
    assert fine_tune_lines(prompt, base + scored("generated", [3])) == [
        "AUC base vs generated (how far the fine-tune got): 1.000"]  # no few-shot group: no line about it
