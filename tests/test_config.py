"""The run config: defaults, overrides, checks that name the field, and the TOML round trip."""

import pytest

from studio.config import SCHEDULERS, ConfigError, RunConfig, schedule_options


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


@pytest.mark.parametrize("override, hint", [("train.scheduler=\"cosinee\"", "did you mean 'cosine'"),
                                            ("train.optimizer=\"adamw\"", "train.optimizer")])
def test_a_misspelt_scheduler_or_optimizer_is_refused_when_the_config_is_made(override, hint):
    # Before: refused by transformers only after the model and data had loaded, leaving a failed run.
    with pytest.raises(ConfigError, match=hint):
        RunConfig().with_overrides([override])


def test_every_scheduler_and_optimizer_the_config_accepts_is_known_to_transformers():
    from transformers.trainer_utils import SchedulerType
    from transformers.training_args import OptimizerNames

    from studio.config import OPTIMIZERS, SCHEDULERS

    assert set(SCHEDULERS) <= {s.value for s in SchedulerType}
    assert set(OPTIMIZERS) <= {o.value for o in OptimizerNames}


@pytest.mark.parametrize("name", SCHEDULERS)
def test_every_scheduler_the_form_offers_builds_and_runs_a_whole_run(name):
    # Before: warmup_stable_decay and the two min_lr cosines failed at the run's start (they need arguments
    # the studio did not pass: "One of min_lr or min_lr_rate should be set", num_decay_steps).
    import torch
    from transformers import get_scheduler

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    schedule = get_scheduler(name, optimizer, num_warmup_steps=5, num_training_steps=60,
                             scheduler_specific_kwargs=schedule_options(name, 60))
    rates = []
    for _ in range(60):
        optimizer.step()
        schedule.step()
        rates.append(schedule.get_last_lr()[0])
    assert all(0 <= r <= 1e-3 + 1e-12 for r in rates)
    if name == "warmup_stable_decay":  # stable at the peak, then a decay over the last fifth
        assert rates[5:47] == pytest.approx([1e-3] * 42) and rates[-1] < 1e-4


def test_local_model_and_data_paths_are_saved_absolute(tmp_path, monkeypatch):
    # Before: saved as typed, so `studio resume/chat/export` from another directory took them for hub ids.
    (tmp_path / "tiny").mkdir()
    (tmp_path / "qa.jsonl").write_text("")
    monkeypatch.chdir(tmp_path)
    cfg = RunConfig().with_overrides(['model.name="tiny"', 'data.dataset="qa.jsonl"']).with_local_paths_resolved()
    assert cfg.model.name == str(tmp_path.resolve() / "tiny")
    assert cfg.data.dataset == str(tmp_path.resolve() / "qa.jsonl")
    hub = RunConfig().with_overrides(['data.dataset="org/name"']).with_local_paths_resolved()
    assert hub.model.name == "HuggingFaceTB/SmolLM2-135M-Instruct" and hub.data.dataset == "org/name"
