"""`lake info` for a studio's own table read through a source mapping: the same summary as the native lake's,
computed by the settings' SQL engine over the mapped view (DuckDB locally, Athena on AWS)."""

from __future__ import annotations

import pandas as pd

from playerguard.backends import backend_for
from playerguard.features.compiler import quote
from playerguard.features.engines import EVENTS_TABLE
from playerguard.features.sources import MappingFailures, load_source_mapping, problems_select
from playerguard.lake.info import LakeInfo
from playerguard.settings import Settings


def source_info(settings: Settings) -> LakeInfo:
    """Events by type and day, players, range and attributes of the mapped table; rows that fail the mapping
    count as rejected, by reason."""
    mapping = load_source_mapping(settings.source_mapping)
    table = f"{quote(settings.glue_database)}.{quote(EVENTS_TABLE)}"
    engine = backend_for(settings).sql_engine(source=mapping)
    try:
        totals = engine.query(
            "SELECT count(*) AS events, count(DISTINCT player_id) AS players, "
            f"min(event_timestamp) AS first_event, max(event_timestamp) AS last_event FROM {table}",
            [],
        ).iloc[0]
        by_type = engine.query(
            "SELECT event_type, count(*) AS events, count(DISTINCT player_id) AS players "
            f"FROM {table} GROUP BY event_type ORDER BY events DESC, event_type",
            [],
        )
        by_day = engine.query(
            f"SELECT date_format(event_timestamp, '%Y-%m-%d') AS event_date, count(*) AS events FROM {table} "
            "GROUP BY 1 ORDER BY 1",
            [],
        )
        names = sorted(mapping.attributes)
        counts = (
            engine.query(f"SELECT {', '.join(f'count({quote(n)})' for n in names)} FROM {table}", []).iloc[0]
            if names
            else []
        )
        problems = problems_select(mapping, None, None)
        failures = MappingFailures.from_problems(engine.query(problems.sql, list(problems.params)))
    finally:
        if hasattr(engine, "close"):
            engine.close()
    attributes = pd.DataFrame(
        {
            "attribute": names,
            "type": [mapping.attributes[n].type for n in names],
            "events_with_value": [int(c) for c in counts],
        }
    )
    rejected = pd.DataFrame(
        {"reason": list(failures.reasons), "rows": list(failures.reasons.values()), "sources": 1}
    )
    first, last = totals["first_event"], totals["last_event"]
    return LakeInfo(
        location=f"{mapping.database}.{mapping.table} read through source mapping {mapping.name}",
        events=int(totals["events"]),
        players=int(totals["players"]),
        first_event=None if pd.isna(first) else pd.Timestamp(first).to_pydatetime(),
        last_event=None if pd.isna(last) else pd.Timestamp(last).to_pydatetime(),
        by_type=by_type,
        by_day=by_day,
        attributes=attributes,
        rejected=failures.failed,
        rejected_by_reason=rejected,
    )
