"""Replay: lake events → Kinesis-shaped batches → the stream handler → the local scoring server → outbox.

Uses a simulated lake and the endpoint tests' small real bundle, served by the real server on loopback.
"""

from __future__ import annotations

import base64
import json
import socket
import sqlite3
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from playerguard.errors import DataError
from playerguard.features.labels import load_inhuman_labels
from playerguard.features.online.local import SqliteFeatureStore
from playerguard.features.online.snapshot import materialize_snapshot
from playerguard.inference.bundle import ModelSource, write_bundle
from playerguard.settings import Settings
from playerguard.simulator.writer import write_simulation
from playerguard.stream.commands import flags_app, parse_rate, stream_app
from playerguard.stream.endpoint import HttpEndpoint
from playerguard.stream.handler import StreamRuntime
from playerguard.stream.notifiers.local import OutboxNotifier
from playerguard.stream.replay import local_scoring_server, local_stream_runtime, replay, run_replay
from playerguard.stream.replay_source import (
    REPLAY_STREAM_ARN,
    kinesis_batches,
    lake_events,
    records_to_redeliver,
    windowed_batches,
)
from playerguard.stream.scorer import BatchReport, decode_record

sys.path.insert(0, str(Path(__file__).parents[1]))
from endpoint_fixtures import fit_test_models, synthetic_features

FIRST, LAST = date(2026, 1, 1), date(2026, 1, 2)
ACT_ON_EVENTS = ("inhuman_play", "churn")  # no snapshot in this lake: every player is scored on its events
POLICY = """
version: 1
models:
  inhuman_play:
    cooldown: 1d
    rules: [{threshold: 0.0, action: review, severity: medium}]
  churn:
    cooldown: 1d
    rules: [{threshold: 0.0, action: retention_offer, severity: low}]
"""


def _policy(root: Path) -> Path:
    """Every scored player is flagged for review and for a retention offer (at most daily): the flags do
    not depend on what the small test models happen to score."""
    path = root / "policy.yaml"
    path.write_text(POLICY)
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("replay")
    settings = Settings(home=root / "home")
    write_simulation(settings, players=40, days=2, seed=5)
    bundle = write_bundle(
        root / "bundle",
        [ModelSource(name, path, version="1") for name, path in fit_test_models(root, rows=300).items()],
        feature_set="default",
        policy_path=_policy(root),
    )
    first = replay(settings, FIRST, LAST, bundle=bundle, batch_size=300, act_without_snapshot=ACT_ON_EVENTS)
    return {"settings": settings, "bundle": bundle, "first": first}


def test_kinesis_batches_look_like_what_lambda_delivers() -> None:
    events = [
        {
            "event_id": f"e{i}",
            "player_id": f"p{i % 3}",
            "event_type": "match_end",
            "event_timestamp": "2026-01-01T00:00:00Z",
        }
        for i in range(7)
    ]
    batches = list(kinesis_batches(events, batch_size=3))
    assert [len(b["Records"]) for b in batches] == [3, 3, 1]
    records = [r for b in batches for r in b["Records"]]
    sequences = [int(r["kinesis"]["sequenceNumber"]) for r in records]
    assert sequences == sorted(sequences) and len(set(sequences)) == 7
    first = records[0]
    assert first["eventSource"] == "aws:kinesis" and first["eventName"] == "aws:kinesis:record"
    assert first["eventSourceARN"] == REPLAY_STREAM_ARN
    assert first["eventID"].endswith(first["kinesis"]["sequenceNumber"])
    assert first["kinesis"]["partitionKey"] == "p0"
    assert json.loads(base64.b64decode(first["kinesis"]["data"])) == events[0]
    assert decode_record(first).event_id == "e0"
    with pytest.raises(DataError, match="batch size"):
        next(kinesis_batches(events, batch_size=0))


def test_redelivery_starts_at_the_lowest_failed_sequence_number() -> None:
    records = next(kinesis_batches([{"player_id": "p"}] * 5))["Records"]
    sequence = [r["kinesis"]["sequenceNumber"] for r in records]
    response = {"batchItemFailures": [{"itemIdentifier": sequence[3]}, {"itemIdentifier": sequence[1]}]}
    assert records_to_redeliver(records, response) == records[1:]
    assert records_to_redeliver(records, {"batchItemFailures": []}) == []


def test_run_replay_redelivers_failures_and_paces_to_the_rate() -> None:
    sleeps: list[float] = []
    calls: list[int] = []

    def handle_batch(event: dict[str, Any]) -> tuple[dict[str, Any], BatchReport]:
        records = event["Records"]
        calls.append(len(records))
        failed = [] if len(calls) % 2 == 0 else [records[-1]["kinesis"]["sequenceNumber"]]
        return {"batchItemFailures": [{"itemIdentifier": s} for s in failed]}, BatchReport(
            received=len(records), scored=len(records) - len(failed), failed=dict.fromkeys(failed, "x")
        )

    now = [0.0]
    summary = run_replay(
        handle_batch,
        kinesis_batches([{"player_id": "p"}] * 20, 10),
        rate=10,
        sleep=lambda s: (sleeps.append(s), now.__setitem__(0, now[0] + s)),
        clock=lambda: now[0],
    )
    assert calls == [10, 1, 10, 1]  # each failing last record is redelivered alone, then succeeds
    assert summary.events == 20 and summary.invocations == 4 and summary.unprocessed == 0
    # each batch: 0.5 s redelivery backoff, then 0.5 s more to pace 10 events at 10 events/s
    assert sleeps == [0.5, 0.5, 0.5, 0.5]
    assert parse_rate("500/s") == 500 and parse_rate("12.5") == 12.5
    with pytest.raises(DataError, match="--rate"):
        parse_rate("fast")


def test_replay_scores_every_event_once_and_a_second_replay_adds_no_flag(world: dict[str, Any]) -> None:
    settings, bundle, first = world["settings"], world["bundle"], world["first"]
    expected = sum(1 for _ in lake_events(settings, FIRST, LAST))
    assert (first.events, first.scored, first.unprocessed, first.dead_lettered) == (expected, expected, 0, 0)
    assert first.batches == -(-expected // 300) and first.flagged > 0
    assert "local server http://127.0.0.1:" in first.endpoint
    outbox = OutboxNotifier.from_home(settings.home)
    assert outbox.count() == first.flagged
    second = replay(settings, FIRST, LAST, bundle=bundle, batch_size=300, act_without_snapshot=ACT_ON_EVENTS)
    assert (second.flagged, second.duplicates, second.suppressed) == (0, first.flagged, first.suppressed)
    assert outbox.count() == first.flagged
    entry = outbox.entries(limit=1)[0]
    assert entry.flag.model_version == "1" and entry.flag.model in ("inhuman_play", "churn")
    players = {e.flag.player_id for e in outbox.entries(limit=10_000)}
    assert players == {e["player_id"] for e in lake_events(settings, FIRST, LAST)}  # everyone scored, flagged
    outbox.close()


def test_reviewing_flags_writes_labels_the_feature_layer_reads(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = world["settings"]
    monkeypatch.setenv("PLAYERGUARD_HOME", str(settings.home))
    outbox = OutboxNotifier.from_home(settings.home)
    cheat = outbox.entries(model="inhuman_play", limit=1)[0].flag
    other = next(e.flag for e in outbox.entries(limit=1000) if e.flag.model != "inhuman_play")
    outbox.close()
    labels_path = settings.home / "labels" / "review_verdicts.parquet"
    runner = CliRunner()

    listed = runner.invoke(flags_app, ["list", "--model", "inhuman_play"])
    assert listed.exit_code == 0 and cheat.flag_id[:12] in listed.output, listed.output
    shown = runner.invoke(flags_app, ["show", cheat.flag_id[:16]])
    assert json.loads(shown.output)["flag_id"] == cheat.flag_id

    confirmed = runner.invoke(flags_app, ["review", cheat.flag_id, "--verdict", "confirmed"])
    assert confirmed.exit_code == 0 and str(labels_path) in confirmed.output, confirmed.output
    assert pq.read_table(labels_path).to_pylist() == [
        {"player_id": cheat.player_id, "label": 1, "source": "review"}
    ]
    labels = load_inhuman_labels(Settings(home=settings.home))
    assert labels.set_index("player_id").loc[cheat.player_id, "label_inhuman_play"] == 1

    unlabelled = runner.invoke(flags_app, ["review", other.flag_id, "--verdict", "dismissed"])
    assert unlabelled.exit_code == 0 and "labels:" not in unlabelled.output
    dismissed = runner.invoke(flags_app, ["review", cheat.flag_id, "--verdict", "dismissed", "--force"])
    assert dismissed.exit_code == 0
    assert pq.read_table(labels_path).to_pylist() == [
        {"player_id": cheat.player_id, "label": 0, "source": "review"}
    ]
    bad = runner.invoke(flags_app, ["review", cheat.flag_id, "--verdict", "maybe"])
    assert bad.exit_code != 0 and "verdict must be one of" in str(bad.exception)


def test_the_local_server_stops_with_the_replay(world: dict[str, Any]) -> None:
    with local_scoring_server(world["settings"], world["bundle"]) as (url, served):
        port = int(url.rsplit(":", 1)[1])
        assert served.bundle.versions["churn"] == "1"
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(("127.0.0.1", port))


def test_replaying_an_empty_lake_or_backwards_dates_is_a_clear_error(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "empty")
    with pytest.raises(DataError, match="has no events"):
        list(lake_events(settings, FIRST, LAST))
    with pytest.raises(DataError, match="before --from"):
        list(lake_events(settings, date(2026, 1, 2), date(2026, 1, 1)))


def test_the_replay_command(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYERGUARD_HOME", str(world["settings"].home))
    arguments = ["replay", "--from", "2026-01-01", "--to", "2026-01-01", "--bundle", str(world["bundle"])]
    without_snapshot = CliRunner().invoke(stream_app, arguments)
    assert without_snapshot.exit_code != 0 and "no online feature snapshot" in str(without_snapshot.exception)
    result = CliRunner().invoke(
        stream_app, [*arguments, "--rate", "100000/s", "--batch-size", "500", "--refresh-snapshot"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("replayed ") and "online snapshot rebuilt 1 time (every 1d)" in result.output
    uneven = CliRunner().invoke(stream_app, [*arguments, "--refresh-every", "7h"])
    assert uneven.exit_code != 0 and "must divide a day evenly (e.g. 1h, 6h, 1d), got 7h" in str(uneven.exception)
    backwards = CliRunner().invoke(stream_app, ["replay", "--from", "2026-01-02", "--to", "2026-01-01"])
    assert backwards.exit_code != 0 and "before --from" in str(backwards.exception)


def test_a_daily_refresh_rebuilds_the_snapshot_from_the_events_before_each_day(
    world: dict[str, Any], tmp_path: Path
) -> None:
    settings = Settings(home=tmp_path / "home")
    write_simulation(settings, players=40, days=2, seed=5)
    summary = replay(
        settings, FIRST, LAST, bundle=world["bundle"], batch_size=300, refresh_every=timedelta(days=1)
    )
    assert summary.snapshots == 2 and summary.unprocessed == 0
    day_one = {e["player_id"] for e in lake_events(settings, FIRST, FIRST)}
    day_two = {e["player_id"] for e in lake_events(settings, LAST, LAST)}
    store = SqliteFeatureStore.from_settings(settings)
    with sqlite3.connect(store.path) as con:
        rows = con.execute("SELECT player_id, cutoff FROM features").fetchall()
    # the snapshot day two was scored with: players seen on day one, features at midnight before day two
    assert {player for player, _ in rows} == day_one
    assert {cutoff for _, cutoff in rows} == {"2026-01-02T00:00:00+00:00"}
    outbox = OutboxNotifier.from_home(settings.home)
    flagged = {entry.flag.player_id for entry in outbox.entries(limit=10_000)}
    outbox.close()
    # every scored player is flagged by this policy, but only with a snapshot: day two's returning players
    assert flagged == day_one & day_two and summary.withheld > 0


def test_a_refresh_every_twelve_hours_scores_each_half_day_on_the_snapshot_at_its_start(
    world: dict[str, Any], tmp_path: Path
) -> None:
    settings = Settings(home=tmp_path / "home")
    write_simulation(settings, players=40, days=2, seed=5)
    cutoffs: list[datetime] = []
    batches = list(
        windowed_batches(settings, FIRST, LAST, 50, timedelta(hours=12), before_window=cutoffs.append)
    )
    assert cutoffs == [datetime(2026, 1, d, h, tzinfo=UTC) for d in (1, 2) for h in (0, 12)]
    # no batch spans a window boundary, and every event comes once, in order
    stamps = [[decode_record(r).event_timestamp for r in b["Records"]] for b in batches]
    assert all(len({(t[:10], int(t[11:13]) // 12) for t in batch}) == 1 for batch in stamps)
    replayed = [decode_record(r).event_id for b in batches for r in b["Records"]]
    assert replayed == [e["event_id"] for e in lake_events(settings, FIRST, LAST)]
    summary = replay(settings, FIRST, LAST, bundle=world["bundle"], refresh_every=timedelta(hours=12))
    assert summary.snapshots == 4 and "rebuilt 4 times (every 12h)" in str(summary)
    with sqlite3.connect(SqliteFeatureStore.from_settings(settings).path) as con:
        assert {row[0] for row in con.execute("SELECT cutoff FROM features")} == {"2026-01-02T12:00:00+00:00"}
    for wrong in (timedelta(hours=5), timedelta(seconds=30)):
        with pytest.raises(DataError, match="must divide a day evenly"):
            replay(settings, FIRST, LAST, bundle=world["bundle"], refresh_every=wrong)


def test_the_runtime_answers_a_lambda_event_from_the_fixture_shape(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = world["settings"]
    fixture = json.loads((Path(__file__).parents[1] / "fixtures" / "kinesis_event.json").read_text())
    outbox = OutboxNotifier.from_home(settings.home / "fixture")
    with local_scoring_server(settings, world["bundle"]) as (url, _):
        runtime: StreamRuntime = local_stream_runtime(settings, HttpEndpoint(url), outbox)
        response, report = runtime.handle_batch(fixture)
    assert response == {"batchItemFailures": []}
    assert (report.received, report.scored, report.dead_lettered) == (8, 5, 3)
    assert max(x.reason for x in outbox.dead_letters()) == "missing player_id"
    outbox.close()
    monkeypatch.setenv("PLAYERGUARD_HOME", str(settings.home / "fixture"))
    listed = CliRunner().invoke(flags_app, ["rejected"])
    assert listed.exit_code == 0 and "3 dead-lettered records shown" in listed.output
    assert "data=not base64 at all!" in listed.output


class RecordingEndpoint(HttpEndpoint):
    """The real HTTP endpoint, keeping every request it sends."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.requests: list[dict[str, Any]] = []

    def invoke(self, payload: Any) -> Any:
        self.requests.append(json.loads(json.dumps(payload)))
        return super().invoke(payload)


def _snapshot(settings: Settings, players: list[str], *, drop: str | None = None) -> None:
    frame = synthetic_features(len(players), seed=3)
    frame["player_id"] = players
    materialize_snapshot(settings, frame.drop(columns=[drop] if drop else []))


def test_players_with_a_snapshot_are_scored_on_it_the_others_on_their_events(
    world: dict[str, Any], tmp_path: Path
) -> None:
    events = list(lake_events(world["settings"], FIRST, FIRST))[:150]
    players = list(dict.fromkeys(e["player_id"] for e in events))
    settings = Settings(home=tmp_path / "home")
    _snapshot(settings, players[::2])  # every other player has a materialised snapshot
    outbox = OutboxNotifier.from_home(tmp_path)
    with local_scoring_server(settings, world["bundle"]) as (url, _):
        endpoint = RecordingEndpoint(url)
        response, report = local_stream_runtime(settings, endpoint, outbox).handle_batch(
            next(kinesis_batches(events, batch_size=len(events)))
        )
    flagged = {entry.flag.player_id for entry in outbox.entries(limit=10_000)}
    outbox.close()
    assert response == {"batchItemFailures": []} and report.scored == len(events)
    # the policy flags every scored player, but actions on events alone are withheld by default
    assert flagged == set(players[::2])
    assert report.without_snapshot == len(players[1::2]) and report.withheld >= len(players[1::2])
    [request] = endpoint.requests  # one call for the batch
    by_player = {instance["player_id"]: instance for instance in request["instances"]}
    assert list(by_player) == players
    assert all("features" in by_player[p] and "events" not in by_player[p] for p in players[::2])
    assert all("events" in by_player[p] and "features" not in by_player[p] for p in players[1::2])
    # undefined snapshot features travel as null
    assert any(value is None for p in players[::2] for value in by_player[p]["features"].values())


def test_a_snapshot_the_endpoint_refuses_falls_back_to_the_events(
    world: dict[str, Any], tmp_path: Path
) -> None:
    events = list(lake_events(world["settings"], FIRST, FIRST))[:40]
    players = list(dict.fromkeys(e["player_id"] for e in events))
    settings = Settings(home=tmp_path / "home")
    _snapshot(settings, players[:3], drop="tenure_days")  # an outdated snapshot: a feature is missing
    outbox = OutboxNotifier.from_home(tmp_path)
    with local_scoring_server(settings, world["bundle"]) as (url, _):
        endpoint = RecordingEndpoint(url)
        response, report = local_stream_runtime(settings, endpoint, outbox).handle_batch(
            next(kinesis_batches(events))
        )
    outbox.close()
    assert response == {"batchItemFailures": []}
    assert (report.scored, report.dead_lettered) == (40, 0)
    sent = [i for r in endpoint.requests for i in r["instances"]]
    for player in players[:3]:
        kinds = [sorted(set(i) - {"player_id"}) for i in sent if i["player_id"] == player]
        assert kinds[0] == ["features"] and kinds[-1] == ["events"]  # refused, then scored on its events
    assert len(endpoint.requests) <= 1 + 2 * 3 * 4  # halving finds each refused snapshot
