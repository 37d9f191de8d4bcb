"""Behaviour of the inhuman-play model on synthetic players with known cheaters."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.preprocessing import FunctionTransformer

from playerguard.errors import ConfigError, DataError
from playerguard.training.inhuman_detectors import IsolationDetector
from playerguard.training.inhuman_play import InhumanPlayModel
from playerguard.training.metrics import roc_auc

FAST = {"n_estimators": 60}


def players(n: int, cheater_share: float, seed: int, prefix: str = "p") -> pd.DataFrame:
    """Synthetic per-player features: cheaters aim better, react faster and win more; nobody breaks a rule."""
    rng = np.random.default_rng(seed)
    cheater = rng.random(n) < cheater_share
    reaction = rng.normal(265, 25, n) - 45 * cheater
    frame = pd.DataFrame(
        {
            "player_id": [f"{prefix}{seed}-{i}" for i in range(n)],
            "matches_28d": rng.poisson(8, n) + 3.0,
            "sessions_28d": rng.poisson(14, n) + 1.0,
            "accuracy_28d": np.clip(rng.normal(0.25, 0.05, n) + 0.12 * cheater, 0.01, 0.95),
            "headshot_rate_28d": np.clip(rng.normal(0.2, 0.05, n) + 0.12 * cheater, 0.0, 0.42),
            "kd_ratio_28d": rng.lognormal(0.0, 0.3, n) * np.where(cheater, 1.8, 1.0),
            "reaction_ms_p50_28d": np.maximum(reaction, 165.0),
            "reaction_ms_p10_28d": np.maximum(reaction - 45, 115.0),
            "session_gap_cv_28d": np.clip(rng.normal(0.8, 0.2, n), 0.3, None),
            "spend_28d": rng.exponential(5.0, n),
        }
    )
    frame.loc[rng.random(n) < 0.05, "accuracy_28d"] = np.nan
    frame["label_inhuman_play"] = pd.array(cheater.astype(int), dtype="Int8")
    return frame


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    return players(1500, 0.1, seed=1)


@pytest.fixture(scope="module")
def test_frame() -> pd.DataFrame:
    return players(1500, 0.1, seed=2)


@pytest.fixture(scope="module")
def unsupervised(train: pd.DataFrame) -> InhumanPlayModel:
    return InhumanPlayModel().fit(train)


@pytest.fixture(scope="module")
def supervised(train: pd.DataFrame) -> InhumanPlayModel:
    return InhumanPlayModel(**FAST).fit(train, train["label_inhuman_play"])


@pytest.fixture(scope="module", params=["unsupervised", "supervised"])
def model(request: pytest.FixtureRequest) -> InhumanPlayModel:
    return request.getfixturevalue(request.param)


def test_modes_and_held_out_ranking(
    unsupervised: InhumanPlayModel, supervised: InhumanPlayModel, test_frame
) -> None:
    y = test_frame["label_inhuman_play"].to_numpy(dtype="int8")
    assert unsupervised.mode_ == "unsupervised" and supervised.mode_ == "supervised"
    for fitted in (unsupervised, supervised):
        scores = fitted.predict_score(test_frame)
        assert scores.shape == (len(test_frame),)
        assert np.all((scores >= 0) & (scores <= 1))
        assert roc_auc(y, scores) > 0.9
    assert roc_auc(y, supervised.predict_score(test_frame)) > roc_auc(
        y, unsupervised.predict_score(test_frame)
    )


def test_too_few_positives_falls_back_to_unsupervised(train: pd.DataFrame) -> None:
    y = pd.Series(0, index=train.index, dtype="Int8")
    y.iloc[:5] = 1
    assert InhumanPlayModel(min_positives=20).fit(train, y).mode_ == "unsupervised"


def test_partially_labelled_rows(train: pd.DataFrame, test_frame: pd.DataFrame) -> None:
    y = train["label_inhuman_play"].astype("Float64")
    y.iloc[::2] = pd.NA
    fitted = InhumanPlayModel(**FAST).fit(train, y)
    assert fitted.mode_ == "supervised"
    assert (
        roc_auc(test_frame["label_inhuman_play"].to_numpy(dtype="int8"), fitted.predict_score(test_frame))
        > 0.9
    )


@pytest.mark.parametrize("labelled", [False, True])
def test_fit_ignores_player_ids_and_row_order(
    train: pd.DataFrame, test_frame: pd.DataFrame, labelled: bool
) -> None:
    shuffled = train.sample(frac=1.0, random_state=7).reset_index(drop=True)
    shuffled["player_id"] = [f"renamed-{i}" for i in range(len(shuffled))]
    first = InhumanPlayModel(**FAST).fit(train, train["label_inhuman_play"] if labelled else None)
    second = InhumanPlayModel(**FAST).fit(shuffled, shuffled["label_inhuman_play"] if labelled else None)
    np.testing.assert_array_equal(first.predict_score(test_frame), second.predict_score(test_frame))
    assert first.threshold_ == second.threshold_


def test_predict_ignores_player_ids_and_row_order(model: InhumanPlayModel, test_frame: pd.DataFrame) -> None:
    scores = model.predict_score(test_frame)
    order = np.random.default_rng(3).permutation(len(test_frame))
    permuted = test_frame.iloc[order].assign(player_id="someone else")
    np.testing.assert_array_equal(model.predict_score(permuted), scores[order])


@pytest.mark.parametrize(
    ("feature", "value", "rule"),
    [("headshot_rate_28d", 0.9, "sustained_headshots"), ("reaction_ms_p50_28d", 90.0, "superhuman_reaction")],
)
def test_inhuman_values_raise_the_score_and_name_the_rule(
    model: InhumanPlayModel, test_frame: pd.DataFrame, feature: str, value: float, rule: str
) -> None:
    legit = test_frame.loc[test_frame["label_inhuman_play"] == 0].head(50)
    pushed = legit.assign(**{feature: value})
    assert np.all(model.predict_score(pushed) > model.predict_score(legit))
    for reasons in model.explain(pushed):
        assert reasons[0] == {"kind": "rule", "name": rule, "value": value, "contribution": None}
    for reasons in model.explain(legit):
        assert all(reason["kind"] == "feature" for reason in reasons)


def test_reasons_are_well_formed(model: InhumanPlayModel, test_frame: pd.DataFrame) -> None:
    explained = model.explain(test_frame.head(40), top_k=2)
    assert len(explained) == 40
    assert any(explained)
    for reasons in explained:
        assert len(reasons) <= 2
        contributions = [r["contribution"] for r in reasons]
        assert contributions == sorted(contributions, reverse=True)
        for reason in reasons:
            assert set(reason) == {"kind", "name", "value", "contribution"}
            assert reason["name"] in model.feature_names_ and reason["contribution"] > 0
    cheater = test_frame.loc[test_frame["label_inhuman_play"] == 1].head(20)
    named = {r["name"] for reasons in model.explain(cheater) for r in reasons}
    assert named & {
        "accuracy_28d",
        "headshot_rate_28d",
        "kd_ratio_28d",
        "reaction_ms_p50_28d",
        "reaction_ms_p10_28d",
    }


def test_threshold_keeps_target_fpr_on_held_out_legit_players() -> None:
    population = players(4000, 0.0, seed=11)
    held_out = players(20000, 0.0, seed=12)
    unlabelled = InhumanPlayModel(target_fpr=0.01).fit(population)
    assert 0.006 <= np.mean(unlabelled.predict_score(held_out) >= unlabelled.threshold_) <= 0.016

    labelled_train = players(3000, 0.1, seed=13)
    labelled = InhumanPlayModel(target_fpr=0.01, **FAST).fit(
        labelled_train, labelled_train["label_inhuman_play"]
    )
    assert np.mean(labelled.predict_score(held_out) >= labelled.threshold_) <= 0.02
    row = labelled.fpr_table_.loc[labelled.fpr_table_["target_fpr"] == 0.01].iloc[0]
    assert row["fpr"] <= 0.01 and row["recall"] > 0.5
    # the threshold spends the budget only as far as it catches cheaters: above the budget's edge, and on
    # unseen labelled players it catches (nearly) as many as the edge would
    assert labelled.threshold_ >= row["threshold"]
    unseen = players(4000, 0.1, seed=14)
    cheaters = labelled.predict_score(unseen.loc[unseen["label_inhuman_play"] == 1])
    assert np.mean(cheaters >= labelled.threshold_) >= np.mean(cheaters >= row["threshold"]) - 0.03


def test_missing_and_extra_columns(model: InhumanPlayModel, test_frame: pd.DataFrame) -> None:
    slim = test_frame.drop(columns=["reaction_ms_p50_28d", "kd_ratio_28d"]).assign(shoe_size=43.0)
    scores = model.predict_score(slim)
    assert scores.shape == (len(slim),) and np.all(np.isfinite(scores))
    assert len(model.explain(slim)) == len(slim)


def test_players_without_play_are_not_judged(
    model: InhumanPlayModel, train: pd.DataFrame, test_frame
) -> None:
    idle = test_frame.head(20).assign(matches_28d=0.0, headshot_rate_28d=0.9)
    assert np.all(model.predict_score(idle) == 0.0)
    assert model.explain(idle) == [[]] * 20
    # idle rows are left out of fitting: adding them changes nothing
    padded = pd.concat([train, idle.assign(player_id="idle")], ignore_index=True)
    labels = padded["label_inhuman_play"] if model.mode_ == "supervised" else None
    refitted = InhumanPlayModel(**model.get_params()).fit(padded, labels)
    np.testing.assert_array_equal(refitted.predict_score(test_frame), model.predict_score(test_frame))


def test_rules_on_absent_features_are_skipped_at_fit(train: pd.DataFrame) -> None:
    no_reaction = train.drop(columns=["reaction_ms_p50_28d", "reaction_ms_p10_28d"])
    fitted = InhumanPlayModel().fit(no_reaction)
    assert {r.name for r in fitted.active_rules_} == {"sustained_headshots", "robotic_schedule"}
    cs2_like = pd.DataFrame(
        {"accuracy": np.linspace(0.1, 0.5, 50), "kills_per_round": np.linspace(0.2, 1.5, 50)}
    )
    assert InhumanPlayModel().fit(cs2_like).active_rules_ == []


@pytest.mark.parametrize("kind", ["unsupervised", "supervised", "isolation_forest"])
def test_save_load_round_trip(
    kind: str, train: pd.DataFrame, test_frame: pd.DataFrame, tmp_path: Path, request
) -> None:
    if kind == "isolation_forest":
        fitted = InhumanPlayModel(detector="isolation_forest").fit(train.head(500))
    else:
        fitted = request.getfixturevalue(kind)
    fitted.save(tmp_path / "model")
    loaded = InhumanPlayModel.load(tmp_path / "model")
    np.testing.assert_array_equal(loaded.predict_score(test_frame), fitted.predict_score(test_frame))
    assert loaded.explain(test_frame.head(30)) == fitted.explain(test_frame.head(30))
    assert loaded.threshold_ == fitted.threshold_
    pd.testing.assert_frame_equal(loaded.fpr_table_, fitted.fpr_table_)
    assert loaded.saved_params() == fitted.saved_params()


def test_no_pickle_in_the_saved_directory(tmp_path: Path) -> None:
    small = players(400, 0.15, seed=5)
    fitted = InhumanPlayModel(detector="isolation_forest", cv_folds=2, **FAST).fit(
        small, small["label_inhuman_play"]
    )
    fitted.save(tmp_path)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["booster.ubj", "isolation_forest.skops", "model.json"]
    for path in tmp_path.iterdir():
        assert not path.read_bytes().startswith(b"\x80"), f"{path.name} looks like a pickle"
    with zipfile.ZipFile(tmp_path / "isolation_forest.skops") as archive:
        assert not [name for name in archive.namelist() if name.endswith((".pkl", ".pickle"))]


def test_a_tampered_skops_file_is_refused(tmp_path: Path) -> None:
    InhumanPlayModel(detector="isolation_forest").fit(players(200, 0.0, seed=6)).save(tmp_path)
    sio.dump(FunctionTransformer(func=os.getcwd), tmp_path / IsolationDetector.FILE)
    with pytest.raises(DataError, match="types this model never saves"):
        InhumanPlayModel.load(tmp_path)


def test_bad_input(train: pd.DataFrame) -> None:
    with pytest.raises(DataError):
        InhumanPlayModel().fit(train, train["label_inhuman_play"].astype(int) * 2)
    with pytest.raises(DataError):
        InhumanPlayModel().fit(train, train["label_inhuman_play"].iloc[:10])
    with pytest.raises(DataError):
        InhumanPlayModel().fit(train[["player_id"]])
    with pytest.raises(ConfigError):
        InhumanPlayModel(target_fpr=0.0).fit(train)
    with pytest.raises(ConfigError):
        InhumanPlayModel(detector="magic").fit(train)
    with pytest.raises(ConfigError):
        InhumanPlayModel(directions={"accuracy_28d": "up"}).fit(train)
    with pytest.raises(ConfigError):
        InhumanPlayModel(rules={"r": "x ~ 1"}).fit(train)
