"""Simulator throughput: events generated per second.

    .venv/bin/python bench/bench_simulator.py                      # 100,000 players x 30 days, 3 runs
    .venv/bin/python bench/bench_simulator.py --players 2000 --days 60
    .venv/bin/python bench/bench_simulator.py --profile            # also print where one run spends its time

Prints the event count, the median wall time and CPU time (this process, all threads) of the runs,
and events/s for both. Wall time counts whatever else the machine is running; CPU time does not, so
on a shared machine the CPU figure is the steadier one. Goal: >= 1M events/s (wall) on 2 cores.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import statistics
import time

from playerguard.simulator.game import simulate


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--players", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--profile", action="store_true", help="profile one extra run and print the top calls"
    )
    args = parser.parse_args()

    simulate(players=200, days=3, seed=args.seed)  # imports and first-call costs stay out of the timing
    walls, cpus, events = [], [], 0
    for _ in range(args.runs):
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        game = simulate(players=args.players, days=args.days, seed=args.seed)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        events = game.events.num_rows
        del game
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    print(f"simulate(players={args.players:,}, days={args.days}): {events:,} events")
    print(
        f"wall: median {wall:.2f} s of {args.runs} runs ({', '.join(f'{w:.2f}' for w in walls)}) "
        f"-> {events / wall:,.0f} events/s"
    )
    print(f"cpu:  median {cpu:.2f} s ({', '.join(f'{c:.2f}' for c in cpus)}) -> {events / cpu:,.0f} events/s")

    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(simulate, players=args.players, days=args.days, seed=args.seed)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    main()
