"""`playerguard demo`: the whole loop on the embedded local backends, from nothing."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from playerguard.settings import Settings


def run_demo(*, players: int, days: int, seed: int, home: Path | None = None) -> None:
    """Simulate a game into a fresh lake and show what is in it."""
    from playerguard.features.simulation_io import write_simulation

    console = Console()
    settings = Settings(home=home) if home else Settings()
    with console.status(f"simulating {players:,} players over {days} days"):
        summary = write_simulation(settings, players=players, days=days, seed=seed, replace=True)
    console.print(f"[bold]1. lake[/bold]  {summary}")
