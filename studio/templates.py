"""Chat templates: presets, rendering, completion-only labels, stop tokens and diagnostics.

Every rendering goes through the tokenizer's own sandboxed chat-template machinery
(`apply_chat_template(tokenize=False)`). Labels are built from renderings, not from template markup,
so they work for any template, the tokenizer's own included:

- An assistant turn's text is found by rendering prefixes of the chat: the chat up to the turn with the
  generation prompt, and the chat up to and including the turn. What lies between the end of the first
  and the end of the second (less trailing whitespace) is the answer and its end-of-turn token.
- The rendering is tokenized in chunks cut at the start and end of every answer. The prompt before an
  answer is therefore tokenized exactly as sampling tokenizes the generation prompt (no token merges
  across the boundary, e.g. Llama 3's "\\n\\n" before an answer), and the answer's tokens are exactly
  the chunk's tokens.
- Text in message contents that looks like a special token (a user typing "<|im_end|>") is found by
  rendering with marked contents and gets tokenized as plain text.

That exact path renders a chat once per answer and twice more. For datasets, `encode_many` renders most
chats once (with `render_jinja_template`, the function under `apply_chat_template`): it learns where a
template puts the answers from the first chats of each sequence of roles (through the exact path) and uses
that layout only for chats whose rendering matches it exactly, with the same ids and labels as the exact
path (see "tokenizing many chats" below).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import traceback
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise
from typing import NamedTuple

import jinja2

from studio.config import TemplateConfig
from studio.errors import StudioError
from studio.paths import ASSETS

Messages = list[dict[str, str]]

# Private-use characters that wrap special-token text found in message contents (the same idea as
# transformers' `sanitize_control_tokens`, which only works when it tokenizes the whole chat itself).
_MARK_START, _MARK_END = "\U000f0000", "\U000f0001"
_MARKED = re.compile(f"{_MARK_START}([^{_MARK_END}]*){_MARK_END}")

# The chat rendered to read what a template writes after an answer (its end of turn).
_PROBE_ANSWER = "Hello there"
_PROBE = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": _PROBE_ANSWER}]

EOS = "{{ eos_token }}"  # a preset's `eot` when its turns end with the tokenizer's own end-of-sequence token


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    jinja: str | None  # None: the tokenizer's own chat template
    special_tokens: list[str] = field(default_factory=list)  # added when the vocabulary lacks them
    eot: str = ""  # what ends an assistant turn; EOS for the tokenizer's eos; "" when read from the template


def _preset(name: str, description: str, special_tokens: list[str], eot: str) -> Preset:
    jinja = (ASSETS / "templates" / f"{name}.jinja").read_text(encoding="utf-8")
    return Preset(name, description, jinja, special_tokens, eot)


PRESETS: dict[str, Preset] = {
    "tokenizer": Preset(
        "tokenizer",
        "The tokenizer's own chat template, unchanged (SmolLM2's is ChatML with a default system prompt). "
        "Its end of turn is read from the template.",
        None),
    "chatml": _preset(
        "chatml",
        "ChatML: <|im_start|>role ... <|im_end|>. The two markers are added as special tokens (new embeddings, "
        "trained) where the vocabulary lacks them; SmolLM2 and Qwen have them.",
        ["<|im_start|>", "<|im_end|>"], "<|im_end|>"),
    "gemma": _preset(
        "gemma",
        "Gemma: <start_of_turn>user / <start_of_turn>model ... <end_of_turn>, after the tokenizer's BOS. The "
        "markers are added as special tokens (new embeddings, trained) where the vocabulary lacks them. Gemma has "
        "no system role: a system message goes in front of the first user message.",
        ["<start_of_turn>", "<end_of_turn>"], "<end_of_turn>"),
    "llama2": _preset(
        "llama2",
        "Llama 2 chat: BOS [INST] <<SYS>>system<</SYS>> question [/INST] answer EOS. [INST] and <<SYS>> are plain "
        "text, as they are for Llama 2 itself; an answer ends with the tokenizer's end-of-sequence token.",
        [], EOS),
    "llama3": _preset(
        "llama3",
        "Llama 3: BOS, then <|start_header_id|>role<|end_header_id|> and a blank line, the content, <|eot_id|>. "
        "The three markers are added as special tokens (new embeddings, trained) where the vocabulary lacks them.",
        ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"], "<|eot_id|>"),
    "zephyr": _preset(
        "zephyr",
        "Zephyr: <|system|>, <|user|>, <|assistant|> lines, each turn closed by the tokenizer's end-of-sequence "
        "token. The role markers are plain text, as they are for Zephyr itself.",
        [], EOS),
    "alpaca": _preset(
        "alpaca",
        "Alpaca: a preamble (the system message, or Alpaca's own), then ### Instruction: / ### Response: blocks, "
        "each response closed by the tokenizer's end-of-sequence token. All markers are plain text.",
        [], EOS),
    "qa": _preset(
        "qa",
        "Plain Q: / A: lines; an answer ends with the tokenizer's end-of-sequence token. For base models with no "
        "chat format; all markers are plain text.",
        [], EOS),
    "human-bot": _preset(
        "human-bot",
        "###HUMAN### question ###BOT### answer ###STOP###. Adds the three markers as special tokens (new "
        "embeddings, trained); ###STOP### ends a turn.",
        ["###HUMAN###", "###BOT###", "###STOP###"], "###STOP###"),
}


class TemplateError(StudioError):
    """A chat template is unknown, missing, or raises; `line` is the Jinja line where known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.message = message
        self.line = line


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]  # -100 except the assistants' answers and their end-of-turn tokens
    prompt_truncated: bool


@dataclass(frozen=True)
class Diagnostic:
    code: str
    message: str
    fix: str


# -- choosing a template --------------------------------------------------------------------------


def apply_template(tokenizer, cfg: TemplateConfig) -> list[str]:
    """Set the tokenizer's chat template from the config; return the special tokens this call added.

    A custom `cfg.jinja` wins over `cfg.preset`. The caller resizes the model's embeddings for the added
    tokens and trains them. The template is checked on a one-turn chat before anything changes.
    """
    if cfg.jinja.strip():
        template, wanted = cfg.jinja, []
    else:
        preset = PRESETS.get(cfg.preset)
        if preset is None:
            raise TemplateError(f"unknown template preset {cfg.preset!r}; choose one of: {', '.join(PRESETS)}")
        # The loaded template stays in init_kwargs, so "tokenizer" restores it after another preset.
        template = preset.jinja if preset.jinja is not None else tokenizer.init_kwargs.get("chat_template")
        if isinstance(template, dict):  # a tokenizer with named templates: its default one
            template = template.get("default")
        if not template:
            raise TemplateError("this tokenizer has no chat template of its own; choose a preset such as chatml")
        wanted = preset.special_tokens
    _render(tokenizer, _PROBE, add_generation_prompt=False, chat_template=template)

    # A marker the tokenizer already encodes as one token needs no new embedding.
    added = [t for t in wanted if len(tokenizer.encode(t, add_special_tokens=False)) != 1]
    if added:
        tokenizer.add_special_tokens({"extra_special_tokens": added}, replace_extra_special_tokens=False)
    tokenizer.chat_template = template
    return added


def template_fingerprint(tokenizer) -> str:
    """sha256 of the chat template and the added tokens: what a checkpoint must be resumed with."""
    added = sorted((i, t.content, t.special) for i, t in tokenizer.added_tokens_decoder.items())
    blob = json.dumps({"chat_template": tokenizer.chat_template, "added_tokens": added})
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


# -- rendering ------------------------------------------------------------------------------------


def render(tokenizer, messages: Messages, add_generation_prompt: bool = False) -> str:
    """The chat as the active template writes it."""
    return _render(tokenizer, messages, add_generation_prompt)


def _render(tokenizer, messages: Messages, add_generation_prompt: bool, chat_template: str | None = None) -> str:
    """Render with `chat_template`, or the tokenizer's own when None; a template's failure is a TemplateError."""
    if chat_template is None and not tokenizer.chat_template:
        raise TemplateError("this tokenizer has no chat template; choose a preset such as chatml")
    try:
        return tokenizer.apply_chat_template(messages, chat_template=chat_template, tokenize=False,
                                             add_generation_prompt=add_generation_prompt)
    except Exception as error:
        line = _template_line(error)
        if line is None and not isinstance(error, jinja2.TemplateError):
            raise  # not the template's fault
        raise TemplateError(str(error) or type(error).__name__, line) from error


def _template_line(error: Exception) -> int | None:
    """The Jinja line of an error: syntax errors carry it; runtime errors have it in a `<template>` frame."""
    if isinstance(error, jinja2.TemplateSyntaxError):
        return error.lineno
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == "<template>"]
    return frames[-1].lineno if frames else None


# -- tokenizing a chat: the exact path ------------------------------------------------------------


@dataclass
class _Tokenized:
    ids: list[int]
    answers: list[tuple[int, int]]  # token ranges [start, end) of the assistants' answers


def _tokenize_chat(tokenizer, messages: Messages, add_generation_prompt: bool) -> _Tokenized:
    """Tokens of the rendered chat, cut into chunks at answer boundaries and special-looking content."""
    text = _render(tokenizer, messages, add_generation_prompt)
    spans = _answer_spans(tokenizer, messages, text)
    plain = _content_specials(tokenizer, messages, add_generation_prompt, text)
    cuts = sorted({0, len(text), *(c for span in spans + plain for c in span)})
    prepends = _prepends_space(tokenizer)
    chunks = [_encode_piece(tokenizer, text[start:end], any(a <= start and end <= b for a, b in plain),
                            mid_text=start > 0 and prepends) for start, end in pairwise(cuts)]
    return _assemble(cuts, chunks, spans)


def _assemble(cuts: list[int], chunks: list[list[int]], spans: list[tuple[int, int]]) -> _Tokenized:
    """The chat's ids from its chunks' ids (chunk k lies between cuts k and k + 1), and the answers' token
    ranges (each answer boundary is a cut)."""
    ids: list[int] = []
    token_at: dict[int, int] = {}  # char cut -> token index
    for start, chunk in zip(cuts, chunks):
        token_at[start] = len(ids)
        ids += chunk
    token_at[cuts[-1]] = len(ids)
    return _Tokenized(ids, [(token_at[a], token_at[b]) for a, b in spans])


class _Answer(NamedTuple):
    """Where the exact path puts one assistant turn's answer in the chat's text, and what decided it."""

    start: int  # where the generation prompt and the turn part from the chat
    end: int  # where the turn parts from the chat, less trailing whitespace; no answer unless end > start
    prompt_end: int  # the length of the generation prompt's rendering
    turn_end: int  # the length of the turn's rendering (the chat up to and including the turn)
    agreed: int  # how far the turn's rendering agrees with the chat


def _answer(tokenizer, messages: Messages, i: int, text: str) -> _Answer:
    prompt = _render(tokenizer, messages[:i], add_generation_prompt=True)
    turn = _render(tokenizer, messages[:i + 1], add_generation_prompt=False)
    start = len(os.path.commonprefix([prompt, turn, text]))
    agreed = end = len(os.path.commonprefix([turn, text]))
    while end > start and text[end - 1].isspace():
        end -= 1
    return _Answer(start, end, len(prompt), len(turn), agreed)


def _answer_spans(tokenizer, messages: Messages, text: str) -> list[tuple[int, int]]:
    """Character spans in `text` of each assistant answer plus its end of turn (trailing whitespace left out).

    An answer starts where the generation prompt for it ends; if the template writes a different prompt
    at sampling time, it starts where the two renderings part (and a diagnostic says so). An assistant
    message that opens the chat has no prompt to learn it from: it is context, not trained.
    """
    answers = (_answer(tokenizer, messages, i, text) for i, message in enumerate(messages)
               if message.get("role") == "assistant" and i > 0)
    return [(a.start, a.end) for a in answers if a.end > a.start]


@lru_cache(maxsize=32)
def _specials_pattern(specials: tuple[str, ...]) -> re.Pattern:
    return re.compile("|".join(map(re.escape, sorted(specials, key=len, reverse=True))) or "(?!)")


def _special_texts(tokenizer) -> tuple[str, ...]:
    return tuple(t.content for t in tokenizer.added_tokens_decoder.values() if t.special)


def _content_specials(tokenizer, messages: Messages, add_generation_prompt: bool, text: str) -> list[tuple[int, int]]:
    """Character spans in `text` where a message's content (not the template) wrote a special token's text."""
    pattern = _specials_pattern(_special_texts(tokenizer))
    if not any(isinstance(m.get("content"), str) and pattern.search(m["content"]) for m in messages):
        return []
    marked_messages = [
        {**m, "content": pattern.sub(lambda s: f"{_MARK_START}{s.group(0)}{_MARK_END}", m["content"])}
        if isinstance(m.get("content"), str) else m
        for m in messages
    ]
    marked = _render(tokenizer, marked_messages, add_generation_prompt)
    if marked.replace(_MARK_START, "").replace(_MARK_END, "") != text:
        return []  # the template reads inside the contents (e.g. splits them): no reliable positions
    spans, markers_before = [], 0
    for match in _MARKED.finditer(marked):
        start = match.start() - markers_before
        spans.append((start, start + len(match.group(1))))
        markers_before += 2
    return spans


def _prepends_space(tokenizer) -> bool:
    """Whether the tokenizer prefixes a text's start with a space marker (SentencePiece's "▁")."""
    newline = tokenizer.encode("\n", add_special_tokens=False)
    after_newline = tokenizer.encode("\na", add_special_tokens=False)[len(newline):]
    return tokenizer.encode("a", add_special_tokens=False) != after_newline


def _encode_piece(tokenizer, piece: str, as_text: bool, mid_text: bool) -> list[int]:
    """Token ids of a chunk; special-token text stays plain text when `as_text`.

    A chunk from the middle of a chat must not get the prefix space a SentencePiece tokenizer puts at the
    start of a text: it is encoded after a newline that is then removed (as transformers does).
    """
    def encode(text: str) -> list[int]:
        return tokenizer.encode(text, add_special_tokens=False, split_special_tokens=as_text)

    if mid_text:
        newline = encode("\n")
        ids = encode("\n" + piece)
        if ids[:len(newline)] == newline:
            return ids[len(newline):]
    return encode(piece)


# -- tokenizing many chats: one rendering each -----------------------------------------------------
#
# The exact path renders a chat 2k + 1 times for k answers. Most templates write a chat as text of their
# own between the message contents, the same for every chat with the same roles in the same order (its
# shape). The first chat of each shape goes the exact path, and the shape's layout is learned from it:
# the template's text around the contents, and each answer's start and end as a distance from its content.
# A later chat of that shape is rendered once; when the rendering is exactly the layout with the chat's own
# contents in place, its answers are where the layout puts them, and the chunks of many chats are tokenized
# in one batch call. Everything else goes the exact path: a shape whose answer boundaries could depend on
# the contents (they are not pinned by the template's own text), a chat whose rendering differs from its
# layout (a template that reads inside the contents), contents holding special-token text (kept plain text
# by the exact path) or ending in whitespace where an answer ends with its content. The first chats of each
# shape are encoded both ways and compared: one difference sends the shape the exact path for good, and so
# do a few chats in a row that teach no layout.

_CHECKED_PER_SHAPE = 2  # chats of a shape encoded both ways before its layout is trusted
_TRIES = 3  # chats of a shape that teach no layout (their contents are read or rewritten) before giving up
_PART_CHARS = 8_000  # characters of content rendered, then tokenized, together
_PLAIN_KEYS = {"role", "content"}  # chats whose messages hold anything else go the exact path
_SHAPES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # tokenizer -> (its template state, shapes)


@dataclass
class _Layout:
    segments: list[str]  # the template's text before, between and after the messages' contents
    answers: list[tuple[int, int, int]]  # (message index, answer chars before the content, answer chars after it)


@dataclass
class _Shape:
    """What is known of how the active template lays out the chats of one sequence of roles."""

    layout: _Layout | None = None
    checked: int = 0  # chats encoded both ways, with the same result
    misses: int = 0  # chats no layout could be learned from
    wrong: bool = False  # the layout gave a chat other masks than the exact path

    @property
    def trusted(self) -> bool:
        return self.checked >= _CHECKED_PER_SHAPE and not self.wrong

    @property
    def abandoned(self) -> bool:
        return self.wrong or self.misses >= _TRIES


def _shapes(tokenizer) -> dict[tuple[str, ...], _Shape]:
    """What is known per shape for the tokenizer's active template; forgotten when the template or tokens change."""
    state = (tokenizer.chat_template, len(tokenizer), repr(tokenizer.special_tokens_map))
    known = _SHAPES.get(tokenizer)
    if known is None or known[0] != state:
        known = _SHAPES[tokenizer] = (state, {})
    return known[1]


def _tokenize_chats(tokenizer, chats: list[Messages]) -> list[_Tokenized]:
    """Each chat as `_tokenize_chat(tokenizer, chat, add_generation_prompt=False)` tokenizes it."""
    shapes = _shapes(tokenizer)
    unsafe = _specials_pattern((*_special_texts(tokenizer), _MARK_START, _MARK_END))
    results: list[_Tokenized | None] = [None] * len(chats)
    batch: list[tuple[int, _Layout]] = []
    for index, chat in enumerate(chats):
        plain = chat and all(m.keys() == _PLAIN_KEYS and isinstance(m["content"], str)
                             and isinstance(m["role"], str) and not unsafe.search(m["content"]) for m in chat)
        shape = shapes.setdefault(tuple(m["role"] for m in chat), _Shape()) if plain else None
        if shape and shape.trusted:
            batch.append((index, shape.layout))
        elif shape and not shape.abandoned:
            results[index] = _learn(tokenizer, shape, chat)
        else:
            results[index] = _tokenize_chat(tokenizer, chat, add_generation_prompt=False)
    laid_out = _tokenize_by_layout(tokenizer, [(chats[index], layout) for index, layout in batch])
    for (index, _), tokenized in zip(batch, laid_out):
        results[index] = tokenized or _tokenize_chat(tokenizer, chats[index], add_generation_prompt=False)
    return results


def _learn(tokenizer, shape: _Shape, chat: Messages) -> _Tokenized:
    """The chat through the exact path; its shape's layout learned from it, or checked against it."""
    exact = _tokenize_chat(tokenizer, chat, add_generation_prompt=False)
    layout = shape.layout or _learn_layout(tokenizer, chat)
    laid_out = _tokenize_by_layout(tokenizer, [(chat, layout)])[0] if layout else None
    if laid_out == exact:
        shape.layout, shape.checked = layout, shape.checked + 1
    elif laid_out is not None:
        shape.wrong = True  # the layout puts an answer elsewhere than the exact path: never use it
    elif shape.layout is None:
        shape.misses += 1  # the template reads or rewrites this chat's contents: try another chat
    return exact


def _learn_layout(tokenizer, messages: Messages) -> _Layout | None:
    """The layout of the chat's shape, or None where an answer's boundaries are not pinned by template text."""
    text = _render(tokenizer, messages, add_generation_prompt=False)
    marked = _render(tokenizer, [{**m, "content": f"{_MARK_START}{m['content']}{_MARK_END}"} for m in messages],
                     add_generation_prompt=False)
    pieces = _MARKED.split(marked)  # segment, content, segment, ..., content, segment
    segments, contents = pieces[0::2], pieces[1::2]
    if contents != [m["content"] for m in messages] or "".join(pieces) != text \
            or any(_MARK_START in s or _MARK_END in s for s in segments):
        return None  # the template drops, repeats or rewrites a content
    answers, position = [], 0
    for i, (segment, content) in enumerate(zip(segments, contents)):
        before, position = position, position + len(segment)  # `before`: where segment i starts
        start, end, position = position, position + len(content), position + len(content)
        if messages[i]["role"] != "assistant" or i == 0:
            continue
        after = end + len(segments[i + 1])  # where the template's text after this content ends
        a = _answer(tokenizer, messages, i, text)
        # The answer must start in the template's text before the content, at a point the content cannot
        # move (the renderings part there, or the generation prompt ends with the text before the content),
        # and end in the template's text after it, at a point the next content cannot move.
        starts_pinned = before <= a.start < start or (a.start == start and a.prompt_end == start)
        ends_pinned = end <= a.agreed < after or (a.agreed == after and after in (a.turn_end, len(text)))
        if not (starts_pinned and ends_pinned and end <= a.end and a.end > a.start):
            return None
        answers.append((i, start - a.start, a.end - end))
    return _Layout(segments, answers)


def _layout_spans(layout: _Layout, chat: Messages, text: str) -> list[tuple[int, int]] | None:
    """Character spans of the chat's answers in its rendering `text`; None unless `text` follows the layout."""
    parts, content_at, position = [], [], 0
    for segment, message in zip(layout.segments, chat):
        position += len(segment)
        content_at.append(position)
        position += len(message["content"])
        parts += (segment, message["content"])
    parts.append(layout.segments[-1])
    if "".join(parts) != text:
        return None
    spans = []
    for index, lead, tail in layout.answers:
        content = chat[index]["content"]
        if not content or (not tail and content[-1].isspace()):
            return None  # the exact path would end this answer before its trailing whitespace
        spans.append((content_at[index] - lead, content_at[index] + len(content) + tail))
    return spans


def _tokenize_by_layout(tokenizer, items: list[tuple[Messages, _Layout]]) -> list[_Tokenized | None]:
    """Each chat rendered once and cut where its layout puts the answers, the chunks tokenized in batches;
    None for a chat whose rendering does not follow its layout."""
    if not items:
        return []
    prepends = _prepends_space(tokenizer)
    # The tokenizer's batch call releases the GIL: while it tokenizes one part, the next one renders.
    with ThreadPoolExecutor(max_workers=1) as pool:
        planned = []
        for part in _parts(items):
            plans, pieces = _plan(tokenizer, part, prepends)
            planned.append((plans, pool.submit(_encode_pieces, tokenizer, pieces)))
        results = []
        for plans, tokenizing in planned:
            ids = tokenizing.result()
            results += [plan and _assemble(plan.starts, [ids[piece] for piece in plan.pieces], plan.spans)
                        for plan in plans]
        return results


def _parts(items: list[tuple[Messages, _Layout]]):
    """The items in runs of about _PART_CHARS characters of content: small enough that the last run's
    tokenizing, which nothing overlaps, is short; large enough for the tokenizer's batch call to pay."""
    part, size = [], 0
    for item in items:
        part.append(item)
        size += sum(len(m["content"]) for m in item[0])
        if size >= _PART_CHARS:
            yield part
            part, size = [], 0
    if part:
        yield part


class _Plan(NamedTuple):
    starts: list[int]  # where each piece of the chat's text starts, then the text's length
    pieces: list[int]  # the pieces in order, as indices into the distinct pieces to tokenize
    spans: list[tuple[int, int]]  # the answers' character spans (each boundary starts a piece)


def _plan(tokenizer, items: list[tuple[Messages, _Layout]], prepends: bool) -> tuple[list, list[tuple[str, bool]]]:
    """Each chat's plan, or None where its rendering does not follow its layout; and the distinct pieces to
    tokenize: (text, whether it is mid-text).

    The text is cut at the answers' boundaries, and further at the template's special tokens: the tokenizer
    splits a text at those before anything else, so the pieces tokenize apart exactly as together, and text
    the template repeats in every chat (a default system prompt, role headers) is tokenized once per batch.
    Not for a tokenizer that puts a prefix space at the start of a text: whether it does after a special
    token depends on the tokenizer."""
    try:
        texts = _render_plain(tokenizer, [chat for chat, _ in items])
    except Exception:  # the exact path raises it (a TemplateError where the template is at fault)
        return [None] * len(items), []
    splitter = None if prepends else _splitter(tokenizer)
    plans, pieces = [], {}
    for (chat, layout), text in zip(items, texts):
        spans = _layout_spans(layout, chat, text)
        if spans is None:
            plans.append(None)
            continue
        starts, order = [], []
        for a, b in pairwise(sorted({0, len(text), *(c for span in spans for c in span)})):
            at = a
            for piece in splitter.split(text[a:b]) if splitter else (text[a:b],):
                if piece:
                    starts.append(at)
                    order.append(pieces.setdefault((piece, at > 0 and prepends), len(pieces)))
                    at += len(piece)
        plans.append(_Plan([*starts, len(text)], order, spans))
    return plans, list(pieces)


def _render_plain(tokenizer, chats: list[Messages]) -> list[str]:
    """The chats rendered by the compiled template under `apply_chat_template`, without its copying of
    each message into plain data and its aliasing of reasoning fields (a quarter of the time for long
    chats): these messages are plain already, with no reasoning. A rendering that came out differently
    would not follow its layout, which was learned through `apply_chat_template`."""
    from transformers.utils.chat_template_utils import _compile_jinja_template

    template = _compile_jinja_template(tokenizer.get_chat_template())
    specials = tokenizer.special_tokens_map
    return [template.render(messages=chat, tools=None, documents=None, add_generation_prompt=False, **specials)
            for chat in chats]


def _splitter(tokenizer) -> re.Pattern:
    """Splits a text around the special tokens the tokenizer always cuts at (none that eat nearby spaces)."""
    cut_at = tuple(t.content for t in tokenizer.added_tokens_decoder.values()
                   if t.special and not (t.lstrip or t.rstrip or t.single_word or t.normalized))
    return _cut_pattern(cut_at)


@lru_cache(maxsize=32)
def _cut_pattern(specials: tuple[str, ...]) -> re.Pattern:
    return re.compile(f"({_specials_pattern(specials).pattern})")


def _encode_pieces(tokenizer, pieces: list[tuple[str, bool]]) -> list[list[int]]:
    """`_encode_piece(tokenizer, piece, as_text=False, mid_text=mid)` for each (piece, mid), in one batch."""
    newline = tokenizer.encode("\n", add_special_tokens=False)
    encoded = _encode_batch(tokenizer, ["\n" + piece if mid else piece for piece, mid in pieces])
    for k, ((piece, mid), ids) in enumerate(zip(pieces, encoded)):
        if mid:
            encoded[k] = ids[len(newline):] if ids[:len(newline)] == newline else _encode_batch(tokenizer, [piece])[0]
    return encoded


def _encode_batch(tokenizer, texts: list[str]) -> list[list[int]]:
    """Each text's ids as `tokenizer.encode(text, add_special_tokens=False)` gives them, in one call: a fast
    tokenizer's own batch encoder (on several cores unless TOKENIZERS_PARALLELISM=false)."""
    if not texts:
        return []
    backend = tokenizer.backend_tokenizer if tokenizer.is_fast else None
    if backend is None or backend.padding or backend.truncation:  # the tokenizer's own call resets those
        return tokenizer(texts, add_special_tokens=False, split_special_tokens=False)["input_ids"]
    backend.encode_special_tokens = False  # as the tokenizer's own call sets it for split_special_tokens=False
    return [encoding.ids for encoding in backend.encode_batch_fast(texts, add_special_tokens=False)]


# -- training rows and sampling prompts -----------------------------------------------------------


def encode(tokenizer, messages: Messages, max_length: int, overlong: str = "drop") -> Encoded | None:
    """Token ids and completion-only labels: loss on every assistant answer and its end-of-turn token.

    No special tokens are added: the template writes the BOS where the model wants one, so there is
    never a second. When the chat is longer than `max_length`:
    - tokens after the last answer (a trailing newline) are simply cut;
    - "drop": None if any answer token would be cut;
    - "truncate_prompt": keep the BOS (when the chat starts with one) and the last `max_length` tokens
      ending with the last answer, so the earliest prompt text goes first (the system turn too). An
      earlier answer the cut goes through keeps no loss. None if the last answer alone does not fit.
    """
    return encode_many(tokenizer, [messages], max_length, overlong)[0]


def encode_many(tokenizer, chats: list[Messages], max_length: int, overlong: str = "drop") -> list[Encoded | None]:
    """`encode` for each chat, the same results; most chats are rendered once and tokenized in one batch."""
    if overlong not in ("drop", "truncate_prompt"):
        raise ValueError(f"overlong must be drop or truncate_prompt, not {overlong!r}")
    return [_fit(tokenizer, chat, max_length, overlong) for chat in _tokenize_chats(tokenizer, chats)]


def _fit(tokenizer, chat: _Tokenized, max_length: int, overlong: str) -> Encoded | None:
    ids = chat.ids
    labels = [-100] * len(ids)
    for start, end in chat.answers:
        labels[start:end] = ids[start:end]
    last_end = chat.answers[-1][1] if chat.answers else 0
    if last_end <= max_length:
        return Encoded(ids[:max_length], labels[:max_length], prompt_truncated=False)
    if overlong == "drop":
        return None

    answer_start = chat.answers[-1][0]
    bos = ids[:1] if tokenizer.bos_token_id is not None and ids[0] == tokenizer.bos_token_id else []
    head = bos if len(bos) + last_end - answer_start <= max_length else []
    if last_end - answer_start > max_length:
        return None
    cut = last_end - (max_length - len(head))
    for start, end in chat.answers:
        if start < cut < end:  # this answer lost its beginning: it is context now
            labels[cut:end] = [-100] * (end - cut)
    return Encoded(head + ids[cut:last_end], [-100] * len(head) + labels[cut:last_end], prompt_truncated=True)


def generation_prompt_ids(tokenizer, messages: Messages) -> list[int]:
    """The ids sampling feeds `generate()`: the chat plus the generation prompt, tokenized as in training."""
    return _tokenize_chat(tokenizer, messages, add_generation_prompt=True).ids


def eot_token_ids(tokenizer) -> list[int]:
    """The ids that end an assistant turn, for `generate(eos_token_id=...)`: the template's end of turn, then eos."""
    stops = [_end_of_turn_id(tokenizer), tokenizer.eos_token_id]
    return list(dict.fromkeys(i for i in stops if i is not None))


def _end_of_turn_id(tokenizer) -> int | None:
    """The added token the active template writes right after an answer (e.g. <|im_end|>), if any."""
    text = _render(tokenizer, _PROBE, add_generation_prompt=False)
    at = text.rfind(_PROBE_ANSWER)
    if at < 0:
        return None
    after = text[at + len(_PROBE_ANSWER):].lstrip()
    for token in sorted(tokenizer.added_tokens_encoder, key=len, reverse=True):
        if token and after.startswith(token):
            return tokenizer.added_tokens_encoder[token]
    return None


# -- diagnostics ----------------------------------------------------------------------------------


def diagnostics(tokenizer, messages: Messages, collator=None) -> list[Diagnostic]:
    """What is wrong with training on this chat with the active template; empty when healthy.

    `collator` batches encoded rows as the trainer does (default: padding with labels of -100, like
    studio.train); it is run to see whether it takes the loss off the eos token.
    """
    try:
        chat = _tokenize_chat(tokenizer, messages, add_generation_prompt=False)
        found = _bos_problems(tokenizer, chat) + _label_problems(tokenizer, chat)
        found += _prompt_problems(tokenizer, messages, chat) + _padding_problems(tokenizer, chat, collator)
    except TemplateError as error:
        return [Diagnostic("template-error", f"the template fails on this chat: {error}",
                           f"fix the template at line {error.line}" if error.line else
                           "fix the template (or the chat it rejects)")]
    return found


def _bos_problems(tokenizer, chat: _Tokenized) -> list[Diagnostic]:
    bos = tokenizer.bos_token_id
    if bos is None or chat.ids[:2] != [bos, bos]:
        return []
    return [Diagnostic(
        "double-bos", f"the chat starts with two BOS tokens ({tokenizer.bos_token!r} twice)",
        f"write the BOS once: drop {{{{ bos_token }}}} or the literal {tokenizer.bos_token} at the template's start")]


def _label_problems(tokenizer, chat: _Tokenized) -> list[Diagnostic]:
    if not chat.answers:
        return [Diagnostic(
            "no-assistant-tokens", "no token carries loss: the chat has no assistant answer after a prompt, "
            "or the template does not render it",
            "give each row an assistant message (check the response column) and make the template write it")]
    stops = eot_token_ids(tokenizer)
    unstopped = [(n, end) for n, (_, end) in enumerate(chat.answers, 1) if chat.ids[end - 1] not in stops]
    if not unstopped:
        return []
    n, end = unstopped[0]
    last = tokenizer.decode(chat.ids[end - 1:end])
    return [Diagnostic(
        "eot-not-in-labels", f"answer {n} ends with {last!r}, not with a stop token "
        f"({', '.join(repr(tokenizer.decode([i])) for i in stops)}): the model never learns to stop",
        "write an end-of-turn token right after the assistant's content, e.g. {{ eos_token }}")]


def _prompt_problems(tokenizer, messages: Messages, chat: _Tokenized) -> list[Diagnostic]:
    for n, i in enumerate((i for i, m in enumerate(messages) if m.get("role") == "assistant" and i > 0), 1):
        prompt = generation_prompt_ids(tokenizer, messages[:i])
        trained = chat.ids[:len(prompt)]
        if prompt != trained:
            differs = next(k for k, (a, b) in enumerate(zip(prompt + [None], trained + [None])) if a != b)
            return [Diagnostic(
                "generation-prompt-mismatch",
                f"before answer {n}, sampling feeds {tokenizer.decode(prompt[differs:])!r} where training had "
                f"{tokenizer.decode(trained[differs:])!r}",
                "make the add_generation_prompt block write exactly the header an assistant turn starts with")]
    return []


def _padding_problems(tokenizer, chat: _Tokenized, collator) -> list[Diagnostic]:
    eos = tokenizer.eos_token_id
    if eos is None or tokenizer.pad_token_id != eos:
        return []
    labels = [-100] * len(chat.ids)
    for start, end in chat.answers:
        labels[start:end] = chat.ids[start:end]
    if collator is None:
        from transformers import DataCollatorForSeq2Seq

        collator = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
    batched = collator([{"input_ids": chat.ids, "labels": labels}])["labels"][0].tolist()
    lost = [k for k, label in enumerate(labels) if label == eos and batched[k] == -100]
    if not lost:
        return []
    return [Diagnostic(
        "pad-equals-eos", f"the pad token is the eos token {tokenizer.eos_token!r} and the collator masks padding "
        f"by id, so {len(lost)} eos label(s) lose their loss: the model never learns to stop",
        "keep the labels encode() builds (pad labels with -100), or set a pad token that is not eos")]
