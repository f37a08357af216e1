"""Tokens drawn as alternately coloured spans: where each piece starts and ends is the point.

Special tokens and byte-fallback pieces get their own colours; or, given a loss mask, the tokens
that carry loss are green and the masked ones dimmed. Ids, when shown, follow each piece as subscripts
so they cannot be mistaken for text.
"""

from __future__ import annotations

from typing import NamedTuple

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

# Two backgrounds that alternate, so neighbouring pieces are told apart without separators.
_PLAIN = ("on #2e4a62", "on #4a3b5c")
_LOSS = ("#e8ffe8 on #1e5a38", "#e8ffe8 on #2f7a4c")
_MASKED = ("#8a8a8a on #262626", "#8a8a8a on #343434")
_SPECIAL = "bold #1a1a1a on #e0af68"
_BYTE = "italic #1a1a1a on #f7768e"
_SUBSCRIPT = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
NEWLINE = "⏎"  # how studio.tokens draws a newline inside a piece


class Token(NamedTuple):
    piece: str  # the display string: whitespace and newlines already made visible by studio.tokens
    token_id: int
    special: bool = False
    byte_fallback: bool = False
    loss: bool | None = None  # None: no loss mask; True: carries loss; False: masked


def tokens_from_view(view) -> list[Token]:
    """The spans of a `studio.tokens.TokenView`."""
    return [Token(*fields) for fields in zip(view.pieces, view.ids, view.is_special, view.is_byte_fallback)]


def token_text(tokens: list[Token], show_ids: bool) -> Text:
    text = Text()
    for index, token in enumerate(tokens):
        if token.loss is not None:  # with a loss mask, whether a token is learned is what matters
            style = (_LOSS if token.loss else _MASKED)[index % 2]
        elif token.special:
            style = _SPECIAL
        elif token.byte_fallback:
            style = _BYTE
        else:
            style = _PLAIN[index % 2]
        # A newline mark also breaks the line, so the spans keep the text's shape; the id of a piece
        # that ends in a newline goes before the break, beside its piece.
        body = token.piece.replace(NEWLINE, NEWLINE + "\n")
        ends_line = body.endswith("\n")
        text.append(body.removesuffix("\n"), style)
        if show_ids:
            text.append(str(token.token_id).translate(_SUBSCRIPT), style)
        if ends_line:
            text.append("\n")
    return text


class TokenSpans(Static):
    """A list of tokens as coloured spans; `show_ids` adds each token's id."""

    show_ids: reactive[bool] = reactive(False)

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.tokens: list[Token] = []

    def set_tokens(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.update(token_text(tokens, self.show_ids))

    def watch_show_ids(self) -> None:
        self.update(token_text(self.tokens, self.show_ids))
