"""The local notifier: flags in SQLite under `<home>/outbox.sqlite` with a review status, dead letters in
its `rejected` table. A flag_id is stored once (its primary key), and the policy's cooldown and daily budget
are enforced on insert; a flag over the budget is kept in the `suppressed` table with the reason.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import astuple, dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from playerguard.errors import DataError
from playerguard.inference.flags import Budgets, Cooldowns, Flag, format_timestamp, publish_order
from playerguard.inference.offers import OVER_BUDGET
from playerguard.settings import Settings
from playerguard.stream.notifiers.base import VERDICTS, Claim, DeadLetter, PublishOutcome, record_claim

_SCHEMA = """
CREATE TABLE IF NOT EXISTS flags (
    flag_id TEXT PRIMARY KEY,
    player_id TEXT NOT NULL,
    model TEXT NOT NULL,
    action TEXT NOT NULL,
    severity TEXT NOT NULL,
    score REAL NOT NULL,
    event_id TEXT NOT NULL,
    event_epoch REAL NOT NULL,
    message TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'confirmed', 'dismissed')),
    reviewed_at TEXT
);
CREATE INDEX IF NOT EXISTS flags_cooldown ON flags (player_id, model, action, event_epoch);
CREATE INDEX IF NOT EXISTS flags_status ON flags (status, event_epoch);
CREATE INDEX IF NOT EXISTS flags_budget ON flags (model, action, event_epoch);
CREATE TABLE IF NOT EXISTS suppressed (
    model TEXT NOT NULL,
    action TEXT NOT NULL,
    day TEXT NOT NULL,
    player_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    flag_id TEXT NOT NULL,
    value_at_risk REAL,
    message TEXT NOT NULL,
    PRIMARY KEY (model, action, day, player_id)
);
CREATE TABLE IF NOT EXISTS rejected (
    letter_key TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    sequence_number TEXT NOT NULL,
    partition_key TEXT NOT NULL,
    data TEXT NOT NULL,
    reason TEXT NOT NULL,
    dead_lettered_at TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class OutboxEntry:
    """A flag in the local review queue."""

    flag: Flag
    status: str
    reviewed_at: str | None
    replaced: str | None = None  # the verdict a forced review replaced


@dataclass(frozen=True)
class Suppression:
    """A flag that was not sent, and why: the first of its player, model and action on that UTC day."""

    flag: Flag
    reason: str


class OutboxNotifier:
    """The local notifier: a SQLite outbox with a review status, and a dead-letter table.

    A publish is one transaction: every flag of the call is recorded, or none is. `INSERT OR IGNORE` on the
    flag_id primary key makes a redelivered flag a no-op; the cooldown and the daily budget look at flags
    already recorded, and a call spends the budget on its highest values at risk first (`publish_order`).
    """

    def __init__(
        self, path: Path, cooldowns: Cooldowns | None = None, budgets: Budgets | None = None
    ) -> None:
        self.path = Path(path)
        self.cooldowns = cooldowns or Cooldowns()
        self.budgets = budgets or Budgets()
        self._connection: sqlite3.Connection | None = None

    @classmethod
    def from_home(
        cls, home: Path, cooldowns: Cooldowns | None = None, budgets: Budgets | None = None
    ) -> OutboxNotifier:
        return cls(Path(home) / "outbox.sqlite", cooldowns, budgets)

    @classmethod
    def from_settings(
        cls, settings: Settings, cooldowns: Cooldowns | None = None, budgets: Budgets | None = None
    ) -> OutboxNotifier:
        return cls.from_home(settings.home, cooldowns, budgets)

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: a commit survives the process being killed (what redelivery guards against);
            # only an OS crash or power cut may lose the last commits. One fsync per batch would cost more
            # than all the rest of the handler.
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.executescript(_SCHEMA)
            self._connection = connection
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        connection = self._connect()
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def publish(self, flags: Sequence[Flag]) -> PublishOutcome:
        outcome = PublishOutcome()
        if not flags:
            return outcome
        try:
            with self._transaction() as db:
                spent: dict[tuple[str, str, str], int] = {}  # flags recorded per (model, action, day)
                for flag in publish_order(flags):
                    record_claim(outcome, flag.flag_id, self._claim(db, flag, spent))
        except sqlite3.OperationalError as error:  # locked or busy: the whole transaction rolled back
            return PublishOutcome(failed={flag.flag_id: f"outbox: {error}" for flag in flags})
        return outcome

    def _claim(self, db: sqlite3.Connection, flag: Flag, spent: dict[tuple[str, str, str], int]) -> Claim:
        """Record the flag unless it is already there, within the cooldown of a recorded one, or over its
        day's budget (then it is kept as suppressed, with the reason)."""
        budget = self.budgets.limit(flag.model, flag.action)
        if budget is not None and _stored(db, flag.flag_id):
            return "duplicate"  # looked up first: a redelivered flag is not over the budget
        epoch = flag.event_time.timestamp()
        window = self.cooldowns.window(flag.model, flag.action).total_seconds()
        if window > 0:  # one range query answers both: the flag itself lies within its own window
            mine, others = db.execute(
                "SELECT COALESCE(MAX(flag_id = ?), 0), COUNT(*) FROM flags WHERE player_id = ? AND model = ? "
                "AND action = ? AND event_epoch > ? AND event_epoch < ?",
                (flag.flag_id, flag.player_id, flag.model, flag.action, epoch - window, epoch + window),
            ).fetchone()
            if mine:
                return "duplicate"
            if others:
                return "suppressed"
        day = (flag.model, flag.action, flag.event_day)
        if budget is not None:
            if day not in spent:
                spent[day] = _recorded_on(db, *day)
            if spent[day] >= budget:
                _suppress(db, flag, OVER_BUDGET)
                return "suppressed"
        inserted = db.execute(
            "INSERT OR IGNORE INTO flags (flag_id, player_id, model, action, severity, score, event_id, "
            "event_epoch, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                flag.flag_id,
                flag.player_id,
                flag.model,
                flag.action,
                flag.severity,
                flag.score,
                flag.event_id,
                epoch,
                flag.to_json(),
            ),
        ).rowcount
        if inserted and day in spent:
            spent[day] += 1
        # ignored: the flag_id is already there (no window, or an event id resent with another timestamp)
        return "new" if inserted else "duplicate"

    def dead_letter(self, letters: Sequence[DeadLetter]) -> dict[str, str]:
        try:
            with self._transaction() as db:
                db.executemany(  # columns: letter_key, then the DeadLetter fields in order
                    "INSERT OR IGNORE INTO rejected VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(letter.key, *astuple(letter)) for letter in letters],
                )
        except sqlite3.OperationalError as error:
            return {letter.sequence_number: f"outbox: {error}" for letter in letters}
        return {}

    # review queue ---------------------------------------------------------------------------------------

    def entries(
        self, *, status: str | None = None, model: str | None = None, limit: int = 50
    ) -> list[OutboxEntry]:
        """Flags, newest event first, optionally only one status or model."""
        clauses, params = [], []
        for column, value in (("status", status), ("model", model)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = (
            self._connect()
            .execute(
                f"SELECT message, status, reviewed_at FROM flags {where} ORDER BY event_epoch DESC, flag_id LIMIT ?",
                (*params, limit),
            )
            .fetchall()
        )
        return [OutboxEntry(Flag.from_message(json.loads(m)), s, r) for m, s, r in rows]

    def entry(self, flag_id: str) -> OutboxEntry:
        """One flag by id (a unique prefix is enough); DataError when there is none or several."""
        rows = (
            self._connect()
            .execute(
                "SELECT message, status, reviewed_at FROM flags WHERE flag_id >= ? AND flag_id < ? LIMIT 2",
                (flag_id, flag_id + "\U0010ffff"),
            )
            .fetchall()
        )
        if not rows:
            raise DataError(f"no flag {flag_id!r} in {self.path}")
        if len(rows) > 1:
            raise DataError(f"flag id prefix {flag_id!r} is ambiguous; give more characters")
        message, status, reviewed_at = rows[0]
        return OutboxEntry(Flag.from_message(json.loads(message)), status, reviewed_at)

    def review(
        self, flag_id: str, verdict: str, *, force: bool = False, now: datetime | None = None
    ) -> OutboxEntry:
        """Record a reviewer's verdict (`confirmed` or `dismissed`) on a flag.

        Replacing a different verdict needs `force` (the entry's `replaced` then names it); without it the
        review is refused, so of two reviewers racing on one flag the second learns of the first. The check
        and the write are one transaction. The same verdict again changes nothing.
        """
        if verdict not in VERDICTS:
            raise DataError(f"verdict must be one of {', '.join(VERDICTS)}, not {verdict!r}")
        full_id = self.entry(flag_id).flag.flag_id
        with self._transaction() as db:
            status, reviewed_at = db.execute(
                "SELECT status, reviewed_at FROM flags WHERE flag_id = ?", (full_id,)
            ).fetchone()
            if status == verdict:
                return self.entry(full_id)
            if status != "pending" and not force:
                raise DataError(
                    f"flag {full_id[:12]} was already {status} at {reviewed_at}; "
                    f"pass --force to replace it with {verdict}"
                )
            db.execute(
                "UPDATE flags SET status = ?, reviewed_at = ? WHERE flag_id = ?",
                (verdict, format_timestamp(now or datetime.now(UTC)), full_id),
            )
        replaced = status if status != "pending" else None
        return replace(self.entry(full_id), replaced=replaced)

    def verdicts(self, model: str) -> list[tuple[str, int]]:
        """(player_id, label) per reviewed player of `model`: 1 when any of its flags was confirmed."""
        return (
            self._connect()
            .execute(
                "SELECT player_id, MAX(status = 'confirmed') FROM flags WHERE model = ? AND status != 'pending' "
                "GROUP BY player_id ORDER BY player_id",
                (model,),
            )
            .fetchall()
        )

    def dead_letters(self, limit: int = 50) -> list[DeadLetter]:
        rows = (
            self._connect()
            .execute(
                "SELECT source, sequence_number, partition_key, data, reason, dead_lettered_at FROM rejected "
                "ORDER BY dead_lettered_at DESC, letter_key LIMIT ?",
                (limit,),
            )
            .fetchall()
        )
        return [DeadLetter(*row) for row in rows]

    def count(self) -> int:
        return self._connect().execute("SELECT COUNT(*) FROM flags").fetchone()[0]

    def suppressions(self, *, day: str | None = None, limit: int = 50) -> list[Suppression]:
        """Flags that were not sent and why, highest value at risk first; `day` (YYYY-MM-DD) for one day."""
        where, params = ("WHERE day = ?", (day,)) if day is not None else ("", ())
        rows = (
            self._connect()
            .execute(
                f"SELECT message, reason FROM suppressed {where} "
                "ORDER BY day DESC, value_at_risk DESC, flag_id LIMIT ?",
                (*params, limit),
            )
            .fetchall()
        )
        return [Suppression(Flag.from_message(json.loads(message)), reason) for message, reason in rows]



def _stored(db: sqlite3.Connection, flag_id: str) -> bool:
    return db.execute("SELECT 1 FROM flags WHERE flag_id = ?", (flag_id,)).fetchone() is not None


def _recorded_on(db: sqlite3.Connection, model: str, action: str, day: str) -> int:
    """How many flags of (model, action) the outbox holds for events on the UTC `day`."""
    start = datetime.combine(date.fromisoformat(day), datetime.min.time(), UTC).timestamp()
    end = start + timedelta(days=1).total_seconds()
    return db.execute(
        "SELECT COUNT(*) FROM flags WHERE model = ? AND action = ? AND event_epoch >= ? AND event_epoch < ?",
        (model, action, start, end),
    ).fetchone()[0]


def _suppress(db: sqlite3.Connection, flag: Flag, reason: str) -> None:
    """Keep a flag that was not sent; the first of its player, model and action on its day stays."""
    db.execute(
        "INSERT OR IGNORE INTO suppressed (model, action, day, player_id, reason, flag_id, value_at_risk, "
        "message) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            flag.model,
            flag.action,
            flag.event_day,
            flag.player_id,
            reason,
            flag.flag_id,
            flag.value_at_risk,
            flag.to_json(),
        ),
    )


@contextmanager
def exclusive_lock(lock_path: Path) -> Iterator[None]:
    """An exclusive lock on `lock_path` (advisory, across processes) for the duration of the block."""
    with open(lock_path, "a+b") as handle:
        try:
            import fcntl
        except ImportError:  # Windows: msvcrt locks a byte range instead
            import msvcrt

            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)
            try:
                yield
            finally:
                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
            return
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
