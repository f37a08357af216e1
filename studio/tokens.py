"""Tokenizer inspection: how a text splits into pieces, what each piece is, and how two tokenizers differ.

Pure functions over a Hugging Face fast tokenizer; the tokenizer pane renders what they return.
Pieces are shown as the text they stand for, with whitespace made visible, so "Ġworld" and
"▁world" both read "·world".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

# How whitespace is drawn in a piece, so a leading space or a newline inside a token can be seen.
_VISIBLE = str.maketrans({" ": "·", "\n": "⏎", "\t": "→", "\r": "␍"})
_BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")  # sentencepiece's byte fallback
LOOKUP_LIMIT = 20


@dataclass(frozen=True)
class Counts:
    chars: int
    tokens: int
    words: int  # whitespace-separated

    @property
    def tokens_per_word(self) -> float:
        return self.tokens / self.words if self.words else 0.0


@dataclass(frozen=True)
class TokenView:
    """One text as a tokenizer sees it; the lists run in parallel, one entry per token."""

    text: str
    ids: list[int]
    pieces: list[str]  # display strings, whitespace visible
    offsets: list[tuple[int, int]]  # char spans in `text`; (0, 0) for tokens with no source text
    is_special: list[bool]
    is_byte_fallback: list[bool]  # a raw byte, or part of a character split across tokens
    counts: Counts
    roundtrip_ok: bool  # decode(encode(text)) == text


@dataclass(frozen=True)
class Comparison:
    a: TokenView
    b: TokenView
    ids_differ: bool


def visible(text: str) -> str:
    """`text` with spaces, newlines, tabs and carriage returns drawn as visible marks."""
    return text.translate(_VISIBLE)


def inspect(tokenizer, text: str) -> TokenView:
    """How `tokenizer` splits `text`, without adding BOS/EOS, so the pieces cover exactly the text."""
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(encoding["input_ids"])
    namer = _PieceNamer(tokenizer)
    pieces, fallback = zip(*map(namer, ids)) if ids else ((), ())
    return TokenView(
        text=text, ids=ids, pieces=list(pieces), offsets=[tuple(span) for span in encoding["offset_mapping"]],
        is_special=[token_id in namer.special for token_id in ids], is_byte_fallback=list(fallback),
        counts=Counts(chars=len(text), tokens=len(ids), words=len(text.split())),
        roundtrip_ok=tokenizer.decode(ids) == text)


def lookup(tokenizer, query: str | int) -> list[tuple[int, str]]:
    """Vocabulary entries for an id, or for a piece: exact matches first, then pieces containing it.

    A string matches a raw vocab entry ("Ġworld") or the text a piece stands for (" world", "·world").
    """
    namer = _PieceNamer(tokenizer)
    if isinstance(query, int):
        return [(query, namer(query)[0])] if 0 <= query < len(tokenizer) else []
    if not query:
        return []
    wanted = visible(query)
    exact, containing = [], []
    for token, token_id in tokenizer.get_vocab().items():
        piece = namer(token_id)[0]
        if token == query or piece == wanted:
            exact.append((token_id, piece))
        elif wanted in piece:
            containing.append((token_id, piece))
    containing.sort(key=lambda hit: (len(hit[1]), hit[0]))  # the closest (shortest) pieces first
    return (sorted(exact) + containing)[:LOOKUP_LIMIT]


def compare(tok_a, tok_b, text: str) -> Comparison:
    """The same text through two tokenizers (e.g. before and after adding special tokens)."""
    a, b = inspect(tok_a, text), inspect(tok_b, text)
    return Comparison(a=a, b=b, ids_differ=a.ids != b.ids)


class _PieceNamer:
    """Turns token ids into display strings, flagging byte fallbacks; built once per call."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        self.added = tokenizer.added_tokens_decoder
        # all_special_ids lists only the named roles (bos, eos, ...); added tokens marked special count too.
        self.special = set(tokenizer.all_special_ids) | {i for i, token in self.added.items() if token.special}
        backend = getattr(tokenizer, "backend_tokenizer", None)
        # GPT-2 style vocabularies spell bytes as characters ("Ġ" is a space); the decoder says which kind.
        self.byte_level = backend is not None and "ByteLevel" in repr(backend.decoder)

    def __call__(self, token_id: int) -> tuple[str, bool]:
        token = self.tokenizer.convert_ids_to_tokens(token_id)
        if token_id in self.special:
            return token, False
        if token_id in self.added:  # added tokens are stored as plain text, not in the vocab's spelling
            return visible(token), False
        byte = _BYTE_PIECE.fullmatch(token)
        if byte:  # an ASCII byte is a whole character and is shown as one; others are shown as bytes
            value = int(byte.group(1), 16)
            return (visible(chr(value)) if value < 0x80 else token), True
        if self.byte_level:
            byte_of = _unicode_to_byte()
            raw = bytes(byte_of[char] for char in token)
            try:
                return visible(raw.decode("utf-8")), False
            except UnicodeDecodeError:  # part of a character split across tokens
                return "".join(f"<0x{value:02X}>" for value in raw), True
        return visible(token.replace("▁", " ")), False  # sentencepiece marks a leading space with ▁


@cache
def _unicode_to_byte() -> dict[str, int]:
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return {char: value for value, char in bytes_to_unicode().items()}
