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
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import traceback
from dataclasses import dataclass, field
from functools import lru_cache

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


# -- tokenizing a chat ----------------------------------------------------------------------------


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

    ids: list[int] = []
    token_at: dict[int, int] = {}  # char cut -> token index
    for start, end in zip(cuts, cuts[1:]):
        token_at[start] = len(ids)
        as_text = any(a <= start and end <= b for a, b in plain)
        ids += _encode_piece(tokenizer, text[start:end], as_text, mid_text=start > 0 and prepends)
    token_at[len(text)] = len(ids)
    return _Tokenized(ids, [(token_at[a], token_at[b]) for a, b in spans])


def _answer_spans(tokenizer, messages: Messages, text: str) -> list[tuple[int, int]]:
    """Character spans in `text` of each assistant answer plus its end of turn (trailing whitespace left out).

    An answer starts where the generation prompt for it ends; if the template writes a different prompt
    at sampling time, it starts where the two renderings part (and a diagnostic says so). An assistant
    message that opens the chat has no prompt to learn it from: it is context, not trained.
    """
    spans = []
    for i, message in enumerate(messages):
        if message.get("role") != "assistant" or i == 0:
            continue
        prompt = _render(tokenizer, messages[:i], add_generation_prompt=True)
        turn = _render(tokenizer, messages[:i + 1], add_generation_prompt=False)
        start = len(os.path.commonprefix([prompt, turn, text]))
        end = len(os.path.commonprefix([turn, text]))
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            spans.append((start, end))
    return spans


@lru_cache(maxsize=32)
def _specials_pattern(specials: tuple[str, ...]) -> re.Pattern:
    return re.compile("|".join(map(re.escape, sorted(specials, key=len, reverse=True))) or "(?!)")


def _content_specials(tokenizer, messages: Messages, add_generation_prompt: bool, text: str) -> list[tuple[int, int]]:
    """Character spans in `text` where a message's content (not the template) wrote a special token's text."""
    pattern = _specials_pattern(tuple(t.content for t in tokenizer.added_tokens_decoder.values() if t.special))
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
    if overlong not in ("drop", "truncate_prompt"):
        raise ValueError(f"overlong must be drop or truncate_prompt, not {overlong!r}")
    chat = _tokenize_chat(tokenizer, messages, add_generation_prompt=False)
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
