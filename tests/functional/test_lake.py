"""The local lake on disk: idempotent appends, crash safety, schema evolution, and `lake_info`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from playerguard.backends import backend_for
from playerguard.errors import DataError
from playerguard.lake import local as lake_module
from playerguard.lake import staging
from playerguard.lake.base import append_frame
from playerguard.lake.envelope import NUMBER, STRING, conform, lake_schema
from playerguard.lake.info import lake_info
from playerguard.lake.local import LocalLake
from playerguard.lake.staging import Stage
from playerguard.settings import Settings


def raw_rows(players: list[str | None], *, day: int = 1, **attributes: list) -> pa.Table:
    n = len(players)
    return pa.table(
        {
            "player_id": players,
            "event_type": ["match_end"] * n,
            "event_timestamp": [f"2024-03-{day + i % 3:02d}T10:{i % 60:02d}:00Z" for i in range(n)],
            "game_id": ["arena"] * n,
            "platform": ["pc"] * n,
            **attributes,
        }
    )


def snapshot(lake: LocalLake) -> tuple:
    """Everything a reader of the lake can see."""

    def read(glob: str) -> list[dict]:
        files = sorted(Path(p) for p in Path(lake.root).glob(glob))
        if not files:
            return []
        table = pa.concat_tables([pq.read_table(f) for f in files], promote_options="default")
        return sorted(
            table.drop_columns([c for c in ("rejected_at",) if c in table.column_names]).to_pylist(), key=str
        )

    schema = lake.schema_path.read_text() if lake.schema_path.exists() else None
    return read("events/*/*.parquet"), read("rejected/*.parquet"), schema


def test_append_table_in_lake_layout_and_again_is_idempotent(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path / "lake")
    table = conform(raw_rows(["a", "b", "c"], kills=[1, 2, 3])).table
    first = lake.append_table(table)
    assert (first.added, first.duplicates, first.rejected) == (3, 0, 0)
    again = lake.append_table(table)
    assert (again.added, again.duplicates) == (0, 3)
    assert lake.attribute_types() == {"kills": NUMBER}
    assert sorted(p.parent.name for p in lake.events_dir.glob("*/*.parquet")) == [
        "event_date=2024-03-01",
        "event_date=2024-03-02",
        "event_date=2024-03-03",
    ]


def test_append_table_needs_ids_and_envelope_columns(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path / "lake")
    table = conform(raw_rows(["a"])).table
    with pytest.raises(DataError, match="lacks envelope column"):
        lake.append_table(table.drop_columns(["platform"]))
    with pytest.raises(DataError, match="rows without event_id"):
        lake.append_table(table.set_column(0, "event_id", pa.nulls(1, pa.string())))


def test_identical_rows_are_distinct_events_and_stay_so_on_re_append(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path / "lake")
    rows = raw_rows(["a", "a", "a"]).set_column(2, "event_timestamp", pa.array(["2024-03-01T10:00:00Z"] * 3))
    assert append_frame(lake, rows.to_pandas(), "x").added == 3
    assert append_frame(lake, rows.to_pandas(), "x").duplicates == 3
    ids = pq.read_table(next(lake.events_dir.glob("*/*.parquet"))).column("event_id").to_pylist()
    assert len(set(ids)) == 3


def test_an_attribute_keeps_its_type(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path / "lake")
    lake.append_conformed(conform(raw_rows(["a"], tier=["gold"])), "one")
    assert lake.attribute_types() == {"tier": STRING}
    clash = conform(raw_rows(["b"], tier=[3]))  # conformed without asking the lake: a number
    with pytest.raises(DataError, match="attribute 'tier' is string in the lake but double in two"):
        lake.append_conformed(clash, "two")


def test_new_attributes_extend_the_schema_and_old_files_read_as_null(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path / "lake")
    lake.append_conformed(conform(raw_rows(["a"], kills=[1])), "one")
    lake.append_conformed(conform(raw_rows(["b"], map=["dust"])), "two")
    assert lake.attribute_types() == {"kills": NUMBER, "map": STRING}
    rows = duckdb.execute(
        "SELECT player_id, kills, map FROM read_parquet(?, hive_partitioning=true, union_by_name=true) ORDER BY 1",
        [lake.events_glob()],
    ).fetchall()
    assert rows == [("a", 1.0, None), ("b", None, "dust")]


def test_rejected_rows_are_recorded_once(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path / "lake")
    rows = raw_rows(["a", None, None])  # two identical bad rows are two rejected records
    first = lake.append_conformed(conform(rows), "events.csv")
    assert (first.added, first.rejected) == (1, 2)
    assert lake.append_conformed(conform(rows), "elsewhere/events.csv").rejected == 2
    [path] = lake.rejected_dir.glob("*.parquet")
    recorded = pq.read_table(path)
    assert recorded.column("reason").to_pylist() == ["missing player_id"] * 2
    assert len(set(recorded.column("rejected_id").to_pylist())) == 2


def test_a_failure_before_the_commit_point_leaves_the_lake_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = LocalLake(tmp_path / "lake")
    lake.append_conformed(conform(raw_rows(["a", "b"], kills=[1, 2])), "one")
    before = snapshot(lake)
    real_write = pq.ParquetWriter.write_table
    calls = {"n": 0}

    def failing_write(self: pq.ParquetWriter, table: pa.Table, *args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError("disk full")
        real_write(self, table, *args, **kwargs)

    with monkeypatch.context() as patch, pytest.raises(OSError, match="disk full"):
        patch.setattr(staging.pq.ParquetWriter, "write_table", failing_write)
        lake.append_conformed(conform(raw_rows(["c", "d", "e"], day=5, level=["x", "y", "z"])), "two")
    assert calls["n"] > 1
    assert snapshot(lake) == before
    assert not lake.staging_dir.exists()
    later = lake.append_conformed(conform(raw_rows(["c", "d", "e"], day=5, level=["x", "y", "z"])), "two")
    assert later.added == 3


def test_a_crash_after_the_commit_point_is_rolled_forward(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = LocalLake(tmp_path / "lake")
    lake.append_conformed(conform(raw_rows(["a"], kills=[1])), "one")
    batch = conform(raw_rows(["b", "c", "d", None], kills=[2, 3, 4, 5], level=["x", "y", "z", "w"]))
    expected_lake = LocalLake(tmp_path / "expected")
    expected_lake.append_conformed(conform(raw_rows(["a"], kills=[1])), "one")
    expected_lake.append_conformed(batch, "two")
    real_replace = os.replace
    moves = {"n": 0}

    def crash_after_first_move(source: str, target: str) -> None:
        if Path(str(source)).name != "COMMIT.tmp":
            moves["n"] += 1
            if moves["n"] > 1:
                raise KeyboardInterrupt  # the process is being killed
        real_replace(source, target)

    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(lake_module.os, "replace", crash_after_first_move)
        lake.append_conformed(batch, "two")
    assert (next(lake.staging_dir.iterdir()) / "COMMIT").exists()
    lake.recover()
    assert snapshot(lake)[0] == snapshot(expected_lake)[0]
    assert len(snapshot(lake)[1]) == 1
    assert json.loads(lake.schema_path.read_text()) == {"kills": NUMBER, "level": STRING}
    assert lake.append_conformed(batch, "two").duplicates == 3


def test_a_stage_left_by_a_killed_process_is_discarded(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path / "lake")
    lake.append_conformed(conform(raw_rows(["a"])), "one")
    before = snapshot(lake)
    orphan = lake.staging_dir / "deadbeef"
    orphan.mkdir(parents=True)
    pq.write_table(conform(raw_rows(["zz"])).table, orphan / "part-deadbeef-00001.parquet")
    lake.recover()
    assert not orphan.exists()
    assert snapshot(lake) == before


def test_recover_leaves_a_live_append_alone(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path / "lake")
    with lake.begin("live") as append:
        append.add(conform(raw_rows(["a", "b"])))
        lake.recover()  # another reader, while the append holds the lock
        assert any(lake.staging_dir.iterdir())
        result = append.commit()
    assert result.added == 2


def test_open_lake_is_local_by_default(settings: Settings) -> None:
    lake = backend_for(settings).lake()
    assert isinstance(lake, LocalLake) and lake.root == settings.lake_dir
    assert lake.attribute_types() == {}


def test_lake_info_summarises_events_and_rejections(settings: Settings) -> None:
    lake = LocalLake.from_settings(settings)
    lake.append_conformed(conform(raw_rows(["a", "b", "a", None], kills=[1, 2, None, 4])), "one.csv")
    kills = conform(raw_rows(["c"], day=9, map=["dust"]).set_column(1, "event_type", pa.array(["kill"])))
    lake.append_conformed(kills, "two.csv")
    info = lake_info(settings)
    assert (info.events, info.players, info.rejected) == (4, 3, 1)
    assert info.by_type.to_dict("records") == [
        {"event_type": "match_end", "events": 3, "players": 2},
        {"event_type": "kill", "events": 1, "players": 1},
    ]
    assert info.by_day.to_dict("records") == [
        {"event_date": "2024-03-01", "events": 1},
        {"event_date": "2024-03-02", "events": 1},
        {"event_date": "2024-03-03", "events": 1},
        {"event_date": "2024-03-09", "events": 1},
    ]
    assert info.attributes.to_dict("records") == [
        {"attribute": "kills", "type": NUMBER, "events_with_value": 2},
        {"attribute": "map", "type": STRING, "events_with_value": 1},
    ]
    assert info.rejected_by_reason.to_dict("records") == [
        {"reason": "missing player_id", "rows": 1, "sources": 1}
    ]
    assert info.first_event.isoformat() == "2024-03-01T10:00:00+00:00"
    assert info.last_event.isoformat() == "2024-03-09T10:00:00+00:00"


def test_lake_info_of_an_empty_lake_says_so(settings: Settings) -> None:
    with pytest.raises(DataError, match="is empty; ingest or simulate"):
        lake_info(settings)


def test_lake_schema_orders_attributes_by_name() -> None:
    assert lake_schema({"b": NUMBER, "a": STRING}).names[-3:] == ["a", "b", "event_date"]


def test_a_day_spread_over_several_staged_files_is_published_as_one(tmp_path: Path) -> None:
    (tmp_path / "stage").mkdir()
    stage = Stage(tmp_path / "stage", "batch", max_open_files=2)  # days evict each other's writers
    stamps = [f"2024-03-0{1 + (i * 7) % 5}T10:{i:02d}:00Z" for i in range(40)]  # five days, interleaved
    for half in (slice(0, 20), slice(20, 40)):
        batch = conform(
            raw_rows([f"p{i}" for i in range(40)][half]).set_column(
                2, "event_timestamp", pa.array(stamps[half])
            )
        )
        stage.add(batch.table, batch.derived_ids)
    stage.close()
    assert max(len(files) for files in stage.days.values()) > 1
    outcomes = [stage.resolve_day(day, pa.array([], pa.string())) for day in sorted(stage.days)]
    assert [len(o.files) for o in outcomes] == [1] * 5
    assert sum(pq.read_table(o.files[0]).num_rows for o in outcomes) == sum(o.added for o in outcomes) == 40
