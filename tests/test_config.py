"""The run config: defaults, overrides, checks that name the field, and the TOML round trip."""

import pytest

from studio.config import ConfigError, RunConfig


def test_defaults_are_the_embedded_model_on_the_demo():
    cfg = RunConfig()
    assert cfg.model.name == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert cfg.data.dataset == "demo"
    assert cfg.model.quantization == "none"


def test_overrides_parse_as_toml_values():
    cfg = RunConfig().with_overrides(["train.max_steps=50", "train.learning_rate=1e-4", "lora.target_modules=[\"q_proj\"]",
                                      "model.gradient_checkpointing=true", "data.dataset=my/data"])
    assert cfg.train.max_steps == 50 and cfg.train.learning_rate == 1e-4
    assert cfg.lora.target_modules == ["q_proj"] and cfg.model.gradient_checkpointing is True
    assert cfg.data.dataset == "my/data"


@pytest.mark.parametrize("override, field", [
    ("train.learning_rate=5", "train.learning_rate"),
    ("train.max_steps=0", "train.max_steps"),
    ("model.quantization=\"3bit\"", "model.quantization"),
    ("lora.r=-1", "lora.r"),
    ("train.max_step=5", "train.max_step"),
    ("train.batch_size=\"eight\"", "train.batch_size"),
    ("nonsense", "nonsense"),
])
def test_bad_values_name_the_field(override, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        RunConfig().with_overrides([override])


def test_toml_round_trip(tmp_path):
    cfg = RunConfig(name="yoda").with_overrides(["train.max_steps=7", "template.preset=\"chatml\""])
    cfg.save(tmp_path / "c.toml")
    assert RunConfig.load(tmp_path / "c.toml") == cfg


def test_broken_toml_is_a_config_error(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[train\nmax_steps = 3\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        RunConfig.load(path)
