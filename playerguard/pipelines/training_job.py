"""SageMaker training job entry point: `python -m playerguard.pipelines.training_job`.

Reads the SageMaker environment (SM_MODEL_DIR, SM_CHANNEL_TRAIN with the training-set Parquet file(s),
SM_OUTPUT_DATA_DIR, hyperparameters from SM_HPS or SM_HP_*), trains, and writes a model bundle into
SM_MODEL_DIR. With MLFLOW_TRACKING_URI set the run is tracked and registered there; otherwise no registry
is used. Hyperparameters: models (comma list or JSON list), target_fpr, feature_set (name, or a path,
relative paths resolved in the train channel first), horizon_days, policy (path, same resolution),
params (JSON: model name → constructor arguments), min_roc_auc (the gate's floor on a tracked run).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from playerguard.errors import ConfigError, DataError, PlayerguardError
from playerguard.model_names import MODEL_NAMES
from playerguard.settings import Settings
from playerguard.training.gate import DEFAULT_MIN_ROC_AUC
from playerguard.training.metrics import DEFAULT_TARGET_FPR


@dataclass(frozen=True)
class JobConfig:
    """What a training job reads from its environment."""

    model_dir: Path
    train_dir: Path
    output_dir: Path | None
    models: tuple[str, ...]
    target_fpr: float
    feature_set: str | Path
    horizon_days: int | None
    policy_path: Path | None
    tracking_uri: str | None
    params: dict[str, dict[str, Any]]
    min_roc_auc: float = DEFAULT_MIN_ROC_AUC


def _hyperparameters(env: Mapping[str, str]) -> dict[str, Any]:
    if "SM_HPS" in env:
        try:
            return dict(json.loads(env["SM_HPS"]))
        except (ValueError, TypeError) as error:
            raise ConfigError(f"SM_HPS is not a JSON object: {error}") from None
    found: dict[str, Any] = {}
    for key, value in env.items():
        if key.startswith("SM_HP_"):
            try:
                found[key.removeprefix("SM_HP_").lower()] = json.loads(value)
            except ValueError:
                found[key.removeprefix("SM_HP_").lower()] = value
    return found


def _required_dir(env: Mapping[str, str], key: str) -> Path:
    if not env.get(key):
        raise ConfigError(f"the environment variable {key} is not set")
    return Path(env[key])


def _in_channel(value: str, train_dir: Path) -> Path:
    candidate = train_dir / value
    return candidate if not Path(value).is_absolute() and candidate.exists() else Path(value)


def job_config(env: Mapping[str, str]) -> JobConfig:
    """The job's configuration from SageMaker's environment variables; ConfigError names what is wrong."""
    hp = _hyperparameters(env)
    train_dir = _required_dir(env, "SM_CHANNEL_TRAIN")
    models = hp.get("models", list(MODEL_NAMES))
    if isinstance(models, str):
        models = [name.strip() for name in models.split(",") if name.strip()]
    try:
        target_fpr = float(hp.get("target_fpr", DEFAULT_TARGET_FPR))
        min_roc_auc = float(hp.get("min_roc_auc", DEFAULT_MIN_ROC_AUC))
        horizon = hp.get("horizon_days")
        horizon_days = None if horizon in (None, "") else int(horizon)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"invalid hyperparameter: {error}") from None
    params = hp.get("params", {})
    if isinstance(params, str):
        try:
            params = json.loads(params)
        except ValueError as error:
            raise ConfigError(f"hyperparameter params is not JSON: {error}") from None
    if not isinstance(params, dict) or not all(isinstance(v, dict) for v in params.values()):
        raise ConfigError("hyperparameter params must map a model name to its parameters")
    feature_set = str(hp.get("feature_set", "default"))
    looks_like_path = feature_set.endswith((".yaml", ".yml")) or "/" in feature_set
    return JobConfig(
        model_dir=_required_dir(env, "SM_MODEL_DIR"),
        train_dir=train_dir,
        output_dir=Path(env["SM_OUTPUT_DATA_DIR"]) if env.get("SM_OUTPUT_DATA_DIR") else None,
        models=tuple(models),
        target_fpr=target_fpr,
        feature_set=_in_channel(feature_set, train_dir) if looks_like_path else feature_set,
        horizon_days=horizon_days,
        policy_path=_in_channel(str(hp["policy"]), train_dir) if hp.get("policy") else None,
        tracking_uri=env.get("MLFLOW_TRACKING_URI") or None,
        params=params,
        min_roc_auc=min_roc_auc,
    )


def read_training_set(directory: Path) -> pd.DataFrame:
    """Every Parquet file under `directory`, concatenated."""
    files = sorted(p for p in Path(directory).rglob("*.parquet") if p.is_file())
    if not files:
        raise DataError(f"no Parquet files in the training channel {directory}")
    return pd.concat([pd.read_parquet(path) for path in files], ignore_index=True)


def run(env: Mapping[str, str] | None = None) -> Path:
    """Train from the job's environment and write the bundle into SM_MODEL_DIR; returns that directory."""
    from playerguard.inference.bundle import ModelSource, write_bundle
    from playerguard.training.train import train

    config = job_config(os.environ if env is None else env)
    training_set = read_training_set(config.train_dir)
    with tempfile.TemporaryDirectory() as scratch:
        output_dir = config.output_dir or Path(scratch)
        settings = Settings(home=output_dir / "playerguard", mlflow_tracking_uri=config.tracking_uri)
        result = train(
            settings,
            training_set,
            config.models,
            progress=lambda message: print(message, flush=True),
            feature_set=config.feature_set,
            target_fpr=config.target_fpr,
            track=config.tracking_uri is not None,
            horizon_days=config.horizon_days,
            params=config.params,
            output_dir=output_dir / "reports",
            min_roc_auc=config.min_roc_auc,
        )
        sources = [
            ModelSource(name, r.model_dir, r.registered_version, r.registered_name, r.run_id)
            for name, r in result.models.items()
            if r.status == "trained"
        ]
        if not sources:
            notes = "; ".join(f"{name}: {r.note}" for name, r in result.models.items())
            raise DataError(f"no model could be trained ({notes})")
        return write_bundle(
            config.model_dir, sources, feature_set=config.feature_set, policy_path=config.policy_path
        )


def main() -> None:
    """Run the job; a user error ends it with a one-line message (also in SageMaker's failure file)."""
    try:
        run()
    except PlayerguardError as error:
        failure_dir = os.environ.get("SM_OUTPUT_DIR")
        if failure_dir:
            Path(failure_dir, "failure").write_text(str(error))
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
