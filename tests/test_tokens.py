"""Tokenizer inspection on the real SmolLM2 tokenizer: what a user sees in the tokenizer pane."""

from __future__ import annotations

import pytest

from studio import tokens
from studio.models import load_tokenizer


def test_whitespace_and_newlines_are_visible(smol_tokenizer):
    view = tokens.inspect(smol_tokenizer, "Hello world\n\tok")

    assert "".join(view.pieces) == "Hello·world⏎→ok"
    assert "·world" in view.pieces


def test_offsets_map_each_piece_back_to_the_text(smol_tokenizer):
    text = "Tokens  cost money.\nEspecially rare words: défenestration!"
    view = tokens.inspect(smol_tokenizer, text)

    assert len(view.pieces) == len(view.ids) == len(view.offsets) == view.counts.tokens
    for piece, (start, end) in zip(view.pieces, view.offsets):
        assert piece == tokens.visible(text[start:end])
    assert view.offsets[-1][1] == len(text)


def test_special_tokens_are_flagged_in_a_chat_turn(smol_tokenizer):
    view = tokens.inspect(smol_tokenizer, "<|im_start|>user\nhi<|im_end|>")

    flagged = [piece for piece, special in zip(view.pieces, view.is_special) if special]
    assert flagged == ["<|im_start|>", "<|im_end|>"]
    assert view.pieces == ["<|im_start|>", "user", "⏎", "hi", "<|im_end|>"]
    assert view.roundtrip_ok


def test_added_special_tokens_count_as_special(smol_tokenizer):
    # <repo_name> is an added special token but has no role, so it is not in all_special_ids.
    view = tokens.inspect(smol_tokenizer, "<repo_name>x")

    assert view.is_special == [True, False]


@pytest.mark.parametrize("text", ["你好", "naïve 🙂🙃 ok"])
def test_characters_split_across_tokens_are_byte_fallback(smol_tokenizer, text):
    view = tokens.inspect(smol_tokenizer, text)

    partial = [piece for piece, flag in zip(view.pieces, view.is_byte_fallback) if flag]
    whole = [piece for piece, flag in zip(view.pieces, view.is_byte_fallback) if not flag]
    assert partial, view.pieces
    assert all(piece.startswith("<0x") for piece in partial)
    assert all("\ufffd" not in piece for piece in whole)
    assert view.roundtrip_ok  # the bytes join back into the characters


def test_counts(smol_tokenizer):
    view = tokens.inspect(smol_tokenizer, "one two  three\nfour")

    assert (view.counts.chars, view.counts.words) == (19, 4)
    assert view.counts.tokens == len(view.ids)
    assert view.counts.tokens_per_word == pytest.approx(view.counts.tokens / 4)
    assert tokens.inspect(smol_tokenizer, "").counts.tokens_per_word == 0.0


def test_lookup_by_id_and_by_piece(smol_tokenizer):
    world = smol_tokenizer.convert_tokens_to_ids("Ġworld")

    assert tokens.lookup(smol_tokenizer, world) == [(world, "·world")]
    assert tokens.lookup(smol_tokenizer, 2) == [(2, "<|im_end|>")]
    assert tokens.lookup(smol_tokenizer, len(smol_tokenizer)) == []
    # The raw vocab spelling, the text, and its visible form all find the same entry first.
    for query in ("Ġworld", " world", "·world"):
        assert tokens.lookup(smol_tokenizer, query)[0] == (world, "·world")
    hits = tokens.lookup(smol_tokenizer, "world")
    assert len(hits) <= tokens.LOOKUP_LIMIT
    assert (world, "·world") in hits
    assert all("world" in piece for _, piece in hits)


def test_compare_shows_what_added_tokens_change(smol_tokenizer):
    with_marker = load_tokenizer("HuggingFaceTB/SmolLM2-135M-Instruct")
    with_marker.add_tokens(["###HUMAN###"], special_tokens=True)
    text = "###HUMAN### hello"

    same = tokens.compare(smol_tokenizer, smol_tokenizer, text)
    changed = tokens.compare(smol_tokenizer, with_marker, text)

    assert not same.ids_differ
    assert changed.ids_differ
    assert changed.b.pieces[0] == "###HUMAN###" and changed.b.is_special[0]
    assert changed.a.counts.tokens > changed.b.counts.tokens
    assert changed.a.roundtrip_ok and changed.b.roundtrip_ok
