"""A small world for the review console's tests: a simulated lake, the feature snapshot built from it, and
an outbox of flags whose reasons carry the players' real feature values (plus one hostile player_id)."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from playerguard.features.api import build_features
from playerguard.features.online.local import SqliteFeatureStore
from playerguard.inference.flags import Flag, make_flag_id
from playerguard.review.app import Console, create_app
from playerguard.review.commands import build_console
from playerguard.settings import Settings
from playerguard.simulator.writer import write_simulation
from playerguard.stream.notifiers.local import OutboxNotifier

HOSTILE_PLAYER = "<script>window.__pwned = 1</script>"
FLAG_DAY = "2026-01-10"
REASON_FEATURES = ("headshot_rate_28d", "reaction_ms_p50_28d", "accuracy_28d")


@dataclass(frozen=True)
class World:
    settings: Settings
    features: pd.DataFrame
    flags: list[Flag]

    @property
    def home(self) -> Path:
        return self.settings.home


def make_flag(
    player_id: str,
    *,
    model: str = "inhuman_play",
    action: str = "review",
    severity: str = "medium",
    score: float = 0.8,
    when: str = f"{FLAG_DAY}T12:00:00",
    reasons: list[dict] | None = None,
    serial: int = 0,
) -> Flag:
    event_id = hashlib.sha256(f"{player_id}/{model}/{when}/{serial}".encode()).hexdigest()[:32]
    return Flag(
        flag_id=make_flag_id(event_id, model, "3"),
        player_id=player_id,
        model=model,
        action=action,
        severity=severity,
        score=score,
        threshold=0.5,
        reasons=reasons or [],
        event_id=event_id,
        event_timestamp=when + ".000000Z",
        model_version="3",
        scored_at=f"{FLAG_DAY}T12:00:01.000000Z",
    )


def _reasons(row: pd.Series) -> list[dict]:
    reasons: list[dict] = [
        {
            "kind": "feature",
            "name": name,
            "value": float(row[name]),
            "contribution": 0.9 - 0.2 * k,
            "method": "tree_shap",
        }
        for k, name in enumerate(REASON_FEATURES)
        if pd.notna(row[name])
    ]
    reasons.append(
        {
            "kind": "rule",
            "name": "sustained_headshots",
            "value": float(row["headshot_rate_28d"]),
            "contribution": None,
        }
    )
    return reasons


def build_world(home: Path, players: int = 60) -> World:
    """Simulate a lake, snapshot its features, and publish flags: the four players with the highest
    headshot rate (inhuman play, review), two churn offers, and the hostile player."""
    settings = Settings(home=home)
    write_simulation(settings, players=players, days=10, seed=3, replace=True)
    # A studio's own game has no simulator ground truth: review verdicts are then the only inhuman-play
    # labels, which is the path these tests follow into the training set.
    settings.ground_truth_path.unlink()
    features = build_features(settings, datetime(2026, 1, 11, tzinfo=UTC))
    SqliteFeatureStore.from_settings(settings).write(features)
    ranked = features.sort_values("headshot_rate_28d", ascending=False, na_position="last").reset_index(
        drop=True
    )
    flags = [
        make_flag(
            row["player_id"],
            severity="high" if k == 0 else "medium",
            score=round(0.95 - 0.05 * k, 3),
            reasons=_reasons(row),
        )
        for k, row in ranked.head(4).iterrows()
    ]
    for k, row in ranked.tail(2).reset_index(drop=True).iterrows():
        flags.append(
            make_flag(
                row["player_id"],
                model="churn",
                action="retention_offer",
                severity="low",
                score=0.6 + 0.01 * k,
            )
        )
    flags.append(
        make_flag(
            HOSTILE_PLAYER,
            severity="medium",
            score=0.71,
            reasons=[{"kind": "feature", "name": "<b>bold</b>", "value": 1.0, "contribution": 0.5}],
        )
    )
    outbox = OutboxNotifier.from_home(home)
    outbox.publish(flags)
    outbox.close()
    return World(settings, features, flags)


@contextmanager
def running_console(console: Console) -> Iterator[str]:
    """The console app on a free loopback port, in a thread; yields its base URL."""
    import socket

    import uvicorn

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(console), log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the review console did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


def console_for(world: World, **options: object) -> Console:
    return build_console(world.settings, **options)  # type: ignore[arg-type]
