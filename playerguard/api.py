"""The Python API for notebooks and scripts: `import playerguard as pg`.

```python
import playerguard as pg

pg.simulate(players=600, days=49)
features = pg.build_features("2026-02-05")
result = pg.train(horizon="14d")
scores = pg.score()
print(pg.explain(scores["player_id"][0]))
```
Every function takes `home`: a state directory, a `pg.Settings`, or None for PLAYERGUARD_HOME and the
other `PLAYERGUARD_*` variables. Cutoffs are `"2026-03-01"`, ISO 8601 strings, dates or datetimes (UTC
when they carry no zone); durations are `"14d"`, `"6h"` or timedeltas. Each function wraps the package
function named in its docstring, which the command line calls too.
"""

from __future__ import annotations

import functools
import logging
import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar

from playerguard.errors import ConfigError, DataError
from playerguard.settings import Settings

if TYPE_CHECKING:
    import pandas as pd

    from playerguard.features.compiler import CompiledQuery
    from playerguard.features.source_check import SourceReport
    from playerguard.inference.bundle import Bundle
    from playerguard.inference.explain import Explanation
    from playerguard.inference.writeback import WritebackResult
    from playerguard.lake.base import EventLake
    from playerguard.lake.info import LakeInfo
    from playerguard.lake.ingest import IngestResult
    from playerguard.pipelines.drift import DriftReport
    from playerguard.stream.replay import ReplaySummary
    from playerguard.training.train import TrainResult

__all__ = [
    "LocalEndpoint", "build_features", "build_training_set", "bundle", "champions", "check_source", "cutoffs",
    "drift", "explain", "feature_sql", "flags", "ground_truth", "ingest", "lake_info", "models", "open_lake",
    "promote", "replay", "results", "review_flag", "score", "serve", "simulate", "sql", "suppressed_flags",
    "train", "write_scores",
]  # fmt: skip

Home = str | os.PathLike[str] | Settings | None
Moment = str | date | datetime
Duration = str | timedelta
F = TypeVar("F", bound=Callable[..., Any])


def _quiet(function: F) -> F:
    """Keep MLflow's INFO lines and download bars out of notebook output. Set at call time: importing
    playerguard has no side effects, and mlflow resets its logger's level when it is first imported."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
        logging.getLogger("mlflow").setLevel(logging.WARNING)
        # mlflow imports tqdm.auto, which warns in a kernel without ipywidgets about bars that never show
        warnings.filterwarnings("ignore", message="IProgress not found")
        return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _settings(home: Home) -> Settings:
    if isinstance(home, Settings):
        return home
    return Settings() if home is None else Settings(home=Path(home))


def _cutoff(value: Moment) -> datetime:
    """A cutoff as an aware UTC datetime; a date is its midnight."""
    from playerguard.command_options import parse_cutoff

    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, time.min)
    return parse_cutoff(value)


def _days(value: Duration, what: str) -> int:
    from playerguard.durations import parse_days

    return parse_days(value, what)


def _optional_days(value: Duration | None, what: str) -> int | None:
    return None if value is None else _days(value, what)


def _bundle(value: Any, settings: Settings, feature_set: str | None = None) -> Bundle:
    from playerguard.inference.batch import champion_bundle
    from playerguard.inference.bundle import Bundle

    if isinstance(value, Bundle):
        return value
    return champion_bundle(settings, Path(value) if value is not None else None, feature_set=feature_set)


def _check(settings: Settings, cutoff: datetime, lookback_days: int, horizon_days: int | None = None) -> None:
    """The command line's check: a cutoff that sees none of the lake is an error naming its range."""
    from playerguard.features.cutoffs import check_cutoff

    check_cutoff(settings, cutoff, lookback_days=lookback_days, horizon_days=horizon_days)


def _latest(settings: Settings) -> datetime:
    from playerguard.inference.explain import default_cutoff

    return default_cutoff(settings)


# ---- the lake -------------------------------------------------------------------------------------------


@_quiet
def simulate(
    players: int = 2000,
    days: int = 60,
    seed: int = 7,
    *,
    layout: str = "native",
    faults: int = 0,
    replace: bool = False,
    home: Home = None,
) -> Any:
    """Simulate a game with known cheaters, bots, churners and buyers into the lake (`write_simulation`), or
    as a Game Analytics Pipeline `raw_events` table: `layout="gap"` (v2, Parquet) or `"gap-v3"` (Iceberg)."""
    settings = _settings(home)
    if layout == "gap":
        from playerguard.simulator.gap_layout import write_gap_simulation

        return write_gap_simulation(
            settings, players=players, days=days, seed=seed, replace=replace, faults=faults
        )
    if layout == "gap-v3":
        from playerguard.simulator.gap_v3_layout import write_gap_v3_simulation

        return write_gap_v3_simulation(
            settings, players=players, days=days, seed=seed, replace=replace, faults=faults
        )
    if layout != "native":
        raise ConfigError(f"unknown layout {layout!r}; use native, gap or gap-v3")
    from playerguard.simulator.writer import write_simulation

    return write_simulation(settings, players=players, days=days, seed=seed, replace=replace)


def open_lake(home: Home = None) -> EventLake:
    """The event lake the settings point at: a local Parquet directory, or S3 + Glue on the aws backend."""
    from playerguard.backends import backend_for

    return backend_for(_settings(home)).lake()


def lake_info(home: Home = None) -> LakeInfo:
    """Events, players, date range, events per type and day, attributes and rejected rows (`lake_info`)."""
    from playerguard.lake.info import lake_info as summarise

    return summarise(_settings(home))


def suggest_features(*, out: str | os.PathLike[str] | None = None, home: Home = None) -> Any:
    """A feature set fitted to the lake's own event types and attributes (`features suggest`): its YAML
    `.text` (written to `out` when given) and the parsed `.feature_set`."""
    from playerguard.features.api import suggest_features as suggest

    suggestion = suggest(_settings(home))
    if out is not None:
        Path(out).write_text(suggestion.text)
    return suggestion


def ban_list(path: str | os.PathLike[str], *, home: Home = None) -> Path:
    """Store a ban list (player ids: CSV or Parquet with `player_id`, or one id a line) as a label table:
    the next training treats it as positives only, the other players as unlabelled (`train --ban-list`)."""
    from playerguard.features.labels import write_ban_list

    return write_ban_list(_settings(home), Path(path))


def training_set_as_of_run(run_id: str, *, home: Home = None) -> pd.DataFrame:
    """Exactly the rows training run `run_id` learnt from, read again from the lake version it recorded (an
    Iceberg snapshot, or the Parquet files it read); a DataError says why when they cannot be."""
    from playerguard.training.rebuild import training_set_as_of_run as rebuild

    return rebuild(_settings(home), run_id)


def ingest(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    mapping: str | os.PathLike[str] | None = None,
    *,
    home: Home = None,
) -> list[IngestResult]:
    """Ingest CSV, JSON-lines or Parquet files into the lake, with a column mapping YAML (`ingest`)."""
    from playerguard.lake.ingest import ingest as run

    files = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    return run(_settings(home), [Path(p) for p in files], Path(mapping) if mapping else None)


def sql(query: str, params: Sequence[Any] = (), *, home: Home = None) -> pd.DataFrame:
    """Run Athena (Trino) SQL on the lake: DuckDB locally, Athena on aws. `{events}` in the query names the
    events table (read through the settings' source mapping, if any); values go in `params` as `?`."""
    from playerguard.backends import backend_for
    from playerguard.features.compiler import table_name

    engine = backend_for(_settings(home)).sql_engine()
    try:
        return engine.query(
            query.replace("{events}", table_name(engine.database, engine.table)), list(params)
        )
    finally:
        close = getattr(engine, "close", None)
        if close is not None:
            close()


def ground_truth(home: Home = None) -> pd.DataFrame:
    """The simulator's truth about each player (archetype, cheater, churn day...), kept beside the lake."""
    import pandas as pd

    path = _settings(home).ground_truth_path
    if not path.exists():
        raise DataError(f"no ground truth at {path}: only a simulated game has one")
    return pd.read_parquet(path)


def check_source(mapping: Any = "gap", *, days: int | None = None, home: Home = None) -> SourceReport:
    """Check a source mapping (a name, a YAML path or a loaded mapping) against its table: columns,
    partitions, and the rows that fail the mapping, counted by reason (`check_source`)."""
    from playerguard.features.source_check import check_source as check
    from playerguard.features.sources import SourceMapping, load_source_mapping

    loaded = mapping if isinstance(mapping, SourceMapping) else load_source_mapping(mapping)
    return check(_settings(home), loaded, days=days)


# ---- features -------------------------------------------------------------------------------------------


@_quiet
def build_features(
    cutoff: Moment,
    *,
    lookback: Duration = "28d",
    feature_set: Any = "default",
    active_within: Duration | None = None,
    home: Home = None,
) -> pd.DataFrame:
    """Point-in-time features: one row per player with an event before `cutoff` (`build_features`). A cutoff
    that sees none of the lake is a DataError naming the lake's range."""
    from playerguard.features.api import build_features as build

    settings, moment, lookback_days = _settings(home), _cutoff(cutoff), _days(lookback, "lookback")
    _check(settings, moment, lookback_days)
    return build(
        settings,
        moment,
        lookback_days=lookback_days,
        feature_set=feature_set,
        active_within_days=_optional_days(active_within, "active_within"),
    )


def feature_sql(
    cutoff: Moment | Sequence[Moment], *, lookback: Duration = "28d", feature_set: Any = "default"
) -> CompiledQuery:
    """The Athena SQL and parameters `build_features` runs (`feature_query`): `.sql` and `.params`."""
    from playerguard.features.api import feature_query

    moments = [cutoff] if isinstance(cutoff, str | date) else list(cutoff)
    return feature_query(
        feature_set, [_cutoff(c) for c in moments], lookback_days=_days(lookback, "lookback")
    )


def cutoffs(
    *,
    every: Duration | None = None,
    start: Moment | None = None,
    end: Moment | None = None,
    horizon: Duration = "14d",
    home: Home = None,
) -> list[datetime]:
    """Training cutoffs: every `every` from `start` to `end` (both included); or, without them, weekly
    cutoffs ending `horizon` before the lake's last day (or at `end`) so every label window is in the data."""
    return _choose_cutoffs(_settings(home), every, start, end, horizon)


def _choose_cutoffs(
    settings: Settings, every: Duration | None, start: Moment | None, end: Moment | None, horizon: Duration
) -> list[datetime]:
    from playerguard.features.cutoffs import resolve_cutoffs

    if every is None and start is None:
        last = _cutoff(end) if end is not None else None
        return list(resolve_cutoffs(settings, cutoff=last, horizon_days=_days(horizon, "horizon")))
    if every is None or start is None or end is None:
        raise ConfigError("cutoffs: give every, start and end together (or none of them)")
    from playerguard.features.commands import cutoff_list

    return cutoff_list(None, every, _cutoff(start), _cutoff(end))  # type: ignore[arg-type]


@_quiet
def build_training_set(
    cutoffs: Sequence[Moment] | None = None,
    *,
    every: Duration | None = None,
    start: Moment | None = None,
    end: Moment | None = None,
    horizon: Duration = "14d",
    lookback: Duration = "28d",
    feature_set: Any = "default",
    home: Home = None,
) -> pd.DataFrame:
    """Features and labels (`label_churn`, `label_purchase`, `label_inhuman_play`) for every player at every
    cutoff (`build_training_set`). Cutoffs: given, or as `pg.cutoffs` chooses them."""
    return _training_set(_settings(home), cutoffs, every, start, end, horizon, lookback, feature_set)


def _training_set(
    settings: Settings,
    chosen: Sequence[Moment] | None,
    every: Duration | None,
    start: Moment | None,
    end: Moment | None,
    horizon: Duration,
    lookback: Duration,
    feature_set: Any,
) -> pd.DataFrame:
    from playerguard.features.api import build_training_set as build

    moments = sorted(
        [_cutoff(c) for c in chosen] if chosen else _choose_cutoffs(settings, every, start, end, horizon)
    )
    horizon_days, lookback_days = _days(horizon, "horizon"), _days(lookback, "lookback")
    if moments:
        for moment in (moments[0], moments[-1]):
            _check(settings, moment, lookback_days, horizon_days)
    return build(
        settings, moments, horizon_days=horizon_days, lookback_days=lookback_days, feature_set=feature_set
    )


# ---- models ---------------------------------------------------------------------------------------------


@_quiet
def train(
    which: str | Sequence[str] = "all",
    *,
    training_set: pd.DataFrame | None = None,
    cutoffs: Sequence[Moment] | None = None,
    horizon: Duration = "14d",
    lookback: Duration = "28d",
    feature_set: Any = "default",
    params: dict[str, dict[str, Any]] | None = None,
    target_fpr: float = 0.01,
    progress: Callable[[str], None] | None = None,
    home: Home = None,
) -> TrainResult:
    """Train `which` ("all", a model name or a list), evaluate out of time on the last cutoff, register and
    gate the champion (`train`). Without a `training_set`, one is built at `cutoffs` (default: weekly)."""
    from playerguard.model_names import MODEL_NAMES
    from playerguard.training.train import train as run

    settings = _settings(home)
    models = tuple(MODEL_NAMES) if which == "all" else ((which,) if isinstance(which, str) else tuple(which))
    if training_set is None:
        training_set = _training_set(settings, cutoffs, None, None, None, horizon, lookback, feature_set)
    return run(
        settings,
        training_set,
        models,
        feature_set=feature_set,
        target_fpr=target_fpr,
        horizon_days=_days(horizon, "horizon"),
        params=params,
        progress=progress,
    )


@_quiet
def models(home: Home = None) -> pd.DataFrame:
    """Every registered version: model, version, aliases, held-out metrics, gate decision (`list_models`)."""
    import pandas as pd

    from playerguard.training.tracking import list_models

    return pd.DataFrame(list_models(_settings(home)))


@_quiet
def champions(home: Home = None) -> dict[str, str]:
    """The version carrying the `champion` alias, per model that has one."""
    from playerguard.training.tracking import CHAMPION_ALIAS, list_models

    return {r["model"]: r["version"] for r in list_models(_settings(home)) if CHAMPION_ALIAS in r["aliases"]}


@_quiet
def promote(model: str, version: str | int | None = None, *, home: Home = None) -> dict[str, Any]:
    """Make `version` (default: the latest registered) the champion of `model`, bypassing the gate, as
    `playerguard models promote` does (`promote`)."""
    from playerguard.training.tracking import list_models
    from playerguard.training.tracking import promote as move

    settings = _settings(home)
    if version is None:
        versions = [int(r["version"]) for r in list_models(settings) if r["model"] == model]
        if not versions:
            raise DataError(f"no registered version of {model!r}; train it first")
        version = max(versions)
    return move(settings, model, version)


@_quiet
def bundle(
    path: str | os.PathLike[str] | None = None, *, feature_set: str | None = None, home: Home = None
) -> Bundle:
    """The bundle at `path`, or the registry's champions bundled into `<home>/bundle` (`champion_bundle`)."""
    return _bundle(path, _settings(home), feature_set)


# ---- scoring --------------------------------------------------------------------------------------------


@_quiet
def score(
    cutoff: Moment | None = None,
    *,
    bundle: Any = None,
    lookback: Duration = "28d",
    active_within: Duration | None = None,
    reasons: str = "acted",
    home: Home = None,
) -> pd.DataFrame:
    """Score every player with an event before `cutoff` (default: just after the lake's last event day)
    with the champions or `bundle` (`score_cutoff`): scores, actions, reasons and model versions as JSON.
    `reasons`: "acted" gives feature reasons to the players the policy acts on (per model), "all" to every
    player. Notes on models without a champion are in `.attrs["notes"]`."""
    from playerguard.inference.batch import score_cutoff
    from playerguard.inference.scoring import check_reasons

    check_reasons(reasons)
    settings, lookback_days = _settings(home), _days(lookback, "lookback")
    moment = _cutoff(cutoff) if cutoff is not None else _latest(settings)
    _check(settings, moment, lookback_days)
    scored = score_cutoff(
        settings,
        moment,
        bundle=_bundle(bundle, settings),
        lookback_days=lookback_days,
        active_within_days=_optional_days(active_within, "active_within"),
        reasons=reasons,
    )
    scored.table.attrs["notes"] = scored.notes
    return scored.table


def write_scores(scores: pd.DataFrame, *, home: Home = None) -> WritebackResult:
    """Write a `score` table into `player_scores` and `player_flags` beside the lake, replacing its cutoff's
    partition (`write_results`; S3 + Glue on aws)."""
    from playerguard.inference.writeback import write_results

    return write_results(_settings(home), scores)


def results(query: str, params: Sequence[Any] = (), *, home: Home = None) -> pd.DataFrame:
    """Query the written `player_scores` and `player_flags` tables with SQL (locally; on aws use Athena)."""
    from playerguard.backends import backend_for

    store = backend_for(_settings(home)).results_store()
    if not hasattr(store, "connect"):
        raise ConfigError("the result tables are in Glue: query player_scores and player_flags with Athena")
    con = store.connect()
    try:
        return con.execute(query, list(params)).df()
    finally:
        con.close()


@_quiet
def explain(
    player_id: str,
    cutoff: Moment | None = None,
    *,
    bundle: Any = None,
    lookback: Duration = "28d",
    active_within: Duration | None = None,
    home: Home = None,
) -> Explanation:
    """One player's scores, the policy's actions and the reasons, each with the player's feature value, the
    population's median and the player's percentile at `cutoff` (default: just after the lake's last event
    day); the population is every player `score` scores with the same `active_within`. `print` it, or read
    `.scores`, `.actions` and `.reasons_frame()`."""
    from playerguard.inference.explain import explain_player

    settings = _settings(home)
    return explain_player(
        settings,
        str(player_id),
        _cutoff(cutoff) if cutoff is not None else _latest(settings),
        bundle=_bundle(bundle, settings),
        lookback_days=_days(lookback, "lookback"),
        active_within_days=_optional_days(active_within, "active_within"),
    )


def drift(training_set: pd.DataFrame, *, bundle: Bundle | None = None, threshold: float = 0.2) -> DriftReport:
    """Population Stability Index of every feature (and every `bundle` model's score) at the training set's
    latest cutoff against its earlier ones (`latest_cutoff_drift`)."""
    from playerguard.pipelines.drift import latest_cutoff_drift

    return latest_cutoff_drift(training_set, bundle.models if bundle is not None else None, threshold)


# ---- the endpoint, the stream and the review queue ------------------------------------------------------


class LocalEndpoint:
    """The local scoring server, running in this process's background until `close()`, and the boto3
    `sagemaker-runtime` client that calls it (the client that calls a SageMaker endpoint)."""

    def __init__(self, settings: Settings, bundle: Path | None = None) -> None:
        from playerguard.stream.endpoint import runtime_client
        from playerguard.stream.replay import local_scoring_server

        self._stack = ExitStack()
        self.url, served = self._stack.enter_context(local_scoring_server(settings, bundle))
        self.bundle: Bundle = served.bundle
        self.name = settings.endpoint_name
        self.client = runtime_client(self.url)

    def invoke(self, payload: Any) -> list[dict[str, Any]]:
        """Score records (a list of dicts, `{"events": [...]}`...) or a feature frame (sent as CSV)."""
        from playerguard.stream.endpoint import invoke

        if hasattr(payload, "to_csv"):
            return invoke(self.client, self.name, payload.to_csv(index=False), content_type="text/csv")
        return invoke(self.client, self.name, payload)

    def close(self) -> None:
        """Stop the server."""
        self._stack.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@_quiet
def serve(bundle: str | os.PathLike[str] | None = None, *, home: Home = None) -> LocalEndpoint:
    """Start the local scoring server on a free loopback port with `bundle` (default: the champions); stop it
    with `.close()` or use it in a `with` block."""
    return LocalEndpoint(_settings(home), Path(bundle) if bundle is not None else None)


@_quiet
def replay(
    start: Moment,
    end: Moment | None = None,
    *,
    endpoint: LocalEndpoint | str | None = None,
    batch_size: int = 100,
    refresh_every: Duration | None = None,
    bundle: str | os.PathLike[str] | None = None,
    home: Home = None,
) -> ReplaySummary:
    """Replay the lake's events of days `start` to `end` (default: `start`) as Kinesis batches through the
    stream handler; flags land in the outbox (`replay`). The endpoint is `endpoint` (a LocalEndpoint or a
    URL), else PLAYERGUARD_ENDPOINT_URL, else a local server started for the replay. With `refresh_every`
    the online feature snapshot is rebuilt at the start of each such window."""
    from playerguard.durations import parse_duration
    from playerguard.stream.replay import replay as run

    settings = _settings(home)
    if endpoint is not None:
        url = endpoint.url if isinstance(endpoint, LocalEndpoint) else str(endpoint)
        settings = settings.model_copy(update={"endpoint_url": url})
    first = _cutoff(start).date()
    return run(
        settings,
        first,
        _cutoff(end).date() if end is not None else first,
        batch_size=batch_size,
        bundle=Path(bundle) if bundle is not None else None,
        refresh_every=parse_duration(refresh_every, "refresh_every") if refresh_every is not None else None,
    )


def flags(
    status: str | None = None, model: str | None = None, *, limit: int = 10_000, home: Home = None
) -> pd.DataFrame:
    """The review queue: one row per flag (the flag message, `status`, `reviewed_at`), newest event first."""
    import pandas as pd

    from playerguard.stream.notifiers.local import OutboxNotifier

    outbox = OutboxNotifier.from_home(_settings(home).home)
    if not outbox.path.exists():
        return pd.DataFrame()
    try:
        entries = outbox.entries(status=status, model=model, limit=limit)
    finally:
        outbox.close()
    return pd.DataFrame(
        [{**e.flag.to_message(), "status": e.status, "reviewed_at": e.reviewed_at} for e in entries]
    )


def suppressed_flags(day: str | None = None, *, limit: int = 10_000, home: Home = None) -> pd.DataFrame:
    """The flags the daily budget held back (the flag message and `reason`), highest value at risk first;
    `day` (YYYY-MM-DD) for one UTC day. What `playerguard flags suppressed` lists."""
    import pandas as pd

    from playerguard.stream.notifiers.local import OutboxNotifier

    if day is not None:
        try:
            date.fromisoformat(day)
        except (TypeError, ValueError):
            raise DataError(f"day must be a date, YYYY-MM-DD, got {day!r}") from None
    outbox = OutboxNotifier.from_home(_settings(home).home)
    if not outbox.path.exists():
        return pd.DataFrame()
    try:
        held = outbox.suppressions(day=day, limit=limit)
    finally:
        outbox.close()
    return pd.DataFrame([{**s.flag.to_message(), "reason": s.reason} for s in held])


def review_flag(flag_id: str, verdict: str, *, home: Home = None) -> dict[str, Any]:
    """Record a reviewer's verdict (`confirmed` or `dismissed`) on a flag (a unique id prefix is enough).
    Verdicts on inhuman-play flags become training labels; `labels` is then the file they are in."""
    from playerguard.stream.commands import LABELLED_MODEL, export_review_labels
    from playerguard.stream.notifiers.local import OutboxNotifier

    settings = _settings(home)
    outbox = OutboxNotifier.from_home(settings.home)
    if not outbox.path.exists():
        raise DataError(f"no outbox at {outbox.path}: replay the stream first")
    try:
        entry = outbox.review(flag_id, verdict)
        labels = export_review_labels(outbox, settings.home) if entry.flag.model == LABELLED_MODEL else None
    finally:
        outbox.close()
    return {
        **entry.flag.to_message(),
        "status": entry.status,
        "reviewed_at": entry.reviewed_at,
        "labels": labels,
    }
