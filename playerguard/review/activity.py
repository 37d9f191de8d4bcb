"""A player's recent play from the event lake: events per day and type, through the SQL engine port
(DuckDB over the local lake; the same Athena SQL runs on Athena)."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from playerguard.errors import PlayerguardError
from playerguard.features.compiler import table_name
from playerguard.review.attribute import AttributeTrend, player_params, trend_query

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

_SQL = (
    "SELECT event_date, event_type, count(*) AS events\n"
    "FROM {table}\n"
    "WHERE player_id = ? AND event_date >= ? AND event_date <= ?\n"
    "GROUP BY event_date, event_type\nORDER BY event_date, event_type"
)


@dataclass(frozen=True)
class Activity:
    """Events per (day, event type) over `days`, oldest day first; `problem` says why it is empty."""

    days: list[str]
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # event_type -> day -> events
    problem: str | None = None

    @property
    def types(self) -> list[str]:
        return sorted(self.counts, key=lambda t: (-sum(self.counts[t].values()), t))

    def series(self, event_type: str) -> list[int]:
        return [self.counts.get(event_type, {}).get(day, 0) for day in self.days]


class LakeActivity:
    """Reads activity with one engine made on first use and shared under a lock (a DuckDB connection
    serves one query at a time). `feature_set` names the definitions behind the reasons' features."""

    def __init__(
        self, engine_factory: Callable[[], Any], *, days: int = 14, feature_set: str = "default"
    ) -> None:
        self._factory = engine_factory
        self._engine: Any = None
        self._lock = threading.Lock()
        self.days = days
        self.feature_set = feature_set
        self._definitions: dict[str, Any] | None = None

    def _window(self, until: date) -> list[str]:
        return [(until - timedelta(days=k)).isoformat() for k in range(self.days - 1, -1, -1)]

    def _query(self, template: str, params: list[str]) -> pd.DataFrame:
        with self._lock:
            if self._engine is None:
                self._engine = self._factory()
            sql = template.format(table=table_name(self._engine.database, self._engine.table))
            return self._engine.query(sql, params)

    def recent(self, player_id: str, until: date) -> Activity:
        """The player's events on the `days` days up to and including `until` (the flag's event day)."""
        days = self._window(until)
        try:
            frame = self._query(_SQL, [player_id, days[0], days[-1]])
        except PlayerguardError as error:  # no lake yet, or none at all: the page says so
            return Activity(days, problem=str(error))
        counts: dict[str, dict[str, int]] = {}
        for day, event_type, events in frame.itertuples(index=False):
            counts.setdefault(str(event_type), {})[str(day)[:10]] = int(events)
        return Activity(days, counts)

    def trend(self, player_id: str, until: date, feature: str) -> AttributeTrend | None:
        """The attribute behind `feature`, per day, for the player and everyone; None when the feature has
        no simple daily view or the lake cannot answer (e.g. a game without that attribute)."""
        definition = self._definition(feature)
        query = trend_query(definition) if definition is not None else None
        if query is None:
            return None
        days = self._window(until)
        params = [player_id] * player_params(query) + [query.event_type, days[0], days[-1]]
        try:
            frame = self._query(query.sql, params)
        except Exception as error:  # noqa: BLE001 - any engine's error (a missing column...): no panel
            log.warning("no daily view of %s: %s", feature, error)
            return None
        rows = {str(day)[:10]: (mine, everyone) for day, mine, everyone in frame.itertuples(index=False)}
        return AttributeTrend(
            query,
            days,
            [_number(rows.get(day, (None, None))[0]) for day in days],
            [_number(rows.get(day, (None, None))[1]) for day in days],
        )

    def _definition(self, feature: str) -> Any:
        if self._definitions is None:
            from playerguard.features.spec import load_feature_set

            try:
                definitions = load_feature_set(self.feature_set).definitions
            except PlayerguardError:
                definitions = ()
            self._definitions = {d.name: d for d in definitions}
        return self._definitions.get(feature)

    def close(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.close()
                self._engine = None


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number
