"""Golden responses: a few full answers of the scoring path (scores, actions, reasons and their methods,
versions) pinned in tests/golden/scoring_responses.json, so a faster path cannot change what it answers:
requests with the default reasons (feature reasons only where the policy acts) and with reasons for every
row, on the endpoint path and the batch path.

The bundle carries its own copy of the policy (tests/golden/scoring_policy.yaml), so the packaged default
policy can change without moving these answers. Floats are compared to 1e-9 and everything else exactly. Set
PLAYERGUARD_UPDATE_GOLDEN=1 to rewrite the file after a deliberate change to the models or the scoring path.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
from endpoint_fixtures import as_records, fit_test_models, synthetic_features

from playerguard.inference.bundle import ModelSource, write_bundle
from playerguard.inference.sagemaker_inference import ServingBundle, load_serving_bundle, score_request
from playerguard.inference.scoring import score_frame

GOLDEN = Path(__file__).parents[1] / "golden" / "scoring_responses.json"
POLICY = GOLDEN.with_name("scoring_policy.yaml")
TOLERANCE = 1e-9


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> ServingBundle:
    directory = tmp_path_factory.mktemp("golden-bundle")
    models = fit_test_models(directory)
    sources = [ModelSource(name, path, version="1", registered_name=f"playerguard-{name}") for name, path in models.items()]
    return load_serving_bundle(write_bundle(directory / "bundle", sources, feature_set="default", policy_path=POLICY))


def _records() -> list[dict[str, Any]]:
    """Twelve players: two cheaters by the rules, one with too few matches to judge, the rest as drawn."""
    frame = synthetic_features(12, seed=31)
    for row in (0, 1):
        frame.loc[row, ["headshot_rate_28d", "reaction_ms_p50_28d", "matches_28d"]] = [0.7, 120.0, 12.0]
    frame.loc[2, "matches_28d"] = 1.0
    frame.loc[3, "sessions_7d"] = float("nan")
    return as_records(frame)


def _events() -> list[dict[str, Any]]:
    events = []
    for day in range(1, 15):
        for player, shots, hits in (("alice", 40, 12), ("bob", 30, 29)):
            stamp = f"2026-03-{day:02d}T1{day % 10}:00:00Z"
            events += [
                {"player_id": player, "event_type": "session_start", "event_timestamp": stamp, "game_id": "g",
                 "platform": "pc", "session_id": f"{player}{day}"},
                {"player_id": player, "event_type": "match_end", "event_timestamp": stamp.replace(":00:00", ":20:00"),
                 "game_id": "g", "platform": "pc", "shots": shots, "hits": hits, "headshots": hits // 2,
                 "kills": 3, "deaths": 2, "reaction_ms": 240.0 if player == "alice" else 95.0},
            ]
    return events


def _responses(served: ServingBundle) -> dict[str, Any]:
    records = _records()
    csv = synthetic_features(4, seed=32).to_csv(index=False)
    events = {"events": _events(), "cutoff": "2026-03-20T00:00:00Z"}
    batch = score_frame(served.bundle, synthetic_features(6, seed=33), reasons="all")
    return {
        "records": score_request(served, json.dumps(records), "application/json"),
        "records_all_reasons": score_request(served, json.dumps(records), "application/json", reasons="all"),
        "csv": score_request(served, csv, "text/csv"),
        "events": score_request(served, json.dumps(events), "application/json"),
        "batch_all_exact": json.loads(json.dumps(batch)),
    }


def _differences(got: Any, want: Any, where: str = "") -> list[str]:
    if isinstance(want, float) and isinstance(got, int | float) and not isinstance(got, bool):
        return [] if math.isclose(got, want, rel_tol=0, abs_tol=TOLERANCE) else [f"{where}: {got!r} != {want!r}"]
    if isinstance(want, dict) and isinstance(got, dict):
        if set(got) != set(want):
            return [f"{where}: keys {sorted(got)} != {sorted(want)}"]
        return [d for key in want for d in _differences(got[key], want[key], f"{where}.{key}")]
    if isinstance(want, list) and isinstance(got, list):
        if len(got) != len(want):
            return [f"{where}: {len(got)} items != {len(want)}"]
        return [d for i, (g, w) in enumerate(zip(got, want, strict=True)) for d in _differences(g, w, f"{where}[{i}]")]
    return [] if got == want and type(got) is type(want) else [f"{where}: {got!r} != {want!r}"]


def test_responses_match_the_golden_copy(served: ServingBundle) -> None:
    actual = json.loads(json.dumps(_responses(served)))
    if os.environ.get("PLAYERGUARD_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(actual, indent=1, sort_keys=True) + "\n")
    assert GOLDEN.exists(), "no golden responses yet; run with PLAYERGUARD_UPDATE_GOLDEN=1"
    differences = _differences(actual, json.loads(GOLDEN.read_text()))
    assert not differences, f"{len(differences)} differences, first: {differences[:5]}"


MODELS = ("churn", "purchase", "inhuman_play")


def _models(actions: list[dict[str, Any]]) -> set[str]:
    return {action["model"] for action in actions}


def _feature_reasons(prediction: dict[str, Any], model: str) -> list[dict[str, Any]]:
    return [r for r in prediction["reasons"][model] if r["kind"] == "feature"]


def test_the_golden_requests_exercise_every_action_and_reasons_only_where_acted() -> None:
    golden = json.loads(GOLDEN.read_text())
    predictions = [p for key in ("records", "csv", "events") for p in golden[key]]
    assert {model for p in predictions for model in _models(p["actions"])} == set(MODELS)
    assert any(r["kind"] == "rule" for p in predictions for r in p["reasons"]["inhuman_play"])
    for prediction in predictions:
        for model in MODELS:
            if model in _models(prediction["actions"]):
                assert prediction["reasons"][model]  # a rule breaker's may be rules only
            else:
                assert not _feature_reasons(prediction, model)
    assert any(not p["reasons"][model] for p in predictions for model in MODELS)
    everywhere = golden["records_all_reasons"] + golden["batch_all_exact"]
    methods = {r.get("method") for p in predictions + everywhere for rs in p["reasons"].values() for r in rs}
    assert methods == {"tree_shap", None}  # exact reasons only; rule reasons carry no method


def test_reasons_on_every_row_answer_the_same_and_explain_the_rows_the_default_leaves_out() -> None:
    golden = json.loads(GOLDEN.read_text())
    added = 0
    for acted, every in zip(golden["records"], golden["records_all_reasons"], strict=True):
        assert {**every, "reasons": None} == {**acted, "reasons": None}
        for model in MODELS:
            if model in _models(acted["actions"]):
                assert every["reasons"][model] == acted["reasons"][model]
            added += bool(_feature_reasons(every, model)) and not _feature_reasons(acted, model)
    assert added
