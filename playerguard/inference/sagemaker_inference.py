"""The model side of the scoring endpoint, and SageMaker's handler functions on top of it.

`load_serving_bundle` loads a bundle for serving (models, policy, and the feature definitions that turn
raw events into features); `score_request` is the one path from a request body to predictions. The local
server (`server.py`) calls exactly these, and so do `model_fn`, `input_fn`, `predict_fn` and `output_fn`,
which SageMaker's scikit-learn framework container calls when this module is the model's entry point.

In the container a handler must not raise for a bad request (the container would answer 500): `input_fn`
and `predict_fn` hand a RequestError on as their result and `output_fn` turns it into the 4xx response.

Reasons explain decisions: by default each model's feature reasons (exact TreeSHAP for the boosted models)
come only with the rows its policy acts on, and the other rows get none (inhuman play still lists the rules
a judged player breaks). A caller who wants reasons for every row says so in the request's custom
attributes, `reasons=all`: SageMaker's InvokeEndpoint passes only the body and a few headers, and forwards
its `CustomAttributes` as the `X-Amzn-SageMaker-Custom-Attributes` header, which the local server reads too
(`reasons=acted` is the default; another value is a 400 `invalid_reasons`).
"""

from __future__ import annotations

import functools
import itertools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from playerguard.errors import ConfigError, DataError
from playerguard.features.compiler import ENVELOPE_TYPES, CompiledQuery, compile_features
from playerguard.features.spec import NUMERIC_KINDS, FeatureSet, load_feature_set
from playerguard.inference.bundle import FEATURES_FILE, Bundle, load_bundle, unpack_bundle
from playerguard.inference.payloads import (
    CUSTOM_ATTRIBUTES_HEADER,
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
    reasons_option,
)
from playerguard.inference.scoring import FeatureMatrix, model_feature_names, score_matrix
from playerguard.lake.envelope import (
    ENVELOPE_DEFAULTS,
    NUMBER,
    PARTITION_COLUMN,
    STRING,
    Conformed,
    arrow_type,
    conform,
)

T = TypeVar("T")

# ---- features from raw events ------------------------------------------------------------------------------

_EVENTS_TABLE = "events"  # the feature query reads "temp"."events": a view of the request's Arrow table
# Column types an events frame has too; any other (nested, mixed, past 64 bits) takes the frame's way.
_FRAME_TYPES = (
    pa.types.is_string, pa.types.is_floating, pa.types.is_integer, pa.types.is_boolean, pa.types.is_null
)
_UNREAD_EVENT_ID = "request"  # every event's event_id when no definition reads one: conform derives none


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


def _columns_read(kinds: dict[str, str]) -> dict[str, str]:
    """The columns a feature query reads, with their types: each event's player, type and time, its
    partition, and what the definitions read (an envelope column keeps its own type)."""
    read = {name: ENVELOPE_TYPES[name] for name in ("player_id", "event_type", "event_timestamp")}
    read[PARTITION_COLUMN] = STRING
    for name, kind in kinds.items():
        read.setdefault(name, ENVELOPE_TYPES.get(name, kind))
    return read


def _arrow_events(events: list[dict[str, Any]]) -> pa.Table | None:
    """The events as the Arrow table `conform` makes of their frame (`_events_frame`), built without pandas;
    None when a column needs the frame's handling (mixed or nested values, integers past 64 bits, a game_id
    or platform that is not text)."""
    keys = dict.fromkeys(itertools.chain.from_iterable(events))  # in order of first appearance, as a frame's
    try:  # column by column: 1.9 ms for 2,800 events where inferring one struct type over them took 2.5
        table = pa.table({key: pa.array([event.get(key) for event in events], from_pandas=True)  # NaN is null
                          for key in keys})
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return None
    if not all(any(is_type(kind) for is_type in _FRAME_TYPES) for kind in table.schema.types):
        return None
    for i, column in enumerate(table.columns):
        if pa.types.is_integer(column.type) and column.null_count:  # a frame holds gappy integers as floats
            table = table.set_column(i, table.field(i).name, column.cast(pa.float64(), safe=False))
    return _with_envelope_defaults(table)


def _with_envelope_defaults(table: pa.Table) -> pa.Table | None:
    """game_id and platform as ingest defaults them (ENVELOPE_DEFAULTS) where an event has none; None if
    either is not text."""
    for name in ("game_id", "platform"):
        if name not in table.column_names:
            table = table.append_column(name, pa.repeat(ENVELOPE_DEFAULTS[name], table.num_rows))
            continue
        column = table.column(name)
        if not (pa.types.is_string(column.type) or pa.types.is_null(column.type)):
            return None
        filled = pc.fill_null(column.cast(pa.string()), ENVELOPE_DEFAULTS[name])
        table = table.set_column(table.column_names.index(name), name, filled)
    return table


def _events_frame(events: list[dict[str, Any]]) -> pd.DataFrame:
    """The events as a frame, game_id and platform defaulted; RequestError naming a nested value."""
    for i, event in enumerate(events):
        nested = next((key for key, value in event.items() if isinstance(value, dict | list)), None)
        if nested is not None:
            raise RequestError(f"events[{i}]: {nested!r} must be a number, string or null", "invalid_events")
    frame = pd.DataFrame.from_records(events)
    for column in ("game_id", "platform"):
        default = ENVELOPE_DEFAULTS[column]
        frame[column] = frame[column].fillna(default) if column in frame else default
    return frame


def _check_attribute_range(valid: pa.Table, attribute_types: dict[str, str]) -> None:
    """A number attribute at or beyond float32 range is invalid input (features made from it would be too)."""
    for name, kind in attribute_types.items():
        if kind != NUMBER or name not in valid.column_names:
            continue
        column = valid.column(name).to_numpy()  # nulls are NaN
        with np.errstate(invalid="ignore"):
            outside = np.flatnonzero(np.abs(column) >= FLOAT32_MAX)
        if len(outside):
            raise RequestError(
                f"events[{outside[0]}]: attribute {name!r} is {column[outside[0]]:.4g}, outside the range the "
                f"models accept (magnitude under {FLOAT32_MAX:.4g})",
                "value_out_of_range",
            )


def _refuse_rejected(conformed: Conformed, events: int) -> None:
    """RequestError naming the first invalid event, if any."""
    rejected = conformed.rejected_rows.num_rows
    if rejected:
        first = conformed.rejected.iloc[0]
        raise RequestError(
            f"{rejected} of {events} events are invalid; first: {first['reason']} in {first['row'][:200]}",
            "invalid_events",
        )


@functools.lru_cache(maxsize=16)
def _duckdb_sql(sql: str) -> str:
    """The DuckDB form of a feature query; the same for every request with the same attribute types, and
    transpiling it took a tenth of a small request's time."""
    from playerguard.features.engines import transpile_to_duckdb

    return transpile_to_duckdb(sql)


def _feature_values(query: CompiledQuery, result: dict[str, np.ndarray], names: Sequence[str]) -> np.ndarray:
    """The features of a one-cutoff query's result × `names` as float64, exactly as `CompiledQuery.finalize`
    makes them (recency and tenure in days before the cutoff); NaN where undefined or not in the set."""
    epoch = query.cutoffs[0].timestamp()
    computed, in_days = set(query.feature_names), set(query.epoch_features)
    values = np.full((len(result["player_id"]), len(names)), np.nan)
    for j, name in enumerate(names):
        if name in computed:
            column = np.ma.filled(result[name].astype("float64"), np.nan)  # NULL is NaN
            values[:, j] = (epoch - column) / 86400.0 if name in in_days else column
    return values


class EventsFeaturizer:
    """Raw events → features with a bundle's feature definitions: the query `build_features` compiles, over
    the request's events in DuckDB, so a request computes exactly what training computed from the lake.

    Events need player_id, event_type and event_timestamp; game_id and platform default as in ingest
    (features do not read them unless a definition filters on them). `lookback_days` resolves definitions
    whose window is `lookback` (28, as `build_features` defaults to).
    """

    def __init__(self, feature_set: FeatureSet, lookback_days: int = 28) -> None:
        self.feature_set = feature_set
        self.lookback_days = lookback_days
        self._kinds = _attribute_kinds(feature_set)
        self._columns = _columns_read(self._kinds)
        self._connection: Any = None
        self._lock = threading.Lock()

    def _cursor(self) -> Any:
        import duckdb

        with self._lock:  # one in-memory database per bundle; a cursor (its own session) per request
            if self._connection is None:
                self._connection = duckdb.connect(config={"threads": 1})  # tables of one request are small
            return self._connection.cursor()

    def _conform(self, events: list[dict[str, Any]]) -> Conformed:
        """The events checked and typed as ingest would; RequestError if the batch cannot be conformed."""
        table = _arrow_events(events)
        try:
            if table is None:
                return conform(_events_frame(events), known_types=self._kinds, source="request")
            if "event_id" in self._columns:  # read by a definition: derived where missing, as ingest does
                return conform(table, known_types=self._kinds, source="request")
            without = table.drop_columns(["event_id"]) if "event_id" in table.column_names else table
            given = without.append_column("event_id", pa.repeat(_UNREAD_EVENT_ID, table.num_rows))
            return conform(given, known_types=self._kinds, source="request", raw=table)
        except ConfigError as error:
            raise RequestError(f"invalid events: {error}", "invalid_events") from None

    def _table(self, events: list[dict[str, Any]]) -> pa.Table:
        """The events conformed as the lake stores them (RequestError if any is invalid), in the columns the
        feature query reads: event_timestamp naive UTC, as Athena's column is; NULL for an attribute no event
        carries, as the lake would read it."""
        conformed = self._conform(events)
        _refuse_rejected(conformed, len(events))
        valid = conformed.table
        _check_attribute_range(valid, conformed.attribute_types)
        columns = {}
        for name, kind in self._columns.items():
            present = name in valid.column_names
            columns[name] = valid.column(name) if present else pa.nulls(valid.num_rows, arrow_type(kind))
        columns["event_timestamp"] = columns["event_timestamp"].cast(pa.timestamp("us"))  # the same instants
        return pa.table(columns)

    def _query(
        self, events: list[dict[str, Any]], cutoff: datetime | None, fetch: Callable[[Any], T]
    ) -> tuple[CompiledQuery, T]:
        """The compiled feature query and its result over the events, as `fetch` takes it from DuckDB."""
        if not events:
            raise RequestError("no events to compute features from", "invalid_events")
        table = self._table(events)
        if cutoff is None:
            cutoff = default_cutoff(table.column("event_timestamp").to_numpy())
        try:
            # keyed on the player id itself: build_features may group on a hash of it, which saves time on a
            # lake, not on a request, and computes the same values when no two players share a hash
            query = compile_features(
                self.feature_set,
                [cutoff],
                lookback_days=self.lookback_days,
                columns=self._columns,
                database="temp",
                table=_EVENTS_TABLE,
                one_scan=True,
            )
        except ConfigError as error:
            raise RequestError(f"invalid events: {error}", "invalid_events") from None
        cursor = self._cursor()
        try:
            # the Arrow table as a view, not copied: the one-scan query reads it once
            cursor.register(_EVENTS_TABLE, table)
            return query, fetch(cursor.execute(_duckdb_sql(query.sql), list(query.params)))
        finally:
            cursor.close()

    def __call__(self, events: list[dict[str, Any]], cutoff: datetime | None = None) -> pd.DataFrame:
        """player_id, cutoff and the features, one row per player with an event before the cutoff
        (default: just after the latest event), as `build_features` returns them."""
        query, raw = self._query(events, cutoff, lambda result: result.df())
        return query.finalize(raw)

    def feature_rows(
        self, events: list[dict[str, Any]], cutoff: datetime | None, names: Sequence[str]
    ) -> tuple[list[str], np.ndarray]:
        """The players with an event before the cutoff, and their features × `names` (float64, NaN where
        undefined): the values of `__call__`, without the frames (6 ms of a 100-player request)."""
        query, result = self._query(events, cutoff, lambda relation: relation.fetchnumpy())
        return result["player_id"].tolist(), _feature_values(query, result, names)


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
    reasons: str = "acted",
) -> list[dict[str, Any]]:
    """Parse a request body, compute features from events where needed, and score: one prediction per
    record (per player for raw events), as `score_frame` returns them. RequestError on a bad request.

    The features go from the parsed request to one matrix with no DataFrame in between. `reasons` (the
    request's option, see `reasons_option`): "acted" explains, per model, the rows the policy acts on
    (exact TreeSHAP, one call per model) and gives the others no feature reasons; "all" explains every row.

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
            return score_matrix(served.bundle, parsed.player_ids, matrix, reasons=reasons)
    except DataError as error:
        raise RequestError(str(error), "unscorable") from None


# ---- SageMaker handler functions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Invocation:
    """A request body accepted by `input_fn`, and its options; it is parsed against the model's features in
    `predict_fn`, because SageMaker does not pass the model to `input_fn`."""

    body: bytes | str
    content_type: str | None
    reasons: str = "acted"


def _custom_attributes() -> str | None:
    """The request's custom attributes header, read from the container's Flask request (the handler
    functions receive only the body and the content type)."""
    try:
        import flask
    except ImportError:
        return None
    return flask.request.headers.get(CUSTOM_ATTRIBUTES_HEADER) if flask.has_request_context() else None


def model_fn(model_dir: str) -> ServingBundle:
    """SageMaker: load the bundle unpacked from model.tar.gz, checked against PLAYERGUARD_BUNDLE_DIGEST when
    the endpoint's environment sets it."""
    from playerguard.settings import Settings

    return load_serving_bundle(Path(model_dir), Settings().bundle_digest)


def input_fn(input_data: bytes | str, content_type: str | None) -> Invocation | RequestError:
    """SageMaker: check the body's size and content type, and read the request's options (`reasons=all`
    in its CustomAttributes)."""
    try:
        check_request(input_data, content_type, DEFAULT_LIMITS)
        reasons = reasons_option(_custom_attributes())
    except RequestError as error:
        return error
    return Invocation(input_data, content_type, reasons)


def predict_fn(invocation: Invocation | RequestError, model: ServingBundle) -> list[dict[str, Any]] | RequestError:
    """SageMaker: parse and score the request with the loaded bundle."""
    if isinstance(invocation, RequestError):
        return invocation
    try:
        return score_request(model, invocation.body, invocation.content_type, reasons=invocation.reasons)
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
