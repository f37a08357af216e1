"""Replies a real endpoint can give and llm-katan cannot, from a scripted server on loopback:
malformed 200s, logprobs (G-Eval and yes/no), answers cut at the token limit, reasoning models,
`max_completion_tokens`, and what the cache keeps of them."""

from __future__ import annotations

import dataclasses
import json

import pytest
from judge_fixtures import cache  # noqa: F401  (fixture)
from judge_server import ScriptedServer, answered_with, completion

from studio.judge import JudgeItem, RetryPolicy, load_prompt, run_judge_sync

FAST = RetryPolicy(retries=1, base_s=0.01, cap_s=0.02)


def _prompt(server: ScriptedServer, preset: str = "yoda", **changes):
    prompt = load_prompt(preset).with_endpoint(base_url=server.base_url, model="m")
    return dataclasses.replace(prompt, **changes) if changes else prompt


def _texts(*texts: str) -> list[JudgeItem]:
    return [JudgeItem(t, "g") for t in texts]


def _text_of(request: dict) -> str:
    return request["messages"][-1]["content"]


# -- defect 1: one malformed 200 must not end the run ------------------------------------------------

MALFORMED = {
    "html": (200, "<!DOCTYPE html><html><body>Gateway says hi</body></html>", "text/html"),
    "not-json": (200, "this is not json {", "application/json"),
    "no-choices": (200, json.dumps({"id": "x", "object": "chat.completion", "model": "m"}), "application/json"),
}


@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_a_malformed_200_fails_that_text_only(kind, cache):
    def reply(request):
        return MALFORMED[kind] if "BAD" in _text_of(request) else completion("Fine.\nScore: 6")

    with ScriptedServer(reply) as server:
        results = run_judge_sync(_prompt(server), _texts("good one", "BAD one", "good two"), policy=FAST,
                                 cache=cache)
    assert [r.score for r in results] == [6, None, 6]
    bad = results[1]
    assert bad.failed and bad.error.startswith("malformed reply") and bad.attempts == 2  # retried, then failed
    assert ("HTML page" in bad.error) == (kind == "html")
    assert len(cache) == 2  # the failure is not cached: a re-run asks again


def test_a_weird_top_logprobs_token_is_no_score_and_no_crash():
    tokens = [("Score", {}), (":", {}), (" ²", {" ²": 0.5, " 7": 0.3, " 8": 0.2})]
    with ScriptedServer(lambda r: answered_with(tokens)) as server:
        result = run_judge_sync(_prompt(server, parse="logprobs"), _texts("x"), policy=FAST)[0]
    assert result.score is None and result.unparsed and "no score" in result.error


def test_cli_writes_out_when_one_reply_is_malformed(tmp_path, monkeypatch, capsys):
    from studio.cli import main

    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path / "cache"))
    texts = tmp_path / "t.jsonl"
    texts.write_text("".join(json.dumps({"text": t, "group": "g"}) + "\n" for t in ("a", "BAD", "c")))
    out = tmp_path / "out.jsonl"

    def reply(request):
        return MALFORMED["html"] if "BAD" in _text_of(request) else completion("Score: 4")

    with ScriptedServer(reply) as server:
        code = main(["judge", "--prompt", "yoda", "--texts", str(texts), "--out", str(out), "--base-url",
                     server.base_url, "--model", "m", "--retries", "0"])
    assert code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["status"] for r in rows] == ["scored", "failed", "scored"]
    assert "Traceback" not in capsys.readouterr().err


# -- defect 2: logprobs read at the score's position ------------------------------------------------


def _logprob_score(tokens, scale=(1, 10)):
    with ScriptedServer(lambda r: answered_with(tokens)) as server:
        return run_judge_sync(_prompt(server, parse="logprobs", scale=scale), _texts("x"), policy=FAST)[0]


def test_logprobs_read_the_score_not_an_earlier_digit():
    tokens = [("It", {}), (" has", {}), (" 2", {" 2": 0.9, " 3": 0.1}), (" inversions.", {}), (" Score", {}),
              (":", {}), (" 8", {" 8": 0.8, " 7": 0.2})]
    result = _logprob_score(tokens)
    assert result.score == pytest.approx(7.8) and result.mass == pytest.approx(1.0) and result.flag is None


def test_logprobs_skip_the_scale_description():
    tokens = [("On", {}), (" a", {}), (" scale", {}), (" of", {}), (" 1", {" 1": 1.0}), (" to", {}),
              (" 10", {" 10": 1.0}), ("...", {}), (" Score", {}), (":", {}), (" 9", {" 9": 0.6, " 8": 0.4})]
    assert _logprob_score(tokens).score == pytest.approx(8.6)


def test_ten_in_two_tokens_is_the_probability_of_the_whole_value():
    # "10" generated as "1","0": p(10) = p("1") p("0" | "1"); "1" alone only when the number ends there.
    tokens = [("Score", {}), (":", {}), (" 1", {" 1": 0.9, " 9": 0.1}), ("0", {"0": 0.8, "\n": 0.2})]
    result = _logprob_score(tokens)
    p10, p1, p9 = 0.9 * 0.8, 0.9 * 0.2, 0.1
    assert result.score == pytest.approx((10 * p10 + p1 + 9 * p9) / (p10 + p1 + p9))
    assert result.mass == pytest.approx(p10 + p1 + p9) and result.mass <= 1 + 1e-9


def test_low_mass_on_valid_values_is_flagged():
    tokens = [("Score", {}), (":", {}), (" 7", {" 7": 0.3, " seven": 0.6, " 8": 0.1})]
    result = _logprob_score(tokens)
    assert result.score == pytest.approx(7.25) and result.mass == pytest.approx(0.4)
    assert result.flag.startswith("low confidence")


def test_yes_no_logprobs_give_the_probability_of_yes():
    tokens = [("Yes", {"Yes": 0.6, "No": 0.2, "yes": 0.1, "Maybe": 0.1}), (".", {})]
    with ScriptedServer(lambda r: answered_with(tokens)) as server:
        prompt = _prompt(server, parse="yesno", scale=(0, 1))
        result = run_judge_sync(prompt, _texts("x"), policy=FAST)[0]
        assert server.requests[0]["logprobs"] is True
    assert result.score == pytest.approx(0.7 / 0.9) and result.mass == pytest.approx(0.9)


def test_no_logprobs_falls_back_to_the_text_score_flagged_and_uncached(cache):
    with_logprobs = [False]

    def reply(request):
        if with_logprobs[0]:
            return answered_with([("Score", {}), (":", {}), (" 6", {" 6": 0.5, " 7": 0.5})])
        return completion("Score: 6")

    with ScriptedServer(reply) as server:
        prompt = _prompt(server, parse="logprobs")
        first = run_judge_sync(prompt, _texts("x"), cache=cache)[0]
        assert first.score == 6 and first.flag == "text score: the endpoint returned no logprobs"
        with_logprobs[0] = True  # the endpoint is fixed
        second = run_judge_sync(prompt, _texts("x"), cache=cache)[0]
        assert not second.cached and second.score == pytest.approx(6.5) and second.flag is None
        third = run_judge_sync(prompt, _texts("x"), cache=cache)[0]
        assert third.cached and third.score == pytest.approx(6.5) and len(server.requests) == 2


# -- defect 4: truncated and reasoning-model answers -------------------------------------------------


def test_a_truncated_answer_without_a_final_score_line_fails(cache):
    with ScriptedServer(lambda r: completion("Score: 3? But wait, the text", finish_reason="length")) as server:
        result = run_judge_sync(_prompt(server), _texts("x"), cache=cache)[0]
    assert result.score is None and result.failed and result.error.startswith("truncated")
    assert result.raw.startswith("Score: 3?")  # kept to look at
    assert len(cache) == 0


def test_a_final_score_line_before_the_cut_counts():
    answer = "Mostly plain English.\nScore: 3\nAlso, the second sentence has an inv"
    with ScriptedServer(lambda r: completion(answer, finish_reason="length")) as server:
        result = run_judge_sync(_prompt(server), _texts("x"))[0]
    assert result.score == 3 and result.error is None


def test_reasoning_model_scored_from_the_final_answer_with_the_reasoning_as_reason():
    reply = completion("Score: 8", reasoning="Inverted syntax in every sentence, 'hmm' at the end. Score: 2 was "
                                             "my first thought, but no.")
    with ScriptedServer(lambda r: reply) as server:
        result = run_judge_sync(_prompt(server), _texts("x"))[0]
    assert result.score == 8 and result.reason.startswith("Inverted syntax")


def test_reasoning_model_with_null_content_cut_in_its_reasoning_fails():
    with ScriptedServer(lambda r: completion(None, reasoning="Let me think. Score: 4 maybe", finish_reason="length")
                        ) as server:
        result = run_judge_sync(_prompt(server), _texts("x"))[0]
    assert result.failed and result.error.startswith("truncated: the reasoning used up")


def test_an_empty_answer_is_unparsed_and_not_cached(cache):
    with ScriptedServer(lambda r: completion("")) as server:
        result = run_judge_sync(_prompt(server), _texts("x"), cache=cache)[0]
    assert result.unparsed and result.error == "unparsed: empty answer (finish_reason 'stop')" and len(cache) == 0


def test_max_completion_tokens_when_the_server_asks_for_it():
    def reply(request):
        if "max_tokens" in request:
            return (400, json.dumps({"error": {"message": "Unsupported parameter: 'max_tokens' is not supported "
                                                          "with this model. Use 'max_completion_tokens' instead.",
                                               "type": "invalid_request_error"}}), "application/json")
        return completion("Score: 5")

    with ScriptedServer(reply) as server:
        results = run_judge_sync(_prompt(server), _texts("a", "b"), concurrency=1)
        assert [r.score for r in results] == [5, 5]
        assert server.requests[1]["max_completion_tokens"] == 200 and "max_tokens" not in server.requests[1]
        assert len(server.requests) == 3  # asked once with max_tokens, then kept to max_completion_tokens


def test_max_completion_tokens_from_the_prompt_params_replaces_max_tokens(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text('system = "s"\ntemplate = "{text}"\nscale = [1, 10]\nparse = "score"\n'
                    '[params]\nmax_completion_tokens = 2000\n')
    prompt = load_prompt(path)
    assert "max_tokens" not in prompt.params
    with ScriptedServer(lambda r: completion("Score: 5")) as server:
        prompt = prompt.with_endpoint(base_url=server.base_url, model="m")
        assert run_judge_sync(prompt, _texts("a"))[0].score == 5
        assert server.requests[0]["max_completion_tokens"] == 2000 and "max_tokens" not in server.requests[0]
