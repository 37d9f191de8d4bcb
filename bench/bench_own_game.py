"""A studio's own game: every event type and attribute renamed, one attribute dropped, `features suggest`
and training, against the default set on the simulator's original names.

    .venv/bin/python bench/bench_own_game.py [--players 3000] [--days 63] [--seed 7] [--horizon 14]
                                             [--drop aim_speed]

Simulates one game into two temporary homes: as is, and ingested through a mapping that renames every
attribute (`columns:`), renames every event type (`values:`) and leaves one attribute out (`ignore:`). The
renamed lake gets the set `features suggest` derives from it (written to <home>/my_game.yaml); the original
lake gets the hand-written default set. Both train the three models with `train(..., track=False)` on the
same weekly cutoffs, and the held-out (last) cutoff gives, out of time: ROC-AUC of churn and purchase, and
the inhuman-play recall at 1% FPR.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import yaml

from playerguard.features.api import build_training_set, suggest_features
from playerguard.features.cutoffs import resolve_cutoffs
from playerguard.lake.ingest import ingest
from playerguard.lake.local import LocalLake
from playerguard.settings import Settings
from playerguard.simulator.writer import write_simulation
from playerguard.training.base import load_model
from playerguard.training.metrics import threshold_at_fpr
from playerguard.training.train import TrainResult, train

TYPES = {"session_start": "login", "session_end": "logout", "match_end": "round_over", "purchase": "buy",
         "level_up": "rank_gain"}  # fmt: skip
ATTRIBUTES = {"amount": "gems_price", "result": "outcome", "hits": "on_target", "shots": "fired",
              "kills": "takedowns", "deaths": "knockouts", "headshots": "crits", "reaction_ms": "react",
              "aim_speed": "swipe", "level": "tier", "session_seconds": "played_s", "map": "arena",
              "currency": "money_code", "item_id": "sku", "match_seconds": "round_s"}  # fmt: skip

RUNS = ("default set, original names", "suggested set, own names")
ARCHETYPES = ("blatant_cheater", "bot", "closet_cheater")
FPR = 0.01


def own_game(original: Settings, own: Settings, drop: str) -> float:
    """The original lake's events ingested into `own` under other names, without `drop`; seconds taken."""
    started = time.perf_counter()
    export = own.home / "export.parquet"
    export.parent.mkdir(parents=True, exist_ok=True)
    columns = ["event_timestamp", "player_id", "event_type", "game_id", "platform", "session_id",
               "app_version", *ATTRIBUTES]  # fmt: skip
    glob = LocalLake.from_settings(original).events_glob().replace("'", "''")
    duckdb.execute(
        f"COPY (SELECT {', '.join(columns)} FROM read_parquet('{glob}', union_by_name = true)) "
        f"TO '{str(export).replace(chr(39), chr(39) * 2)}' (FORMAT parquet)"
    )
    mapping = own.home / "mapping.yaml"
    document = {
        "columns": {new: old for old, new in ATTRIBUTES.items() if old != drop},
        "values": {"event_type": TYPES},
        "ignore": [drop],
    }
    mapping.write_text(yaml.safe_dump(document, sort_keys=True))
    [result] = ingest(own, [export], mapping)
    if result.rejected:
        raise SystemExit(f"{result.rejected} rows rejected while ingesting the renamed game")
    shutil.copy(original.ground_truth_path, own.ground_truth_path)  # the same players: the same truth
    return time.perf_counter() - started


def archetype_recalls(settings: Settings, frame: pd.DataFrame, result: TrainResult) -> dict[str, float]:
    """Inhuman play on the test cutoff: recall at 1% FPR per cheating archetype, among judged rows."""
    r = result.models["inhuman_play"]
    test = frame.loc[frame["cutoff"] == pd.Timestamp(r.split["test_cutoff"])]
    test = test.loc[test["label_inhuman_play"].notna()].reset_index(drop=True)
    model = load_model("inhuman_play", r.model_dir)
    judged = np.asarray(model.judged(test), dtype=bool)
    scores, y = model.predict_score(test)[judged], test["label_inhuman_play"].to_numpy(int)[judged]
    truth = pd.read_parquet(settings.ground_truth_path).set_index("player_id")
    archetype = truth.loc[test["player_id"][judged], "archetype"].to_numpy(str)
    threshold = threshold_at_fpr(y, scores, FPR)
    return {f"recall_{a}": float(np.mean(scores[archetype == a] >= threshold)) for a in ARCHETYPES}


def measure(settings: Settings, feature_set: object, cutoffs: list, horizon: int) -> dict[str, float | str]:
    started = time.perf_counter()
    frame = build_training_set(settings, cutoffs, horizon_days=horizon, feature_set=feature_set)  # type: ignore[arg-type]
    built = time.perf_counter()
    result = train(settings, frame, feature_set=feature_set, track=False, horizon_days=horizon)
    figures: dict[str, float | str] = {
        "rows": len(frame),
        "features": len([c for c in frame.columns if not c.startswith(("label_", "_"))]) - 2,
        "build_s": built - started,
        "train_s": time.perf_counter() - built,
    }
    for name, model in result.models.items():
        figures[f"{name}_status"] = model.status if model.status != "skipped" else f"skipped: {model.note}"
        for metric in ("roc_auc", "recall_at_fpr"):
            figures[f"{name}_{metric}"] = (model.metrics or {}).get(metric, float("nan"))
    if result.models["inhuman_play"].status == "trained":
        figures |= archetype_recalls(settings, frame, result)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", type=int, default=3000)
    parser.add_argument("--days", type=int, default=63)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--horizon", type=int, default=14)
    parser.add_argument("--drop", default="aim_speed", choices=sorted(ATTRIBUTES))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as first, tempfile.TemporaryDirectory() as second:
        original, own = Settings(home=Path(first)), Settings(home=Path(second))
        print(write_simulation(original, players=args.players, days=args.days, seed=args.seed))
        seconds = own_game(original, own, args.drop)
        print(f"own game: every type and attribute renamed, {args.drop} dropped; ingested in {seconds:.1f}s")
        started = time.perf_counter()
        suggestion = suggest_features(own, name="my_game")
        (own.home / "my_game.yaml").write_text(suggestion.text)
        labels = suggestion.feature_set.labels
        print(
            f"features suggest: {len(suggestion.feature_set.definitions)} features in "
            f"{time.perf_counter() - started:.1f}s; churn on {labels.churn_event}, purchase on "
            f"{labels.purchase_event}"
        )
        cutoffs = list(resolve_cutoffs(original, horizon_days=args.horizon))
        print(
            f"{len(cutoffs)} weekly cutoffs {cutoffs[0].date()} .. {cutoffs[-1].date()}, horizon {args.horizon}d"
        )
        print(f"columns: (1) {RUNS[0]}, (2) {RUNS[1]}")
        runs = {
            RUNS[0]: measure(original, "default", cutoffs, args.horizon),
            RUNS[1]: measure(own, own.home / "my_game.yaml", cutoffs, args.horizon),
        }
        keys = ["rows", "features", "build_s", "train_s", "churn_roc_auc", "purchase_roc_auc",
                "inhuman_play_roc_auc", "inhuman_play_recall_at_fpr"]  # fmt: skip
        keys += [f"recall_{a}" for a in ARCHETYPES]
        print(f"\n{'':28s}{'(1)':>12s}{'(2)':>12s}")
        for key in keys:
            cells = [figures.get(key, "") for figures in runs.values()]
            print(
                f"{key:>28s}" + "".join(f"{v:>12.4f}" if isinstance(v, float) else f"{v:>12}" for v in cells)
            )
        for label, figures in runs.items():
            for name in ("inhuman_play", "churn", "purchase"):
                if figures[f"{name}_status"] != "trained":
                    print(f"{label}: {name} {figures[f'{name}_status']}")
        a, b = runs.values()
        for name in ("churn", "purchase"):
            delta = float(b[f"{name}_roc_auc"]) - float(a[f"{name}_roc_auc"])
            print(f"{name}: suggested - default ROC-AUC {delta:+.4f} (goal: within 0.01)")
        delta = float(b["inhuman_play_recall_at_fpr"]) - float(a["inhuman_play_recall_at_fpr"])
        print(f"inhuman play: suggested - default recall at 1% FPR {delta:+.4f}")


if __name__ == "__main__":
    main()
