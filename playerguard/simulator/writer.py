"""Write a simulated game into the lake, with its ground truth beside the lake (never inside it)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass

import pyarrow.compute as pc

from playerguard.backends import backend_for
from playerguard.errors import DataError
from playerguard.lake.local import LocalLake
from playerguard.settings import Settings


@dataclass(frozen=True)
class SimulationSummary:
    events: int
    added: int
    players: int
    first_day: str
    last_day: str
    ground_truth_path: str

    def __str__(self) -> str:
        return (
            f"simulated {self.events:,} events for {self.players:,} players "
            f"({self.first_day} .. {self.last_day}); {self.added:,} added to the lake; "
            f"ground truth: {self.ground_truth_path}"
        )


def write_simulation(
    settings: Settings, *, players: int, days: int, seed: int, replace: bool = False
) -> SimulationSummary:
    """Simulate a game and write it into the lake the settings point at.

    Simulated ids repeat across runs, so a second game would half-merge with the first: a lake that already
    holds events is refused unless `replace` (local lake only) clears it first.
    """
    from playerguard.simulator.game import simulate

    lake = backend_for(settings).lake()
    if isinstance(lake, LocalLake):
        if lake.has_events() and not replace:
            raise DataError(
                f"the lake at {lake.root} already holds events; pass --replace to start a new simulated game"
            )
        if replace:
            shutil.rmtree(lake.root, ignore_errors=True)
            settings.ground_truth_path.unlink(missing_ok=True)
        lake.root.mkdir(parents=True, exist_ok=True)
    game = simulate(players=players, days=days, seed=seed)
    result = lake.append_table(game.events)
    settings.home.mkdir(parents=True, exist_ok=True)
    game.ground_truth.to_parquet(settings.ground_truth_path, index=False)
    dates = pc.min_max(game.events.column("event_date"))
    return SimulationSummary(
        events=game.events.num_rows,
        added=result.added,
        players=len(game.ground_truth),
        first_day=dates["min"].as_py() or "-",
        last_day=dates["max"].as_py() or "-",
        ground_truth_path=str(settings.ground_truth_path),
    )
