"""Recording a verdict from the console: the same write as `flags review` (the outbox's `review`, then the
label export for inhuman-play flags), guarded like it, plus who decided and why in the console's log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from playerguard.errors import DataError
from playerguard.inference.flags import format_timestamp
from playerguard.review.queue import OutboxQueue, ReviewRecord
from playerguard.stream.commands import LABELLED_MODEL, export_review_labels
from playerguard.stream.notifiers.base import VERDICTS
from playerguard.stream.notifiers.local import OutboxEntry, OutboxNotifier


class VerdictConflict(DataError):
    """The flag already carries the other verdict and the reviewer did not ask to replace it."""


@dataclass(frozen=True)
class VerdictResult:
    """What a verdict did: the flag now, the verdict it replaced (if any) and the label file it rewrote."""

    entry: OutboxEntry
    replaced: str | None
    labels_path: Path | None


def record_verdict(
    outbox: OutboxNotifier,
    queue: OutboxQueue,
    home: Path,
    flag_id: str,
    verdict: str,
    *,
    reviewer: str,
    note: str = "",
    override: bool = False,
    now: datetime | None = None,
) -> VerdictResult:
    """Set a flag's verdict. Changing a confirmed flag to dismissed (or back) needs `override`; the result
    names the verdict it replaced. Inhuman-play verdicts rewrite `<home>/labels/review_verdicts.parquet`."""
    if verdict not in VERDICTS:
        raise DataError(f"verdict must be one of {', '.join(VERDICTS)}, not {verdict!r}")
    before = outbox.entry(flag_id)
    if before.status not in ("pending", verdict) and not override:
        raise VerdictConflict(_conflict(before, verdict))
    moment = now or datetime.now(UTC)
    try:
        entry = outbox.review(before.flag.flag_id, verdict, force=override, now=moment)
    except DataError:  # another reviewer decided in between: the outbox checks again in its transaction
        raise VerdictConflict(_conflict(outbox.entry(before.flag.flag_id), verdict)) from None
    queue.log(
        ReviewRecord(entry.flag.flag_id, verdict, entry.replaced, reviewer, note, format_timestamp(moment))
    )
    labels = export_review_labels(outbox, home) if entry.flag.model == LABELLED_MODEL else None
    return VerdictResult(entry, entry.replaced, labels)


def _conflict(entry: OutboxEntry, verdict: str) -> str:
    return (
        f"flag {entry.flag.flag_id[:12]} is already {entry.status} (at {entry.reviewed_at}); replacing it with "
        f"{verdict} needs an override"
    )
