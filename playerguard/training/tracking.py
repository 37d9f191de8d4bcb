"""MLflow tracking and model registry: runs, registered versions, the `champion` alias, gate decisions.

The tracking URI comes from `Settings.tracking_uri` and is passed to an `MlflowClient` per call; nothing
global is set. Models are registered from the logged artifact directory (no pyfunc flavour, no pickle).
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from playerguard.errors import ConfigError, DataError
from playerguard.model_names import MODEL_NAMES
from playerguard.settings import Settings
from playerguard.training.base import check_model_name
from playerguard.training.gate import GateDecision, decide_promotion

__all__ = [
    "CHAMPION_ALIAS",
    "GateDecision",
    "ModelFiles",
    "Tracker",
    "decide_promotion",
    "download_champions",
    "list_models",
    "promote",
    "registered_name",
]

EXPERIMENT_NAME = "playerguard"
CHAMPION_ALIAS = "champion"
MODEL_ARTIFACT_PATH = "model"
REPORT_ARTIFACT_PATH = "report"
REGISTERED_NAMES: dict[str, str] = {
    "inhuman_play": "playerguard-inhuman-play",
    "churn": "playerguard-churn",
    "purchase": "playerguard-purchase",
}
TAG_PREFIX = "playerguard."
KIND_TAG = "model.kind"  # on every registered version: xgboost, logistic_baseline or hybrid
MAX_PARAM_LENGTH = 6000  # MLflow's limit on a param value; full values are in the model's own files
RECIPE_ARTIFACT = "training_set/recipe.json"


def registered_name(model: str) -> str:
    """The registry name of `model`, e.g. churn → playerguard-churn."""
    return REGISTERED_NAMES[check_model_name(model)]


def model_from_name(name: str) -> str:
    """The model name for either form, `churn` or `playerguard-churn`; ConfigError otherwise."""
    for model, registered in REGISTERED_NAMES.items():
        if name in (model, registered):
            return model
    raise ConfigError(
        f"unknown model {name!r}: expected one of {', '.join(MODEL_NAMES + tuple(REGISTERED_NAMES.values()))}"
    )


def _absent(error: MlflowException) -> bool:
    """Whether `error` says the model, version or alias does not exist (not, say, that the server is down)."""
    # A missing alias is reported as an invalid parameter, a missing model or version as not found.
    return error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


def _known(value: float | None) -> bool:
    return value is not None and not math.isnan(value)


@dataclass(frozen=True)
class ModelFiles:
    """A registered version's files, downloaded to `directory`."""

    model: str
    registered_name: str
    version: str
    run_id: str | None
    directory: Path


class Tracker:
    """An MLflow client bound to the settings' tracking URI, with the experiment and registry playerguard uses."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.uri = settings.tracking_uri

    @cached_property
    def client(self) -> MlflowClient:
        # Created on first use: constructing a client already creates a local SQLite store.
        if self._is_local():
            self.settings.home.mkdir(parents=True, exist_ok=True)
        return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    def _is_local(self) -> bool:
        return self.uri.startswith(("sqlite:", "file:")) or "://" not in self.uri

    def has_store(self) -> bool:
        """False when the tracking store is a local SQLite file that does not exist yet (nothing tracked)."""
        if not self.uri.startswith("sqlite:///"):
            return True
        return Path(self.uri.removeprefix("sqlite:///")).is_file()

    def experiment_id(self) -> str:
        experiment = self.client.get_experiment_by_name(EXPERIMENT_NAME)
        if experiment is not None:
            return experiment.experiment_id
        # Locally, artifacts live under the home directory rather than the current working directory.
        location = (self.settings.home.resolve() / "mlartifacts").as_uri() if self._is_local() else None
        return self.client.create_experiment(EXPERIMENT_NAME, artifact_location=location)

    def start_run(self, model: str, tags: Mapping[str, str] | None = None) -> str:
        """Open a run for one model's training; returns its run id."""
        run = self.client.create_run(
            self.experiment_id(),
            run_name=f"{model}-{time.strftime('%Y%m%d-%H%M%S')}",
            tags={f"{TAG_PREFIX}model": model, **(tags or {})},
        )
        return run.info.run_id

    def log(
        self,
        run_id: str,
        *,
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, float] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Log params, metrics (undefined ones are left out) and tags in one batch."""
        now = int(time.time() * 1000)
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in (metrics or {}).items() if _known(v)],
            params=[Param(k, str(v)[:MAX_PARAM_LENGTH]) for k, v in (params or {}).items()],
            tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()],
        )

    def log_directory(self, run_id: str, directory: Path, artifact_path: str) -> str:
        """Upload `directory` under `artifact_path`; returns the artifact URI."""
        self.client.log_artifacts(run_id, str(directory), artifact_path)
        return f"{self.client.get_run(run_id).info.artifact_uri}/{artifact_path}"

    def register(self, model: str, run_id: str, source: str, *, kind: str | None = None) -> str:
        """Create a version of the model's registered model from the artifact URI `source`, tagged with
        `model.kind` = `kind` (what class of model the version holds) when given."""
        name = registered_name(model)
        try:
            self.client.get_registered_model(name)
        except MlflowException as error:
            if not _absent(error):
                raise
            self.client.create_registered_model(name, description=f"playerguard {model} model")
        tags = {KIND_TAG: kind} if kind else None
        return str(self.client.create_model_version(name, source=source, run_id=run_id, tags=tags).version)

    def record_decision(self, model: str, version: str, run_id: str, decision: GateDecision) -> None:
        """Tag the run and version with the gate's decision, the rule that decided it and why, and move
        `champion` if it promoted."""
        outcome = "promoted" if decision.promote else "rejected"
        name = registered_name(model)
        tags = (("gate.decision", outcome), ("gate.rule", decision.rule), ("gate.reason", decision.reason))
        for key, value in tags:
            self.client.set_tag(run_id, TAG_PREFIX + key, value)
            self.client.set_model_version_tag(name, version, TAG_PREFIX + key, value)
        if decision.promote:
            self.client.set_registered_model_alias(name, CHAMPION_ALIAS, version)

    def log_lake_version(self, run_id: str, training_set: Any) -> None:
        """Record the recipe `build_training_set` attached to `training_set` (its lake version: an Iceberg
        snapshot id or a digest of the Parquet files read) with the run; nothing if it carries none."""
        from playerguard.features.rebuild import RECIPE_ATTR

        text = getattr(training_set, "attrs", {}).get(RECIPE_ATTR)
        if not text:
            self.client.set_tag(run_id, f"{TAG_PREFIX}lake.version", "not recorded")
            return
        lake = json.loads(text)["lake"]
        self.client.log_text(run_id, text, RECIPE_ARTIFACT)
        self.client.set_tag(run_id, f"{TAG_PREFIX}lake.kind", lake["kind"])
        self.client.set_tag(run_id, f"{TAG_PREFIX}lake.version", lake["digest"])

    def lake_version_recipe(self, run_id: str) -> str:
        """The training-set recipe recorded with `run_id` (JSON); DataError when the run has none."""
        try:
            run = self.client.get_run(run_id)
        except MlflowException as error:
            if not _absent(error):
                raise
            raise DataError(f"no MLflow run {run_id!r} at {self.uri}") from None
        if run.data.tags.get(f"{TAG_PREFIX}lake.kind") is None:
            raise DataError(f"run {run_id} recorded no lake version: its training set cannot be rebuilt")
        with tempfile.TemporaryDirectory() as scratch:
            return Path(self.client.download_artifacts(run_id, RECIPE_ARTIFACT, scratch)).read_text()

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status=status)

    def champion(self, model: str) -> Any | None:
        """The ModelVersion the `champion` alias points at, or None."""
        try:
            return self.client.get_model_version_by_alias(registered_name(model), CHAMPION_ALIAS)
        except MlflowException as error:
            if _absent(error):
                return None
            raise

    def version(self, model: str, version: str) -> Any:
        """The ModelVersion `version` of `model`; DataError if there is none."""
        name = registered_name(model)
        try:
            return self.client.get_model_version(name, str(version))
        except MlflowException as error:
            if not _absent(error):
                raise
            raise DataError(f"{name} has no version {version!r}") from None

    def download(self, model: str, version: Any, directory: Path) -> ModelFiles:
        """Download the files of ModelVersion `version` into `directory` (created, must not exist)."""
        from mlflow.artifacts import download_artifacts

        directory = Path(directory)
        if directory.exists():
            raise DataError(f"cannot download {version.name} v{version.version} into {directory}: it exists")
        directory.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=directory.parent) as scratch:
            local = download_artifacts(artifact_uri=version.source, dst_path=scratch, tracking_uri=self.uri)
            shutil.move(local, directory)
        return ModelFiles(model, version.name, str(version.version), version.run_id, directory)

    def aliases(self, model: str) -> dict[str, str]:
        """Alias → version of the model's registered model."""
        registered = self.client.get_registered_model(registered_name(model))
        return {alias: str(version) for alias, version in registered.aliases.items()}

    def registered_versions(self, model: str) -> list[Any]:
        """All ModelVersions of `model`, newest first (empty when it was never registered)."""
        name = registered_name(model)
        try:
            self.client.get_registered_model(name)
        except MlflowException as error:
            if _absent(error):
                return []
            raise
        # The name is one of playerguard's own constants, never user input.
        versions = self.client.search_model_versions(f"name = '{name}'")
        return sorted(versions, key=lambda v: int(v.version), reverse=True)


def list_models(settings: Settings) -> list[dict[str, Any]]:
    """Every registered version: model, registered name, version, aliases, test metrics, gate decision."""
    tracker = Tracker(settings)
    if not tracker.has_store():
        return []
    rows = []
    for model in MODEL_NAMES:
        versions = tracker.registered_versions(model)
        # Version search results leave aliases out; the registered model carries them.
        aliases = tracker.aliases(model) if versions else {}
        for version in versions:
            run_metrics = tracker.client.get_run(version.run_id).data.metrics if version.run_id else {}
            rows.append(
                {
                    "model": model,
                    "name": version.name,
                    "version": str(version.version),
                    "aliases": sorted(a for a, v in aliases.items() if v == str(version.version)),
                    "metrics": {
                        k.removeprefix("test_"): v for k, v in run_metrics.items() if k.startswith("test_")
                    },
                    "kind": version.tags.get(KIND_TAG),
                    "gate_decision": version.tags.get(f"{TAG_PREFIX}gate.decision"),
                    "run_id": version.run_id,
                    "created_at": version.creation_timestamp,
                }
            )
    return rows


def promote(settings: Settings, name: str, version: str | int) -> dict[str, Any]:
    """Point `champion` at `version` of model `name` by hand (promotion or rollback), bypassing the gate."""
    model = model_from_name(name)
    tracker = Tracker(settings)
    if not tracker.has_store():
        raise DataError(f"nothing is registered yet at {settings.tracking_uri}")
    chosen = tracker.version(model, str(version))
    previous = tracker.champion(model)
    tracker.client.set_registered_model_alias(chosen.name, CHAMPION_ALIAS, str(chosen.version))
    tracker.client.set_model_version_tag(chosen.name, str(chosen.version), f"{TAG_PREFIX}promotion", "manual")
    return {
        "model": model,
        "name": chosen.name,
        "version": str(chosen.version),
        "previous_version": str(previous.version) if previous is not None else None,
    }


def download_champions(settings: Settings, directory: Path) -> dict[str, ModelFiles]:
    """Download every model's champion into `directory/<model>`; models without one are left out."""
    tracker = Tracker(settings)
    if not tracker.has_store():
        return {}
    found = {}
    for model in MODEL_NAMES:
        champion = tracker.champion(model)
        if champion is not None:
            found[model] = tracker.download(model, champion, Path(directory) / model)
    return found
