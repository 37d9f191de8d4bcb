"""A Game Analytics Pipeline v3 lake (an Apache Iceberg table in a local SQLite catalog) read in place:
Iceberg plans the files of each query's date range, DuckDB reads them with the same SQL Athena runs, and
the features, training sets and scores equal those of the same events in the native and v2 lakes."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import sqlglot
from typer.testing import CliRunner

from playerguard.errors import ConfigError, DataError
from playerguard.features.api import build_features, build_training_set
from playerguard.features.compiler import compile_features
from playerguard.features.engines import DuckDBEngine, transpile_to_duckdb
from playerguard.features.iceberg_source import IcebergSource
from playerguard.features.source_binding import MappedSource
from playerguard.features.source_check import check_source
from playerguard.features.source_commands import source_app
from playerguard.features.sources import (
    load_source_mapping,
    mapped_select,
    parse_source_mapping,
    partition_predicate,
)
from playerguard.features.spec import load_feature_set
from playerguard.lake.local import LocalLake
from playerguard.settings import Settings
from playerguard.simulator.game import simulate
from playerguard.simulator.gap_layout import FAULT_KINDS, GAP_TABLE, write_gap_table
from playerguard.simulator.gap_v3_layout import (
    append_gap_v3_events,
    create_gap_v3_table,
    write_gap_v3_simulation,
)

SEED, PLAYERS, DAYS, FAULTS = 5, 80, 30, 8
CUTOFF = datetime(2026, 1, 29, 6, tzinfo=UTC)
TRAINING_CUTOFFS = [datetime(2026, 1, 8, tzinfo=UTC) + timedelta(days=7 * k) for k in range(3)]
FAST = {"n_estimators": 40, "learning_rate": 0.2, "max_depth": 3, "early_stopping_rounds": 10, "n_jobs": 1}
PARAMS = {"churn": FAST, "purchase": FAST, "inhuman_play": {"n_estimators": 20, "cv_folds": 2, "n_jobs": 1}}
GAP, GAP_V3 = load_source_mapping("gap"), load_source_mapping("gap-v3")
SOURCE_VIEW = re.compile(r'\(\nSELECT .*?WHERE "_problem" IS NULL\n\) AS "events"', re.DOTALL)
# times to the cutoff: a GAP v2 table holds whole seconds
TIMING = [d.name for d in load_feature_set("default").definitions if d.kind in ("recency", "tenure")]


@pytest.fixture(scope="module")
def lakes(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One simulated game as a native lake, a v2 (Hive) table and a v3 (Iceberg) table with faults."""
    root = tmp_path_factory.mktemp("v3")
    game = simulate(players=PLAYERS, days=DAYS, seed=SEED)
    LocalLake(root / "native").append_table(game.events)
    write_gap_table(game.events, root / "v2" / GAP_TABLE)
    settings = Settings(home=root / "home")
    append_gap_v3_events(create_gap_v3_table(settings.lake_dir), game.events, faults=FAULTS)
    game.ground_truth.to_parquet(settings.ground_truth_path, index=False)
    return {"root": root, "settings": settings, "events": game.events.num_rows}


def engine(lakes: dict, name: str) -> DuckDBEngine:
    if name == "v3":
        return DuckDBEngine(lakes["settings"].lake_dir, source=GAP_V3)
    if name == "v2":
        return DuckDBEngine(lakes["root"] / "v2", source=GAP)
    return DuckDBEngine(lakes["root"] / name)


def test_the_v3_mapping_is_an_iceberg_mapping_without_partition_columns() -> None:
    assert (GAP_V3.format, GAP_V3.partitions, GAP_V3.timestamp.unit) == ("iceberg", None, "timestamp")
    where, params = partition_predicate(GAP_V3, date(2026, 1, 5), date(2026, 1, 11))
    assert where == ('"event_timestamp" >= CAST(? AS TIMESTAMP) AND "event_timestamp" < CAST(? AS TIMESTAMP)')
    assert params == ["2026-01-05 00:00:00", "2026-01-12 00:00:00"]
    seconds = GAP_V3.model_copy(update={"timestamp": GAP.timestamp})
    assert partition_predicate(seconds, None, date(2026, 1, 1)) == (
        '"event_timestamp" < CAST(? AS BIGINT)',
        [str(int(datetime(2026, 1, 2, tzinfo=UTC).timestamp()))],
    )
    document = GAP_V3.model_dump(by_alias=True, exclude_none=True, mode="json")
    with pytest.raises(ConfigError, match="partitions are hidden"):
        parse_source_mapping(document | {"partitions": {"date": "dt"}})
    with pytest.raises(ConfigError, match="needs column"):
        parse_source_mapping(document | {"timestamp": {"json": "ts"}})
    with pytest.raises(ConfigError, match="format"):
        parse_source_mapping(document | {"format": "delta"})


def test_v3_features_equal_the_native_lakes_and_the_v2_tables(lakes: dict) -> None:
    settings = lakes["settings"]
    v3 = build_features(settings, CUTOFF, engine=engine(lakes, "v3"))
    native = build_features(settings, CUTOFF, engine=engine(lakes, "native"))
    v2 = build_features(settings, CUTOFF, engine=engine(lakes, "v2"))
    assert len(v3) > 60
    # v3 keeps the exact times (an Iceberg timestamp): every feature equals the native lake's.
    pd.testing.assert_frame_equal(v3, native, rtol=1e-9)
    # v2 holds whole seconds: all but the timing features agree, and those within a second.
    exact = [c for c in v3.columns if c not in TIMING and "gap_cv" not in c]
    pd.testing.assert_frame_equal(v3[exact], v2[exact], rtol=1e-9)
    assert float((v3[TIMING] - v2[TIMING]).abs().max().max()) < 1 / 86400


def test_the_sql_differs_from_v2_only_in_the_source_view_and_is_what_duckdb_runs(lakes: dict) -> None:
    fs = load_feature_set("default")
    query = compile_features(fs, [CUTOFF], columns=GAP_V3.column_types(), player_key=True)  # as build_features
    bound = {}
    for mapping in (GAP, GAP_V3):
        sql, _ = MappedSource(mapping).bind(query.sql, query.params, "playerguard", "events")
        sqlglot.parse_one(sql, read="athena")  # Athena/Trino shape
        assert mapped_select(mapping, None, CUTOFF).sql in sql
        bound[mapping.name] = SOURCE_VIEW.sub("<source view>", sql)
    assert bound["gap"].count("<source view>") >= 2
    assert re.sub(r"\s+", " ", bound["gap"]) == re.sub(r"\s+", " ", bound["gap_v3"])

    ran: list[str] = []
    v3 = engine(lakes, "v3")
    run = v3._run
    v3._run = lambda sql, params: ran.append(sql) or run(sql, params)  # type: ignore[method-assign]
    build_features(lakes["settings"], CUTOFF, feature_set=fs, engine=v3)
    athena_sql, _ = MappedSource(GAP_V3).bind(query.sql, query.params, "playerguard", "events")
    assert ran[-1] == athena_sql and transpile_to_duckdb(athena_sql)


def test_iceberg_plans_only_the_files_of_the_days_a_query_reads(lakes: dict) -> None:
    source = IcebergSource(GAP_V3, lakes["settings"].lake_dir)
    every = source.plan()
    week = source.plan((CUTOFF.date() - timedelta(days=6), CUTOFF.date()))
    days = {Path(f.path).parent.name for f in week}
    assert days == {f"event_timestamp_day={CUTOFF.date() - timedelta(days=k)}" for k in range(7)}
    assert len(every) > 4 * len(week) and sum(f.rows for f in every) == lakes["events"] + FAULTS


def test_failing_rows_are_counted_and_source_check_describes_the_table(lakes: dict) -> None:
    v3 = engine(lakes, "v3")
    build_features(lakes["settings"], datetime(2026, 2, 10, tzinfo=UTC), engine=v3)
    (failures,) = v3.source.failures.values()
    # A row without a timestamp has no day partition: no time range holds it.
    counted = {kind: FAULTS // len(FAULT_KINDS) for kind in FAULT_KINDS if kind != "missing event_timestamp"}
    assert failures.reasons == counted

    report = check_source(lakes["settings"], GAP_V3, days=None)
    assert report.ok and report.table == "gap.raw_events" and "event_data" in report.columns
    assert report.first_partition == "1970-01-01" and report.last_partition == "2026-01-31"
    assert report.failures.reasons == counted and len(report.sample) == 5
    recent = check_source(lakes["settings"], GAP_V3, days=7)
    assert recent.checked == ("2026-01-25", "2026-01-31") and recent.failures.rows < report.failures.rows
    result = CliRunner().invoke(
        source_app, ["check", "--mapping", "gap-v3", "--home", str(lakes["settings"].home)]
    )
    assert result.exit_code == 0, result.output
    assert "source gap_v3: table gap.raw_events, 10 columns" in result.output and "\nok\n" in result.output
    assert check_source(Settings(home=lakes["root"] / "none"), GAP_V3).problems == [
        "table gap.raw_events not found"
    ]


def test_training_and_scoring_give_the_native_figures(lakes: dict, tmp_path: Path) -> None:
    from playerguard.inference.bundle import ModelSource, load_bundle, write_bundle
    from playerguard.inference.scoring import score_frame, scores_table
    from playerguard.training.train import train

    settings = lakes["settings"]
    sets = {
        name: build_training_set(settings, TRAINING_CUTOFFS, horizon_days=7, engine=engine(lakes, name))
        for name in ("v3", "native")
    }
    pd.testing.assert_frame_equal(sets["v3"], sets["native"], rtol=1e-9)
    results = {
        name: train(settings, frame, track=False, params=PARAMS, horizon_days=7, output_dir=tmp_path / name)
        for name, frame in sets.items()
    }
    for model in results["v3"].trained:
        assert results["v3"].models[model].metrics == pytest.approx(results["native"].models[model].metrics)
    trained = results["v3"]
    sources = [ModelSource(name, trained.models[name].model_dir) for name in trained.trained]
    bundle = load_bundle(write_bundle(tmp_path / "bundle", sources, feature_set="default"))
    tables = {
        name: scores_table(score_frame(bundle, build_features(settings, CUTOFF, engine=engine(lakes, name))))
        for name in ("v3", "native")
    }
    scores = [f"{model}_score" for model in trained.trained]
    pd.testing.assert_frame_equal(tables["v3"][scores], tables["native"][scores], rtol=1e-9)
    actions = {name: t["actions"].map(json.loads).tolist() for name, t in tables.items()}
    assert actions["v3"] == actions["native"]

    from playerguard.inference.iceberg_results import LocalIcebergResults
    from playerguard.inference.results_store import LocalResults
    from playerguard.inference.writeback import write_results

    stores = {
        "v3": LocalIcebergResults(tmp_path / "v3-lake"),
        "native": LocalResults(tmp_path / "native-lake"),
    }
    written = {}
    for name, store in stores.items():
        write_results(settings, tables[name], cutoff=CUTOFF, store=store)
        con = store.connect()
        written[name] = con.execute(
            "SELECT count(*), avg(churn_score), (SELECT count(*) FROM player_flags) FROM player_scores"
        ).fetchone()
    assert written["v3"] == pytest.approx(written["native"]) and written["v3"][2] > 0


def test_a_v3_simulation_writes_the_table_and_replaces_on_request(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    summary = write_gap_v3_simulation(settings, players=5, days=2, seed=1, faults=4)
    assert summary.faults == 4 and "Iceberg table gap.raw_events" in str(summary)
    assert (settings.lake_dir / "iceberg" / "catalog.db").is_file() and settings.ground_truth_path.exists()
    with pytest.raises(DataError, match="--replace"):
        write_gap_v3_simulation(settings, players=5, days=2, seed=2)
    write_gap_v3_simulation(settings, players=5, days=2, seed=2, replace=True)
    source = IcebergSource(GAP_V3, settings.lake_dir)
    assert sum(f.rows for f in source.plan()) == len(simulate(5, 2, 2).events)
    with pytest.raises(ConfigError, match="local lake"):
        write_gap_v3_simulation(Settings(home=tmp_path / "aws", backend="aws"), players=5, days=2, seed=1)


def test_athena_runs_the_same_sql_against_the_glue_iceberg_table(
    lakes: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Athena reads Iceberg natively: the Athena engine sends the SQL DuckDB runs locally, whose answers
    (computed here by DuckDB over every file of the table, as a stand-in for Athena) are the same."""
    import awswrangler as wr
    from sqlglot import exp

    from playerguard.features.engines import AthenaEngine

    local = engine(lakes, "v3")
    sent: list[str] = []

    def athena(sql: str, **kwargs: object) -> pd.DataFrame:
        sent.append(sql)
        values = iter(kwargs["params"])  # type: ignore[call-overload]
        tree = sqlglot.parse_one(sql, read="athena").transform(
            lambda node: (
                sqlglot.parse_one(next(values), read="athena") if isinstance(node, exp.Placeholder) else node
            )
        )
        reader = engine(lakes, "v3")
        return reader._connection().execute(transpile_to_duckdb(tree.sql(dialect="athena"))).df()

    monkeypatch.setattr(wr.athena, "read_sql_query", athena)
    ran: list[str] = []
    run = local._run
    local._run = lambda sql, params: ran.append(sql) or run(sql, params)  # type: ignore[method-assign]
    on_athena = AthenaEngine(lakes["settings"], boto3_session=object(), source=GAP_V3)
    pd.testing.assert_frame_equal(
        build_features(lakes["settings"], CUTOFF, engine=on_athena),
        build_features(lakes["settings"], CUTOFF, engine=local),
        rtol=1e-9,
    )
    assert sent == ran and len(sent) == 2  # the failure count, then the features


def test_scores_and_flags_are_written_back_as_iceberg_tables_idempotently(tmp_path: Path) -> None:
    from playerguard.inference.iceberg_results import LocalIcebergResults
    from playerguard.inference.writeback import write_results

    settings = Settings(home=tmp_path / "home", source_mapping="gap-v3")
    ban = {"model": "inhuman_play", "action": "account_action", "score": 0.95, "threshold": 0.9,
           "severity": "high"}  # fmt: skip
    scores = pd.DataFrame(
        {
            "player_id": ["a", "b"],
            "inhuman_play_score": [0.95, 0.1],
            "churn_score": [0.2, None],
            "purchase_score": [0.1, 0.7],
            "actions": [json.dumps([ban]), "[]"],
            "reasons": ['{"inhuman_play": [{"feature": "accuracy_28d"}]}', "{}"],
            "model_versions": ['{"inhuman_play": "3"}'] * 2,
        }
    )
    first, second = datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 2, 8, tzinfo=UTC)
    written = write_results(settings, scores, cutoff=first)  # the settings' Iceberg source: Iceberg tables
    assert written.scores_location == "playerguard.player_scores (Iceberg)" and written.flags == 1
    write_results(settings, scores, cutoff=first)  # the same cutoff again replaces, never adds
    write_results(settings, scores.iloc[1:], cutoff=second)  # no flags at this cutoff
    store = LocalIcebergResults.from_settings(settings)
    con = store.connect()
    counts = con.execute("SELECT cutoff_date, count(*) FROM player_scores GROUP BY 1 ORDER BY 1").fetchall()
    assert counts == [("2026-02-01", 2), ("2026-02-08", 1)]
    assert con.execute("SELECT cutoff_date, player_id FROM player_flags").fetchall() == [("2026-02-01", "a")]
    write_results(settings, scores.assign(actions="[]"), cutoff=first)  # rescored: its flags are cleared
    assert store.connect().execute("SELECT count(*) FROM player_flags").fetchone() == (0,)


def test_the_simulate_command_writes_a_v3_lake(tmp_path: Path) -> None:
    from playerguard.cli import app

    args = ["simulate", "--layout", "gap-v3", "--players", "5", "--days", "2", "--home", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Iceberg table gap.raw_events" in result.output
    assert IcebergSource(GAP_V3, tmp_path / "lake").plan()
