"""The endpoint's fast path (one feature matrix, reasons only where the policy acts) scores exactly as each
model scores the feature frame on its own, and its reasons are exact TreeSHAP wherever a flag is raised."""

from __future__ import annotations

import json

import numpy as np
import pytest
from endpoint_fixtures import as_records, shared_test_bundle, synthetic_features

from playerguard.inference.sagemaker_inference import ServingBundle, load_serving_bundle, score_request
from playerguard.inference.scoring import score_frame

FEATURE_REASON_KEYS = {"kind", "name", "value", "contribution", "method"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> ServingBundle:
    return load_serving_bundle(shared_test_bundle(tmp_path_factory))


def test_request_scores_equal_each_models_own_scores_on_the_frame(served: ServingBundle) -> None:
    frame = synthetic_features(300, seed=5)
    predictions = score_request(served, json.dumps(as_records(frame)), "application/json")
    for name, model in served.bundle.models.items():
        expected = model.predict_score(frame)  # the frame path: select_features, no shared matrix
        got = np.array([p["scores"][name] for p in predictions])
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)


def test_acted_rows_get_exact_reasons_and_the_others_none_but_fired_rules(served: ServingBundle) -> None:
    frame = synthetic_features(300, seed=6)
    predictions = score_request(served, json.dumps(as_records(frame)), "application/json")
    seen, unexplained = set(), 0
    for name, model in served.bundle.models.items():
        exact = model.explain(frame)  # every row exact, no method named
        for row, prediction in enumerate(predictions):
            acted = any(action["model"] == name for action in prediction["actions"])
            reasons = prediction["reasons"][name]
            features = [r for r in reasons if r["kind"] == "feature"]
            assert all(set(r) == FEATURE_REASON_KEYS for r in features)
            seen |= {r["method"] for r in features}
            if acted:
                assert [{k: v for k, v in r.items() if k != "method"} for r in reasons] == exact[row]
            else:
                assert features == [] and reasons == [r for r in exact[row] if r["kind"] == "rule"]
                unexplained += bool(exact[row])
    assert seen == {"tree_shap"} and unexplained  # the data exercises both kinds of row


def test_reasons_everywhere_on_request(served: ServingBundle) -> None:
    frame = synthetic_features(40, seed=8)
    results = score_frame(served.bundle, frame, reasons="all")
    answered = score_request(served, json.dumps(as_records(frame)), "application/json", reasons="all")
    assert json.loads(json.dumps(answered)) == json.loads(json.dumps(results))
    for name, model in served.bundle.models.items():
        stripped = [[{k: v for k, v in r.items() if k != "method"} for r in res["reasons"][name]] for res in results]
        assert stripped == model.explain(frame)
        assert all(r.get("method", "tree_shap") == "tree_shap" for res in results for r in res["reasons"][name])


def test_a_model_explains_the_rows_it_is_asked_to_as_it_explains_them_alone(served: ServingBundle) -> None:
    frame = synthetic_features(60, seed=11)
    wanted = np.random.default_rng(0).random(len(frame)) < 0.3
    for model in served.bundle.models.values():
        matrix = frame.reindex(columns=model.feature_names_).to_numpy(dtype="float64")
        asked = model.explain(matrix, reason_rows=wanted)
        stripped = [[{k: v for k, v in r.items() if k != "method"} for r in asked[i]] for i in np.flatnonzero(wanted)]
        assert stripped == model.explain(frame.loc[wanted])
        assert model.explain(matrix, reason_rows=np.zeros(len(frame), dtype=bool)) == [
            [r for r in rows if r["kind"] == "rule"] for rows in model.explain(frame)
        ]


def test_a_model_takes_its_feature_matrix_as_it_takes_the_frame(served: ServingBundle) -> None:
    frame = synthetic_features(50, seed=9)
    for model in served.bundle.models.values():
        matrix = frame.reindex(columns=model.feature_names_).to_numpy(dtype="float64")
        np.testing.assert_array_equal(model.predict_score(matrix), model.predict_score(frame))
        assert model.explain(matrix) == model.explain(frame)


def test_the_fast_encoder_answers_what_the_stdlib_encoder_answers(served: ServingBundle) -> None:
    from playerguard.inference.payloads import _stdlib_encode, encode_predictions

    predictions = score_request(served, json.dumps(as_records(synthetic_features(30, seed=10))), "application/json")
    predictions[0]["scores"]["churn"] = float("nan")  # strict JSON: non-finite numbers become null
    predictions[1]["scores"]["churn"] = np.float64(0.25)
    fast, stdlib = encode_predictions(predictions), _stdlib_encode(predictions)
    assert json.loads(fast) == json.loads(stdlib)
    assert json.loads(fast)["predictions"][0]["scores"]["churn"] is None
