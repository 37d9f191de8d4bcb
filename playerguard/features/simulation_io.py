"""Write a simulated game into the lake, with its ground truth beside the lake (never inside it)."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow.compute as pc

from playerguard.features.lake import LocalLake, open_lake
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


def write_simulation(settings: Settings, *, players: int, days: int, seed: int) -> SimulationSummary:
    """Simulate a game and append it to the lake the settings point at."""
    from playerguard.features.simulator import simulate

    game = simulate(players=players, days=days, seed=seed)
    lake = open_lake(settings)
    if isinstance(lake, LocalLake):
        lake.root.mkdir(parents=True, exist_ok=True)
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
