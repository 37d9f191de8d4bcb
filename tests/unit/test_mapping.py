"""The mapping model, its checks, and how it resolves against a file's columns (no I/O)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from playerguard.errors import ConfigError
from playerguard.lake.envelope import ENVELOPE_DEFAULTS, NUMBER, STRING
from playerguard.lake.mapping import Mapping, normalize_name, parse_mapping, plan_columns

SHOP = {
    "columns": {"player_id": "customer_id", "event_timestamp": "date", "amount": "dollar_value"},
    "constants": {"event_type": "purchase", "game_id": "shop", "platform": "web"},
    "timestamp_format": "%Y%m%d",
}
SHOP_COLUMNS = ["customer_id", "date", "dollar_value", "Coupon Code", "Country"]


def test_a_mapping_document_is_checked_into_a_model() -> None:
    mapping = parse_mapping(
        {**SHOP, "types": {"coupon_code": "string", "tier": "number"}, "ignore": ["email"]}
    )
    assert mapping.columns["player_id"] == "customer_id"
    assert mapping.timestamp_format == "%Y%m%d"
    assert mapping.attribute_types == {"coupon_code": STRING, "tier": NUMBER}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"colums": {}}, "unknown key 'colums'"),
        ({"columns": {"player_id": "a"}, "constants": {"player_id": "b"}}, "'player_id' is both"),
        ({"constants": {"event_id": "x"}}, "'event_id' cannot be a constant"),
        ({"constants": {"event_timestamp": "2024-01-01"}}, "'event_timestamp' cannot be a constant"),
        ({"columns": {"Player ID": "a"}}, "invalid target column name 'Player ID'"),
        ({"columns": {"event_date": "d"}}, "derived from event_timestamp"),
        ({"types": {"player_id": "string"}}, "'player_id' is an envelope column"),
        ({"types": {"tier": "integer"}}, "types.tier"),
        ({"timestamp_format": "yyyymmdd"}, "no strftime code"),
        ({"columns": ["player_id"]}, "columns"),
        (["columns"], "must be a YAML mapping"),
    ],
)
def test_a_bad_mapping_is_a_one_line_error_naming_the_problem(document: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        parse_mapping(document, "mapping shop.yaml")
    assert str(caught.value).startswith("mapping shop.yaml")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("DollarValue", "dollar_value"),
        ("Coupon Code", "coupon_code"),
        ("user-agent", "user_agent"),
        ("HTTPStatus", "http_status"),
        ("  level ", "level"),
        ("Café", "cafe"),
        ("item.id", "item_id"),
    ],
)
def test_source_names_are_normalized_to_lower_snake_case(name: str, expected: str) -> None:
    assert normalize_name(name) == expected


@pytest.mark.parametrize("name", ["", "???", "2fa", "größe", "名前"])
def test_a_name_that_cannot_be_normalized_is_a_clear_error(name: str) -> None:
    with pytest.raises(ConfigError, match="has no usable attribute name"):
        normalize_name(name)


def test_plan_renames_mapped_columns_and_keeps_the_rest_as_attributes() -> None:
    plan = plan_columns(parse_mapping(SHOP), SHOP_COLUMNS, "shop.csv")
    assert dict(plan.renames) == {
        "customer_id": "player_id",
        "date": "event_timestamp",
        "dollar_value": "amount",
        "Coupon Code": "coupon_code",
        "Country": "country",
    }
    batch = pa.table({c: ["v"] for c in SHOP_COLUMNS})
    applied = plan.apply(batch)
    assert sorted(applied.column_names) == sorted(
        [
            "player_id",
            "event_timestamp",
            "amount",
            "coupon_code",
            "country",
            "event_type",
            "game_id",
            "platform",
        ]
    )
    assert applied.column("event_type").to_pylist() == ["purchase"]


def test_a_mapped_column_missing_from_the_file_fails_at_once_naming_it_and_the_file() -> None:
    with pytest.raises(
        ConfigError, match="'amount' names source column 'dollar_value', which shop.csv does not have"
    ):
        plan_columns(parse_mapping(SHOP), ["customer_id", "date"], "shop.csv")


def test_an_envelope_column_nothing_fills_is_an_error() -> None:
    mapping = parse_mapping({**SHOP, "constants": {"game_id": "shop", "platform": "web"}})
    with pytest.raises(ConfigError, match="nothing fills envelope column 'event_type'"):
        plan_columns(mapping, SHOP_COLUMNS, "shop.csv")


def test_only_player_event_type_and_time_are_required_the_rest_default() -> None:
    mapping = parse_mapping({**SHOP, "constants": {"event_type": "purchase"}})
    applied = plan_columns(mapping, SHOP_COLUMNS, "shop.csv").apply(
        pa.table({c: ["v"] for c in SHOP_COLUMNS})
    )
    assert applied.column("game_id").to_pylist() == [ENVELOPE_DEFAULTS["game_id"]]
    assert applied.column("platform").to_pylist() == [ENVELOPE_DEFAULTS["platform"]]
    assert "session_id" not in applied.column_names and "event_id" not in applied.column_names


def test_values_are_renamed_after_the_columns() -> None:
    mapping = parse_mapping(
        {
            "columns": {"player_id": "user", "event_timestamp": "when", "event_type": "kind"},
            "values": {
                "event_type": {"evt_login": "session_start", "evt_buy": "purchase"},
                "tier": {"1": "gold"},
            },
        }
    )
    plan = plan_columns(mapping, ["user", "when", "kind", "tier"], "e.csv")
    applied = plan.apply(
        pa.table({"user": ["a"] * 4, "when": ["2024-03-01"] * 4, "kind": ["evt_login", "evt_buy", "other", None],
                  "tier": [1, 2, None, 1]})
    )  # fmt: skip
    assert applied.column("event_type").to_pylist() == ["session_start", "purchase", "other", None]
    assert applied.column("tier").to_pylist() == ["gold", "2", None, "gold"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"event_timestamp": {"a": "b"}}, "'event_timestamp' cannot be renamed"),
        ({"Event Type": {"a": "b"}}, "invalid target column name"),
    ],
)
def test_bad_value_renames_are_errors(values: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_mapping({**SHOP, "values": values})


def test_renaming_values_of_a_column_nothing_fills_is_an_error() -> None:
    mapping = parse_mapping({**SHOP, "values": {"result": {"w": "win"}}})
    with pytest.raises(ConfigError, match="renames values of 'result', which nothing fills"):
        plan_columns(mapping, SHOP_COLUMNS, "shop.csv")


def test_a_source_column_named_like_the_envelope_fills_it() -> None:
    plan = plan_columns(
        Mapping(), ["player_id", "Event_Type", "event_timestamp", "game_id", "platform"], "e.csv"
    )
    assert ("Event_Type", "event_type") in plan.renames


def test_two_columns_landing_on_one_name_is_an_error() -> None:
    with pytest.raises(
        ConfigError, match="'Player_Id' would become 'player_id', which is already the mapping's"
    ):
        plan_columns(parse_mapping(SHOP), [*SHOP_COLUMNS, "Player_Id"], "shop.csv")
    with pytest.raises(
        ConfigError, match="'country' would become 'country', which is already source column 'Country'"
    ):
        plan_columns(parse_mapping(SHOP), [*SHOP_COLUMNS, "country"], "shop.csv")


def test_ignored_columns_stay_out_and_must_exist() -> None:
    plan = plan_columns(parse_mapping({**SHOP, "ignore": ["Country"]}), SHOP_COLUMNS, "shop.csv")
    assert "Country" not in dict(plan.renames)
    with pytest.raises(ConfigError, match="ignore: names column 'email'"):
        plan_columns(parse_mapping({**SHOP, "ignore": ["email"]}), SHOP_COLUMNS, "shop.csv")


def test_duplicate_source_columns_are_an_error() -> None:
    with pytest.raises(ConfigError, match="more than one column named 'date'"):
        plan_columns(parse_mapping(SHOP), [*SHOP_COLUMNS, "date"], "shop.csv")


def test_a_json_batch_may_lack_a_mapped_column_which_then_reads_as_null() -> None:
    plan = plan_columns(parse_mapping(SHOP), ["customer_id", "date"], "shop.jsonl", partial=True)
    assert plan.missing == ("dollar_value",)
    applied = plan.apply(pa.table({"customer_id": ["c1"], "date": ["20240301"]}))
    assert applied.column("amount").to_pylist() == [None]


def test_numeric_constants_become_number_attributes() -> None:
    plan = plan_columns(
        parse_mapping({**SHOP, "constants": {**SHOP["constants"], "tier": 2}}), SHOP_COLUMNS, "s"
    )
    applied = plan.apply(pa.table({c: ["v"] for c in SHOP_COLUMNS}))
    assert applied.column("tier").type == pa.float64()
