"""The notifier port: where flags and dead-lettered records go.

`OutboxNotifier` (local) keeps flags in SQLite under `<home>/outbox.sqlite` with a review status, and
dead letters in its `rejected` table. `SnsNotifier` (aws) publishes flags with PublishBatch and hands dead
letters to a sink (SQS queue or S3 prefix, `aws_stores`); with a flag ledger (`aws_stores.DynamoDbFlagLedger`)
it also enforces the cooldown and never republishes a flag an earlier invocation already delivered.

Both refuse a second copy of a flag_id: the outbox by its primary key, SNS through the ledger (and, for
FIFO topics, MessageDeduplicationId = flag_id). boto3 is never imported here: AWS adapters take a client.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, astuple, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from playerguard.errors import DataError
from playerguard.inference.flags import Cooldowns, Flag, format_timestamp

SNS_BATCH_LIMIT = 10
VERDICTS = ("confirmed", "dismissed")
Claim = Literal["new", "duplicate", "suppressed"]


@dataclass(frozen=True)
class DeadLetter:
    """A record that can never be scored, kept with its raw payload and the reason."""

    source: str
    sequence_number: str
    partition_key: str
    data: str
    reason: str
    dead_lettered_at: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @property
    def key(self) -> str:
        """Stable identity of the record: redelivering it dead-letters nothing new."""
        return hashlib.sha256(f"{self.source}\x1f{self.sequence_number}".encode()).hexdigest()


@dataclass
class PublishOutcome:
    """What a publish did with each flag_id; `failed` ones should be retried or redelivered."""

    published: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    suppressed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def _record_claim(outcome: PublishOutcome, flag_id: str, claim: Claim) -> None:
    if claim == "new":
        outcome.published.append(flag_id)
    elif claim == "duplicate":
        outcome.duplicates.append(flag_id)
    elif claim == "suppressed":
        outcome.suppressed.append(flag_id)


class Notifier(Protocol):
    """Sends flags downstream and keeps dead letters. Implementations: OutboxNotifier, SnsNotifier."""

    def publish(self, flags: Sequence[Flag]) -> PublishOutcome: ...

    def dead_letter(self, letters: Sequence[DeadLetter]) -> dict[str, str]:
        """Store dead letters; return {sequence_number: reason} for those that could not be stored."""
        ...


_TRANSIENT_CODES = frozenset(
    {
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "ProvisionedThroughputExceededException",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "InternalFailure",
    }
)


def is_transient_aws_error(error: Exception) -> bool:
    """Throttling, 5xx and connection failures: worth another try. Read off the error, no botocore import."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = str(response.get("Error", {}).get("Code", ""))
        status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return status >= 500 or "Throttl" in code or code in _TRANSIENT_CODES
    return type(error).__name__ in {
        "EndpointConnectionError",
        "ConnectionClosedError",
        "ReadTimeoutError",
        "ConnectTimeoutError",
    } or isinstance(error, (ConnectionError, TimeoutError))


# --------------------------------------------------------------------------------------------- local outbox

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


class OutboxNotifier:
    """The local notifier: a SQLite outbox with a review status, and a dead-letter table.

    A publish is one transaction: every flag of the call is recorded, or none is. `INSERT OR IGNORE` on the
    flag_id primary key makes a redelivered flag a no-op; the cooldown looks at flags already recorded.
    """

    def __init__(self, path: Path, cooldowns: Cooldowns | None = None) -> None:
        self.path = Path(path)
        self.cooldowns = cooldowns or Cooldowns()
        self._connection: sqlite3.Connection | None = None

    @classmethod
    def from_home(cls, home: Path, cooldowns: Cooldowns | None = None) -> OutboxNotifier:
        return cls(Path(home) / "outbox.sqlite", cooldowns)

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
                for flag in sorted(flags, key=lambda f: (f.event_time, f.flag_id)):
                    _record_claim(outcome, flag.flag_id, self._claim(db, flag))
        except sqlite3.OperationalError as error:  # locked or busy: the whole transaction rolled back
            return PublishOutcome(failed={flag.flag_id: f"outbox: {error}" for flag in flags})
        return outcome

    def _claim(self, db: sqlite3.Connection, flag: Flag) -> Claim:
        """Record the flag unless it is already there or within the cooldown of a recorded one."""
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

    def review(self, flag_id: str, verdict: str, *, now: datetime | None = None) -> OutboxEntry:
        """Record a reviewer's verdict (`confirmed` or `dismissed`) on a flag."""
        if verdict not in VERDICTS:
            raise DataError(f"verdict must be one of {', '.join(VERDICTS)}, not {verdict!r}")
        full_id = self.entry(flag_id).flag.flag_id
        with self._transaction() as db:
            db.execute(
                "UPDATE flags SET status = ?, reviewed_at = ? WHERE flag_id = ?",
                (verdict, format_timestamp(now or datetime.now(UTC)), full_id),
            )
        return self.entry(full_id)

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


# --------------------------------------------------------------------------------------------------- AWS


class DeadLetterSink(Protocol):
    def send(self, letters: Sequence[DeadLetter]) -> dict[str, str]: ...


class FlagLedger(Protocol):
    """Cross-invocation memory for a notifier without its own: implemented by DynamoDbFlagLedger."""

    def claim(self, flag: Flag) -> Claim: ...

    def confirm(self, flag_id: str) -> None: ...


class SnsNotifier:
    """Flags to an SNS topic with PublishBatch (≤ 10 per call); dead letters to SQS or S3.

    Attributes model/action/severity let subscribers filter. FIFO topics get MessageGroupId = player_id and
    MessageDeduplicationId = flag_id. Without a ledger, a redelivered flag is published again with the same
    flag_id: standard-topic subscribers must dedupe on it (documented in docs/stream.md).
    """

    def __init__(
        self, topic_arn: str, client: Any, dead_letters: DeadLetterSink, ledger: FlagLedger | None = None
    ) -> None:
        self.topic_arn = topic_arn
        self.client = client
        self.dead_letters = dead_letters
        self.ledger = ledger
        self.fifo = topic_arn.endswith(".fifo")

    def _entry(self, index: int, flag: Flag) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "Id": str(index),
            "Message": flag.to_json(),
            "MessageAttributes": {
                name: {"DataType": "String", "StringValue": value}
                for name, value in flag.message_attributes().items()
            },
        }
        if self.fifo:
            entry |= {"MessageGroupId": flag.player_id, "MessageDeduplicationId": flag.flag_id}
        return entry

    def publish(self, flags: Sequence[Flag]) -> PublishOutcome:
        outcome = PublishOutcome()
        ready: list[Flag] = []
        for flag in sorted(flags, key=lambda f: (f.event_time, f.flag_id)):
            try:
                claim = self.ledger.claim(flag) if self.ledger else "new"
            except Exception as error:
                if not is_transient_aws_error(error):
                    raise
                outcome.failed[flag.flag_id] = f"ledger: {error}"
                continue
            if claim == "new":
                ready.append(flag)  # counted as published once SNS has accepted it
            else:
                _record_claim(outcome, flag.flag_id, claim)
        for start in range(0, len(ready), SNS_BATCH_LIMIT):
            self._publish_chunk(ready[start : start + SNS_BATCH_LIMIT], outcome)
        return outcome

    def _publish_chunk(self, chunk: list[Flag], outcome: PublishOutcome) -> None:
        try:
            response = self.client.publish_batch(
                TopicArn=self.topic_arn,
                PublishBatchRequestEntries=[self._entry(i, f) for i, f in enumerate(chunk)],
            )
        except Exception as error:
            if not is_transient_aws_error(error):
                raise
            outcome.failed |= {flag.flag_id: f"sns: {error}" for flag in chunk}
            return
        failed_ids = {int(item["Id"]): item for item in response.get("Failed", [])}
        for index, flag in enumerate(chunk):
            if index in failed_ids:
                item = failed_ids[index]
                outcome.failed[flag.flag_id] = f"sns: {item.get('Code')} {item.get('Message', '')}".strip()
                continue
            try:
                if self.ledger:
                    self.ledger.confirm(flag.flag_id)
            except Exception as error:
                # delivered but not remembered: a redelivery may publish it again; subscribers dedupe on flag_id
                if not is_transient_aws_error(error):
                    raise
            outcome.published.append(flag.flag_id)

    def dead_letter(self, letters: Sequence[DeadLetter]) -> dict[str, str]:
        return self.dead_letters.send(letters) if letters else {}
