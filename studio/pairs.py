"""Preference pairs made by the judge from a run's own answers (`studio pairs RUN --prompt yoda --n 4`).

Each training question of the run is answered N times by its adapter (sampled, batched, seeded); the judge
scores every answer; the best and the worst answer of a question make a pair when their scores differ by at
least `min_margin`. A failed or unparsed score never forms a pair (it is counted); a question whose scored
answers all tie is dropped (counted). Each pair keeps both scores, the judge's reasons and the question's
hash, so it can be traced back. The pairs file trains a DPO run as it is (`--set data.dataset=pairs.jsonl`).

    pairs, report, path = make_pairs(run_dir, prompt, PairSettings(n=4, limit=50))
    config = dpo_config(run_dir, path)  # DPO on them, continuing the run's adapter

The steps one by one: training_questions, sample_answers, judge_items, run_judge_sync, choose_pairs, write_pairs.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.errors import StudioError
from studio.judge.items import JudgeItem, JudgeResult, text_hash

FEW_PAIRS = 16  # fewer pairs than a couple of DPO batches: said in the report
LENGTH_BIAS_SHARE = 0.7  # warn when the chosen answer is the longer one in more than this share of the pairs

Chat = list[dict[str, str]]


class PairsError(StudioError):
    """No pairs can be made as asked; the message says why and what to change."""


class PairsCancelled(PairsError):
    """Stopped by the user before the pairs were written; nothing was written."""


@dataclass(frozen=True)
class PairSettings:
    n: int = 4  # answers sampled per question
    limit: int | None = None  # at most this many training questions
    temperature: float = 0.8
    max_new_tokens: int = 128
    seed: int = 0
    batch_size: int = 8  # prompts generated at once
    min_margin: float | None = None  # the least score difference; None: a ninth of the judge's scale (1 on 1-10)
    length_balance: float | None = None  # keep pairs whose longer answer is at most this many times the shorter

    def margin(self, scale: tuple[float, float]) -> float:
        low, high = scale
        return (high - low) / 9 if self.min_margin is None else self.min_margin


# -- the questions and their answers ---------------------------------------------------------------


def training_questions(run_dir: Path, limit: int | None = None) -> list[Chat]:
    """The run's training questions (each chat without its answer), in file order, each once."""
    from studio import data, preferences, runs

    cfg = runs.load_config(run_dir)
    if cfg.train.method == "dpo":
        chats = [pair.prompt for pair in preferences.load_pairs(cfg.data)[1]]
    else:
        chats = []
        for row in data.load_rows(cfg.data):
            try:
                chats.append(data.to_messages(row, cfg.data)[:-1])
            except data.MissingField:
                continue  # the loader report of the run said so already
    unique = list({json.dumps(chat, sort_keys=True): chat for chat in chats}.values())
    if not unique:
        raise PairsError(f"{run_dir}: its dataset has no question to answer")
    return unique[:limit] if limit else unique


def sample_answers(model, tokenizer, questions: Sequence[Chat], n: int, temperature: float, max_new_tokens: int,
                   seed: int, batch_size: int = 8,
                   progress: Callable[[int, int], None] | None = None) -> list[list[str]]:
    """n sampled answers to each question: answers[i][k] is question i's k-th. Batches of `batch_size`
    prompts (a question's n answers together), each batch seeded from `seed` and its index, so the same
    command gives the same answers."""
    from studio import sampling

    asked = [question for question in questions for _ in range(n)]
    texts: list[str] = []
    for index, start in enumerate(range(0, len(asked), batch_size)):
        texts += sampling.generate(model, tokenizer, asked[start:start + batch_size], max_new_tokens=max_new_tokens,
                                   temperature=temperature, seed=seed + index)
        if progress is not None:
            progress(len(texts), len(asked))
    return [texts[i * n:(i + 1) * n] for i in range(len(questions))]


def judge_items(questions: Sequence[Chat], answers: Sequence[Sequence[str]]) -> list[JudgeItem]:
    """One item per answer, with the question it answers (the last user turn) and its place."""
    return [JudgeItem(text=answer, question=question[-1]["content"], fields={"question": i, "sample": k})
            for i, (question, texts) in enumerate(zip(questions, answers)) for k, answer in enumerate(texts)]


# -- choosing pairs --------------------------------------------------------------------------------


@dataclass
class PairsReport:
    """What became of every question and answer."""

    questions: int = 0
    answers: int = 0
    failed: int = 0  # answers the judge gave no score for: the request failed
    unparsed: int = 0  # ... or its reply held no score on the scale
    too_few: int = 0  # questions with fewer than two scored answers
    ties: int = 0  # questions whose best and worst scores (or texts) are the same
    below_margin: int = 0  # questions whose best beats the worst by less than min_margin
    unbalanced: int = 0  # pairs dropped by length_balance
    margins: list[float] = field(default_factory=list)  # of the pairs kept
    length_differences: list[int] = field(default_factory=list)  # characters, chosen - rejected, of the pairs kept

    @property
    def kept(self) -> int:
        return len(self.margins)

    @property
    def chosen_longer_share(self) -> float:
        return sum(d > 0 for d in self.length_differences) / self.kept if self.kept else 0.0

    def histogram(self, width: int = 30) -> list[str]:
        """The margins of the pairs kept, one line per bin (numpy's automatic bins: any score scale)."""
        import numpy

        if not self.margins:
            return []
        if min(self.margins) == max(self.margins):  # numpy would spread one value over a bin of width 1
            return [f"  {self.margins[0]:<16.3g} {'#' * width} {self.kept}"]
        counts, edges = numpy.histogram(self.margins, bins="auto")
        most = max(counts.max(), 1)
        return [f"  {lo:6.3g} to {hi:<6.3g} {'#' * round(width * c / most):<{width}} {c}"
                for lo, hi, c in zip(edges[:-1], edges[1:], counts)]

    def summary(self) -> str:
        lines = [f"{self.kept} pair{'s' * (self.kept != 1)} kept from {self.questions} questions ({self.answers} answers)",
                 f"  dropped: {self.ties} ties, {self.below_margin} below the margin, {self.too_few} with fewer "
                 f"than two scored answers" + (f", {self.unbalanced} by length balance" if self.unbalanced else ""),
                 f"  answers without a score: {self.failed} failed, {self.unparsed} unparsed"]
        if self.margins:
            lines.append("  score margin (chosen - rejected):")
            lines += self.histogram()
            mean_difference = sum(self.length_differences) / self.kept
            lines.append(f"  length, chosen - rejected: {mean_difference:+.0f} characters on average; the chosen "
                         f"answer is the longer in {self.chosen_longer_share:.0%} of pairs")
            if self.kept < FEW_PAIRS:
                lines.append(f"  only {self.kept} pair{'s' * (self.kept != 1)}: DPO learns little from so few; ask "
                             "more questions or lower the margin (a weak judge spreads its scores little)")
            if self.chosen_longer_share > LENGTH_BIAS_SHARE:
                lines.append(f"  warning: the judge may prefer long answers (chosen longer in more than "
                             f"{LENGTH_BIAS_SHARE:.0%} of pairs); DPO would learn length. Try --length-balance 1.2")
        return "\n".join(lines)


def choose_pairs(questions: Sequence[Chat], answers: Sequence[Sequence[str]], results: Sequence[JudgeResult],
                 min_margin: float, length_balance: float | None = None) -> tuple[list[dict[str, Any]], PairsReport]:
    """Best-vs-worst pairs (results in judge_items' order). `length_balance`: keep a pair only when its
    longer answer is at most this many times as long as the shorter one."""
    report = PairsReport(questions=len(questions), answers=len(results))
    report.failed = sum(r.failed for r in results)
    report.unparsed = sum(r.score is None and not r.failed for r in results)
    by_question: dict[int, list[JudgeResult]] = {}
    for result in results:
        if result.score is not None:
            by_question.setdefault(result.item.fields["question"], []).append(result)
    pairs = []
    for index, question in enumerate(questions):
        scored = by_question.get(index, [])
        if len(scored) < 2:
            report.too_few += 1
            continue
        best = max(scored, key=lambda r: r.score)  # the first of equals: the same choice every time
        worst = min(scored, key=lambda r: r.score)
        margin = best.score - worst.score
        if margin == 0 or best.text == worst.text:
            report.ties += 1
            continue
        if margin < min_margin:
            report.below_margin += 1
            continue
        shorter, longer = sorted((len(best.text), len(worst.text)))
        if length_balance is not None and longer > length_balance * max(shorter, 1):
            report.unbalanced += 1
            continue
        report.margins.append(margin)
        report.length_differences.append(len(best.text) - len(worst.text))
        single_turn = len(question) == 1 and question[0]["role"] == "user"
        pairs.append({
            # "question", "chosen", "rejected": the data section's default columns, so the file trains as it is
            "question": question[0]["content"] if single_turn else question,
            "chosen": best.text, "rejected": worst.text, "margin": margin,
            "chosen_score": best.score, "rejected_score": worst.score,
            "chosen_reason": best.reason, "rejected_reason": worst.reason,
            "judge_prompt": best.prompt_id, "judge_model": best.model,
            "prompt_hash": text_hash(json.dumps(question, sort_keys=True)),
        })
    return pairs, report


def write_pairs(pairs: list[dict[str, Any]], out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.write_text("".join(json.dumps(pair, ensure_ascii=False) + "\n" for pair in pairs), encoding="utf-8")
    partial.replace(out)  # a crash never leaves half a file under the name a DPO run reads
    return out


# -- the whole loop --------------------------------------------------------------------------------


def make_pairs(run_dir: Path, prompt, settings: PairSettings, *, out: Path | None = None,
               confirm: Callable[[list[JudgeItem]], None] | None = None,
               on_sampled: Callable[[int, int], None] | None = None, cancel_event: threading.Event | None = None,
               **judge_kwargs) -> tuple[list[dict[str, Any]], PairsReport, Path]:
    """Sample the run's answers to its training questions, judge them with `prompt` (run_judge's keyword
    arguments pass through: judge, api_key, on_progress, ...), keep best-vs-worst pairs and write them to
    `out` (default RUN/pairs.jsonl). `confirm(items)` may raise to stop before anything is sent; a set
    `cancel_event` stops sampling or judging with PairsCancelled, and nothing is written."""
    from studio import runs
    from studio.judge.runner import run_judge_sync

    if settings.n < 2:
        raise PairsError("--n must be at least 2: a pair needs two answers to one question")
    if prompt.parse == "pairwise":
        raise PairsError("give one judge prompt that scores answers one by one (not pairwise)")

    def sampled(done: int, total: int) -> None:
        if cancel_event is not None and cancel_event.is_set():
            raise PairsCancelled("stopped while sampling the answers: no pairs written")
        if on_sampled is not None:
            on_sampled(done, total)

    run_dir = Path(run_dir)
    questions = training_questions(run_dir, settings.limit)
    model, tokenizer = runs.load_adapted_model(run_dir)
    answers = sample_answers(model, tokenizer, questions, settings.n, settings.temperature, settings.max_new_tokens,
                             settings.seed, settings.batch_size, progress=sampled)
    del model  # the judge may load a model of its own
    items = judge_items(questions, answers)
    if confirm is not None:
        confirm(items)
    results = run_judge_sync(prompt, items, cancel_event=cancel_event, **judge_kwargs)
    if cancel_event is not None and cancel_event.is_set():
        raise PairsCancelled("stopped while judging the answers: no pairs written (the scores so far are cached)")
    pairs, report = choose_pairs(questions, answers, results, settings.margin(prompt.scale), settings.length_balance)
    return pairs, report, write_pairs(pairs, out or run_dir / "pairs.jsonl")


def dpo_config(run_dir: Path, pairs_path: Path):
    """The run's config turned into a DPO run on the pairs file that continues the run's adapter (which is
    then the reference policy): the columns write_pairs uses, pairs that do not fit dropped, the learning
    rate chosen for DPO, a new name."""
    from studio import runs
    from studio.config import AUTO

    cfg = runs.load_config(Path(run_dir))
    data = dataclasses.replace(cfg.data, dataset=str(pairs_path), prompt_column="question", chosen_column="chosen",
                               rejected_column="rejected", system_column="", context_column="", overlong="drop")
    return dataclasses.replace(cfg, name="", data=data,
                               model=dataclasses.replace(cfg.model, adapter=str(runs.RunPaths(Path(run_dir)).adapter)),
                               train=dataclasses.replace(cfg.train, method="dpo", learning_rate=AUTO))
