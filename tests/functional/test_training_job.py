"""The SageMaker training entry point, run as SageMaker runs it: a subprocess with SM_* variables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from playerguard.errors import ConfigError
from playerguard.pipelines.training_job import job_config, main

FAST = {"n_estimators": 30, "learning_rate": 0.2, "max_depth": 3, "early_stopping_rounds": 10, "n_jobs": 1}


def training_set(players: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(4):
        sessions = rng.poisson(3, players).astype(float)
        gap = rng.exponential(5, players)
        purchases = rng.poisson(0.5, players).astype(float)
        frames.append(
            pd.DataFrame(
                {
                    "player_id": [f"p{i}" for i in range(players)],
                    "cutoff": pd.Timestamp("2026-02-02", tz="UTC") + pd.Timedelta(days=7 * k),
                    "sessions_7d": sessions,
                    "days_since_last_session": gap,
                    "purchases_28d": purchases,
                    "label_churn": rng.random(players) < expit(0.5 - 0.5 * sessions + 0.3 * gap),
                    "label_purchase": rng.random(players) < expit(-2 + purchases),
                    "label_inhuman_play": pd.NA,
                }
            )
        )
    return pd.concat(frames, ignore_index=True).astype(
        {"label_churn": "Int8", "label_purchase": "Int8", "label_inhuman_play": "Int8"}
    )


def _environment(tmp_path: Path, **hyperparameters: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "MLFLOW_", "PLAYERGUARD_"))}
    env.update(
        SM_MODEL_DIR=str(tmp_path / "model"),
        SM_CHANNEL_TRAIN=str(tmp_path / "train"),
        SM_OUTPUT_DATA_DIR=str(tmp_path / "output" / "data"),
        SM_OUTPUT_DIR=str(tmp_path / "output"),
        **{f"SM_HP_{key.upper()}": value for key, value in hyperparameters.items()},
    )
    for key in ("SM_MODEL_DIR", "SM_CHANNEL_TRAIN", "SM_OUTPUT_DATA_DIR"):
        Path(env[key]).mkdir(parents=True, exist_ok=True)
    return env


def test_the_entry_point_trains_and_writes_a_loadable_bundle(tmp_path: Path) -> None:
    frame = training_set()
    # Two files in the channel, as a Parquet dataset split by the feature step would be.
    (tmp_path / "train").mkdir()
    frame.iloc[: len(frame) // 2].to_parquet(tmp_path / "train" / "part-0.parquet", index=False)
    frame.iloc[len(frame) // 2 :].to_parquet(tmp_path / "train" / "part-1.parquet", index=False)
    env = _environment(
        tmp_path,
        models="inhuman_play,churn,purchase",
        target_fpr="0.05",
        feature_set="default",
        params=json.dumps({"churn": FAST, "purchase": FAST}),
    )
    completed = subprocess.run(
        [sys.executable, "-m", "playerguard.pipelines.training_job"],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert "inhuman_play: test ROC-AUC nan" in completed.stdout  # no labels at all: trained unsupervised

    from playerguard.inference.bundle import load_bundle
    from playerguard.inference.scoring import score_frame

    bundle = load_bundle(tmp_path / "model")
    assert set(bundle.models) == {"inhuman_play", "churn", "purchase"}
    assert all(v.startswith("unregistered-") for v in bundle.versions.values())
    assert bundle.feature_set_name == "default"
    results = score_frame(bundle, frame.tail(10))
    assert [sorted(r["scores"]) for r in results] == [["churn", "inhuman_play", "purchase"]] * 10
    reports = tmp_path / "output" / "data" / "reports"
    assert (reports / "churn" / "report" / "report.html").is_file()
    assert not (tmp_path / "output" / "data" / "playerguard" / "mlflow.db").exists()


def test_a_job_without_training_data_fails_with_a_one_line_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key, value in _environment(tmp_path).items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    assert (
        capsys.readouterr().err == f"error: no Parquet files in the training channel {tmp_path / 'train'}\n"
    )
    assert (tmp_path / "output" / "failure").read_text().startswith("no Parquet files")


def test_hyperparameters_come_from_sm_hps_or_sm_hp_variables(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "policy.yaml").write_text("models: {}\n")
    base = {"SM_MODEL_DIR": "/opt/ml/model", "SM_CHANNEL_TRAIN": str(tmp_path / "train")}
    config = job_config({**base, "SM_HP_MODELS": "churn, purchase", "SM_HP_TARGET_FPR": "0.02",
                         "SM_HP_HORIZON_DAYS": "14", "SM_HP_POLICY": "policy.yaml",
                         "MLFLOW_TRACKING_URI": "http://127.0.0.1:5000"})  # fmt: skip
    assert config.models == ("churn", "purchase") and config.target_fpr == 0.02 and config.horizon_days == 14
    assert config.policy_path == tmp_path / "train" / "policy.yaml"
    assert config.tracking_uri == "http://127.0.0.1:5000" and config.feature_set == "default"
    hps = json.dumps({"models": ["churn"], "params": {"churn": {"max_depth": 2}}, "feature_set": "cs2"})
    config = job_config({**base, "SM_HPS": hps, "SM_HP_MODELS": "ignored"})
    assert config.models == ("churn",) and config.params == {"churn": {"max_depth": 2}}
    assert config.feature_set == "cs2" and config.tracking_uri is None
    with pytest.raises(ConfigError, match="SM_CHANNEL_TRAIN is not set"):
        job_config({"SM_MODEL_DIR": "/opt/ml/model"})
    with pytest.raises(ConfigError, match="invalid hyperparameter"):
        job_config({**base, "SM_HP_TARGET_FPR": "lots"})
    with pytest.raises(ConfigError, match="params must map"):
        job_config({**base, "SM_HP_PARAMS": "[1, 2]"})
