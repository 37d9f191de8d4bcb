"""The three models, named once: every layer (and the light-import Lambda path) reads them from here."""

from playerguard.errors import ConfigError

MODEL_NAMES: tuple[str, ...] = ("inhuman_play", "churn", "purchase")


def check_model_name(model_name: str) -> str:
    """Return `model_name` if it names a known model, else raise ConfigError."""
    if model_name not in MODEL_NAMES:
        raise ConfigError(f"unknown model {model_name!r}: expected one of {', '.join(MODEL_NAMES)}")
    return model_name
