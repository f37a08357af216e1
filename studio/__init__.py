"""finetune-studio's engine: models, data, templates, trainer, judge. No UI imports here."""

__version__ = "0.1.0"
