"""The review console's pure parts: percentile placement, queue filters from URLs, escaping helpers."""

from __future__ import annotations

import pytest

from playerguard.errors import DataError
from playerguard.features.spec import load_feature_set
from playerguard.review.attribute import player_params, trend_query
from playerguard.review.pages import esc, flag_path, href
from playerguard.review.population import place
from playerguard.review.queue import QueueFilter
from playerguard.review.svg import daily_bars, percentile_bar


def test_a_value_is_placed_among_the_population_with_ties_counting_half() -> None:
    values = [float(v) for v in range(1, 101)]
    assert place(values, 100.0).percentile == pytest.approx(99.5)
    assert place(values, 0.0).percentile == 0.0
    assert place([1.0, 2.0, 2.0, 3.0], 2.0).percentile == pytest.approx(50.0)
    placed = place(values, 50.0)
    assert placed.quantiles[50] == pytest.approx(50.0, abs=1) and placed.players == 100
    assert place([], 1.0) is None and place(values, float("nan")) is None


def test_queue_filters_read_from_and_write_back_to_urls() -> None:
    filters = QueueFilter.from_query({"status": "all", "model": "churn", "day": "2026-03-01"})
    assert filters == QueueFilter(status=None, model="churn", day="2026-03-01")
    assert filters.params() == {"status": "all", "model": "churn", "day": "2026-03-01"}
    assert QueueFilter.from_query({}).params() == {}
    for bad in ({"status": "maybe"}, {"day": "March"}):
        with pytest.raises(DataError):
            QueueFilter.from_query(bad)


def test_urls_and_text_are_escaped() -> None:
    assert esc('<a href="x">') == "&lt;a href=&quot;x&quot;&gt;"
    assert flag_path("a/b?c") == "/flags/a%2Fb%3Fc"
    assert href("/", {"model": '"><script>', "day": ""}) == "/?model=%22%3E%3Cscript%3E"


def test_the_svg_pictures_hold_only_numbers_and_escaped_titles() -> None:
    bar = percentile_bar(place([1.0, 2.0, 3.0], 3.0, "<f>"))
    assert bar.startswith("<svg") and "&lt;f&gt;" in bar and "<f>" not in bar
    bars = daily_bars([0, 2, 4], ["d1", "<d2>", "d3"])
    assert bars.count("<rect") == 3 and "&lt;d2&gt;: 2" in bars  # the axis and two non-empty days


def test_simple_definitions_have_a_daily_view_of_their_attribute() -> None:
    definitions = {d.name: d for d in load_feature_set("default").definitions}
    headshots = trend_query(definitions["headshot_rate_28d"])
    assert headshots is not None and headshots.label == "sum(headshots) / sum(hits) on match_end"
    assert player_params(headshots) == 2 and headshots.event_type == "match_end"
    reaction = trend_query(definitions["reaction_ms_p50_28d"])
    assert reaction is not None and reaction.label == "reaction_ms on match_end (daily mean)"
    assert trend_query(definitions["win_rate_28d"]) is None  # its numerator has a condition
    assert trend_query(definitions["tenure_days"]) is None
