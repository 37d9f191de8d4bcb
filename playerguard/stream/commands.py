"""`playerguard stream replay` and `playerguard flags list|show|review|rejected` (the local review queue).

Review verdicts on inhuman-play flags become labels: `<home>/labels/review_verdicts.parquet`
(player_id, label 1/0, source "review"), which the feature layer reads with the other label sources.
"""

from __future__ import annotations

import json
import os
import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from playerguard.command_options import HomeOption, settings_for
from playerguard.errors import DataError
from playerguard.settings import Settings
from playerguard.stream.notifiers.base import VERDICTS
from playerguard.stream.notifiers.local import OutboxNotifier

LABELLED_MODEL = "inhuman_play"
LABELS_FILE = "review_verdicts.parquet"

stream_app = typer.Typer(
    help="Score the event stream: Kinesis → Lambda → endpoint → flags.", no_args_is_help=True
)
flags_app = typer.Typer(help="The local review queue of flags (the outbox).", no_args_is_help=True)


@stream_app.callback()
def stream_group() -> None:
    """Score the event stream: Kinesis → Lambda → endpoint → flags."""


_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*s)?\s*$")


def parse_rate(text: str | None) -> float | None:
    """`500`, `500/s` → 500.0 events per second; None stays None (as fast as possible)."""
    if text is None:
        return None
    match = _RATE.match(text)
    if match is None or float(match.group(1)) <= 0:
        raise DataError(f"--rate must be a positive number of events per second such as 500/s, got {text!r}")
    return float(match.group(1))


@stream_app.command("replay")
def replay_command(
    start: Annotated[datetime, typer.Option("--from", formats=["%Y-%m-%d"], help="First event date (UTC).")],
    end: Annotated[datetime, typer.Option("--to", formats=["%Y-%m-%d"], help="Last event date, included.")],
    rate: Annotated[
        str | None, typer.Option(help="Pace in events per second, e.g. 500/s (default: flat out).")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Records per Kinesis batch (Lambda's BatchSize).")] = 100,
    bundle: Annotated[
        Path | None, typer.Option(help="Bundle for the local server (default: the champions).")
    ] = None,
    refresh_snapshot: Annotated[
        bool,
        typer.Option(
            help="Rebuild the online snapshot before each day from the events before it, as a daily "
            "`features build --snapshot` would (replaces the snapshot under PLAYERGUARD_HOME)."
        ),
    ] = False,
    refresh_every: Annotated[
        str | None,
        typer.Option(help="Rebuild it more often: every 6h, 1h... (a divisor of a day; implies the above)."),
    ] = None,
    home: HomeOption = None,
) -> None:
    """Replay lake events as Kinesis batches through the stream handler, flags into the local outbox.

    The endpoint is PLAYERGUARD_ENDPOINT_URL, else the SageMaker endpoint (aws backend), else a local
    scoring server started for the replay.
    """
    from playerguard.stream.replay import replay

    summary = replay(
        settings_for(home),
        start.date(),
        end.date(),
        rate=parse_rate(rate),
        batch_size=batch_size,
        bundle=bundle,
        refresh_every=_refresh_interval(refresh_snapshot, refresh_every),
    )
    typer.echo(summary)
    if summary.unprocessed:
        raise typer.Exit(1)


def _refresh_interval(refresh_snapshot: bool, every: str | None) -> timedelta | None:
    from playerguard.durations import parse_duration

    if every is not None:
        return parse_duration(every, "--refresh-every")
    return timedelta(days=1) if refresh_snapshot else None


def export_review_labels(outbox: OutboxNotifier, home: Path) -> Path:
    """Rewrite `<home>/labels/review_verdicts.parquet` from the outbox's inhuman-play verdicts.

    Writers take a lock and read the verdicts under it, so the file always ends with the latest ones; each
    writes its own temporary file and renames it into place, so readers never see a half-written one.
    """
    import tempfile

    import pyarrow as pa
    import pyarrow.parquet as pq

    from playerguard.stream.notifiers.local import exclusive_lock

    path = Path(home) / "labels" / LABELS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(path.with_suffix(".lock")):
        verdicts = outbox.verdicts(LABELLED_MODEL)
        table = pa.table(
            {
                "player_id": pa.array([player for player, _ in verdicts], pa.string()),
                "label": pa.array([label for _, label in verdicts], pa.int8()),
                "source": pa.array(["review"] * len(verdicts), pa.string()),
            }
        )
        handle, staged = tempfile.mkstemp(prefix=f".{LABELS_FILE}.", suffix=".tmp", dir=path.parent)
        os.close(handle)
        try:
            pq.write_table(table, staged)
            os.replace(staged, path)
        except BaseException:
            Path(staged).unlink(missing_ok=True)
            raise
    return path


def _outbox(settings: Settings) -> OutboxNotifier:
    outbox = OutboxNotifier.from_home(settings.home)
    if not outbox.path.exists():
        raise DataError(f"no outbox at {outbox.path}: run `playerguard stream replay` first")
    return outbox


@flags_app.command("list")
def list_command(
    status: Annotated[str | None, typer.Option(help="pending, confirmed or dismissed.")] = None,
    model: Annotated[str | None, typer.Option(help="inhuman_play, churn or purchase.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest event first.")] = 50,
    home: HomeOption = None,
) -> None:
    """List flags in the review queue (ids shortened to 12 characters; `show` and `review` take a prefix)."""
    if status is not None and status not in ("pending", *VERDICTS):
        raise DataError(f"--status must be pending, confirmed or dismissed, got {status!r}")
    entries = _outbox(settings_for(home)).entries(status=status, model=model, limit=limit)
    typer.echo(
        f"{'flag':12}  {'event time':19}  {'player':16}  {'model':12}  {'action':15}  {'severity':8}  "
        f"{'score':>5}  status"
    )
    for entry in entries:
        flag = entry.flag
        typer.echo(
            f"{flag.flag_id[:12]}  {flag.event_timestamp[:19]}  {flag.player_id:16}  {flag.model:12}  "
            f"{flag.action:15}  {flag.severity:8}  {flag.score:5.3f}  {entry.status}"
        )
    typer.echo(f"{len(entries)} flags shown")


@flags_app.command("show")
def show_command(
    flag_id: Annotated[str, typer.Argument(help="A flag id or a unique prefix of one.")],
    home: HomeOption = None,
) -> None:
    """Show one flag: the message, its reasons and its review status."""
    entry = _outbox(settings_for(home)).entry(flag_id)
    typer.echo(
        json.dumps(
            {**entry.flag.to_message(), "status": entry.status, "reviewed_at": entry.reviewed_at}, indent=2
        )
    )


@flags_app.command("review")
def review_command(
    flag_id: Annotated[str, typer.Argument(help="A flag id or a unique prefix of one.")],
    verdict: Annotated[str, typer.Option(help="confirmed or dismissed.")],
    home: HomeOption = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a verdict the flag already has.")] = False,
) -> None:
    """Record a verdict; inhuman-play verdicts become training labels. Changing a verdict needs --force."""
    settings = settings_for(home)
    outbox = _outbox(settings)
    entry = outbox.review(flag_id, verdict, force=force)
    replaced = f" (replaces {entry.replaced})" if entry.replaced else ""
    typer.echo(
        f"flag {entry.flag.flag_id[:12]} ({entry.flag.model}, player {entry.flag.player_id}): {verdict}{replaced}"
    )
    if entry.flag.model == LABELLED_MODEL:
        path = export_review_labels(outbox, settings.home)
        typer.echo(f"labels: {path}")


@flags_app.command("suppressed")
def suppressed_command(
    day: Annotated[str | None, typer.Option(help="One UTC day of event time, YYYY-MM-DD.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, highest value at risk first.")] = 50,
    home: HomeOption = None,
) -> None:
    """List offers the daily budget held back: the flag, its value at risk and why it was not sent."""
    if day is not None:
        try:
            date.fromisoformat(day)
        except ValueError:
            raise DataError(f"--day must be a date, YYYY-MM-DD, got {day!r}") from None
    held = _outbox(settings_for(home)).suppressions(day=day, limit=limit)
    for entry in held:
        flag = entry.flag
        worth = "-" if flag.value_at_risk is None else f"{flag.value_at_risk:.4g}"
        typer.echo(
            f"{flag.flag_id[:12]}  {flag.event_timestamp[:19]}  {flag.player_id:16}  {flag.model:12}  "
            f"{flag.action:15}  {flag.score:5.3f}  value at risk {worth}  {entry.reason}"
        )
    typer.echo(f"{len(held)} held-back flags shown")


@flags_app.command("rejected")
def rejected_command(
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 20,
    home: HomeOption = None,
) -> None:
    """List dead-lettered records: the raw payload and why it could not be scored."""
    letters = _outbox(settings_for(home)).dead_letters(limit)
    for letter in letters:
        typer.echo(
            f"{letter.dead_lettered_at}  seq {letter.sequence_number}  {letter.reason}  data={letter.data[:60]}"
        )
    typer.echo(f"{len(letters)} dead-lettered records shown")
