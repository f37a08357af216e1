"""Chat templates on the real SmolLM2 tokenizer: every preset's loss mask, generation prompt, stop
tokens and diagnostics; template errors with their line; special-looking text; overlong rows."""

from __future__ import annotations

import copy

import pytest
from transformers import DataCollatorForLanguageModeling

from studio import templates
from studio.config import TemplateConfig
from studio.templates import EOS, PRESETS, TemplateError

EOS_TEXT = "<|im_end|>"  # SmolLM2's eos

ONE_TURN = [
    {"role": "system", "content": "Answer briefly."},
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "Paris, it is."},
]
TWO_TURNS = ONE_TURN[1:] + [
    {"role": "user", "content": "And of Spain?"},
    {"role": "assistant", "content": "Madrid, that is.\nSure."},
]

# What carries loss for one answer under each preset: the content and the end of turn, with the
# answer's leading space where the template puts one after the generation prompt.
ANSWER = {
    "tokenizer": "{}<|im_end|>",
    "chatml": "{}<|im_end|>",
    "gemma": "{}<end_of_turn>",
    "llama2": " {} <|im_end|>",
    "llama3": "{}<|eot_id|>",
    "zephyr": "{}<|im_end|>",
    "alpaca": "{}<|im_end|>",
    "qa": " {}<|im_end|>",
    "human-bot": "{}###STOP###",
}
CHATML = PRESETS["chatml"].jinja
NO_END_OF_TURN = ("{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}"
                  "{% if add_generation_prompt %}assistant:{% endif %}")


@pytest.fixture
def tokenizer(smol_tokenizer):
    """A private copy: applying a template changes the tokenizer."""
    return copy.deepcopy(smol_tokenizer)


@pytest.fixture(scope="module", params=list(PRESETS))
def preset(request, smol_tokenizer):
    """(name, a tokenizer with that preset applied), shared by the tests that only read it."""
    return request.param, with_template(copy.deepcopy(smol_tokenizer), request.param)


def with_template(tokenizer, preset: str = "tokenizer", jinja: str = ""):
    templates.apply_template(tokenizer, TemplateConfig(preset=preset, jinja=jinja))
    return tokenizer


def trained_pieces(tokenizer, encoded) -> list[str]:
    """The decoded runs of tokens that carry loss, one per answer."""
    runs, run = [], []
    for token, label in zip(encoded.input_ids, encoded.labels):
        if label != -100:
            assert label == token
            run.append(token)
        elif run:
            runs.append(run)
            run = []
    if run:
        runs.append(run)
    return [tokenizer.decode(r) for r in runs]


def test_every_preset_has_an_expected_answer():
    assert set(ANSWER) == set(PRESETS)


def test_only_answers_and_their_end_of_turn_carry_loss(preset):
    name, tokenizer = preset
    one = templates.encode(tokenizer, ONE_TURN, max_length=512)
    assert trained_pieces(tokenizer, one) == [ANSWER[name].format("Paris, it is.")]
    two = templates.encode(tokenizer, TWO_TURNS, max_length=512)
    assert trained_pieces(tokenizer, two) == [ANSWER[name].format("Paris, it is."),
                                              ANSWER[name].format("Madrid, that is.\nSure.")]
    # Cutting the rendering into chunks loses nothing: the ids spell the rendered chat.
    assert tokenizer.decode(two.input_ids) == templates.render(tokenizer, TWO_TURNS)


def test_the_generation_prompt_is_the_trained_prefix(preset):
    _, tokenizer = preset
    for chat in (ONE_TURN, TWO_TURNS):
        trained = templates.encode(tokenizer, chat, max_length=512)
        for i in (i for i, m in enumerate(chat) if m["role"] == "assistant"):
            prompt = templates.generation_prompt_ids(tokenizer, chat[:i])
            assert trained.input_ids[:len(prompt)] == prompt
            # The answer's loss starts right where the generation prompt ends.
            assert trained.labels[len(prompt) - 1] == -100 and trained.labels[len(prompt)] != -100


def test_generation_stops_at_the_presets_end_of_turn(preset):
    name, tokenizer = preset
    eot = PRESETS[name].eot.replace(EOS, EOS_TEXT) or EOS_TEXT
    stops = templates.eot_token_ids(tokenizer)
    assert stops[0] == tokenizer.convert_tokens_to_ids(eot)
    assert tokenizer.eos_token_id in stops


def test_a_healthy_chat_has_no_diagnostics(preset):
    _, tokenizer = preset
    assert templates.diagnostics(tokenizer, TWO_TURNS) == []


# -- presets and custom templates -----------------------------------------------------------------


def test_human_bot_adds_its_three_tokens_once(tokenizer):
    size = len(tokenizer)
    added = templates.apply_template(tokenizer, TemplateConfig(preset="human-bot"))
    assert added == ["###HUMAN###", "###BOT###", "###STOP###"]
    assert len(tokenizer) == size + 3
    assert templates.apply_template(tokenizer, TemplateConfig(preset="human-bot")) == []
    ids = templates.generation_prompt_ids(tokenizer, [{"role": "user", "content": "Hi"}])
    assert ids == tokenizer.convert_tokens_to_ids(["###HUMAN###"]) + tokenizer.encode("Hi") + \
        tokenizer.convert_tokens_to_ids(["###BOT###"])


def test_presets_with_known_markers_add_nothing(tokenizer):
    assert templates.apply_template(tokenizer, TemplateConfig(preset="chatml")) == []
    assert templates.apply_template(tokenizer, TemplateConfig(preset="llama2")) == []


def test_the_tokenizer_preset_restores_the_original_template(tokenizer):
    original = tokenizer.chat_template
    with_template(tokenizer, "llama3")
    assert tokenizer.chat_template != original
    with_template(tokenizer, "tokenizer")
    assert tokenizer.chat_template == original


def test_a_custom_template_wins_over_the_preset(tokenizer):
    with_template(tokenizer, "llama3", jinja=NO_END_OF_TURN)
    assert tokenizer.chat_template == NO_END_OF_TURN
    rendered = templates.render(tokenizer, ONE_TURN[1:])
    assert rendered == "user: What is the capital of France?\nassistant: Paris, it is.\n"


def test_an_unknown_preset_lists_the_known_ones(tokenizer):
    with pytest.raises(TemplateError) as caught:
        with_template(tokenizer, "vicuna")
    assert "vicuna" in str(caught.value) and all(name in str(caught.value) for name in PRESETS)


def test_a_syntax_error_names_its_line_and_changes_nothing(tokenizer):
    original = tokenizer.chat_template
    broken = "{% for message in messages %}\n{{ message['content'] }}\n{{ message['role'] }\n{% endfor %}"
    with pytest.raises(TemplateError) as caught:
        with_template(tokenizer, jinja=broken)
    assert caught.value.line == 3
    assert str(caught.value).startswith("line 3: ")
    assert tokenizer.chat_template == original


def test_a_template_that_raises_names_its_line(tokenizer):
    refuses_system = ("{% for message in messages %}\n"
                      "{% if message['role'] == 'system' %}{{ raise_exception('no system role') }}{% endif %}\n"
                      "{{ message['content'] }}\n{% endfor %}")
    with_template(tokenizer, jinja=refuses_system)
    with pytest.raises(TemplateError) as caught:
        templates.render(tokenizer, ONE_TURN)
    assert caught.value.line == 2 and caught.value.message == "no system role"


def test_fingerprint_follows_the_template_and_added_tokens(tokenizer):
    before = templates.template_fingerprint(tokenizer)
    assert templates.template_fingerprint(copy.deepcopy(tokenizer)) == before
    with_template(tokenizer, "human-bot")
    after = templates.template_fingerprint(tokenizer)
    assert after != before
    with_template(tokenizer, "tokenizer")
    assert templates.template_fingerprint(tokenizer) not in (before, after)  # same template, more tokens


# -- special-looking text -------------------------------------------------------------------------


def test_special_token_text_in_content_stays_plain_text(tokenizer):
    chat = [{"role": "user", "content": "Type <|im_end|> to stop."},
            {"role": "assistant", "content": "Like <|im_start|>this?"}]
    encoded = templates.encode(tokenizer, chat, max_length=512)
    im_start, im_end = tokenizer.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>"])
    # The user's "<|im_end|>" is not the control token: only the template's own markers are, one per
    # turn (SmolLM2's default system, user, assistant).
    assert encoded.input_ids.count(im_end) == 3
    assert encoded.input_ids.count(im_start) == 3
    assert trained_pieces(tokenizer, encoded) == ["Like <|im_start|>this?<|im_end|>"]
    assert tokenizer.decode(encoded.input_ids) == templates.render(tokenizer, chat)
    prompt = templates.generation_prompt_ids(tokenizer, chat[:1])
    assert encoded.input_ids[:len(prompt)] == prompt


# -- overlong rows --------------------------------------------------------------------------------


LONG_PROMPT = [{"role": "user", "content": "Tell me about rivers. " * 40},
               {"role": "assistant", "content": "Rivers flow to the sea."}]


def test_drop_refuses_a_row_whose_answer_would_be_cut(tokenizer):
    full = templates.encode(tokenizer, LONG_PROMPT, max_length=10_000)
    assert templates.encode(tokenizer, LONG_PROMPT, max_length=len(full.input_ids) - 5) is None
    # Only the masked newline after the end of turn is cut: the row is kept whole otherwise.
    kept = templates.encode(tokenizer, LONG_PROMPT, max_length=len(full.input_ids) - 1)
    assert kept.input_ids == full.input_ids[:-1] and not kept.prompt_truncated


def test_truncate_prompt_cuts_the_start_of_the_prompt_and_keeps_the_answer(tokenizer):
    encoded = templates.encode(tokenizer, LONG_PROMPT, max_length=64, overlong="truncate_prompt")
    assert encoded.prompt_truncated and len(encoded.input_ids) == 64
    assert encoded.input_ids[0] == tokenizer.bos_token_id  # the BOS survives the cut
    assert trained_pieces(tokenizer, encoded) == ["Rivers flow to the sea.<|im_end|>"]
    assert tokenizer.decode(encoded.input_ids[1:]).endswith(
        "rivers. <|im_end|>\n<|im_start|>assistant\nRivers flow to the sea.<|im_end|>")


def test_truncate_prompt_takes_the_loss_off_an_answer_it_cuts_into(tokenizer):
    full = templates.encode(tokenizer, TWO_TURNS, max_length=512)
    trained = [k for k, label in enumerate(full.labels) if label != -100]
    first_answer, last_end = trained[0], trained[-1] + 1
    # After the BOS, the window starts two tokens into the first answer ("Paris" "," are cut).
    encoded = templates.encode(tokenizer, TWO_TURNS, max_length=1 + last_end - (first_answer + 2),
                               overlong="truncate_prompt")
    assert tokenizer.decode(encoded.input_ids[1:]).startswith(" it is.<|im_end|>\n<|im_start|>user")
    assert trained_pieces(tokenizer, encoded) == ["Madrid, that is.\nSure.<|im_end|>"]


def test_an_answer_longer_than_max_length_is_always_dropped(tokenizer):
    chat = [{"role": "user", "content": "Talk."}, {"role": "assistant", "content": "word " * 100}]
    assert templates.encode(tokenizer, chat, max_length=32, overlong="drop") is None
    assert templates.encode(tokenizer, chat, max_length=32, overlong="truncate_prompt") is None


# -- diagnostics ----------------------------------------------------------------------------------


def codes(tokenizer, messages, **kwargs) -> list[str]:
    return [d.code for d in templates.diagnostics(tokenizer, messages, **kwargs)]


def test_double_bos_is_reported(tokenizer):
    # SmolLM2's BOS is <|im_start|>: writing {{ bos_token }} before ChatML's first <|im_start|> doubles it.
    with_template(tokenizer, jinja="{{ bos_token }}" + CHATML)
    found = templates.diagnostics(tokenizer, ONE_TURN)
    assert [d.code for d in found] == ["double-bos"]
    assert found[0].fix


def test_a_template_without_end_of_turn_is_reported(tokenizer):
    with_template(tokenizer, jinja=NO_END_OF_TURN)
    found = templates.diagnostics(tokenizer, ONE_TURN)
    assert [d.code for d in found] == ["eot-not-in-labels"]
    assert "'.'" in found[0].message


def test_pad_equals_eos_is_reported_only_when_the_collator_masks_eos(tokenizer):
    assert tokenizer.pad_token_id == tokenizer.eos_token_id  # SmolLM2 pads with its eos
    assert codes(tokenizer, ONE_TURN) == []  # our labels are explicit: padding never touches them
    masks_padding = DataCollatorForLanguageModeling(tokenizer, mlm=False)
    assert codes(tokenizer, ONE_TURN, collator=masks_padding) == ["pad-equals-eos"]
    tokenizer.pad_token = "<|endoftext|>"
    assert codes(tokenizer, ONE_TURN, collator=DataCollatorForLanguageModeling(tokenizer, mlm=False)) == []


def test_a_generation_prompt_unlike_the_trained_header_is_reported(tokenizer):
    with_template(tokenizer, jinja=CHATML.replace("'<|im_start|>assistant\\n'", "'<|im_start|>model\\n'"))
    found = templates.diagnostics(tokenizer, ONE_TURN)
    assert [d.code for d in found] == ["generation-prompt-mismatch"]
    assert "model" in found[0].message and "assistant" in found[0].message


def test_a_template_error_is_reported_with_its_line(tokenizer):
    with_template(tokenizer, jinja="{% for m in messages %}\n{{ raise_exception('no system') if m.role == 'system' }}"
                                   "{{ m.content }}\n{% endfor %}")
    found = templates.diagnostics(tokenizer, ONE_TURN)
    assert [d.code for d in found] == ["template-error"]
    assert "line 2" in found[0].message and "no system" in found[0].message
    assert "template-error" not in codes(tokenizer, ONE_TURN[1:])


def test_a_chat_without_an_answer_is_reported(tokenizer):
    assert codes(tokenizer, ONE_TURN[:2]) == ["no-assistant-tokens"]
    encoded = templates.encode(tokenizer, ONE_TURN[:2], max_length=512)
    assert set(encoded.labels) == {-100}


# -- a SentencePiece-style tokenizer (prefix space at the start of a text) ------------------------


@pytest.fixture(scope="module")
def corpus(smol_tokenizer) -> list[str]:
    return [templates.render(with_template(copy.deepcopy(smol_tokenizer), name), TWO_TURNS)
            for name in ("llama2", "chatml", "alpaca")]


@pytest.fixture
def sentencepiece_tokenizer(corpus):
    """A tiny BPE with Metaspace pre-tokenization, like Llama 2's: chunks must not gain a prefix space."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    backend.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False)
    backend.train_from_iterator(corpus * 5, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


@pytest.mark.parametrize("name, trained_text", [
    ("chatml", "Paris, it is.<|im_end|>Madrid, that is.\nSure.<|im_end|>"),
    ("llama2", " Paris, it is. </s> Madrid, that is.\nSure. </s>"),
])
def test_chunks_get_no_prefix_space_from_a_sentencepiece_tokenizer(sentencepiece_tokenizer, name, trained_text):
    tokenizer = with_template(sentencepiece_tokenizer, name)
    assert tokenizer.tokenize("Paris")[0].startswith("▁")  # a prefix space at the start of a text
    encoded = templates.encode(tokenizer, TWO_TURNS, max_length=512)
    assert tokenizer.decode(encoded.input_ids) == templates.render(tokenizer, TWO_TURNS)
    trained = [t for t, label in zip(encoded.input_ids, encoded.labels) if label != -100]
    # Decoding drops a leading "▁", so read the pieces themselves.
    assert "".join(tokenizer.convert_ids_to_tokens(trained)).replace("▁", " ") == trained_text
    prompt = templates.generation_prompt_ids(tokenizer, TWO_TURNS[:3])
    assert encoded.input_ids[:len(prompt)] == prompt


def test_a_tokenizer_without_a_template_must_choose_a_preset(sentencepiece_tokenizer):
    with pytest.raises(TemplateError, match="choose a preset"):
        with_template(sentencepiece_tokenizer, "tokenizer")
    with pytest.raises(TemplateError, match="choose a preset"):
        templates.render(sentencepiece_tokenizer, ONE_TURN)


# -- many chats at once: one rendering each, the same masks ---------------------------------------


def exact(tokenizer, chat, max_length=512, overlong="drop"):
    """The exact path alone (the chat rendered once per answer and twice more): what encode_many must equal."""
    tokenized = templates._tokenize_chat(tokenizer, chat, add_generation_prompt=False)
    return templates._fit(tokenizer, tokenized, max_length, overlong)


QUESTIONS = ["What is the capital of France?", "And of Spain?", "Sure? Say <b>it</b>.", "Über café, ça va?",
             "Two lines\nof question."]
ANSWERS = ["Paris, it is.", "Madrid, that is.\nSure.", "Sure, <b>bold</b> it is.", "<think>hmm</think> Yes.",
           "Ja, très bien.", "Hmm. Patience you must have."]


def varied_chats(count: int = 30) -> list[list[dict]]:
    """Chats of six shapes (with and without a system turn, one to three answers) with contents that start
    like markup, hold newlines and accents, and in every tenth chat special-token text."""
    chats = []
    for n in range(count):
        turns = 1 + n % 3
        chat = [{"role": "system", "content": "Answer briefly."}] if n % 4 == 1 else []
        for t in range(turns):
            chat += [{"role": "user", "content": QUESTIONS[(n + t) % len(QUESTIONS)]},
                     {"role": "assistant", "content": ANSWERS[(n * 3 + t) % len(ANSWERS)]}]
        if n % 10 == 9:
            chat[-2:] = [{"role": "user", "content": "Type <|im_end|> to stop."},
                         {"role": "assistant", "content": "Like <|im_start|>this?"}]
        chats.append(chat)
    return chats


def test_many_chats_get_exactly_the_masks_of_the_exact_path(preset):
    _, tokenizer = preset
    chats = varied_chats()
    assert templates.encode_many(tokenizer, chats, max_length=512) == [exact(tokenizer, c) for c in chats]
    cut = templates.encode_many(tokenizer, chats, max_length=40, overlong="truncate_prompt")
    assert cut == [exact(tokenizer, c, 40, "truncate_prompt") for c in chats]


def test_a_chat_is_rendered_once_when_its_shape_is_known(tokenizer, monkeypatch):
    def ten_turns(n):
        return [m for t in range(10) for m in ({"role": "user", "content": f"Question {n}.{t}?"},
                                               {"role": "assistant", "content": f"Answer {n}.{t}, it is."})]

    chats = [ten_turns(n) for n in range(40)]
    import jinja2

    templates.encode_many(tokenizer, chats[:2], max_length=4096)  # the first chats of a shape go the exact path
    rendered = []
    render = jinja2.Template.render

    def counting(template, *args, **kwargs):
        rendered.append(1)  # one chat each: every path renders through the compiled template
        return render(template, *args, **kwargs)

    monkeypatch.setattr(jinja2.Template, "render", counting)
    encoded = templates.encode_many(tokenizer, chats[2:], max_length=4096)
    assert sum(rendered) == len(chats) - 2  # not 21 renderings per chat
    monkeypatch.undo()
    assert encoded == [exact(tokenizer, c, 4096) for c in chats[2:]]


def test_chats_with_special_token_text_go_the_exact_path_and_stay_plain_text(tokenizer):
    chats = [[{"role": "user", "content": f"Say {n}."}, {"role": "assistant", "content": f"{n}, I say."}]
             for n in range(6)]
    chats[4][1]["content"] = "<|im_end|>, I say."
    encoded = templates.encode_many(tokenizer, chats, max_length=512)
    assert encoded == [exact(tokenizer, c) for c in chats]
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert encoded[4].input_ids.count(im_end) == encoded[3].input_ids.count(im_end)


# Templates a one-rendering path could get wrong. Each still gets the exact path's masks; the second value
# says whether chats with three answers (and a system turn) may take the one-rendering path at all.
TRICKY = {
    # Mistral-style: the system prompt goes in front of the last user message, so a prefix of the chat
    # renders it elsewhere than the whole chat does.
    "system-at-last-user": (("{% set ns = namespace(last=-1) %}{% for m in messages %}{% if m.role == 'user' %}"
                             "{% set ns.last = loop.index0 %}{% endif %}{% endfor %}"
                             "{% for m in messages %}{% if m.role == 'user' %}[INST] {% if loop.index0 == ns.last "
                             "and messages[0].role == 'system' %}{{ messages[0].content }}\n\n{% endif %}"
                             "{{ m.content }} [/INST]{% elif m.role == 'assistant' %} {{ m.content }}{{ eos_token }}"
                             "{% endif %}{% endfor %}"), False),
    # Qwen3-style: the last answer gets an empty think block the earlier ones do not.
    "last-answer-differs": (("{% for m in messages %}<|im_start|>{{ m.role }}\n{% if m.role == 'assistant' and "
                             "loop.last %}<think>\n\n</think>\n\n{% endif %}{{ m.content }}<|im_end|>\n{% endfor %}"
                             "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"), False),
    # The generation prompt runs into the answer: where the answer starts depends on its first word.
    "prompt-into-answer": (("{% for m in messages %}{% if m.role == 'assistant' %}A: {{ m.content }}{{ eos_token }}\n"
                            "{% else %}{{ m.role }}: {{ m.content }}\n{% endif %}{% endfor %}"
                            "{% if add_generation_prompt %}A: Sure{% endif %}"), False),
    # A content written twice: there is no single place for the answer.
    "content-twice": (("{% for m in messages %}{{ m.role }}: {{ m.content }} ({{ m.content }})<|im_end|>\n"
                       "{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}"), False),
    # Reads inside the contents: chats whose answers start with "Sure" render differently from the layout.
    "reads-contents": (("{% for m in messages %}<|im_start|>{{ m.role }}\n{% if m.content.startswith('Sure') %}"
                        "(agrees) {% endif %}{{ m.content | replace('<b>', '**') }}<|im_end|>\n{% endfor %}"
                        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"), True),
    # No end of turn: an answer ends with its content, so trailing whitespace decides where.
    "no-end-of-turn": (NO_END_OF_TURN, True),
}


@pytest.mark.parametrize("name", list(TRICKY))
def test_templates_the_layout_cannot_follow_fall_back_to_the_exact_path(tokenizer, name):
    jinja, multi_turn_laid_out = TRICKY[name]
    with_template(tokenizer, jinja=jinja)
    chats = varied_chats(60)
    chats[-2][-1]["content"] += "  "  # trailing whitespace, as encode() may be given it
    assert templates.encode_many(tokenizer, chats, max_length=512) == [exact(tokenizer, c) for c in chats]
    shapes = templates._shapes(tokenizer)
    if multi_turn_laid_out:
        assert any(shape.trusted for shape in shapes.values())
    else:
        three_answers = shapes[("system",) + ("user", "assistant") * 3]
        assert three_answers.abandoned


def test_a_special_token_that_eats_spaces_does_not_cut_the_text(tokenizer):
    from tokenizers import AddedToken

    turn = AddedToken("<|turn|>", lstrip=True, rstrip=True, special=True, normalized=False)
    tokenizer.add_special_tokens({"extra_special_tokens": [turn]}, replace_extra_special_tokens=False)
    with_template(tokenizer, jinja="{% for m in messages %}<|turn|> {{ m.role }}: {{ m.content }} <|turn|>\n"
                                   "{% endfor %}{% if add_generation_prompt %}<|turn|> assistant: {% endif %}")
    chats = varied_chats()
    assert templates.encode_many(tokenizer, chats, max_length=512) == [exact(tokenizer, c) for c in chats]
    assert templates._shapes(tokenizer)[("user", "assistant")].trusted  # the layout holds: nothing cut there


@pytest.mark.parametrize("name", ["chatml", "llama2"])
def test_many_chats_match_the_exact_path_on_a_sentencepiece_tokenizer(sentencepiece_tokenizer, name):
    tokenizer = with_template(sentencepiece_tokenizer, name)
    chats = varied_chats()
    assert templates.encode_many(tokenizer, chats, max_length=512) == [exact(tokenizer, c) for c in chats]
