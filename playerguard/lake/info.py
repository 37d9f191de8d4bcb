"""What is in the local lake: event counts by type and by day, players, date range, attributes, rejections.

Computed by DuckDB straight over the Parquet files (aggregates only; nothing is loaded into pandas but the
small result tables).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from playerguard.backends import backend_for
from playerguard.errors import DataError
from playerguard.lake.envelope import check_identifier
from playerguard.lake.local import LocalLake
from playerguard.settings import Settings


@dataclass(frozen=True)
class LakeInfo:
    """A summary of the lake."""

    location: str
    events: int
    players: int
    first_event: datetime | None
    last_event: datetime | None
    by_type: pd.DataFrame
    """event_type, events, players; most events first."""
    by_day: pd.DataFrame
    """event_date (YYYY-MM-DD), events; in date order."""
    attributes: pd.DataFrame
    """attribute, type (double / string), events_with_value; by name."""
    rejected: int
    rejected_by_reason: pd.DataFrame
    """reason, rows, sources; most rows first."""


def lake_info(settings: Settings) -> LakeInfo:
    """Summarise the local lake the settings point at."""
    import duckdb

    lake = backend_for(settings).local_lake("lake info (on aws, query the Glue tables with Athena)")
    lake.recover()
    if not lake.has_events() and not lake.has_rejected():
        raise DataError(f"the lake at {lake.root} is empty; ingest or simulate some events first")
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        rejected, by_reason = _rejected(con, lake)
        if not lake.has_events():
            empty = pd.DataFrame({"event_type": [], "events": [], "players": []})
            return LakeInfo(
                str(lake.root),
                0,
                0,
                None,
                None,
                empty,
                pd.DataFrame({"event_date": [], "events": []}),
                _attributes(con, lake, has_events=False),
                rejected,
                by_reason,
            )
        con.read_parquet(lake.events_glob(), hive_partitioning=True, union_by_name=True).create_view("events")
        events, players, first, last = con.execute(
            "SELECT count(*), count(DISTINCT player_id), min(event_timestamp), max(event_timestamp) FROM events"
        ).fetchone()
        by_type = con.execute(
            "SELECT event_type, count(*) AS events, count(DISTINCT player_id) AS players FROM events "
            "GROUP BY event_type ORDER BY events DESC, event_type"
        ).df()
        by_day = con.execute(
            "SELECT strftime(event_date, '%Y-%m-%d') AS event_date, count(*) AS events FROM events "
            "GROUP BY event_date ORDER BY event_date"
        ).df()
        attributes = _attributes(con, lake, has_events=True)
        return LakeInfo(
            str(lake.root), events, players, first, last, by_type, by_day, attributes, rejected, by_reason
        )
    finally:
        con.close()


def _attributes(con: object, lake: LocalLake, *, has_events: bool) -> pd.DataFrame:
    types = lake.attribute_types()
    names = sorted(types)
    counts = [0] * len(names)
    if has_events and names:
        present = {row[0] for row in con.execute("DESCRIBE events").fetchall()}
        # Attribute names are checked identifiers, safe to quote into the query; values never are.
        selects = [f'count("{check_identifier(n)}")' if n in present else "0" for n in names]
        counts = list(con.execute(f"SELECT {', '.join(selects)} FROM events").fetchone())
    return pd.DataFrame({"attribute": names, "type": [types[n] for n in names], "events_with_value": counts})


def _rejected(con: object, lake: LocalLake) -> tuple[int, pd.DataFrame]:
    if not lake.has_rejected():
        return 0, pd.DataFrame({"reason": [], "rows": [], "sources": []})
    con.read_parquet(lake.rejected_glob(), union_by_name=True).create_view("rejected")
    by_reason = con.execute(
        "SELECT reason, count(*) AS rows, count(DISTINCT source) AS sources FROM rejected "
        "GROUP BY reason ORDER BY rows DESC, reason"
    ).df()
    return int(by_reason["rows"].sum()), by_reason
