"""Print playerguard's quality goals measured on a simulated game's held-out (last) cutoff.

    .venv/bin/python bench/eval_simulator.py [--players 4000] [--days 70] [--seed 7] [--horizon 14]

Simulates a game into a temporary home, builds the training set at weekly cutoffs with the feature layer,
trains the three models with `train(..., track=False)` (the test cutoff is never used for fitting or
choosing anything but the candidate the gate would register), then measures:

- inhuman play: recall at 1% FPR among legitimate players, per archetype (goals: blatant_cheater and bot
  >= 0.95, closet_cheater >= 0.6), ROC-AUC and PR-AUC; on the players who played in the window (the rows
  the model judges; the others score 0 by design), and, for reference, on every test row; also what the
  threshold chosen on the validation cutoff does on the test cutoff;
- churn and purchase: ROC-AUC of XGBoost, of the logistic baseline and of the simulator's oracle on the
  same test rows (goal: the shipped model within 0.02 of the oracle), and what the oracle knows that no
  model can see at the cutoff: how far the same XGBoost fit gets when it is handed the simulator's
  latent parameters (a diagnostic only). About a minute on two cores at the default size.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from playerguard.features.api import build_training_set
from playerguard.features.cutoffs import resolve_cutoffs
from playerguard.settings import Settings
from playerguard.simulator.game import true_churn_probability, true_purchase_probability
from playerguard.simulator.writer import write_simulation
from playerguard.training.base import load_model
from playerguard.training.fitting import fit_model
from playerguard.training.metrics import pr_auc, roc_auc, threshold_at_fpr
from playerguard.training.train import TrainResult, train

RECALL_GOALS = {"blatant_cheater": 0.95, "bot": 0.95, "closet_cheater": 0.6}
ORACLE_GAP_GOAL = 0.02
FPR = 0.01
NEVER = 10**12


def _verdict(ok: bool, by: float) -> str:
    return "met" if ok else f"MISSED by {by:.4f}"


def _test_rows(frame: pd.DataFrame, result: TrainResult, model: str) -> pd.DataFrame:
    cutoff = pd.Timestamp(result.models[model].split["test_cutoff"])
    return frame.loc[(frame["cutoff"] == cutoff) & frame[f"label_{model}"].notna()].reset_index(drop=True)


def _recalls(scores: np.ndarray, archetype: np.ndarray, threshold: float) -> dict[str, tuple[float, int]]:
    return {a: (float(np.mean(scores[archetype == a] >= threshold)), int(np.sum(archetype == a))) for a in RECALL_GOALS}


def inhuman_play(frame: pd.DataFrame, truth: pd.DataFrame, result: TrainResult) -> None:
    r = result.models["inhuman_play"]
    test = _test_rows(frame, result, "inhuman_play")
    model = load_model("inhuman_play", r.model_dir)
    scores, judged = model.predict_score(test), model.judged(test)
    y = test["label_inhuman_play"].to_numpy(int)
    archetype = truth.set_index("player_id").loc[test["player_id"], "archetype"].to_numpy(str)
    train_cutoffs = pd.to_datetime(r.split["train_cutoffs"])
    seen = set(frame.loc[frame["cutoff"].isin(train_cutoffs), "player_id"])
    unseen = ~test["player_id"].isin(seen).to_numpy()
    print(f"\n== inhuman play ({model.mode_} mode), test cutoff {r.split['test_cutoff']} ==")
    print(
        f"test rows {len(test)}: {int(judged.sum())} played in the window (judged), {int((~judged).sum())} did not "
        f"({int(y[~judged].sum())} of them inhuman); {int(unseen[judged].sum())} judged rows are players never in "
        "the training rows"
    )
    for label, rows in (("judged rows", judged), ("every test row", np.ones_like(judged))):
        threshold = threshold_at_fpr(y[rows], scores[rows], FPR)
        print(
            f"{label:15s} ROC-AUC {roc_auc(y[rows], scores[rows]):.4f}  PR-AUC {pr_auc(y[rows], scores[rows]):.4f}  "
            f"recall at {FPR:.0%} FPR among legitimate players:"
        )
        for archetype_name, (recall, n) in _recalls(scores[rows], archetype[rows], threshold).items():
            goal = RECALL_GOALS[archetype_name]
            print(f"    {archetype_name:16s} {recall:.4f} (n={n}; goal >= {goal}: {_verdict(recall >= goal, goal - recall)})")
    rows = judged & unseen
    threshold = threshold_at_fpr(y[judged], scores[judged], FPR)
    unseen_recalls = ", ".join(f"{a} {v:.4f} (n={n})" for a, (v, n) in _recalls(scores[rows], archetype[rows], threshold).items())
    print(f"judged players never seen in training, same threshold: {unseen_recalls}")
    legit = judged & (y == 0)
    flagged = scores >= model.threshold_
    operating = ", ".join(f"{a} {v:.4f}" for a, (v, _) in _recalls(scores[judged], archetype[judged], model.threshold_).items())
    print(
        f"threshold {model.threshold_:.3g} chosen on the validation cutoff: test FPR {np.mean(flagged[legit]):.4f} "
        f"among judged legitimate players; recall {operating}"
    )


def _already_quit(truth: pd.DataFrame, player_ids: pd.Series, cutoff: pd.Timestamp) -> np.ndarray:
    """Players whose latent quit (random quit day or scheduled churn day) fell on or before the cutoff's day."""
    rows = truth.set_index("player_id").loc[player_ids]
    day = (cutoff - pd.Timestamp(truth["period_start"].iloc[0])).days
    quit_at = np.minimum(
        rows["quit_day"].astype("Float64").fillna(NEVER).to_numpy(float),
        rows["scheduled_churn_day"].astype("Float64").fillna(NEVER).to_numpy(float),
    )
    return quit_at <= day


def _without_future_schedule(truth: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """Ground truth with churners' declines that start after the cutoff removed (the oracle cannot foresee them)."""
    day = (cutoff - pd.Timestamp(truth["period_start"].iloc[0])).days
    masked = truth.copy()
    future = masked["decline_day"].astype("Float64").fillna(NEVER) > day
    masked.loc[future, ["decline_day", "scheduled_churn_day"]] = pd.NA
    return masked


def _with_latent(frame: pd.DataFrame, truth: pd.DataFrame, *, quit_bit: bool) -> pd.DataFrame:
    """The training set plus what only the simulator knows: each player's exact session rate and purchase
    intent, and (with `quit_bit`) whether their latent quit had already happened at the row's cutoff."""
    latent = truth.set_index("player_id").loc[frame["player_id"]]
    informed = frame.assign(
        latent_session_rate=latent["session_rate"].to_numpy(float),
        latent_purchase_intent=latent["purchase_intent"].to_numpy(float),
    )
    if quit_bit:
        quit_ = np.zeros(len(frame), dtype=bool)
        for cutoff in pd.unique(frame["cutoff"]):
            rows = (frame["cutoff"] == cutoff).to_numpy()
            quit_[rows] = _already_quit(truth, frame.loc[rows, "player_id"], pd.Timestamp(cutoff))
        informed["latent_already_quit"] = quit_.astype(float)
    return informed


def _informed_auc(frame: pd.DataFrame, truth: pd.DataFrame, name: str, horizon: int, *, quit_bit: bool) -> float:
    """Held-out ROC-AUC of the same XGBoost fit, given the simulator's latent parameters as features."""
    fitted = fit_model(name, _with_latent(frame, truth, quit_bit=quit_bit), {}, horizon)
    return roc_auc(fitted.y_test, fitted.candidates["xgboost"].scores)


def propensity(frame: pd.DataFrame, truth: pd.DataFrame, result: TrainResult, horizon: int) -> None:
    oracles = {"churn": true_churn_probability, "purchase": true_purchase_probability}
    for name, oracle in oracles.items():
        r = result.models[name]
        test = _test_rows(frame, result, name)
        cutoff = pd.Timestamp(r.split["test_cutoff"])
        y = test[f"label_{name}"].to_numpy(int)
        scores = {kind: load_model(name, path).predict_score(test) for kind, path in r.candidate_dirs.items()}
        truth_p = oracle(truth, cutoff.to_pydatetime(), horizon).reindex(test["player_id"]).to_numpy(float)
        blind_p = oracle(_without_future_schedule(truth, cutoff), cutoff.to_pydatetime(), horizon)
        blind_p = blind_p.reindex(test["player_id"]).to_numpy(float)
        auc = {kind: roc_auc(y, s) for kind, s in scores.items()}
        oracle_auc = roc_auc(y, truth_p)
        print(f"\n== {name}, test cutoff {r.split['test_cutoff']}: {len(test)} rows, base rate {y.mean():.4f} ==")
        assert len(test) == r.metrics["rows"], "the bench's test rows differ from train's"
        for kind, value in auc.items():
            print(f"{kind:18s} ROC-AUC {value:.4f}  (oracle - model {oracle_auc - value:+.4f})")
        print(f"{'oracle':18s} ROC-AUC {oracle_auc:.4f}")
        gap = oracle_auc - auc[r.kind]
        print(
            f"shipped: {r.kind} ({r.choice}); gap to the oracle {gap:.4f}, goal <= {ORACLE_GAP_GOAL}: "
            f"{_verdict(gap <= ORACLE_GAP_GOAL, gap - ORACLE_GAP_GOAL)}"
        )
        quit_ = _already_quit(truth, test["player_id"], cutoff)
        shipped = scores[r.kind]
        told = np.where(quit_, 1.0 if name == "churn" else 0.0, shipped)
        active = ~quit_
        print(
            f"what the oracle knows: {int(quit_.sum())} test players had already quit (latent quit day on or before "
            f"the cutoff; {int(y[quit_].sum())} of them positive), which it scores with certainty and a model must "
            "guess from silence; plus each player's exact session rate, purchase intent and churn schedule."
        )
        print(
            f"  oracle without the churn schedules that start after the cutoff: ROC-AUC {roc_auc(y, blind_p):.4f}\n"
            f"  shipped model told the already-quit bit: ROC-AUC {roc_auc(y, told):.4f}\n"
            f"  among players still active at the cutoff ({int(active.sum())}): oracle {roc_auc(y[active], truth_p[active]):.4f}, "
            f"shipped model {roc_auc(y[active], shipped[active]):.4f}\n"
            f"  XGBoost refit with the latent session rate and purchase intent as features: ROC-AUC "
            f"{_informed_auc(frame, truth, name, horizon, quit_bit=False):.4f}; and with the already-quit bit: "
            f"{_informed_auc(frame, truth, name, horizon, quit_bit=True):.4f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", type=int, default=4000)
    parser.add_argument("--days", type=int, default=70)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--horizon", type=int, default=14)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home))
        started = time.perf_counter()
        print(write_simulation(settings, players=args.players, days=args.days, seed=args.seed))
        cutoffs = list(resolve_cutoffs(settings, horizon_days=args.horizon))
        frame = build_training_set(settings, cutoffs, horizon_days=args.horizon)
        built = time.perf_counter()
        print(
            f"training set: {len(frame):,} rows at {len(cutoffs)} weekly cutoffs {cutoffs[0].date()} .. "
            f"{cutoffs[-1].date()} (horizon {args.horizon} days; labels end {(cutoffs[-1] + timedelta(days=args.horizon)).date()})"
        )
        result = train(settings, frame, track=False, horizon_days=args.horizon, feature_set="default")
        trained = time.perf_counter()
        truth = pd.read_parquet(settings.ground_truth_path)
        inhuman_play(frame, truth, result)
        propensity(frame, truth, result, args.horizon)
        print(
            f"\n(simulate + features {built - started:.0f} s, train {trained - built:.0f} s, "
            f"evaluate {time.perf_counter() - trained:.0f} s)"
        )


if __name__ == "__main__":
    main()
