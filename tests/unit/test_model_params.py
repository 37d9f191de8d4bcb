"""The three estimators follow scikit-learn's parameter conventions: parameters come from the constructor's
signature, are stored unchanged and validated in `fit`; `clone` and `set_params` work; `saved_params` is
the JSON form a saved model keeps, which the constructor takes back."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, clone

from playerguard.errors import ConfigError
from playerguard.training.inhuman_play import InhumanPlayModel
from playerguard.training.logistic import LogisticBaseline, LogisticChurnModel, LogisticPurchaseModel
from playerguard.training.propensity import ChurnModel, PurchaseModel

CLASSES = [
    InhumanPlayModel,
    ChurnModel,
    PurchaseModel,
    LogisticBaseline,
    LogisticChurnModel,
    LogisticPurchaseModel,
]
# Non-default values of every kind a parameter takes: mappings, sequences, None, numbers and strings.
CHANGED = {
    InhumanPlayModel: {
        "rules": "fast: reaction_ms_p50_28d < 120",
        "directions": {"accuracy_28d": "high"},
        "min_evidence": {"matches_28d": 3.0},
        "detector": "isolation_forest",
        "target_fpr": 0.02,
        "group_column": None,
        "n_jobs": 2,
    },
    ChurnModel: {"monotone": {"sessions_7d": -1}, "n_estimators": 50, "calibration": "platt", "n_jobs": None},
    PurchaseModel: {"monotone": {}, "max_depth": 2, "balance_classes": False},
    LogisticBaseline: {"features": ("sessions_7d", "tenure_days"), "C": 0.5},
    LogisticChurnModel: {"features": None, "calibration": "isotonic"},
    LogisticPurchaseModel: {"C": 2.0},
}


def _constructor_names(cls: type) -> set[str]:
    return {name for name in inspect.signature(cls.__init__).parameters if name != "self"}


@pytest.mark.parametrize("cls", CLASSES)
def test_get_params_comes_from_the_constructor_and_holds_values_unchanged(cls: type) -> None:
    assert issubclass(cls, BaseEstimator) and not hasattr(cls, "_PARAM_NAMES")
    model = cls(**CHANGED[cls])
    params = model.get_params()
    assert set(params) == _constructor_names(cls)
    for name, value in CHANGED[cls].items():
        assert params[name] is value  # stored as given: no copy, no conversion
    defaults = cls().get_params()
    assert all(defaults[name] == p.default for name, p in inspect.signature(cls.__init__).parameters.items()
               if name != "self")  # fmt: skip


@pytest.mark.parametrize("cls", CLASSES)
def test_clone_and_set_params_round_trip(cls: type) -> None:
    model = cls(**CHANGED[cls])
    copy = clone(model)
    assert type(copy) is cls and copy is not model
    assert copy.get_params() == model.get_params()
    reset = clone(model).set_params(**cls().get_params())
    assert reset.get_params() == cls().get_params()
    assert cls(**model.get_params()).get_params() == model.get_params()
    with pytest.raises(ValueError, match="Invalid parameter"):
        cls().set_params(no_such_parameter=1)


@pytest.mark.parametrize("cls", CLASSES)
def test_saved_params_are_json_and_the_constructor_takes_them_back(cls: type) -> None:
    saved = cls(**CHANGED[cls]).saved_params()
    assert json.loads(json.dumps(saved)) == saved
    assert set(saved) == _constructor_names(cls)
    assert cls(**saved).saved_params() == saved


def test_inhuman_play_saves_the_rules_it_was_given_in_their_mapping_form(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("fast: reaction_ms_p50_28d < 120\n")
    model = InhumanPlayModel(rules=path)
    assert model.get_params()["rules"] == path  # the path, as given
    saved = model.saved_params()["rules"]
    assert saved == InhumanPlayModel(rules="fast: reaction_ms_p50_28d < 120").saved_params()["rules"]
    assert isinstance(saved, dict) and list(saved) == ["fast"]


def test_parameters_are_validated_in_fit_not_in_the_constructor() -> None:
    model = InhumanPlayModel(target_fpr=2.0)  # accepted: sklearn's clone and set_params construct freely
    with pytest.raises(ConfigError, match="target_fpr must be between 0 and 1"):
        model.fit(pd.DataFrame({"matches_28d": [10.0, 12.0], "accuracy_28d": [0.2, 0.3]}))
    rows = pd.DataFrame({"sessions_7d": [1.0, 5.0, 2.0, 7.0, 0.0, 3.0], "tenure_days": [5.0, 9, 3, 40, 1, 8]})
    with pytest.raises(ConfigError, match="monotone constraint"):
        ChurnModel(monotone={"sessions_7d": 2}).fit(rows, pd.Series([1, 0, 1, 0, 1, 0]))


def test_a_clone_of_a_fitted_model_is_unfitted_with_the_same_parameters() -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        {"sessions_7d": rng.poisson(3, 200).astype(float), "tenure_days": rng.uniform(1, 90, 200)}
    )
    y = pd.Series((X["sessions_7d"] + rng.normal(0, 1, 200) < 3).astype(int))
    fitted = LogisticChurnModel(C=0.5).fit(X, y)
    copy = clone(fitted)
    assert copy.get_params() == fitted.get_params()
    assert hasattr(fitted, "coef_") and not hasattr(copy, "coef_")
    np.testing.assert_allclose(copy.fit(X, y).predict_score(X), fitted.predict_score(X))
