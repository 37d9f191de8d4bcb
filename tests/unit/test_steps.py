"""The shared step definitions: order and wiring, cutoff derivation, input hashing, the quality gate."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from playerguard.errors import DataError, PlayerguardError
from playerguard.features.cutoffs import default_cutoffs, resolve_cutoffs
from playerguard.pipelines.evaluation import check_quality_gate
from playerguard.pipelines.local_runner import step_input_hash
from playerguard.pipelines.sagemaker_pipeline import SAGEMAKER_STEPS
from playerguard.pipelines.steps import PIPELINE_STEPS, PipelineParams, get_step
from playerguard.settings import Settings


def test_steps_run_in_the_documented_order() -> None:
    assert [step.name for step in PIPELINE_STEPS] == [
        "build_features",
        "train",
        "evaluate",
        "quality_gate",
        "register",
        "bundle",
        "drift",
    ]


def test_every_step_reads_only_earlier_steps_and_known_parameters() -> None:
    fields = {field.name for field in dataclasses.fields(PipelineParams)}
    seen: set[str] = set()
    for step in PIPELINE_STEPS:
        assert set(step.inputs) <= seen, f"{step.name} reads a step that runs after it"
        assert set(step.params) <= fields, f"{step.name} reads an unknown parameter"
        assert step.outputs, f"{step.name} declares no outputs"
        assert step.sagemaker_step in SAGEMAKER_STEPS, f"{step.name} has no SageMaker home"
        seen.add(step.name)
    assert get_step("train").function is PIPELINE_STEPS[1].function
    with pytest.raises(PlayerguardError, match="unknown pipeline step 'nope'"):
        get_step("nope")


def test_default_cutoffs_are_weekly_and_leave_the_last_horizon_for_labels() -> None:
    cutoffs = default_cutoffs(date(2026, 1, 1), date(2026, 2, 18), horizon_days=14)
    end = datetime(2026, 2, 18, tzinfo=UTC)  # the last day may be incomplete: labels stop before it
    assert cutoffs[-1] == end - timedelta(days=14)
    assert all(later - earlier == timedelta(days=7) for earlier, later in itertools.pairwise(cutoffs))
    assert cutoffs[0] >= datetime(2026, 1, 8, tzinfo=UTC)  # a week of history before the first
    assert all(c.tzinfo is UTC and c.hour == 0 for c in cutoffs)
    assert all(c + timedelta(days=14) <= end for c in cutoffs)


def test_default_cutoffs_keep_a_cutoff_whose_labels_close_by_the_test_cutoff() -> None:
    # 3 weekly cutoffs are the fewest a 14-day horizon allows: test, one purged, one whose label window
    # closes by the test cutoff (the split then validates on held-out players).
    cutoffs = default_cutoffs(date(2026, 1, 1), date(2026, 2, 5), horizon_days=14)
    assert len(cutoffs) == 3
    assert cutoffs[0] + timedelta(days=14) <= cutoffs[-1]
    with pytest.raises(DataError, match="too short for the 3 cutoffs"):
        default_cutoffs(date(2026, 1, 1), date(2026, 1, 29), horizon_days=14)
    # A 91-day horizon needs 14 weekly cutoffs, not enough for a validation cutoff of its own.
    assert len(default_cutoffs(date(2026, 1, 1), date(2026, 7, 15), horizon_days=91)) == 14


def test_default_cutoffs_end_at_a_given_last_cutoff() -> None:
    last = datetime(2026, 2, 1, tzinfo=UTC)
    cutoffs = default_cutoffs(date(2026, 1, 1), date(2026, 3, 1), horizon_days=14, last_cutoff=last)
    assert cutoffs[-1] == last and len(cutoffs) == 4


def test_explicit_cutoffs_are_sorted_deduplicated_and_utc(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)  # no lake needed for explicit cutoffs
    resolved = resolve_cutoffs(settings, cutoffs=["2026-01-22", "2026-01-08", "2026-01-15", "2026-01-08"])
    assert resolved == tuple(datetime(2026, 1, d, tzinfo=UTC) for d in (8, 15, 22))
    with pytest.raises(DataError, match="at least 3 distinct cutoffs"):
        resolve_cutoffs(settings, cutoffs=["2026-01-08", "2026-01-08"])


def _hash(step_name: str, params: PipelineParams, **overrides: object) -> str:
    step = get_step(step_name)
    arguments = {
        "feature_set_hash": "fs1",
        "lake": "lake1",
        "settings": Settings(home=Path("/nowhere")),
        **overrides,
    }
    upstream = arguments.pop("upstream", {name: "out1" for name in step.inputs})
    return step_input_hash(step, params, upstream, **arguments)  # type: ignore[arg-type]


def test_input_hash_covers_exactly_what_a_step_reads() -> None:
    params = PipelineParams(cutoffs=(datetime(2026, 1, 8, tzinfo=UTC),))
    base = _hash("build_features", params)
    assert _hash("build_features", params) == base
    assert _hash("build_features", dataclasses.replace(params, horizon_days=7)) != base
    assert _hash("build_features", params, lake="lake2") != base
    assert _hash("build_features", params, feature_set_hash="fs2") != base
    # a parameter the step does not read leaves its hash alone
    assert _hash("build_features", dataclasses.replace(params, min_roc_auc=0.9)) == base

    gate = _hash("quality_gate", params)
    assert _hash("quality_gate", dataclasses.replace(params, min_roc_auc=0.9)) != gate
    assert _hash("quality_gate", params, upstream={"evaluate": "out2"}) != gate
    assert _hash("quality_gate", params, lake="lake2") == gate  # it does not read the lake


def _evaluation(**values: float | None) -> dict:
    models = {name: {"metrics": {"roc_auc": value}} for name, value in values.items()}
    return {"models": models, "quality_gate": {"metric": "roc_auc"}}


def test_quality_gate_passes_when_every_model_reaches_the_floor() -> None:
    decision = check_quality_gate(_evaluation(churn=0.81, purchase=0.7), 0.7)
    assert decision["passed"] is True and decision["min_value"] == 0.7


def test_quality_gate_names_the_models_below_the_floor() -> None:
    with pytest.raises(PlayerguardError, match=r"below 0.75 for churn 0.710, inhuman_play undefined"):
        check_quality_gate(_evaluation(churn=0.71, inhuman_play=None, purchase=0.9), 0.75)
