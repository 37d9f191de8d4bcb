"""`playerguard ingest` of real files into a local lake: formats, mapping errors, accounting, idempotency."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from playerguard.errors import ConfigError, DataError
from playerguard.lake.ingest import ingest, ingest_file
from playerguard.lake.local import LocalLake
from playerguard.lake.mapping import Mapping, load_mapping
from playerguard.settings import Settings

FIXTURES = Path(__file__).parents[1] / "fixtures" / "ingest"
SHOP_CSV = FIXTURES / "shop_purchases.csv"
SHOP_MAPPING = FIXTURES / "shop_purchases.yaml"
MATCHES = FIXTURES / "match_events.jsonl"
MATCHES_MAPPING = FIXTURES / "match_events.yaml"


def events(settings: Settings) -> pa.Table:
    lake = LocalLake.from_settings(settings)
    query = "SELECT * FROM read_parquet(?, hive_partitioning = true, union_by_name = true) ORDER BY event_id"
    return duckdb.execute(query, [lake.events_glob()]).fetch_arrow_table()


def rejected(settings: Settings) -> list[tuple]:
    lake = LocalLake.from_settings(settings)
    if not lake.has_rejected():
        return []
    query = "SELECT reason, row_number, row FROM read_parquet(?) ORDER BY reason, row"
    return duckdb.execute(query, [lake.rejected_glob()]).fetchall()


def test_csv_with_a_mapping_lands_typed_with_bad_rows_rejected(settings: Settings) -> None:
    [result] = ingest(settings, [SHOP_CSV], SHOP_MAPPING)
    # 119 rows: 114 purchases, one repeated identically (two purchases), a missing customer, a date in the
    # wrong format, "free" as a price, and a row with an extra field.
    assert (result.rows_read, result.added, result.duplicates, result.rejected) == (119, 115, 0, 4)
    assert result.rows_read == result.added + result.duplicates + result.rejected
    table = events(settings)
    assert set(table.column("event_type").to_pylist()) == {"purchase"}
    assert table.schema.field("amount").type == pa.float64()
    assert {"coupon_code", "country", "sku"} <= set(table.column_names)
    assert "NA" in table.column("country").to_pylist()  # Namibia, not a missing value
    assert [r[0] for r in rejected(settings)] == [
        "attribute 'amount': expected a number",
        "malformed CSV row: 7 fields, expected 6",
        "missing player_id",
        "unparseable event_timestamp",
    ]
    assert result.rejected_location == str(LocalLake.from_settings(settings).rejected_dir)


def test_the_same_file_twice_adds_nothing_not_even_rejected_rows(settings: Settings) -> None:
    ingest(settings, [SHOP_CSV], SHOP_MAPPING)
    before_events, before_rejected = events(settings), rejected(settings)
    [again] = ingest(settings, [SHOP_CSV], SHOP_MAPPING)
    assert (again.added, again.duplicates, again.rejected) == (0, 115, 4)
    assert events(settings).equals(before_events)
    assert rejected(settings) == before_rejected


def test_the_same_rows_as_parquet_are_the_same_events(settings: Settings) -> None:
    ingest(settings, [SHOP_CSV], SHOP_MAPPING)
    [parquet] = ingest(settings, [FIXTURES / "shop_purchases.parquet"], SHOP_MAPPING)
    assert (parquet.rows_read, parquet.added, parquet.duplicates) == (115, 0, 115)


def test_json_lines_with_mixed_types_nested_values_and_a_broken_line(settings: Settings) -> None:
    [result] = ingest(settings, [MATCHES], MATCHES_MAPPING)
    # 25 records (a blank line is not one): 20 events, one delivered twice, one without an id, a score
    # "oops", one without a player, and a line cut short.
    assert (result.rows_read, result.added, result.duplicates, result.rejected) == (25, 21, 1, 3)
    table = events(settings)
    assert table.schema.field("score").type == pa.float64()
    assert table.schema.field("headshot").type == pa.float64()
    loadouts = [v for v in table.column("loadout").to_pylist() if v]
    assert loadouts and all(v.startswith('{"primary"') for v in loadouts)
    assert sum(len(i) == 32 for i in table.column("event_id").to_pylist()) == 1  # the derived one
    assert sorted(r[0] for r in rejected(settings)) == [
        "attribute 'score': expected a number",
        "malformed JSON line (not a JSON object)",
        "missing player_id",
    ]


def test_gzip_files_are_read_too(settings: Settings, tmp_path: Path) -> None:
    packed = tmp_path / "shop_purchases.csv.gz"
    packed.write_bytes(gzip.compress(SHOP_CSV.read_bytes()))
    [result] = ingest(settings, [packed], SHOP_MAPPING)
    assert (result.added, result.rejected) == (115, 4)


def test_a_file_read_in_many_small_batches_is_the_same_append(settings: Settings, tmp_path: Path) -> None:
    [whole] = ingest(settings, [SHOP_CSV], SHOP_MAPPING)
    ids = events(settings).column("event_id")
    chunked = Settings(home=tmp_path / "chunked")
    lake = LocalLake.from_settings(chunked)
    result = ingest_file(lake, SHOP_CSV, load_mapping(SHOP_MAPPING), block_bytes=512)
    assert (result.added, result.duplicates, result.rejected) == (
        whole.added,
        whole.duplicates,
        whole.rejected,
    )
    assert events(chunked).column("event_id").equals(ids)  # repeats numbered the same across batches


def test_a_mapping_naming_a_missing_column_fails_at_once_and_writes_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(SHOP_MAPPING.read_text().replace("dollar_value", "price"))
    with pytest.raises(ConfigError, match="source column 'price', which shop_purchases.csv does not have"):
        ingest(settings, [SHOP_CSV], mapping)
    assert not LocalLake.from_settings(settings).has_events()


def test_a_json_mapping_naming_a_key_no_line_has_fails_and_writes_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(MATCHES_MAPPING.read_text().replace("session_id: session", "session_id: sess"))
    with pytest.raises(ConfigError, match="source column 'sess', which match_events.jsonl does not have"):
        ingest(settings, [MATCHES], mapping)
    assert not LocalLake.from_settings(settings).has_events()


def test_unknown_mapping_keys_and_unreadable_files_are_clear_errors(
    settings: Settings, tmp_path: Path
) -> None:
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("columns: {}\ntimestamp_fmt: '%Y'\n")
    with pytest.raises(ConfigError, match=r"mapping .*mapping.yaml: unknown key 'timestamp_fmt'"):
        ingest(settings, [SHOP_CSV], mapping)
    with pytest.raises(ConfigError, match="unknown file type"):
        ingest(settings, [tmp_path / "events.xlsx"], SHOP_MAPPING)
    with pytest.raises(DataError, match="no such file"):
        ingest(settings, [tmp_path / "missing.csv"], SHOP_MAPPING)


def test_mapping_types_that_contradict_the_lake_are_refused(settings: Settings, tmp_path: Path) -> None:
    ingest(settings, [SHOP_CSV], SHOP_MAPPING)
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(SHOP_MAPPING.read_text() + "types:\n  amount: string\n")
    with pytest.raises(ConfigError, match="'amount' is string but the lake already holds it as double"):
        ingest(settings, [SHOP_CSV], mapping)


def test_a_whole_batch_rejected_for_one_reason_is_a_mapping_error(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "logins.csv"
    path.write_text("user,when\n" + "".join(f"u{i},01/03/2024 10:{i % 60:02d}\n" for i in range(1500)))
    mapping = Mapping(
        columns={"player_id": "user", "event_timestamp": "when"},
        constants={"event_type": "login", "game_id": "g", "platform": "pc"},
    )
    with pytest.raises(ConfigError, match="all of the first 1,500 rows are rejected .*timestamp_format"):
        ingest_file(LocalLake.from_settings(settings), path, mapping)
    assert not LocalLake.from_settings(settings).has_rejected()


def test_a_parquet_file_streams_in_row_batches(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "kills.parquet"
    table = pa.table(
        {
            "player_id": [f"p{i % 7}" for i in range(3000)],
            "event_type": ["kill"] * 3000,
            "event_timestamp": pa.array([1_709_287_200 + i for i in range(3000)], pa.int64()),
            "game_id": ["arena"] * 3000,
            "platform": ["pc"] * 3000,
            "damage": [float(i % 100) for i in range(3000)],
        }
    )
    pq.write_table(table, path, row_group_size=500)
    [result] = ingest(settings, [path])
    assert (result.added, result.rejected) == (3000, 0)


def test_the_commands_print_what_happened(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PLAYERGUARD_HOME", str(settings.home))
    from playerguard.cli import _mount, app

    _mount()  # `lake info` is mounted by the command line: it also describes a studio's own table
    copy = tmp_path / "shop_purchases.csv"
    shutil.copy(SHOP_CSV, copy)
    result = CliRunner().invoke(
        app, ["ingest", str(copy), "--mapping", str(SHOP_MAPPING)], terminal_width=200
    )
    assert result.exit_code == 0, result.output
    assert "119" in result.output and "115" in result.output
    assert "4 rejected rows recorded in" in result.output and "rejected" in result.output
    info = CliRunner().invoke(app, ["lake", "info"], terminal_width=200)
    assert info.exit_code == 0, info.output
    for text in ("115 events", "purchase", "2024-03-01", "amount", "double", "missing player_id"):
        assert text in info.output


def test_a_json_array_file_is_refused_with_the_reason(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "events.json"
    path.write_text('[\n  {"user": "p1"}\n]\n')
    with pytest.raises(ConfigError, match="holds a JSON array; ingest reads JSON lines"):
        ingest(settings, [path], MATCHES_MAPPING)


def test_quoted_line_breaks_survive_block_boundaries(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "chat.csv"
    note = '"gg\nwp, said ""ace"""'
    path.write_text(
        "user,when,note\n" + "".join(f"u{i},2024-03-01T10:00:{i:02d}Z,{note}\n" for i in range(50))
    )
    mapping = Mapping(
        columns={"player_id": "user", "event_timestamp": "when"},
        constants={"event_type": "chat", "game_id": "g", "platform": "pc"},
    )
    result = ingest_file(LocalLake.from_settings(settings), path, mapping, block_bytes=200)
    assert (result.rows_read, result.added, result.rejected) == (50, 50, 0)
    assert set(events(settings).column("note").to_pylist()) == {'gg\nwp, said "ace"'}


# ---- timestamps out of range, and rejected rows numbered by their source line -----------------------------

CHAT_MAPPING = Mapping(
    columns={"player_id": "user", "event_timestamp": "when"},
    constants={"event_type": "chat", "game_id": "g", "platform": "pc"},
)


def rejected_lines(settings: Settings) -> list[tuple[int | None, str]]:
    lake = LocalLake.from_settings(settings)
    query = "SELECT row_number, reason FROM read_parquet(?) ORDER BY row_number"
    return duckdb.execute(query, [lake.rejected_glob()]).fetchall()


def test_a_year_0_row_is_rejected_and_lake_info_still_works(settings: Settings, tmp_path: Path) -> None:
    from playerguard.lake.info import lake_info

    path = tmp_path / "chat.jsonl"
    path.write_text(
        '{"user": "u1", "when": "2026-03-01T10:00:00Z"}\n'
        '{"user": "u2", "when": "0000-01-01T00:00:00Z"}\n'
        '{"user": "u3", "when": "2999-01-01T00:00:00Z"}\n'
        '{"user": "u4", "when": "1969-12-31T23:59:59Z"}\n'
    )
    result = ingest_file(LocalLake.from_settings(settings), path, CHAT_MAPPING)
    assert (result.added, result.rejected) == (1, 3)
    assert [line for line, _ in rejected_lines(settings)] == [2, 3, 4]
    assert {reason for _, reason in rejected_lines(settings)} == {
        "event_timestamp out of range: before 1970-01-01 or more than 24 h ahead of the clock"
    }
    assert not list(LocalLake.from_settings(settings).root.glob("**/event_date=0000-01-01"))
    info = lake_info(settings)
    assert (info.events, info.rejected) == (1, 3)


def test_the_accepted_time_range_is_a_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYERGUARD_EVENT_TIME_EARLIEST", "2020-01-01T00:00:00Z")
    settings = Settings(home=tmp_path / "home")
    path = tmp_path / "chat.csv"
    path.write_text("user,when\nu1,2019-06-01T00:00:00Z\nu2,2021-06-01T00:00:00Z\n")
    mapping = tmp_path / "chat.yaml"
    mapping.write_text(
        "columns: {player_id: user, event_timestamp: when}\nconstants: {event_type: chat, game_id: g, platform: pc}\n"
    )
    [result] = ingest(settings, [path], mapping)
    assert (result.added, result.rejected) == (1, 1)
    assert rejected_lines(settings)[0][1].startswith("event_timestamp out of range: before 2020-01-01")


def test_json_lines_rejects_are_numbered_by_source_line(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "chat.jsonl"
    path.write_text(
        '{"user": "u1", "when": "2026-03-01T10:00:00Z", "n": 1}\n'
        "\n"
        '{"user": "u2", "when": "soon", "n": 5}\n'
        "not json\n"
        '{"user": "", "when": "2026-03-01T10:00:02Z", "n": 2}\n'
        '{"user": "u4", "when": "2026-03-01T10:00:03Z", "n": 3}\n'
    )
    ingest_file(LocalLake.from_settings(settings), path, CHAT_MAPPING)
    assert rejected_lines(settings) == [
        (3, "unparseable event_timestamp"),
        (4, "malformed JSON line (not a JSON object)"),
        (5, "missing player_id"),
    ]


def test_csv_rejects_are_numbered_by_source_line_and_a_stray_quote_swallows_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "chat.csv"
    path.write_text(
        "user,when,note\n"  # line 1
        "u1,2026-03-01T10:00:00Z,hi\n"  # 2
        "\n"  # 3
        'u2,2026-03-01T10:00:01Z,"two\nlines"\n'  # 4-5, one row
        "u3,2026-03-01T10:00:02Z\n"  # 6: a field short
        ",2026-03-01T10:00:03Z,no player\n"  # 7
        'u5,"2026-03-01T10:00:04Z,unterminated\n'  # 8
        "u6,2026-03-01T10:00:05Z,after the stray quote\n"  # 9
    )
    result = ingest_file(LocalLake.from_settings(settings), path, CHAT_MAPPING)
    assert (result.rows_read, result.added, result.rejected) == (6, 3, 3)
    assert rejected_lines(settings) == [
        (6, "malformed CSV row: 2 fields, expected 3"),
        (7, "missing player_id"),
        (8, "malformed CSV row: unterminated quote"),
    ]
    assert sorted(events(settings).column("player_id").to_pylist()) == ["u1", "u2", "u6"]


def test_a_minimal_csv_lands_with_renamed_values_and_defaulted_envelope(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "other_game.csv"
    path.write_text("user,kind,when\nu1,evt_login,2024-03-01T10:00:00Z\nu1,evt_buy,2024-03-01T10:05:00Z\n")
    mapping = tmp_path / "other_game.yaml"
    mapping.write_text(
        "columns: {player_id: user, event_type: kind, event_timestamp: when}\n"
        "values: {event_type: {evt_login: session_start}}\n"
    )
    [result] = ingest(settings, [path], mapping)
    assert (result.added, result.rejected) == (2, 0)
    table = events(settings).sort_by("event_timestamp")
    assert table.column("event_type").to_pylist() == ["session_start", "evt_buy"]
    assert set(table.column("game_id").to_pylist()) == {"default"}
    assert set(table.column("platform").to_pylist()) == {"unknown"}
    assert table.column("session_id").null_count == 2 and table.column("event_id").null_count == 0
