"""Print inhuman-play figures on the simulator for the labels studios really have: none, or a ban list.

    .venv/bin/python bench/bench_labels.py [--players 4000] [--days 70] [--seed 7] [--ban-share 0.3]

Simulates a game into a temporary home and builds the training set at weekly cutoffs (14-day horizon).
Every model is fitted on the earlier cutoffs and judged on the last one (out of time), on the players it
judges (those with enough matches), against the simulator's truth, which no model sees:

- no labels: the unsupervised model (rules and detector): recall at 1% FPR per archetype (blatant
  cheaters, bots, closet cheaters), and what its own threshold does (FPR, recall);
- a ban list holding `ban-share` of the cheaters and bots (drawn per player), nothing else: the
  positive-unlabelled model against the unsupervised one, on the cheaters NOT on the list, and per archetype.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from playerguard.features.api import build_training_set
from playerguard.features.cutoffs import resolve_cutoffs
from playerguard.settings import Settings
from playerguard.simulator.writer import write_simulation
from playerguard.training.fitting import FittedModel, fit_model
from playerguard.training.metrics import recall_at_fpr

FPR = 0.01
ARCHETYPES = ("blatant_cheater", "bot", "closet_cheater")
PARAMS = {"target_fpr": FPR}


def _simulated(players: int, days: int, seed: int, home: Path) -> pd.DataFrame:
    settings = Settings(home=home)
    write_simulation(settings, players=players, days=days, seed=seed)
    cutoffs = resolve_cutoffs(settings, horizon_days=14)
    frame = build_training_set(settings, list(cutoffs), horizon_days=14, lookback_days=28)
    truth = pd.read_parquet(settings.ground_truth_path)[["player_id", "archetype", "is_inhuman"]]
    return frame.merge(truth, on="player_id", how="left", validate="many_to_one")


def _fit(frame: pd.DataFrame, labels: pd.Series) -> tuple[FittedModel, np.ndarray]:
    """The inhuman-play model fitted on `labels`, its test rows and their scores."""
    training = frame.drop(columns=["archetype", "is_inhuman"]).assign(label_inhuman_play=labels)
    fitted = fit_model("inhuman_play", training, PARAMS, 14)
    return fitted, next(iter(fitted.candidates.values())).scores


def _line(
    name: str, fitted: FittedModel, scores: np.ndarray, frame: pd.DataFrame, exclude: pd.Series
) -> None:
    test = frame.loc[fitted.test.index]
    legitimate = ~test["is_inhuman"].to_numpy(dtype=bool)
    cells = []
    for archetype in ARCHETYPES:
        chosen = (test["archetype"] == archetype).to_numpy() & ~exclude.loc[test.index].to_numpy()
        y = np.r_[np.ones(chosen.sum()), np.zeros(legitimate.sum())]
        recall = recall_at_fpr(y, np.r_[scores[chosen], scores[legitimate]], FPR)
        cells.append(f"{archetype} {recall:.3f} (n={chosen.sum()})")
    inhuman = ~legitimate & ~exclude.loc[test.index].to_numpy()
    y = np.r_[np.ones(inhuman.sum()), np.zeros(legitimate.sum())]
    overall = recall_at_fpr(y, np.r_[scores[inhuman], scores[legitimate]], FPR)
    threshold = next(iter(fitted.candidates.values())).model.threshold_
    own = f"own threshold: FPR {np.mean(scores[legitimate] >= threshold):.4f}, recall {np.mean(scores[inhuman] >= threshold):.3f}"
    print(f"  {name:28s} recall at 1% FPR: all {overall:.3f}; " + "; ".join(cells) + f" | {own}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", type=int, default=4000)
    parser.add_argument("--days", type=int, default=70)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--ban-share", type=float, default=0.3)
    args = parser.parse_args()

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="playerguard-labels-") as home:
        frame = _simulated(args.players, args.days, args.seed, Path(home))
    players = frame.drop_duplicates("player_id")
    inhuman_players = players.loc[players["is_inhuman"].astype(bool), "player_id"]
    rng = np.random.default_rng(args.seed)
    listed = set(inhuman_players[rng.random(len(inhuman_players)) < args.ban_share])
    on_list = frame["player_id"].isin(listed)
    print(
        f"simulator: {args.players} players, {args.days} days, seed {args.seed}; {len(inhuman_players)} cheaters "
        f"and bots, {len(listed)} on the ban list; judged at the last cutoff (out of time), target FPR {FPR:g}"
    )
    nobody = pd.Series(False, index=frame.index)
    unknown = pd.array([pd.NA] * len(frame), dtype="Int8")
    unsupervised, unsupervised_scores = _fit(frame, unknown)
    print("no labels:")
    _line(f"unsupervised ({unsupervised.label_regime})", unsupervised, unsupervised_scores, frame, nobody)
    ban_list = pd.array(np.where(on_list, 1, pd.NA), dtype="Int8")
    pu, pu_scores = _fit(frame, ban_list)
    c = next(iter(pu.candidates.values())).model.label_frequency_
    print(f"ban list ({args.ban_share:.0%} of the cheaters and bots; label frequency c estimated {c:.3f}),")
    print("judged on the cheaters and bots NOT on the list:")
    _line("unsupervised alone", unsupervised, unsupervised_scores, frame, on_list)
    _line(f"{pu.label_regime}", pu, pu_scores, frame, on_list)
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
