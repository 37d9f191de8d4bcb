"""Scoring a feature frame with a bundle's models and policy: the output contract, vectorised."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from playerguard.errors import ConfigError, DataError
from playerguard.inference.bundle import Bundle
from playerguard.inference.policy import load_policy
from playerguard.inference.scoring import TABLE_COLUMNS, score_frame, scores_table
from playerguard.training.propensity import ChurnModel, PurchaseModel

FAST = {"n_estimators": 20, "learning_rate": 0.3, "max_depth": 3, "early_stopping_rounds": 5, "n_jobs": 1}


def _players(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "player_id": [f"p{seed}-{i}" for i in range(n)],
            "sessions_7d": rng.poisson(3, n).astype(float),
            "purchases_28d": rng.poisson(0.6, n).astype(float),
        }
    )


def _fit(model_class: type, column: str, sign: float) -> object:
    def labelled(seed: int) -> tuple[pd.DataFrame, pd.Series]:
        x = _players(1500, seed)
        probability = 1 / (1 + np.exp(-sign * (x[column] - x[column].mean()) * 1.5))
        return x, pd.Series((np.random.default_rng(seed).random(len(x)) < probability).astype(int))

    (X, y), (X_val, y_val) = labelled(1), labelled(2)
    return model_class(**FAST).fit(X, y, X_val=X_val, y_val=y_val)


class CountingModel:
    """Wraps a model and counts predict/explain calls, to check scoring is one call per model."""

    def __init__(self, model: object) -> None:
        self.model, self.calls = model, {"predict_score": 0, "explain": 0}

    def predict_score(self, X: pd.DataFrame) -> np.ndarray:
        self.calls["predict_score"] += 1
        return self.model.predict_score(X)

    def explain(self, X: pd.DataFrame, top_k: int = 3) -> list[list[dict]]:
        self.calls["explain"] += 1
        return self.model.explain(X, top_k)


@pytest.fixture(scope="module")
def models() -> dict[str, CountingModel]:
    return {"churn": CountingModel(_fit(ChurnModel, "sessions_7d", -1.0)),
            "purchase": CountingModel(_fit(PurchaseModel, "purchases_28d", 1.0))}  # fmt: skip


def _bundle(models: dict[str, object]) -> Bundle:
    manifest = {"models": {name: {"version": f"{i + 1}", "threshold": None} for i, name in enumerate(models)}}
    return Bundle(path=Path("in-memory"), manifest=manifest, models=models, policy=load_policy())


def test_every_row_gets_scores_actions_reasons_and_versions(models: dict[str, CountingModel]) -> None:
    rows = _players(400, 3).assign(days_since_last_event=1.0)  # active: the churn rule's where: holds
    before = {name: dict(m.calls) for name, m in models.items()}
    results = score_frame(_bundle(models), rows)
    for name, model in models.items():  # one predict and one explain call per model for the whole frame
        assert model.calls == {k: v + 1 for k, v in before[name].items()}
    assert len(results) == len(rows)
    assert [r["player_id"] for r in results] == rows["player_id"].tolist()
    policy = load_policy()
    for result in results:
        assert set(result) == {"player_id", "scores", "actions", "reasons", "model_versions"}
        assert set(result["scores"]) == {"churn", "purchase"}
        assert all(0.0 <= s <= 1.0 for s in result["scores"].values())
        assert result["model_versions"] == {"churn": "1", "purchase": "2"}
        for name, reasons in result["reasons"].items():  # reasons explain decisions: acted rows only
            acted = any(action["model"] == name for action in result["actions"])
            assert 1 <= len(reasons) <= 3 if acted else reasons == []
        expected = [
            action
            for name in ("churn", "purchase")
            for action in policy.decide(
                name,
                np.array([result["scores"][name]]),
                features=lambda name: np.array([1.0 if name == "days_since_last_event" else np.nan]),
                model_scores={model: [score] for model, score in result["scores"].items()},
            )
            if action is not None
        ]
        assert result["actions"] == expected
    fired = {a["action"] for r in results for a in r["actions"]}
    assert fired == {"retention_offer", "purchase_offer"}  # the test data exercises both rules


def test_every_row_gets_reasons_on_request_and_a_frame_model_explains_only_the_rows_it_must(
    models: dict[str, CountingModel],
) -> None:
    rows = _players(200, 6).assign(days_since_last_event=1.0)
    everywhere = score_frame(_bundle(models), rows, reasons="all")
    assert all(1 <= len(reasons) <= 3 for result in everywhere for reasons in result["reasons"].values())
    acted = score_frame(_bundle(models), rows)
    for every, result in zip(everywhere, acted, strict=True):
        assert result["scores"] == every["scores"] and result["actions"] == every["actions"]
        for name, reasons in result["reasons"].items():
            acted_on = any(action["model"] == name for action in result["actions"])
            assert reasons == (every["reasons"][name] if acted_on else [])
    with pytest.raises(ConfigError, match="reasons must be acted or all, got 'some'"):
        score_frame(_bundle(models), rows, reasons="some")


def test_a_rule_with_reasons_none_leaves_its_rows_unexplained(models: dict[str, CountingModel]) -> None:
    """An offer rule that says `reasons: none` costs no attributions; the other model's rows still get them,
    and a request for every row's reasons still gets them all."""
    import yaml

    from playerguard.inference.policy import Policy, default_policy_path

    data = yaml.safe_load(default_policy_path().read_text())
    data["models"]["purchase"]["rules"][0]["reasons"] = "none"
    bundle = Bundle(path=Path("in-memory"), manifest=_bundle(models).manifest, models=models,
                    policy=Policy.from_dict(data))  # fmt: skip
    rows = _players(200, 7).assign(days_since_last_event=1.0)
    results = score_frame(bundle, rows)
    offers = [r for r in results if any(a["action"] == "purchase_offer" for a in r["actions"])]
    retained = [r for r in results if any(a["action"] == "retention_offer" for a in r["actions"])]
    assert offers and retained  # both rules fire on these rows
    assert all(r["reasons"]["purchase"] == [] for r in results)
    assert all(1 <= len(r["reasons"]["churn"]) <= 3 for r in retained)
    assert [r["actions"] for r in results] == [r["actions"] for r in score_frame(_bundle(models), rows)]
    everywhere = score_frame(bundle, rows, reasons="all")
    assert all(1 <= len(r["reasons"]["purchase"]) <= 3 for r in everywhere)


def test_scores_table_flattens_results_for_batch_output(models: dict[str, CountingModel]) -> None:
    results = score_frame(_bundle({"churn": models["churn"]}), _players(30, 4))
    table = scores_table(results)
    assert list(table.columns) == list(TABLE_COLUMNS)
    assert table["purchase_score"].isna().all() and table["inhuman_play_score"].isna().all()
    assert table["churn_score"].tolist() == [r["scores"]["churn"] for r in results]
    for column in ("actions", "reasons", "model_versions"):
        assert [json.loads(v) for v in table[column]] == [r[column] for r in results]
        assert table[column].tolist() == [json.dumps(r[column], sort_keys=column == "model_versions") for r in results]
    assert len(set(table["reasons"])) < len(table) and len(set(table["actions"])) < len(table)  # shared encodings
    assert scores_table([]).columns.tolist() == list(TABLE_COLUMNS)


def test_bad_frames_are_clear_errors(models: dict[str, CountingModel]) -> None:
    bundle = _bundle(models)
    assert score_frame(bundle, _players(0, 5)) == []
    with pytest.raises(DataError, match="no player_id column"):
        score_frame(bundle, _players(3, 5).drop(columns="player_id"))
    with pytest.raises(DataError, match="without a player_id"):
        score_frame(bundle, _players(3, 5).assign(player_id=["a", None, "c"]))
    with pytest.raises(DataError, match="must be numeric"):
        score_frame(bundle, _players(3, 5).assign(sessions_7d=["x", "y", "z"]))
