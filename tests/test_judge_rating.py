"""Rating judge prompts: AUC intervals, effect size, overlap, the paired A/B difference and its
verdict, biases, and human labels with agreement; checked on hand-computed cases and against
independent implementations (scipy's bootstrap, scikit-learn's AUC and kappa)."""

from __future__ import annotations

import numpy as np
import pytest
from judge_fixtures import echo_katan  # noqa: F401  (fixture)
from scipy import stats as scipy_stats
from sklearn.metrics import roc_auc_score

from studio.judge import JudgeItem, JudgeResult
from studio.judge.labels import YES_NO, LabelStore, agreement, labels_path
from studio.judge.rating import (
    auc_interval,
    cohens_d,
    length_bias,
    more_texts_to_resolve,
    overlap,
    paired_difference,
    position_bias,
    retest,
    separation,
)
from studio.judge.stats import auc

SCALE = (1, 10)


def _results(group_scores: dict[str, list[float | None]], prompt: str = "p") -> list[JudgeResult]:
    return [JudgeResult(JudgeItem(f"{g} text {i}" + "." * i, g), prompt, "openai", "m", score=s,
                        raw="" if s is None else str(s))
            for g, scores in group_scores.items() for i, s in enumerate(scores)]


# -- one prompt ---------------------------------------------------------------------------------------


def test_perfect_separation_has_a_degenerate_interval_at_one():
    s = separation(_results({"plain": [1, 2, 3, 2], "yoda": [7, 8, 9, 9]}), SCALE, "plain", "yoda")
    assert (s.auc, s.ci, s.n_negative, s.n_positive) == (1.0, (1.0, 1.0), 4, 4)
    assert s.verdict == "separates yoda from plain (AUC 1.00, 95% CI 1.00..1.00)" and s.separates


def test_a_judge_that_cannot_tell_the_groups_apart_says_so():
    rng = np.random.default_rng(1)
    same = rng.integers(1, 11, size=60).tolist()
    s = separation(_results({"plain": same[:30], "yoda": same[30:]}), SCALE, "plain", "yoda")
    assert s.ci[0] < 0.5 < s.ci[1]
    assert s.verdict.startswith("this judge cannot separate these groups (AUC ") and s.separates is False


def test_the_wrong_way_round_is_named():
    s = separation(_results({"plain": [8, 9, 9, 8, 7], "yoda": [1, 2, 1, 3, 2]}), SCALE, "plain", "yoda")
    assert s.verdict.startswith("separates them the wrong way round: plain scores higher")


def test_auc_matches_scikit_learn():
    rng = np.random.default_rng(2)
    neg, pos = rng.normal(4, 2, 37).round().tolist(), rng.normal(6, 2, 41).round().tolist()
    assert auc(neg, pos) == pytest.approx(roc_auc_score([0] * 37 + [1] * 41, neg + pos))


def test_auc_interval_matches_scipys_bootstrap():
    rng = np.random.default_rng(3)
    neg, pos = rng.normal(4, 2, 40).round(), rng.normal(5.5, 2, 40).round()

    def statistic(a, b, axis):
        ranks = scipy_stats.rankdata(np.concatenate([a, b], axis=axis), axis=axis)
        return (ranks[..., a.shape[axis]:].sum(axis=axis) - b.shape[axis] * (b.shape[axis] + 1) / 2) / (
            a.shape[axis] * b.shape[axis])

    theirs = scipy_stats.bootstrap((neg, pos), statistic, n_resamples=4000, method="percentile", vectorized=True,
                                   rng=np.random.default_rng(0)).confidence_interval
    ours = auc_interval(neg.tolist(), pos.tolist(), resamples=4000)
    assert ours == pytest.approx((theirs.low, theirs.high), abs=0.02)
    assert auc_interval(neg.tolist(), pos.tolist()) == auc_interval(neg.tolist(), pos.tolist())  # seeded


def test_cohens_d_and_overlap_by_hand():
    assert cohens_d([1, 2, 3], [3, 4, 5]) == pytest.approx(2.0)  # means 2 and 4, both variances 1
    assert cohens_d([5, 5], [5, 5]) is None
    assert overlap([1, 1, 2, 2], [2, 2, 3, 3], SCALE) == pytest.approx(0.5)
    assert overlap([0.05, 0.15], [0.95, 0.85], (0, 1)) == 0


# -- A against B --------------------------------------------------------------------------------------


def test_the_same_prompt_twice_shows_no_difference():
    a = _results({"plain": [1, 3, 5, 2, 4], "yoda": [6, 4, 8, 7, 5]}, "A")
    d = paired_difference(a, a, "plain", "yoda")
    assert d.difference == 0 and d.ci == (0.0, 0.0) and d.more_texts is None
    assert d.verdict == ("no detectable difference (+0.00, 95% CI +0.00..+0.00); the interval already rules out "
                         "a difference of 0.05 or more")


def test_a_clearly_better_prompt_b_is_named_with_its_interval():
    rng = np.random.default_rng(4)
    plain_a, yoda_a = rng.integers(1, 11, 40).tolist(), rng.integers(1, 11, 40).tolist()
    a = _results({"plain": plain_a, "yoda": yoda_a}, "A")
    b = _results({"plain": rng.integers(1, 4, 40).tolist(), "yoda": rng.integers(7, 11, 40).tolist()}, "B")
    d = paired_difference(a, b, "plain", "yoda")
    assert d.auc_b == 1.0 and d.ci[0] > 0
    assert d.verdict == f"B separates better ({d.difference:+.2f}, 95% CI {d.ci[0]:+.2f}..{d.ci[1]:+.2f})"
    assert paired_difference(b, a, "plain", "yoda").verdict.startswith("A separates better (-")


def test_an_unresolved_difference_says_how_many_more_texts_would_resolve_it():
    rng = np.random.default_rng(5)
    a = _results({"plain": rng.integers(1, 8, 20).tolist(), "yoda": rng.integers(3, 11, 20).tolist()}, "A")
    b = _results({"plain": rng.integers(1, 8, 20).tolist(), "yoda": rng.integers(3, 11, 20).tolist()}, "B")
    d = paired_difference(a, b, "plain", "yoda")
    assert d.ci[0] < 0 < d.ci[1]
    assert d.more_texts == more_texts_to_resolve(d.ci, 20) > 0
    assert d.verdict.endswith(f"about {d.more_texts} more texts per group would resolve 0.05")


def test_more_texts_scales_with_the_square_of_the_interval_width():
    assert more_texts_to_resolve((-0.1, 0.1), 50) == 150  # half-width 0.1 -> 0.05 needs 4x the texts
    assert more_texts_to_resolve((-0.04, 0.05), 50) is None


def test_the_difference_uses_only_texts_both_prompts_scored():
    a = _results({"plain": [1, 2, None], "yoda": [8, 9, 9]}, "A")
    b = _results({"plain": [1, 2, 3], "yoda": [8, None, 9]}, "B")
    d = paired_difference(a, b, "plain", "yoda")
    assert (d.n_negative, d.n_positive) == (2, 2)


# -- biases -------------------------------------------------------------------------------------------


def test_length_bias_is_spearman_of_score_and_length_within_each_group():
    results = _results({"plain": [1, 2, 3, 4], "yoda": [9, 7, 8, 6]})  # text i is i characters longer
    bias = length_bias(results)
    assert bias["plain"].rho == pytest.approx(1.0) and bias["plain"].n == 4
    assert bias["yoda"].rho == pytest.approx(scipy_stats.spearmanr([0, 1, 2, 3], [9, 7, 8, 6]).statistic)


def test_position_bias_first_wins_and_flips_per_group():
    forward = _results({"g": [1.0, 1.0, 0.0]})
    backward = _results({"g": [1.0, 0.0, 1.0]})  # score 1.0: the answer shown first won
    bias = position_bias(forward, backward)["g"]
    assert bias.first_wins == pytest.approx(4 / 6) and bias.flip_rate == pytest.approx(1 / 3) and bias.n == 3


def test_retest_spread_over_repeated_samples():
    from studio.judge.runner import retest_items

    items = retest_items([JudgeItem("a", "g"), JudgeItem("b", "g"), JudgeItem("c", "g")], 2)
    assert [i.sample for i in items] == [0, 0, 0, 1, 1, 1]
    scores = [5, 3, 8, 7, 3, 9]
    results = [JudgeResult(i, "p", "openai", "m", score=s, raw=str(s)) for i, s in zip(items, scores)]
    r = retest(results)
    assert (r.texts, r.samples, r.max_range) == (3, 2, 2)
    assert r.mean_sd == pytest.approx((np.sqrt(2) + 0 + np.sqrt(0.5)) / 3)
    assert r.rho == pytest.approx(scipy_stats.spearmanr([5, 3, 8], [7, 3, 9]).statistic)


def test_repeated_samples_are_separate_questions_to_the_cache():
    from studio.judge import cache_key, load_prompt

    prompt = load_prompt("yoda")
    identity = {"backend": "openai", "model": "m"}
    first, again = JudgeItem("t"), JudgeItem("t", sample=1)
    assert cache_key(identity, prompt, first) != cache_key(identity, prompt, again)


# -- human labels -------------------------------------------------------------------------------------


def test_labels_are_saved_keyed_by_text_and_survive_a_restart(tmp_path):
    path = labels_path(tmp_path / "scores.jsonl")
    assert path == tmp_path / "labels.jsonl"
    store = LabelStore(path)
    store.upsert("Strong, you are.", 1)
    store.upsert("You are strong.", 0)
    store.upsert("Strong, you are.", 0)  # changed my mind
    store.upsert("A seven.", 7, kind="1-10")
    again = LabelStore(path)
    assert len(again) == 3 and again.get("Strong, you are.").value == 0 and again.get("A seven.").kind == "1-10"
    again.remove("You are strong.")
    assert LabelStore(path).get("You are strong.") is None
    with pytest.raises(Exception, match="1 or 0"):
        again.upsert("x", 3)


def test_agreement_with_yes_no_labels_by_hand(tmp_path):
    store = LabelStore(tmp_path / "labels.jsonl")
    results = _results({"g": [8, 9, 2, 7, None]})
    for result, label in zip(results, [1, 1, 0, 0, 1]):
        store.upsert(result.text, label)
    (agree,) = agreement(results, store, SCALE)
    # Judge says yes above 5.5: [1, 1, 0, 1] against [1, 1, 0, 0]: p_o 0.75, p_e 0.5*0.75 + 0.5*0.25 = 0.5.
    assert agree.kind == YES_NO and agree.n == 4 and agree.kappa == pytest.approx(0.5)
    assert agree.spearman == pytest.approx(scipy_stats.spearmanr([8, 9, 2, 7], [1, 1, 0, 0]).statistic)
    assert agree.describe().startswith("agreement with 4 human labels (yes/no): Spearman 0.")


def test_weighted_kappa_on_the_prompts_scale_against_a_direct_computation(tmp_path):
    store = LabelStore(tmp_path / "labels.jsonl")
    labels, scores = [2, 5, 7, 9, 3, 6], [2.4, 6.0, 6.6, 9.0, 1.2, 6.0]
    results = _results({"g": scores})
    for result, label in zip(results, labels):
        store.upsert(result.text, label, kind="1-10")
    (agree,) = agreement(results, store, SCALE)
    judged = [2, 6, 7, 9, 1, 6]
    categories = list(range(1, 11))  # the whole scale: a distance is a difference of scores
    index = {c: i for i, c in enumerate(categories)}
    observed = np.zeros((len(categories),) * 2)
    for x, y in zip(labels, judged):
        observed[index[x], index[y]] += 1
    expected = np.outer(observed.sum(1), observed.sum(0)) / observed.sum()
    weights = np.array([[(i - j) ** 2 for j in range(len(categories))] for i in range(len(categories))])
    by_hand = 1 - (weights * observed).sum() / (weights * expected).sum()
    assert agree.kappa_name == "weighted kappa" and agree.kappa == pytest.approx(by_hand)


# -- studio judge: two prompts, named groups, labels, the estimate --------------------------------------


def _texts_file(tmp_path, n=12):
    import json

    rows = [{"text": f"Plain answer number {i}{'.' * i} Score: {1 + i % 3}", "group": "plain"} for i in range(n)]
    rows += [{"text": f"Yoda answer, hmm {i}{'!' * i} Score: {8 + i % 3}", "group": "yoda"} for i in range(n)]
    path = tmp_path / "texts.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path, rows


def test_studio_judge_rates_and_compares_two_prompts(echo_katan, tmp_path, monkeypatch, capsys):
    import dataclasses

    from studio.cli import main
    from studio.judge import load_prompt, save_prompt

    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path / "cache"))
    texts, rows = _texts_file(tmp_path)
    yoda = load_prompt("yoda")
    a = save_prompt(dataclasses.replace(yoda, id="A"), tmp_path / "A.toml")
    # B ends its template with a score of its own: the echo judge then says 5 to every text.
    b = save_prompt(dataclasses.replace(yoda, id="B", template=yoda.template + "\nScore: 5"), tmp_path / "B.toml")
    store = LabelStore(tmp_path / "labels.jsonl")
    for row in rows[:3] + rows[12:15]:
        store.upsert(row["text"], 1 if row["group"] == "yoda" else 0)
    code = main(["judge", "--prompt", str(a), "--prompt", str(b), "--texts", str(texts), "--positive", "yoda",
                 "--negative", "plain", "--labels", str(tmp_path / "labels.jsonl"), "--base-url", echo_katan.base_url,
                 "--model", "judge-echo"])
    out = capsys.readouterr()
    assert code == 0, out.err
    printed = out.out
    assert "AUC plain vs yoda: 1.000 (95% CI 1.000..1.000, n=12+12)" in printed
    assert "AUC plain vs yoda: 0.500 (95% CI 0.500..0.500, n=12+12)" in printed
    assert "this judge cannot separate these groups (AUC 0.50" in printed
    assert "A = A, B = B: AUC plain vs yoda 1.000 (A) and 0.500 (B) on the 12+12 texts both scored" in printed
    assert "A separates better (-0.50, 95% CI -0.50..-0.50)" in printed
    assert "length bias (Spearman of score vs length, within each group): plain +" in printed
    assert "agreement with 6 human labels (yes/no): Spearman 0.88, Cohen's kappa 1.00" in printed
    assert "totals: 24 judgements: 24 requests sent, 0 from the cache" in printed
    assert "A: 24 requests (0 of 24 judgements already in the cache), about " in out.err


def test_studio_judge_asks_before_a_big_run(echo_katan, tmp_path, monkeypatch, capsys):
    from studio.cli import main

    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path / "cache"))
    texts, _ = _texts_file(tmp_path, 3)
    before = echo_katan.requests()
    args = ["judge", "--prompt", "yoda", "--texts", str(texts), "--base-url", echo_katan.base_url, "--model",
            "judge-echo", "--confirm-above", "5"]
    assert main(args) == 2  # stdin is no terminal here: nothing is sent without --yes
    assert "6 requests is more than --confirm-above 5: pass --yes" in capsys.readouterr().err
    assert echo_katan.requests() == before
    assert main([*args, "--yes"]) == 0
    assert main(args) == 0  # now the cache answers all six: nothing to confirm
    assert "0 requests (6 of 6 judgements already in the cache)" in capsys.readouterr().err


def test_a_named_group_that_is_not_in_the_texts_is_an_error(tmp_path, capsys):
    from studio.cli import main

    texts, _ = _texts_file(tmp_path, 2)
    assert main(["judge", "--prompt", "yoda", "--texts", str(texts), "--positive", "target",
                 "--negative", "plain"]) == 2
    assert "no texts in group 'target' (groups: plain, yoda)" in capsys.readouterr().err


def test_the_estimate_counts_pairs_twice_and_knows_the_cache(echo_katan, tmp_path):
    import dataclasses

    from studio.judge import JudgeCache, estimate, load_prompt, run_judge_sync, totals

    cache = JudgeCache(tmp_path / "judge.sqlite")
    prompt = load_prompt("yoda").with_endpoint(base_url=echo_katan.base_url, model="judge-echo")
    items = [JudgeItem(f"text {i}. Score: 3", "g") for i in range(4)]
    before = estimate(prompt, items, cache)
    assert (before.texts, before.requests, before.cache_hits, before.completion_tokens) == (4, 4, 0, 4 * 200)
    assert before.prompt_tokens > 4 * 100 and not before.needs_confirmation()
    assert before.needs_confirmation(threshold=3)
    results = run_judge_sync(prompt, items[:3], cache=cache)
    after = estimate(prompt, items, cache)
    assert (after.requests, after.cache_hits) == (1, 3)
    assert totals(results).describe().startswith("3 judgements: 3 requests sent, 0 from the cache, ")
    pairwise = dataclasses.replace(load_prompt("pairwise"), endpoint=prompt.endpoint)
    pairs = [JudgeItem("a", "g", question="q", text_b="b")]
    assert estimate(pairwise, pairs).requests == 2  # both orders
    cache.close()


def test_studio_judge_reports_test_retest_spread(tmp_path, monkeypatch, capsys):
    import itertools
    import json

    from judge_server import ScriptedServer, completion

    from studio.cli import main

    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path / "cache"))
    texts = tmp_path / "t.jsonl"
    texts.write_text("".join(json.dumps({"text": f"text {i}", "group": "g"}) + "\n" for i in range(4)))
    scores = itertools.cycle([3, 3, 3, 3, 5, 5, 5, 5])  # the second round of samples says 5 to every text
    with ScriptedServer(lambda request: completion(f"Score: {next(scores)}")) as server:
        args = ["judge", "--prompt", "yoda", "--texts", str(texts), "--base-url", server.base_url, "--model", "m",
                "--samples", "2", "--concurrency", "1"]
        assert main(args) == 0
        assert len(server.requests) == 8
        assert main(args) == 0 and len(server.requests) == 8  # every sample is cached as its own answer
    printed = capsys.readouterr().out
    assert "test-retest over 2 samples of 4 texts (temperature 0): mean within-text sd 1.41, largest range 2" in printed
