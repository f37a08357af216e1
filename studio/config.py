"""The run config: typed sections with defaults, checked on creation, loaded from and saved to TOML."""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import tomli_w

from studio.errors import StudioError

DEFAULT_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"


class ConfigError(StudioError, ValueError):
    """A config value is wrong; the message names the field (`train.learning_rate`) and what to do."""


def _check(condition: bool, path: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"{path}: {message}")


def _check_choice(value: str, choices: tuple[str, ...], path: str) -> None:
    close = difflib.get_close_matches(value, choices, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    _check(value in choices, path, f"{value!r} is not known; {hint}known: {', '.join(choices)}")


# transformers' SchedulerType and OptimizerNames values, listed here so a typo is refused when the config is
# made, before a model loads (importing transformers here would slow every import of the config);
# tests/test_config.py checks each name against the installed transformers.
AUTO = "auto"  # train.learning_rate chosen by a range test at the start of the run
SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
              "inverse_sqrt", "cosine_with_min_lr", "cosine_warmup_with_min_lr", "warmup_stable_decay")
OPTIMIZERS = ("adamw_torch", "adamw_torch_fused", "adafactor", "adamw_torch_4bit", "adamw_torch_8bit", "ademamix",
              "sgd", "adagrad", "adamw_bnb_8bit", "adamw_8bit", "ademamix_8bit", "lion_8bit", "lion_32bit",
              "paged_adamw_32bit", "paged_adamw_8bit", "paged_ademamix_32bit", "paged_ademamix_8bit",
              "paged_lion_32bit", "paged_lion_8bit", "rmsprop", "schedule_free_adamw", "stable_adamw")


def schedule_options(scheduler: str, max_steps: int) -> dict:
    """What a schedule needs beyond its warm-up and length (transformers' lr_scheduler_kwargs; without them those
    schedules fail when the run starts): the cosines with a floor end at a tenth of the rate, and
    warmup_stable_decay cools down over the run's last fifth (Hägele et al. 2024: a 20% cool-down matches cosine)."""
    if scheduler in ("cosine_with_min_lr", "cosine_warmup_with_min_lr"):
        return {"min_lr_rate": 0.1}
    if scheduler == "warmup_stable_decay":
        return {"num_decay_steps": max(1, max_steps // 5)}
    return {}


METHODS = ("sft", "dpo")  # supervised fine-tuning; direct preference optimization on chosen/rejected pairs
# trl.DPOConfig's loss types (trl 1.16), listed for the same reason; tests/test_config.py checks them against TRL.
DPO_LOSSES = ("sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot",
              "aot_unpaired", "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm")


@dataclass
class ModelConfig:
    name: str = DEFAULT_MODEL  # hub id, local folder, or .gguf file
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    dtype: str = "auto"  # auto | float32 | bfloat16 | float16
    quantization: str = "none"  # none | 4bit | 8bit | auto (4bit where CUDA exists, else none)
    gradient_checkpointing: bool = False
    trust_remote_code: bool = False
    adapter: str = ""  # a LoRA adapter to continue training (runs/NAME/adapter); empty: a new adapter

    def __post_init__(self) -> None:
        _check(bool(self.name.strip()), "model.name", "must name a hub id, a local folder or a .gguf file")
        _check(self.dtype in {"auto", "float32", "bfloat16", "float16"}, "model.dtype",
               f"{self.dtype!r} is not one of auto, float32, bfloat16, float16")
        _check(self.quantization in {"none", "4bit", "8bit", "auto"}, "model.quantization",
               f"{self.quantization!r} is not one of none, 4bit, 8bit, auto")
        _check(self.device == "auto" or self.device.split(":")[0] in {"cpu", "cuda", "mps"},
               "model.device", f"{self.device!r} is not auto, cpu, cuda, cuda:N or mps")


@dataclass
class LoraConfig:
    r: int = 16
    alpha: int = 32
    # 0.1 as QLoRA's paper used for models up to 13B; on the style benchmark 0.1 with a 10-step warm-up won the held-out
    # style paragraph on both seeds, where 0.05 with 5 steps lost it on one.
    dropout: float = 0.1
    target_modules: list[str] = field(default_factory=lambda: ["all-linear"])
    bias: str = "none"  # none | all | lora_only

    def __post_init__(self) -> None:
        _check(self.r > 0, "lora.r", "must be a positive rank (8 to 64 is usual)")
        _check(self.alpha > 0, "lora.alpha", "must be positive (often 2 x r)")
        _check(0.0 <= self.dropout < 1.0, "lora.dropout", "must be in [0, 1)")
        _check(bool(self.target_modules), "lora.target_modules", 'must list modules, or ["all-linear"]')
        _check(self.bias in {"none", "all", "lora_only"}, "lora.bias", "must be none, all or lora_only")


@dataclass
class DataConfig:
    dataset: str = "demo"  # demo | hub id | path to .jsonl/.json/.csv/.parquet
    split: str = "train"  # hub datasets only
    prompt_column: str = "question"
    response_column: str = "yoda"
    system_column: str = ""  # optional column with a per-row system prompt
    context_column: str = ""  # optional column appended to the prompt
    messages_column: str = "messages"  # used instead of prompt/response when rows carry chat lists
    chosen_column: str = "chosen"  # preference pairs (train.method = "dpo"): the better answer
    rejected_column: str = "rejected"  # ... and the worse one (the demo's pairs: its yoda and plain answers)
    system_prompt: str = ""  # system prompt for every row without its own
    max_length: int = 512
    overlong: str = "drop"  # drop | truncate_prompt: what to do when the answer would be cut
    eval_fraction: float = 0.1
    eval_max_rows: int = 64
    seed: int = 1234

    def __post_init__(self) -> None:
        _check(bool(self.dataset.strip()), "data.dataset", 'must be "demo", a hub id or a file path')
        _check(self.max_length >= 16, "data.max_length", "must be at least 16 tokens")
        _check(self.overlong in {"drop", "truncate_prompt"}, "data.overlong", "must be drop or truncate_prompt")
        _check(0.0 < self.eval_fraction < 0.9, "data.eval_fraction", "must be in (0, 0.9)")
        _check(self.eval_max_rows >= 1, "data.eval_max_rows", "must be at least 1")


@dataclass
class TemplateConfig:
    preset: str = "tokenizer"  # a name from studio.templates.PRESETS
    jinja: str = ""  # a custom chat template; wins over the preset when set

    def __post_init__(self) -> None:
        _check(bool(self.preset.strip()) or bool(self.jinja.strip()), "template.preset",
               "name a preset or give a custom jinja template")


@dataclass
class TrainConfig:
    max_steps: int = 60
    learning_rate: float | str = AUTO  # a number, or "auto": a learning-rate range test picks it (studio.lr_range)
    # One of SCHEDULERS. A constant rate after warm-up, at the range test's minimum/30: on the style benchmark's 60
    # steps cosine to zero from minimum/10 lost the held-out style paragraph to a plain constant-rate loop.
    scheduler: str = "constant_with_warmup"
    warmup_steps: int = 10  # a sixth of the default 60 steps (5 lost the paragraph on one benchmark seed)
    batch_size: int = 8
    grad_accum: int = 1
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    optimizer: str = "adamw_torch"  # one of OPTIMIZERS
    seed: int = 42
    eval_every: int = 20
    sample_every: int = 20
    save_every: int = 50
    keep_checkpoints: int = 3  # the newest N checkpoints are kept; the newest valid one is never removed
    sample_prompts: int = 4  # K fixed held-out questions sampled at each sample step
    sample_max_new_tokens: int = 64
    sample_temperature: float = 0.7
    batch_tokens: int = 0  # when set, batches hold up to this many tokens (padded size) instead of batch_size rows
    group_by_length: bool = False
    packing: bool = True  # padding-free: a batch's rows concatenated, never attending to each other
    nan_pause_after: int = 3  # consecutive non-finite steps that pause the run
    observe_budget: float = 0.1  # the most of the wall time evals and samples may take; later ones are skipped
    judge_every: int = 0  # judge the sampled answers at these steps, off the training thread (0 = off)
    judge_prompt: str = ""  # a judge preset or prompt TOML; "" = the default judge (local when no key is set)
    gpus: int = 1  # processes training data-parallel (one per GPU; on a CPU-only machine, CPU processes)
    method: str = "sft"  # one of METHODS

    def __post_init__(self) -> None:
        _check(self.max_steps >= 1, "train.max_steps", "must be at least 1")
        _check(self.learning_rate == AUTO or (isinstance(self.learning_rate, float) and 0.0 < self.learning_rate < 1.0),
               "train.learning_rate", f"must be {AUTO!r} (a range test picks it) or a number in (0, 1); 1e-4 to 1e-3 is "
                                      "usual for LoRA")
        _check(self.warmup_steps >= 0, "train.warmup_steps", "must be 0 or more")
        _check(self.batch_size >= 1, "train.batch_size", "must be at least 1")
        _check(self.grad_accum >= 1, "train.grad_accum", "must be at least 1")
        _check(self.batch_tokens >= 0, "train.batch_tokens", "must be 0 (batches of batch_size rows) or a number "
                                                             "of tokens per batch")
        _check(self.max_grad_norm > 0, "train.max_grad_norm", "must be positive")
        for name in ("eval_every", "sample_every", "save_every"):
            _check(getattr(self, name) >= 0, f"train.{name}", "must be 0 (off) or a number of steps")
        _check(self.sample_prompts >= 0, "train.sample_prompts", "must be 0 or more")
        _check(self.sample_max_new_tokens >= 1, "train.sample_max_new_tokens", "must be at least 1")
        _check(self.sample_temperature > 0, "train.sample_temperature", "must be positive")
        _check(self.nan_pause_after >= 1, "train.nan_pause_after", "must be at least 1")
        _check(self.keep_checkpoints >= 1, "train.keep_checkpoints", "must be at least 1")
        _check(0.0 < self.observe_budget <= 1.0, "train.observe_budget",
               "must be in (0, 1]: the share of wall time evals and samples may take (1 = never skip one)")
        _check(self.gpus >= 1, "train.gpus", "must be at least 1")
        _check(self.judge_every >= 0, "train.judge_every", "must be 0 (off) or a number of steps")
        _check(not self.judge_every or (self.sample_every and self.judge_every % self.sample_every == 0),
               "train.judge_every", "must be a multiple of train.sample_every: the judge scores the answers sampled "
                                    "at those steps")
        _check_choice(self.scheduler, SCHEDULERS, "train.scheduler")
        _check_choice(self.optimizer, OPTIMIZERS, "train.optimizer")
        _check_choice(self.method, METHODS, "train.method")


@dataclass
class DpoConfig:
    """Direct preference optimization (train.method = "dpo"); the reference is the starting policy: the base
    model, or model.adapter when the run continues from one."""

    beta: float = 0.1  # how far the policy may move from the reference (higher: less)
    loss: str = "sigmoid"  # one of DPO_LOSSES
    label_smoothing: float = 0.0  # robust: the share of flipped labels; exo_pair: its epsilon (1e-3)
    # The chosen answers' NLL (TRL's "sft" loss, a per-token mean) added with this weight (RPO, Pang et al. 2024).
    # DPO alone lowers the chosen answers' likelihood too: on the real 135M after 30 SFT steps, 30 DPO steps raised
    # the held-out Yoda answers' loss 2.992 -> 3.023 nats/token at weight 1 and kept it (2.991) at 3, while the
    # held-out margin grew at both (-17.1 -> -5.7 and -9.2 nats); plain DPO (0) raised the style loss 3.58 -> 4.35.
    sft_weight: float = 3.0

    def __post_init__(self) -> None:
        _check(self.beta > 0, "dpo.beta", "must be positive (0.1 is usual; ipo: 0.1 to 1)")
        _check_choice(self.loss, DPO_LOSSES, "dpo.loss")
        _check(0.0 <= self.label_smoothing < 0.5, "dpo.label_smoothing", "must be in [0, 0.5)")
        _check(self.sft_weight >= 0, "dpo.sft_weight", "must be 0 (plain DPO) or more (3.0 by default: RPO's NLL term)")
        _check(self.loss != "exo_pair" or self.label_smoothing > 0, "dpo.label_smoothing",
               "exo_pair needs a positive label_smoothing (its paper uses 1e-3)")


_SECTIONS = {"model": ModelConfig, "lora": LoraConfig, "data": DataConfig, "template": TemplateConfig,
             "train": TrainConfig, "dpo": DpoConfig}


@dataclass
class RunConfig:
    name: str = ""  # run name; empty means one is made from the model, dataset and time
    model: ModelConfig = field(default_factory=ModelConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    data: DataConfig = field(default_factory=DataConfig)
    template: TemplateConfig = field(default_factory=TemplateConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    dpo: DpoConfig = field(default_factory=DpoConfig)

    def __post_init__(self) -> None:
        _check(self.train.method != "dpo" or self.data.overlong == "drop", "data.overlong",
               "DPO drops pairs longer than data.max_length (truncate_prompt is for SFT): set it to \"drop\"")

    # -- building -------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunConfig:
        unknown = set(raw) - set(_SECTIONS) - {"name"}
        _check(not unknown, ", ".join(sorted(unknown)), f"unknown section; known: name, {', '.join(_SECTIONS)}")
        sections = {}
        for key, section_cls in _SECTIONS.items():
            values = raw.get(key, {})
            _check(isinstance(values, dict), key, "must be a table")
            known = {f.name: f for f in fields(section_cls)}
            for name in values:
                _check(name in known, f"{key}.{name}", f"unknown key; known: {', '.join(known)}")
            sections[key] = section_cls(**{n: _coerce(f"{key}.{n}", known[n], v) for n, v in values.items()})
        return cls(name=str(raw.get("name", "")), **sections)

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        path = Path(path)
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such config file") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        return cls.from_dict(raw)

    def with_overrides(self, assignments: list[str]) -> RunConfig:
        """Apply `section.key=value` strings (the CLI's --set); values parse as TOML, else as text."""
        raw = self.to_dict()
        for assignment in assignments:
            key, sep, text = assignment.partition("=")
            _check(bool(sep), assignment, "an override is section.key=value, e.g. train.max_steps=50")
            parts = key.strip().split(".")
            if parts == ["name"]:
                raw["name"] = text
                continue
            _check(len(parts) == 2 and parts[0] in _SECTIONS, key, "an override is section.key=value")
            raw[parts[0]][parts[1]] = parse_value(text)
        return RunConfig.from_dict(raw)

    def with_local_paths_resolved(self) -> RunConfig:
        """The config with a model, adapter or dataset that names a local file or folder made absolute, so the
        saved config means the same thing from any directory; hub ids and "demo" stay as they are."""
        return dataclasses.replace(
            self, model=dataclasses.replace(self.model, name=_absolute_if_local(self.model.name),
                                            adapter=_absolute_if_local(self.model.adapter) if self.model.adapter
                                            else ""),
            data=dataclasses.replace(self.data, dataset=self.data.dataset if self.data.dataset == "demo"
                                     else _absolute_if_local(self.data.dataset)))

    # -- saving ---------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_toml(self) -> str:
        return tomli_w.dumps(self.to_dict())

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_toml(), encoding="utf-8")


def _absolute_if_local(name: str) -> str:
    path = Path(name).expanduser()
    return str(path.resolve()) if path.exists() else name


def parse_value(text: str) -> Any:
    """A value as typed after `key=`: TOML (numbers, booleans, lists, quoted strings), else the text itself."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _coerce(path: str, spec: dataclasses.Field, value: Any) -> Any:
    """Check a TOML value against the field's type; ints are accepted where floats are wanted."""
    kind = spec.type if isinstance(spec.type, str) else getattr(spec.type, "__name__", str(spec.type))
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind == "list[str]" and isinstance(value, str):
        return [value]
    expected = {"int": int, "float": float, "str": str, "bool": bool, "list[str]": list}.get(kind)
    ok = expected is None or (isinstance(value, expected) and not (expected is int and isinstance(value, bool)))
    _check(ok, path, f"expected {kind}, got {value!r}")
    return value
