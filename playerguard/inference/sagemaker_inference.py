"""The model side of the scoring endpoint, and SageMaker's handler functions on top of it.

`load_serving_bundle` loads a bundle for serving (models, policy, and the feature definitions that turn
raw events into features); `score_request` is the one path from a request body to predictions. The local
server (`server.py`) calls exactly these, and so do `model_fn`, `input_fn`, `predict_fn` and `output_fn`,
which SageMaker's scikit-learn framework container calls when this module is the model's entry point.

In the container a handler must not raise for a bad request (the container would answer 500): `input_fn`
and `predict_fn` hand a RequestError on as their result and `output_fn` turns it into the 4xx response.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import numpy as np
import pandas as pd

from playerguard.errors import ConfigError, DataError
from playerguard.features.compiler import ENVELOPE_TYPES
from playerguard.features.spec import NUMERIC_KINDS, FeatureSet, load_feature_set
from playerguard.inference.bundle import FEATURES_FILE, Bundle, load_bundle, unpack_bundle
from playerguard.inference.payloads import (
    DEFAULT_LIMITS,
    FLOAT32_MAX,
    JSON_TYPE,
    Limits,
    RequestError,
    check_accept,
    check_request,
    default_cutoff,
    encode_error,
    encode_predictions,
    feature_matrix,
    parse_request,
)
from playerguard.inference.scoring import FeatureMatrix, model_feature_names, score_matrix
from playerguard.lake.envelope import NUMBER, PARTITION_COLUMN, STRING

# ---- features from raw events ------------------------------------------------------------------------------


def _attribute_kinds(feature_set: FeatureSet) -> dict[str, str]:
    """NUMBER or STRING per attribute the definitions read: a number where one is aggregated or compared
    (the rule the feature compiler applies)."""
    kinds: dict[str, str] = {}
    for d in feature_set.definitions:
        measures = [m for m in (d.numerator, d.denominator) if m]
        if d.attribute:
            numeric = d.kind in NUMERIC_KINDS or (d.kind == "trend" and d.measure == "sum")
            kinds[d.attribute] = NUMBER if numeric else kinds.get(d.attribute, STRING)
        for m in measures:
            if m.attribute:
                kinds[m.attribute] = NUMBER if m.kind == "sum" else kinds.get(m.attribute, STRING)
        for selection in [d.selection, *(m.selection for m in measures)]:
            for condition in selection.where:
                kinds[condition.attribute] = NUMBER if condition.is_numeric else STRING
    return kinds


class _FrameEngine:
    """The feature layer's SQL engine port over one request's events, held in a DuckDB temp view."""

    database, table = "temp", "events"

    def __init__(self, cursor: Any, events: pd.DataFrame, types: dict[str, str]) -> None:
        import pyarrow as pa

        self._cursor, self._types = cursor, types
        # as Arrow: DuckDB registers an Arrow table in half the time of the frame it came from, conversion
        # included (NaN and NA become NULL either way)
        cursor.register(self.table, pa.Table.from_pandas(events, preserve_index=False))

    def column_types(self) -> dict[str, str]:
        return self._types

    def query(self, sql: str, params: Sequence[str]) -> pd.DataFrame:
        return self._cursor.execute(_duckdb_sql(sql), list(params)).df()


@functools.lru_cache(maxsize=16)
def _duckdb_sql(sql: str) -> str:
    """The DuckDB form of a feature query; the same for every request with the same attribute types, and
    transpiling it took a tenth of a small request's time."""
    from playerguard.features.engines import transpile_to_duckdb

    return transpile_to_duckdb(sql)


def _check_attribute_range(valid: pd.DataFrame, attribute_types: dict[str, str]) -> None:
    """A number attribute at or beyond float32 range is invalid input (features made from it would be too)."""
    for name, kind in attribute_types.items():
        if kind != NUMBER or name not in valid:
            continue
        column = valid[name].to_numpy(dtype="float64", na_value=np.nan)
        with np.errstate(invalid="ignore"):
            outside = np.flatnonzero(np.abs(column) >= FLOAT32_MAX)
        if len(outside):
            raise RequestError(
                f"events[{outside[0]}]: attribute {name!r} is {column[outside[0]]:.4g}, outside the range the "
                f"models accept (magnitude under {FLOAT32_MAX:.4g})",
                "value_out_of_range",
            )


class EventsFeaturizer:
    """Raw events → features with a bundle's feature definitions: `build_features` over an in-memory table,
    so a request computes exactly what training computed from the lake.

    Events need player_id, event_type and event_timestamp; game_id and platform default to "unknown"
    (features do not read them unless a definition filters on them). `lookback_days` resolves definitions
    whose window is `lookback` (28, as `build_features` defaults to).
    """

    def __init__(self, feature_set: FeatureSet, lookback_days: int = 28) -> None:
        self.feature_set = feature_set
        self.lookback_days = lookback_days
        self._kinds = _attribute_kinds(feature_set)
        self._connection: Any = None
        self._lock = threading.Lock()
        self._settings: Any = None  # read from the environment once, on first use

    def _cursor(self) -> Any:
        import duckdb

        with self._lock:  # one in-memory database per bundle; a cursor (its own session) per request
            if self._connection is None:
                self._connection = duckdb.connect(config={"threads": 1})  # tables of one request are small
            return self._connection.cursor()

    def _conformed(self, events: list[dict[str, Any]]) -> tuple[pd.DataFrame, dict[str, str]]:
        from playerguard.lake.envelope import conform

        kinds: set[type] = set()
        for event in events:
            kinds.update(map(type, event.values()))
        if dict in kinds or list in kinds:  # then find the first, to name it
            for i, event in enumerate(events):
                nested = next((key for key, value in event.items() if isinstance(value, dict | list)), None)
                if nested is not None:
                    raise RequestError(f"events[{i}]: {nested!r} must be a number, string or null", "invalid_events")
        frame = pd.DataFrame.from_records(events)
        for column in ("game_id", "platform"):
            frame[column] = frame[column].fillna("unknown") if column in frame else "unknown"
        try:
            conformed = conform(frame, known_types=self._kinds, source="request")
        except ConfigError as error:
            raise RequestError(f"invalid events: {error}", "invalid_events") from None
        if len(conformed.rejected):
            first = conformed.rejected.iloc[0]
            raise RequestError(
                f"{len(conformed.rejected)} of {len(frame)} events are invalid; first: {first['reason']} "
                f"in {first['row'][:200]}",
                "invalid_events",
            )
        valid = conformed.valid
        _check_attribute_range(valid, conformed.attribute_types)
        valid["event_timestamp"] = valid["event_timestamp"].dt.tz_convert("UTC").dt.tz_localize(None)
        types = {**ENVELOPE_TYPES, PARTITION_COLUMN: STRING, **conformed.attribute_types}
        for name, kind in self._kinds.items():
            if name not in valid:  # an attribute no event carries reads as NULL, as it would from the lake
                valid[name] = np.nan if kind == NUMBER else pd.Series(pd.NA, index=valid.index, dtype="string")
                types[name] = kind
        return valid, types

    def __call__(self, events: list[dict[str, Any]], cutoff: datetime | None = None) -> pd.DataFrame:
        """player_id, cutoff and the features, one row per player with an event before the cutoff
        (default: just after the latest event)."""
        from playerguard.features.api import build_features
        from playerguard.settings import Settings

        if not events:
            raise RequestError("no events to compute features from", "invalid_events")
        if self._settings is None:
            self._settings = Settings()
        valid, types = self._conformed(events)
        cursor = self._cursor()
        try:
            return build_features(
                self._settings,
                cutoff or default_cutoff(valid["event_timestamp"]),
                lookback_days=self.lookback_days,
                feature_set=self.feature_set,
                engine=_FrameEngine(cursor, valid, types),
            )
        except ConfigError as error:
            raise RequestError(f"invalid events: {error}", "invalid_events") from None
        finally:
            cursor.close()


# ---- the served bundle and the scoring path ----------------------------------------------------------------


@dataclass(frozen=True)
class ServingBundle:
    """A verified bundle ready to serve: the features its models read, and its events featurizer."""

    bundle: Bundle
    feature_names: tuple[str, ...]
    featurizer: EventsFeaturizer
    loaded_at: str

    def describe(self) -> dict[str, Any]:
        """What /ping reports: model versions, feature set, when the bundle was made and loaded."""
        manifest = self.bundle.manifest
        return {
            "bundle": str(self.bundle.path),
            "created_at": manifest.get("created_at"),
            "loaded_at": self.loaded_at,
            "feature_set": dict(manifest["feature_set"]),
            "model_versions": self.bundle.versions,
        }


def _serving(directory: Path, shown_as: Path, expected_digest: str | None) -> ServingBundle:
    bundle = replace(load_bundle(directory, expected_digest), path=shown_as)
    feature_set = load_feature_set(directory / FEATURES_FILE)
    if feature_set.hash != bundle.feature_set_hash:
        raise DataError(f"{shown_as}: {FEATURES_FILE} does not match the feature set hash in its manifest")
    loaded_at = datetime.now(UTC).isoformat(timespec="seconds")
    return ServingBundle(bundle, model_feature_names(bundle.models.values()), EventsFeaturizer(feature_set), loaded_at)


def load_serving_bundle(path: Path | str, expected_digest: str | None = None) -> ServingBundle:
    """Load and verify a bundle directory or `model.tar.gz` for serving; DataError if it is unusable or, with
    `expected_digest`, not the bundle that digest pins (`bundle.bundle_digest`)."""
    path = Path(path)
    if path.is_dir():
        return _serving(path, path, expected_digest)
    if not path.is_file():
        raise DataError(f"no model bundle at {path}")
    with TemporaryDirectory() as scratch:
        unpack_bundle(path, Path(scratch))
        return _serving(Path(scratch), path, expected_digest)


def score_request(
    served: ServingBundle,
    body: bytes | str,
    content_type: str | None,
    limits: Limits = DEFAULT_LIMITS,
    *,
    threads: int = 1,
) -> list[dict[str, Any]]:
    """Parse a request body, compute features from events where needed, and score: one prediction per
    record (per player for raw events), as `score_frame` returns them. RequestError on a bad request.

    The features go from the parsed request to one matrix with no DataFrame in between. Reasons are exact
    (TreeSHAP) for the rows the policy acts on and approximate for the others (`score_matrix`).

    XGBoost runs on `threads` threads in this call (0: its default, every core). One is right for
    request-sized batches: threads cost more than they save on a hundred rows, and oversubscribed
    OpenMP threads slow down by an order of magnitude when concurrent requests share the cores.
    """
    import xgboost

    parsed = parse_request(body, content_type, served.feature_names, limits)
    values = feature_matrix(parsed, served.feature_names, served.featurizer)
    matrix = FeatureMatrix(served.feature_names, values)
    try:
        with xgboost.config_context(nthread=threads):  # thread-local: only this request's thread
            return score_matrix(served.bundle, parsed.player_ids, matrix, exact_reasons="acted")
    except DataError as error:
        raise RequestError(str(error), "unscorable") from None


# ---- SageMaker handler functions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Invocation:
    """A request body accepted by `input_fn`; it is parsed against the model's features in `predict_fn`,
    because SageMaker does not pass the model to `input_fn`."""

    body: bytes | str
    content_type: str | None


def model_fn(model_dir: str) -> ServingBundle:
    """SageMaker: load the bundle unpacked from model.tar.gz, checked against PLAYERGUARD_BUNDLE_DIGEST when
    the endpoint's environment sets it."""
    from playerguard.settings import Settings

    return load_serving_bundle(Path(model_dir), Settings().bundle_digest)


def input_fn(input_data: bytes | str, content_type: str | None) -> Invocation | RequestError:
    """SageMaker: check the body's size and content type."""
    try:
        check_request(input_data, content_type, DEFAULT_LIMITS)
    except RequestError as error:
        return error
    return Invocation(input_data, content_type)


def predict_fn(invocation: Invocation | RequestError, model: ServingBundle) -> list[dict[str, Any]] | RequestError:
    """SageMaker: parse and score the request with the loaded bundle."""
    if isinstance(invocation, RequestError):
        return invocation
    try:
        return score_request(model, invocation.body, invocation.content_type)
    except RequestError as error:
        return error


def output_fn(prediction: list[dict[str, Any]] | RequestError, accept: str | None) -> Any:
    """SageMaker: `{"predictions": [...]}` as JSON, or the request's error with its 4xx status."""
    try:
        check_accept(accept)
    except RequestError as error:
        prediction = error
    if not isinstance(prediction, RequestError):
        return encode_predictions(prediction), JSON_TYPE
    try:
        import flask  # the scikit-learn container's model server is Flask: only a Response carries a status
    except ImportError:
        return encode_error(prediction), JSON_TYPE
    return flask.Response(encode_error(prediction), status=prediction.status, mimetype=JSON_TYPE)
