"""The review queue over the local outbox (`<home>/outbox.sqlite`): filtered, sorted, paginated reads on
indexed columns, and the console's verdict log (who decided, with which note, replacing what).

The outbox's `flags` table belongs to the stream's `OutboxNotifier`; this module only adds indexes for the
queue's sort orders and a `review_log` table beside it, and reads `flags` directly so that a page of the
queue never parses 10,000 messages. Status changes go through `OutboxNotifier.review` (see verdicts.py).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from playerguard.errors import DataError

STATUSES: tuple[str, ...] = ("pending", "confirmed", "dismissed")
PAGE_SIZE = 50
# Severity as a sortable rank. Indexed as this exact expression: SQLite uses an expression index only when
# the query spells the expression the same way.
SEVERITY_RANK = "(CASE severity WHEN 'high' THEN 0 WHEN 'medium' THEN 1 WHEN 'low' THEN 2 ELSE 3 END)"
_ORDER = f"{SEVERITY_RANK}, score DESC, flag_id"
_REVERSED = f"{SEVERITY_RANK} DESC, score ASC, flag_id DESC"
_KEY = f"({SEVERITY_RANK}, -score, flag_id)"
_COLUMNS = "flag_id, player_id, model, action, severity, score, event_epoch, status, reviewed_at"
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")

_SCHEMA = f"""
CREATE INDEX IF NOT EXISTS review_queue ON flags (status, {SEVERITY_RANK}, score DESC, flag_id);
CREATE INDEX IF NOT EXISTS review_queue_all ON flags ({SEVERITY_RANK}, score DESC, flag_id);
CREATE INDEX IF NOT EXISTS review_queue_model ON flags (model, status, {SEVERITY_RANK}, score DESC, flag_id);
CREATE INDEX IF NOT EXISTS review_queue_action ON flags (action, status, {SEVERITY_RANK}, score DESC, flag_id);
CREATE TABLE IF NOT EXISTS review_log (
    review_id INTEGER PRIMARY KEY AUTOINCREMENT,
    flag_id TEXT NOT NULL,
    verdict TEXT NOT NULL,
    replaces TEXT,
    reviewer TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    reviewed_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS review_log_flag ON review_log (flag_id, review_id);
"""


@dataclass(frozen=True)
class QueueFilter:
    """Which flags the queue shows: one status (None: all), and optionally one model, action and event day."""

    status: str | None = "pending"
    model: str | None = None
    action: str | None = None
    day: str | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> QueueFilter:
        """From URL parameters; `status=all` shows every status. Raises DataError on a malformed value."""
        status = query.get("status") or "pending"
        if status != "all" and status not in STATUSES:
            raise DataError(f"status must be all or one of {', '.join(STATUSES)}, not {status!r}")
        day = query.get("day") or None
        if day is not None and not _DAY.match(day):
            raise DataError(f"day must look like 2026-03-01, not {day!r}")
        return cls(
            status=None if status == "all" else status,
            model=query.get("model") or None,
            action=query.get("action") or None,
            day=day,
        )

    def params(self) -> dict[str, str]:
        """The URL parameters that give this filter back (defaults left out)."""
        items = {"status": self.status or "all", "model": self.model, "action": self.action, "day": self.day}
        return {k: v for k, v in items.items() if v is not None and not (k == "status" and v == "pending")}

    def where(self, *, with_status: bool = True) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        values: list[Any] = []
        for column, value in (("status", self.status if with_status else None), ("model", self.model)):
            if value is not None:
                clauses.append(f"{column} = ?")
                values.append(value)
        if self.action is not None:
            clauses.append("action = ?")
            values.append(self.action)
        if self.day is not None:
            start = datetime.combine(date.fromisoformat(self.day), datetime.min.time(), UTC).timestamp()
            clauses.append("event_epoch >= ? AND event_epoch < ?")
            values += [start, start + timedelta(days=1).total_seconds()]
        return (" AND ".join(clauses) or "1 = 1"), values


@dataclass(frozen=True)
class QueueRow:
    """One flag as the queue lists it (no message parsing: the columns the outbox indexes)."""

    flag_id: str
    player_id: str
    model: str
    action: str
    severity: str
    score: float
    event_epoch: float
    status: str
    reviewed_at: str | None

    @property
    def event_time(self) -> str:
        return datetime.fromtimestamp(self.event_epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True)
class ReviewRecord:
    """One verdict the console recorded: who, when, with which note, and the verdict it replaced."""

    flag_id: str
    verdict: str
    replaces: str | None
    reviewer: str
    note: str
    reviewed_at: str


@dataclass(frozen=True)
class QueuePage:
    """A page of the queue, the number of flags the filter matches and the counts per status."""

    rows: list[QueueRow]
    total: int
    page: int
    page_size: int
    counts: dict[str, int]

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


@dataclass(frozen=True)
class HistoryRow:
    """One of a player's flags, with its model version and the console's verdicts on it, oldest first."""

    row: QueueRow
    model_version: str
    reviews: list[ReviewRecord]


class OutboxQueue:
    """Queue reads and the verdict log on `<home>/outbox.sqlite`. A connection per call: Starlette runs
    the handlers in a thread pool, and opening SQLite costs far less than a page."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @classmethod
    def from_home(cls, home: Path) -> OutboxQueue:
        return cls(Path(home) / "outbox.sqlite")

    def prepare(self) -> None:
        """Add the queue's indexes and the verdict log (idempotent); DataError when there is no outbox."""
        if not self.path.exists():
            raise DataError(f"no outbox at {self.path}: run `playerguard stream replay` first")
        with self._connection() as db:
            db.executescript(_SCHEMA)

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            yield db
        finally:
            db.close()

    def page(self, filters: QueueFilter, page: int = 1, page_size: int = PAGE_SIZE) -> QueuePage:
        """One page of flags, most severe and highest score first."""
        where, values = filters.where()
        page = max(1, page)
        with self._connection() as db:
            counts = self._counts(db, filters)
            total = sum(counts.values()) if filters.status is None else counts.get(filters.status, 0)
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM flags WHERE {where} ORDER BY {_ORDER} LIMIT ? OFFSET ?",
                (*values, page_size, (page - 1) * page_size),
            ).fetchall()
        return QueuePage([QueueRow(*r) for r in rows], total, page, page_size, counts)

    def _counts(self, db: sqlite3.Connection, filters: QueueFilter) -> dict[str, int]:
        where, values = filters.where(with_status=False)
        found = dict(db.execute(f"SELECT status, COUNT(*) FROM flags WHERE {where} GROUP BY status", values))
        return {status: int(found.get(status, 0)) for status in STATUSES}

    def row(self, flag_id: str) -> QueueRow:
        with self._connection() as db:
            found = db.execute(f"SELECT {_COLUMNS} FROM flags WHERE flag_id = ?", (flag_id,)).fetchone()
        if found is None:
            raise DataError(f"no flag {flag_id!r} in {self.path}")
        return QueueRow(*found)

    def neighbours(self, filters: QueueFilter, flag_id: str) -> tuple[str | None, str | None]:
        """The flags before and after `flag_id` in the queue's order under `filters` (keyset, not offset:
        a flag that just left the filter, e.g. on a verdict, still has a next one)."""
        where, values = filters.where()
        with self._connection() as db:
            key = db.execute(
                f"SELECT {SEVERITY_RANK}, -score, flag_id FROM flags WHERE flag_id = ?", (flag_id,)
            )
            current = key.fetchone()
            if current is None:
                return None, None
            found = []
            for comparison, order in (("<", _REVERSED), (">", _ORDER)):
                row = db.execute(
                    f"SELECT flag_id FROM flags WHERE {where} AND {_KEY} {comparison} (?, ?, ?) "
                    f"ORDER BY {order} LIMIT 1",
                    (*values, *current),
                ).fetchone()
                found.append(row[0] if row else None)
        return found[0], found[1]

    def choices(self) -> dict[str, list[str]]:
        """The models, actions and (latest 90) event days present, for the filter menus."""
        with self._connection() as db:
            models = [r[0] for r in db.execute("SELECT DISTINCT model FROM flags ORDER BY model")]
            actions = [r[0] for r in db.execute("SELECT DISTINCT action FROM flags ORDER BY action")]
            days = [
                r[0]
                for r in db.execute(
                    "SELECT DISTINCT date(event_epoch, 'unixepoch') AS day FROM flags ORDER BY day DESC LIMIT 90"
                )
            ]
        return {"model": models, "action": actions, "day": days}

    def history(self, player_id: str, limit: int = 25) -> list[HistoryRow]:
        """The player's flags, newest event first, each with the console's verdicts on it."""
        with self._connection() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS}, json_extract(message, '$.model_version') FROM flags WHERE player_id = ? "
                "ORDER BY event_epoch DESC, flag_id LIMIT ?",
                (player_id, limit),
            ).fetchall()
            reviews = self._reviews(db, [r[0] for r in rows])
        return [HistoryRow(QueueRow(*r[:9]), str(r[9]), reviews.get(r[0], [])) for r in rows]

    def last_review(self, flag_id: str) -> ReviewRecord | None:
        """The console's latest verdict on the flag, if it recorded one."""
        with self._connection() as db:
            found = self._reviews(db, [flag_id]).get(flag_id)
        return found[-1] if found else None

    def _reviews(self, db: sqlite3.Connection, flag_ids: list[str]) -> dict[str, list[ReviewRecord]]:
        if not flag_ids:
            return {}
        marks = ", ".join("?" * len(flag_ids))
        rows = db.execute(
            "SELECT flag_id, verdict, replaces, reviewer, note, reviewed_at FROM review_log "
            f"WHERE flag_id IN ({marks}) ORDER BY review_id",
            flag_ids,
        ).fetchall()
        found: dict[str, list[ReviewRecord]] = {}
        for row in rows:
            found.setdefault(row[0], []).append(ReviewRecord(*row))
        return found

    def log(self, record: ReviewRecord) -> None:
        """Append a verdict to the log (the outbox keeps only the current status)."""
        with self._connection() as db:
            db.execute(
                "INSERT INTO review_log (flag_id, verdict, replaces, reviewer, note, reviewed_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    record.flag_id,
                    record.verdict,
                    record.replaces,
                    record.reviewer,
                    record.note,
                    record.reviewed_at,
                ),
            )

    def query_plan(self, filters: QueueFilter) -> str:
        """SQLite's plan for a queue page under `filters` (tests check it uses an index, not a sort)."""
        where, values = filters.where()
        with self._connection() as db:
            rows = db.execute(
                f"EXPLAIN QUERY PLAN SELECT {_COLUMNS} FROM flags WHERE {where} ORDER BY {_ORDER} LIMIT 50",
                values,
            ).fetchall()
        return "\n".join(str(r[-1]) for r in rows)
