"""The local runner on real files: caching by input hash, resume after a failure, and the real pipeline
end to end on a small simulated game."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from playerguard.errors import DataError
from playerguard.pipelines.drift import drift_report
from playerguard.pipelines.drift_alerts import publish_drift_alert
from playerguard.pipelines.local_runner import MARKER, PipelineStepError, StepEvent, run_pipeline
from playerguard.pipelines.steps import PipelineStep, StepContext
from playerguard.settings import Settings

CUTOFFS = ["2026-01-08", "2026-01-15", "2026-01-22"]
CALLS: list[str] = []
STEP_NAMES = ("build_features", "train", "evaluate", "quality_gate", "register", "bundle", "drift")


def count_step(context: StepContext) -> dict:
    """Toy step: writes the horizon and the number of lake files."""
    CALLS.append("count")
    files = sorted(context.settings.lake_dir.glob("events/*/*.parquet"))
    (context.output_dir / "count.json").write_text(json.dumps({"horizon": context.params.horizon_days}))
    return {"lake_files": len(files)}


def double_step(context: StepContext) -> dict:
    """Toy step: fails while `<home>/break` holds a reason; otherwise doubles the horizon."""
    CALLS.append("double")
    brake = context.settings.home / "break"
    if brake.exists():
        reason = brake.read_text()
        if reason == "bug":
            raise KeyError("horizon")
        raise DataError(reason)
    horizon = json.loads((context.input("count") / "count.json").read_text())["horizon"]
    (context.output_dir / "double.json").write_text(json.dumps({"double": 2 * horizon}))
    return {"double": 2 * horizon}


TOY_STEPS = (
    PipelineStep(
        "count", count_step, "count", params=("horizon_days",), outputs=("count.json",), reads_lake=True
    ),
    PipelineStep("double", double_step, "double", inputs=("count",), outputs=("double.json",)),
)


def _add_lake_file(settings: Settings, day: str) -> None:
    directory = settings.lake_dir / "events" / f"event_date={day}"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "part-0.parquet").write_bytes(b"not read, only listed")


def _run(settings: Settings, **kwargs: object) -> list[tuple[str, str]]:
    CALLS.clear()
    result = run_pipeline(settings, cutoffs=CUTOFFS, steps=TOY_STEPS, **kwargs)  # type: ignore[arg-type]
    return [(step.name, step.status) for step in result.steps]


def test_second_run_reuses_every_output(settings: Settings) -> None:
    _add_lake_file(settings, "2026-01-01")
    events: list[StepEvent] = []
    assert _run(settings, progress=events.append) == [("count", "ran"), ("double", "ran")]
    assert [(e.step, e.status) for e in events] == [
        ("count", "started"), ("count", "done"), ("double", "started"), ("double", "done")
    ]  # fmt: skip
    assert _run(settings) == [("count", "cached"), ("double", "cached")]
    assert CALLS == []
    outputs = sorted(p.relative_to(settings.home) for p in (settings.home / "pipeline").rglob(MARKER))
    assert [p.parts[:2] for p in outputs] == [("pipeline", "count"), ("pipeline", "double")]
    assert _run(settings, force=True) == [("count", "ran"), ("double", "ran")]


def test_changed_inputs_rerun_only_what_they_reach(settings: Settings) -> None:
    _add_lake_file(settings, "2026-01-01")
    _run(settings)
    _add_lake_file(settings, "2026-01-02")  # the lake changed, but `count` writes the same output
    assert _run(settings) == [("count", "ran"), ("double", "cached")]
    assert _run(settings, horizon_days=7) == [("count", "ran"), ("double", "ran")]
    assert _run(settings, horizon_days=14) == [("count", "cached"), ("double", "cached")]


def labels_step(context: StepContext) -> dict:
    """Toy step: writes the inhuman-play labels it reads."""
    from playerguard.features.labels import load_inhuman_labels

    labels = load_inhuman_labels(context.settings)
    (context.output_dir / "labels.json").write_text(labels.astype(str).to_json(orient="records"))
    return {"labels": len(labels)}


def test_new_review_verdicts_rerun_the_steps_that_read_labels(settings: Settings) -> None:
    steps = (
        PipelineStep("labels", labels_step, "labels", outputs=("labels.json",), reads_labels=True),
        PipelineStep("count", count_step, "count", inputs=("labels",), params=("horizon_days",)),
        PipelineStep("double", double_step, "double", inputs=("count",), outputs=("double.json",)),
    )
    _add_lake_file(settings, "2026-01-01")

    def run() -> list[tuple[str, str]]:
        result = run_pipeline(settings, cutoffs=CUTOFFS, steps=steps)
        return [(step.name, step.status) for step in result.steps]

    verdicts = settings.home / "labels" / "review_verdicts.parquet"
    verdicts.parent.mkdir(parents=True)
    pd.DataFrame({"player_id": ["p1"], "label": [1], "source": ["review"]}).to_parquet(verdicts)
    assert run() == [("labels", "ran"), ("count", "ran"), ("double", "ran")]
    assert run() == [("labels", "cached"), ("count", "cached"), ("double", "cached")]
    pd.DataFrame({"player_id": ["p1"], "label": [0], "source": ["review"]}).to_parquet(verdicts)  # dismissed
    # The labels step reruns; `count` reruns on its new input but writes the same, so `double` is reused.
    assert run() == [("labels", "ran"), ("count", "ran"), ("double", "cached")]
    latest = max((settings.home / "pipeline" / "labels").glob("*/labels.json"), key=lambda p: p.stat().st_mtime)
    assert json.loads(latest.read_text()) == [{"player_id": "p1", "label_inhuman_play": "0"}]


def test_a_failed_step_is_named_and_a_rerun_resumes_there(settings: Settings) -> None:
    _add_lake_file(settings, "2026-01-01")
    (settings.home / "break").write_text("the double step needs a fixed input")
    with pytest.raises(PipelineStepError) as caught:
        _run(settings)
    assert str(caught.value) == "pipeline step 'double' failed: the double step needs a fixed input"
    assert caught.value.step == "double"
    assert [(s.name, s.status) for s in caught.value.result.steps] == [("count", "ran"), ("double", "failed")]
    assert not list((settings.home / "pipeline" / "double").glob(".partial-*"))
    assert not list((settings.home / "pipeline" / "double").glob(f"*/{MARKER}"))

    (settings.home / "break").unlink()
    assert _run(settings) == [("count", "cached"), ("double", "ran")]
    assert CALLS == ["double"]


def test_an_unexpected_error_points_at_its_traceback(settings: Settings) -> None:
    _add_lake_file(settings, "2026-01-01")
    (settings.home / "break").write_text("bug")
    with pytest.raises(PipelineStepError, match=r"'double' failed: KeyError: 'horizon' \(traceback in .*\)"):
        _run(settings)
    log = settings.home / "pipeline" / "double" / "last_error.txt"
    assert "Traceback" in log.read_text() and "double_step" in log.read_text()


def test_drift_report_files_and_alert(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    reference = pd.DataFrame({"steady": rng.normal(0, 1, 2000), "moved": rng.normal(0, 1, 2000)})
    current = pd.DataFrame({"steady": rng.normal(0, 1, 2000), "moved": rng.normal(1.5, 1, 2000)})
    report = drift_report(reference, current)
    paths = report.write(tmp_path / "drift")
    summary = json.loads(paths["json"].read_text())
    assert summary["drifted"] == ["moved"]
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    [alert] = publish_drift_alert(Settings(home=tmp_path / "home"), report, source=str(paths["json"]))
    assert alert == str(tmp_path / "home" / "reports" / "drift_alert.json")  # no topic: the file only
    message = json.loads(Path(alert).read_text())
    assert message["kind"] == "drift" and [c["name"] for c in message["columns"]] == ["moved"]


# ----------------------------------------------------------------------------------- the real pipeline


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    from playerguard.simulator.writer import write_simulation

    settings = Settings(home=tmp_path_factory.mktemp("pipeline-home"))
    write_simulation(settings, players=400, days=42, seed=7)
    return settings


@pytest.fixture(scope="module")
def first_runs(simulated: Settings) -> tuple[PipelineStepError, object]:
    """A run stopped by the quality gate, then a rerun with a reachable floor."""
    with pytest.raises(PipelineStepError) as failed:
        run_pipeline(simulated, min_roc_auc=0.999)
    return failed.value, run_pipeline(simulated, min_roc_auc=0.5)


def test_pipeline_stops_at_the_quality_gate_then_resumes(
    first_runs: tuple[PipelineStepError, object],
) -> None:
    failed, resumed = first_runs
    assert failed.step == "quality_gate"
    assert "held-out roc_auc below 0.999" in str(failed)
    assert [s.status for s in failed.result.steps] == [
        "ran",
        "ran",
        "ran",
        "failed",
        "not run",
        "not run",
        "not run",
    ]
    statuses = {s.name: s.status for s in resumed.steps}  # type: ignore[attr-defined]
    assert statuses == {
        "build_features": "cached",
        "train": "cached",
        "evaluate": "cached",
        "quality_gate": "ran",
        "register": "ran",
        "bundle": "ran",
        "drift": "ran",
    }


def test_pipeline_outputs(simulated: Settings, first_runs: tuple[PipelineStepError, object]) -> None:
    from playerguard.inference.bundle import load_bundle

    _, result = first_runs
    cutoffs = result.params.cutoffs  # type: ignore[attr-defined]
    assert cutoffs[-1] == datetime(2026, 1, 29, tzinfo=UTC) and len(cutoffs) == 4
    training_set = pd.read_parquet(result.output("build_features") / "training_set.parquet")  # type: ignore[attr-defined]
    assert sorted(training_set["cutoff"].unique()) == list(pd.to_datetime(cutoffs))
    evaluation = json.loads((result.output("evaluate") / "evaluation.json").read_text())  # type: ignore[attr-defined]
    assert set(evaluation["models"]) == {"inhuman_play", "churn", "purchase"}
    assert all(m["test_cutoff"] == "2026-01-29T00:00:00+00:00" for m in evaluation["models"].values())
    registered = json.loads((result.output("register") / "registered.json").read_text())  # type: ignore[attr-defined]
    assert {r["version"] for r in registered.values()} == {"1"}
    # Registered through train's path: the same gate decided, past the floor the quality gate step checked.
    assert {r["rule"] for r in registered.values()} <= {"baseline", "champion"}
    bundle = load_bundle(result.output("bundle") / "model.tar.gz")  # type: ignore[attr-defined]
    promoted = {name for name, r in registered.items() if r["promoted"]}
    assert set(bundle.models) == promoted and promoted
    drift = json.loads((result.output("drift") / "drift.json").read_text())  # type: ignore[attr-defined]
    monitored = {c["name"] for c in drift["columns"]}
    assert {f"score_{name}" for name in promoted} <= monitored and "sessions_7d" in monitored
    assert (result.output("drift") / "drift.png").exists()  # type: ignore[attr-defined]
    alert = simulated.home / "reports" / "drift_alert.json"
    assert alert.exists() == bool(drift["drifted"])


def test_reruns_are_cached_and_the_command_shows_it(
    simulated: Settings, first_runs: tuple[PipelineStepError, object]
) -> None:
    from playerguard.pipelines.commands import pipeline_app

    # A different floor that still passes reruns the gate only; its decision is unchanged, so nothing after.
    arguments = ["run", "--home", str(simulated.home), "--min-roc-auc", "0.55"]
    outcome = CliRunner().invoke(pipeline_app, arguments, env={"COLUMNS": "200"})
    assert outcome.exit_code == 0, outcome.output
    rows = [line for line in outcome.stdout.splitlines() if "│" in line]
    statuses = {
        cells[1].strip(): cells[2].strip()
        for cells in (row.split("│") for row in rows)
        if len(cells) > 3 and cells[1].strip()  # a wrapped summary continues on a row with no step name
    }
    assert statuses == {**{name: "cached" for name in STEP_NAMES}, "quality_gate": "ran"}
    again = CliRunner().invoke(pipeline_app, arguments, env={"COLUMNS": "200"})
    assert again.stdout.count("cached") == len(STEP_NAMES)
    assert again.stderr.count(": cached") == len(STEP_NAMES)  # piped, the progress comes as lines


def test_run_command_on_an_empty_lake_fails_in_one_line(tmp_path: Path) -> None:
    from playerguard.pipelines.commands import pipeline_app

    outcome = CliRunner().invoke(pipeline_app, ["run", "--home", str(tmp_path / "empty")])
    assert isinstance(outcome.exception, DataError)
    assert "has no events; ingest or simulate first" in str(outcome.exception)


def test_sagemaker_step_scripts_run_the_same_steps_on_local_files(
    simulated: Settings,
    first_runs: tuple[PipelineStepError, object],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The processing jobs' scripts, pointed at local directories instead of /opt/ml/processing."""
    import shutil

    from playerguard.pipelines.step_scripts import build_features, evaluate

    _, result = first_runs
    monkeypatch.setenv("PLAYERGUARD_HOME", str(simulated.home))
    build_features.main(["--horizon-days", "14", "--output", str(tmp_path / "features")])
    built = pd.read_parquet(tmp_path / "features" / "training_set.parquet")
    cached = pd.read_parquet(result.output("build_features") / "training_set.parquet")  # type: ignore[attr-defined]
    pd.testing.assert_frame_equal(built, cached)

    (tmp_path / "model").mkdir()
    shutil.copy(result.output("bundle") / "model.tar.gz", tmp_path / "model")  # type: ignore[attr-defined]
    arguments = ["--features", str(tmp_path / "features"), "--model", str(tmp_path / "model")]
    evaluate.main([*arguments, "--output", str(tmp_path / "evaluation")])
    evaluation = json.loads((tmp_path / "evaluation" / "evaluation.json").read_text())
    assert 0.0 <= evaluation["quality_gate"]["worst_value"] <= 1.0  # what the ConditionStep reads
    bundled = set(json.loads((result.output("bundle") / "bundle" / "manifest.json").read_text())["models"])  # type: ignore[attr-defined]
    assert set(evaluation["models"]) == bundled
    drift = json.loads((tmp_path / "evaluation" / "drift.json").read_text())
    assert {f"score_{name}" for name in bundled} <= {column["name"] for column in drift["columns"]}
    assert (tmp_path / "evaluation" / "drift.png").exists()
