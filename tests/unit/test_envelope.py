"""The envelope: typing, validation with reasons, content ids (no I/O)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from playerguard.errors import ConfigError
from playerguard.lake.envelope import (
    ENVELOPE_DEFAULTS,
    NUMBER,
    STRING,
    check_identifier,
    conform,
    derive_event_id,
    lake_schema,
    to_arrow,
)
from playerguard.lake.parsing import attribute_kind, parse_numbers, parse_timestamps


def rows(**columns: list) -> pa.Table:
    """A batch with the envelope filled in, overridden/extended by `columns`."""
    n = len(next(iter(columns.values())))
    base = {
        "player_id": [f"p{i}" for i in range(n)],
        "event_type": ["match_end"] * n,
        "event_timestamp": ["2024-03-01T10:00:00Z"] * n,
        "game_id": ["arena"] * n,
        "platform": ["pc"] * n,
    }
    base.update(columns)
    return pa.table(base)


def reasons(conformed) -> list[str]:
    return conformed.rejected_rows.column("reason").to_pylist()


def test_valid_rows_get_lake_layout_and_types() -> None:
    conformed = conform(rows(score=["1", "2.5"], map=["dust", "nuke"]))
    assert conformed.table.schema == lake_schema({"score": NUMBER, "map": STRING})
    assert conformed.attribute_types == {"score": NUMBER, "map": STRING}
    assert conformed.table.column("score").to_pylist() == [1.0, 2.5]
    assert conformed.table.column("event_date").to_pylist() == ["2024-03-01", "2024-03-01"]
    assert conformed.rejected_rows.num_rows == 0


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("player_id", None, "missing player_id"),
        ("player_id", "   ", "missing player_id"),
        ("event_type", "", "missing event_type"),
        ("event_timestamp", "yesterday", "unparseable event_timestamp"),
        ("event_timestamp", None, "missing event_timestamp"),
    ],
)
def test_a_row_breaking_an_envelope_rule_is_rejected_with_the_reason(
    column: str, value: object, reason: str
) -> None:
    batch = rows(**{column: [value, "2024-03-01T10:00:00Z" if column == "event_timestamp" else "ok"]})
    conformed = conform(batch, first_row=10)
    assert conformed.table.num_rows == 1
    assert reasons(conformed) == [reason]
    assert conformed.rejected_rows.column("row_number").to_pylist() == [11]
    assert json.loads(conformed.rejected_rows.column("row")[0].as_py())[column] == value


def test_the_first_rule_broken_is_the_reason() -> None:
    conformed = conform(rows(player_id=[None], event_timestamp=["never"]))
    assert reasons(conformed) == ["missing player_id"]


def test_a_known_number_attribute_rejects_a_stray_string() -> None:
    conformed = conform(rows(score=["3", "lots", None]), known_types={"score": NUMBER})
    assert conformed.table.column("score").to_pylist() == [3.0, None]
    assert reasons(conformed) == ["attribute 'score': expected a number"]


def test_a_new_column_of_numbers_with_a_rare_stray_is_a_number_and_the_stray_is_rejected() -> None:
    values = [str(i) for i in range(199)] + ["n/a-ish"]
    conformed = conform(rows(score=values))
    assert conformed.attribute_types["score"] == NUMBER
    assert conformed.table.num_rows == 199
    assert reasons(conformed) == ["attribute 'score': expected a number"]


def test_a_new_column_of_mostly_text_is_text() -> None:
    conformed = conform(rows(level=["1", "2", "boss"]))
    assert conformed.attribute_types["level"] == STRING
    assert conformed.table.column("level").to_pylist() == ["1", "2", "boss"]


def test_a_new_column_with_no_value_is_left_for_a_later_batch_to_type() -> None:
    conformed = conform(rows(coupon=pa.nulls(2, pa.string())))
    assert "coupon" not in conformed.table.column_names
    assert conformed.attribute_types == {}


def test_raw_rows_are_what_rejected_rows_record() -> None:
    raw = pa.table({"customer": [None], "when": ["2024-03-01"]})
    conformed = conform(rows(player_id=[None]), raw=raw)
    assert json.loads(conformed.rejected_rows.column("row")[0].as_py()) == {
        "customer": None,
        "when": "2024-03-01",
    }


def test_missing_envelope_column_names_the_column_and_source() -> None:
    with pytest.raises(ConfigError, match="missing envelope column 'event_type' in shop.csv"):
        conform(rows(player_id=["p"]).drop_columns(["event_type"]), source="shop.csv")


def test_game_id_and_platform_default_when_the_source_has_none() -> None:
    conformed = conform(rows(player_id=["p"]).drop_columns(["platform", "game_id"]), source="shop.csv")
    assert conformed.table.column("game_id").to_pylist() == [ENVELOPE_DEFAULTS["game_id"]]
    assert conformed.table.column("platform").to_pylist() == [ENVELOPE_DEFAULTS["platform"]]


def test_attribute_names_must_be_identifiers() -> None:
    with pytest.raises(ConfigError, match="invalid attribute name 'Bad Name'"):
        conform(rows(**{"Bad Name": ["x"]}))
    assert check_identifier("dollar_value") == "dollar_value"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-01T10:00:00Z", datetime(2024, 3, 1, 10, tzinfo=UTC)),
        ("2024-03-01T12:00:00+02:00", datetime(2024, 3, 1, 10, tzinfo=UTC)),
        ("2024-03-01 10:00:00", datetime(2024, 3, 1, 10, tzinfo=UTC)),
        ("2024-03-01T10:00:00.123456789Z", datetime(2024, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2024-03-01", datetime(2024, 3, 1, tzinfo=UTC)),
        ("1709287200", datetime(2024, 3, 1, 10, tzinfo=UTC)),
        ("1709287200500", datetime(2024, 3, 1, 10, 0, 0, 500000, tzinfo=UTC)),
    ],
)
def test_timestamps_iso_8601_and_epoch_are_recognised_without_a_format(text: str, expected: datetime) -> None:
    # Mixed forms in one column take the slow path; each must still parse on its own terms.
    stamps, bad = parse_timestamps(pa.array([text, "2024-03-01T00:00:00Z", "garbage"]))
    assert stamps[0].as_py() == expected
    assert bad.tolist() == [False, False, True]


def test_an_epoch_number_outside_plausible_years_is_unparseable() -> None:
    _, bad = parse_timestamps(pa.array(["20240301"]))  # a date without its timestamp_format
    assert bad.tolist() == [True]


def test_typed_timestamps_and_numbers() -> None:
    naive = pa.array([datetime(2024, 3, 1, 10)], pa.timestamp("ns"))
    assert parse_timestamps(naive)[0][0].as_py() == datetime(2024, 3, 1, 10, tzinfo=UTC)
    millis = pa.array([1_709_287_200_000], pa.int64())
    assert parse_timestamps(millis)[0][0].as_py() == datetime(2024, 3, 1, 10, tzinfo=UTC)


def test_timestamp_format() -> None:
    stamps, bad = parse_timestamps(pa.array(["20240301", "2024-03-01", None]), "%Y%m%d")
    assert stamps.to_pylist()[0] == datetime(2024, 3, 1, tzinfo=UTC)
    assert bad.tolist() == [False, True, False]


def test_numbers_blank_spellings_are_missing_and_infinity_is_bad() -> None:
    numbers, bad = parse_numbers(pa.array([" 3.5 ", "NaN", "null", "inf", "1e3", "1,5"]))
    assert numbers.to_pylist() == [3.5, None, None, None, 1000.0, None]
    assert bad.tolist() == [False, False, False, True, False, True]


def test_attribute_kind() -> None:
    assert attribute_kind(pa.array([1, 2])) == NUMBER
    assert attribute_kind(pa.array([True, None])) == NUMBER
    assert attribute_kind(pa.array([2**60])) == STRING  # identifiers, not quantities
    assert attribute_kind(pa.array(["123456789012345678"])) == STRING
    assert attribute_kind(pa.array(["0.5", "7"])) == NUMBER
    assert attribute_kind(pa.array([None, None], pa.string())) is None


def test_ids_come_from_content_not_from_format_column_order_or_batch() -> None:
    as_text = rows(
        player_id=["p1", "p2"], event_timestamp=["2024-03-01T10:00:00Z", "1709287260"], score=["5", "6"]
    )
    typed = pa.table(
        {
            "score": pa.array([5, 6]),
            "platform": ["pc", "pc"],
            "game_id": ["arena", "arena"],
            "event_type": ["match_end", "match_end"],
            "event_timestamp": pa.array([1_709_287_200_000, 1_709_287_260_000], pa.int64()),
            "player_id": ["p1", "p2"],
        }
    )
    ids = conform(as_text).table.column("event_id").to_pylist()
    assert conform(typed).table.column("event_id").to_pylist() == ids
    assert [conform(as_text.slice(i, 1)).table.column("event_id")[0].as_py() for i in range(2)] == ids
    assert len(set(ids)) == 2 and all(len(i) == 32 for i in ids)


def test_a_column_with_no_value_does_not_change_ids() -> None:
    plain = conform(rows(score=["5"])).table.column("event_id")[0]
    padded = conform(rows(score=["5"], coupon=["x"]).set_column(6, "coupon", pa.nulls(1, pa.string())))
    assert padded.table.column("event_id")[0] == plain


def test_every_value_changes_the_id() -> None:
    table = conform(
        rows(score=["1", "1", "2", "1"], player_id=["a", "b", "a", "a"], map=["x", "x", "x", "y"])
    ).table
    ids = derive_event_id(table.drop_columns(["event_id", "event_date"])).to_pylist()
    assert len(set(ids)) == 4


def test_given_event_ids_are_kept_and_missing_ones_derived() -> None:
    conformed = conform(rows(event_id=["evt-1", None]))
    assert conformed.table.column("event_id")[0].as_py() == "evt-1"
    assert conformed.derived_ids.tolist() == [False, True]


def test_pandas_rows_with_mixed_types_conform_and_read_back_as_frames() -> None:
    frame = pd.DataFrame(
        {
            "player_id": ["p1", "p2"],
            "event_type": ["kill", "kill"],
            "event_timestamp": ["2024-03-01T10:00:00Z", "2024-03-01T10:00:01Z"],
            "game_id": ["g", "g"],
            "platform": ["pc", "pc"],
            "score": [3, "oops"],
        }
    )
    conformed = conform(frame, known_types={"score": NUMBER})
    assert list(conformed.valid["player_id"]) == ["p1"]
    assert str(conformed.valid["event_timestamp"].dt.tz) == "UTC"
    assert conformed.rejected.iloc[0]["reason"] == "attribute 'score': expected a number"


def test_to_arrow_keeps_the_lake_layout() -> None:
    table = conform(rows(score=["1"], map=["dust"])).table
    assert to_arrow(table.to_pandas(), {"score": NUMBER, "map": STRING}).equals(table)


def test_derived_ids_array_matches_valid_rows() -> None:
    conformed = conform(rows(player_id=["a", None, "c"]))
    assert isinstance(conformed.derived_ids, np.ndarray)
    assert len(conformed.derived_ids) == conformed.table.num_rows == 2
