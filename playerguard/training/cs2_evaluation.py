"""How well the inhuman-play model finds cheaters in real CS2 matches (CS2CD: Loo and Lužkov, 2025,
CC-BY-4.0, DOI 10.57967/hf/5654).

Features come from the feature layer (the packaged `combat` feature set, run by DuckDB over a throw-away
lake); `cs2_player_features_pandas`, the exploration path written before the feature layer existed, is
kept as a cross-check (`feature_source="pandas"`).

Protocol:
- Players of `with_cheater` matches (the hand-labelled ones) are split into `folds` folds by match
  (StratifiedGroupKFold on match_id), so no match has players on both sides.
- supervised: `InhumanPlayModel` fitted with labels on the training folds (its own cross-fitting is
  grouped by match too), scored on the test fold.
- supervised_match_context: the same with match context added (`add_match_context`: each directed
  feature's difference from its match's median and its rank within the match; matchmaking pairs players
  of similar skill, so standing out from one's own match is informative). It needs the other players
  of the match at scoring time. This variant was added after the per-player figures had been seen.
- unsupervised: the model fitted without labels, on the `no_cheater` matches ("reference") or on those plus
  the training folds' players with their labels withheld ("population"); tail and IsolationForest detectors.
- baseline: hits per shot (firearms), the README's single-ratio baseline, on the same test folds.
Each reports ROC-AUC, PR-AUC, recall at 1% FPR (threshold read on the test fold's legitimate players), and
the false positive rate and recall at the model's own `threshold_` (chosen without the test fold), as
mean ± std over folds. Hyperparameters are the model's defaults, fixed before any run; nothing is tuned
on the folds. The pandas features and the detector's directions were designed while exploring the whole
labelled set (univariate AUCs), so the figures are not free of that choice.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from playerguard.errors import ConfigError, DataError
from playerguard.features.api import build_features
from playerguard.lake.cs2 import MATCH_START, CS2Dataset, load_cs2cd
from playerguard.lake.local import LocalLake
from playerguard.settings import Settings
from playerguard.training.inhuman_play import InhumanPlayModel
from playerguard.training.metrics import pr_auc, recall_at_fpr, roc_auc

TARGET_FPR = 0.01
KEY = "player_id"
COMBAT_FEATURE_SET = "combat"
FEATURE_SOURCES = ("feature_layer", "pandas")

# The detector's features and their suspicious sides, chosen from what cheats do (aim assistance:
# accuracy, headshots, kills, damage, fewer deaths; wall hacks: kills through smoke and walls; trigger
# bots: kills while blind, unscoped or airborne), not from their scores here. Timing regularity
# (fire_gap_cv, kill_gap_cv) is left to the supervised model: an automatic weapon fires like clockwork too.
CS2_DIRECTIONS: dict[str, str] = {
    "hits_per_shot": "high",
    "head_hit_rate": "high",
    "headshot_kill_rate": "high",
    "kills_per_round": "high",
    "deaths_per_round": "low",
    "damage_per_round": "high",
    "kd_ratio": "high",
    "through_smoke_kill_rate": "high",
    "wallbang_kill_rate": "high",
    "no_scope_kill_rate": "high",
    "in_air_kill_rate": "high",
    "blind_kill_rate": "high",
}
"""For the packaged `combat` feature set."""
PANDAS_DIRECTIONS: dict[str, str] = {
    "accuracy": "high",
    "headshot_hit_share": "high",
    "headshot_kill_share": "high",
    "kills_per_round": "high",
    "deaths_per_round": "low",
    "damage_per_round": "high",
    "kd_ratio": "high",
    "smoke_kill_share": "high",
    "wallbang_kill_share": "high",
    "wallbang_hit_share": "high",
    "noscope_kill_share": "high",
    "inair_kill_share": "high",
    "blind_kill_share": "high",
}
"""The same for `cs2_player_features_pandas`."""
BASELINE_COLUMN = "baseline_hits_per_shot"
_COUNTS = ("rounds", "shots", "hits", "head_hits", "kills", "gun_kills", "deaths", "damage", "jumps",
           "footsteps", "zooms", "reloads")  # fmt: skip
_PER_ROUND = {"kills": "kills_per_round", "deaths": "deaths_per_round", "damage": "damage_per_round",
              "shots": "shots_per_round", "jumps": "jumps_per_round", "footsteps": "footsteps_per_round",
              "zooms": "zooms_per_round"}  # fmt: skip


def hits_per_shot(events: pd.DataFrame) -> pd.Series:
    """Per player: firearm hits on other players per firearm shot, 0 without hits or shots (no evidence of
    inhuman aim). The README's single-ratio baseline."""
    kind, gun = events["event_type"], events["weapon_class"] == "gun"
    shots = events.loc[(kind == "weapon_fire") & gun].groupby(KEY).size()
    hits = events.loc[(kind == "player_hurt") & gun & (events["self_inflicted"] == 0)].groupby(KEY).size()
    players = pd.Index(events[KEY].unique(), name=KEY)
    ratio = hits.reindex(players, fill_value=0) / shots.reindex(players, fill_value=0)
    return ratio.replace([np.inf, -np.inf], np.nan).fillna(0.0).astype("float64")


def _share(events: pd.DataFrame, flag: str, name: str) -> pd.Series:
    return events.assign(_flag=events[flag].fillna(0.0) > 0).groupby(KEY)["_flag"].mean().rename(name)


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    return numerator / denominator.where(denominator > 0)


def cs2_player_features_pandas(events: pd.DataFrame) -> pd.DataFrame:
    """Combat features per `player_id` from CS2 envelope events (as `load_cs2cd` returns them), in pandas.

    The exploration path; counts cover the whole match, shares are fractions of the player's hits or
    kills, ratios are NaN where the denominator is zero.
    """
    kind = events["event_type"]
    on_other = events["self_inflicted"] == 0
    fired = events.loc[(kind == "weapon_fire") & (events["weapon_class"] == "gun")]
    hurt = events.loc[(kind == "player_hurt") & on_other]
    gun_hits = hurt.loc[hurt["weapon_class"] == "gun"]
    kills = events.loc[(kind == "player_death") & on_other]
    gun_kills = kills.loc[kills["weapon_class"] == "gun"]
    bullets = events.loc[(kind == "bullet_damage") & on_other]

    def count(frame: pd.DataFrame, name: str) -> pd.Series:
        return frame.groupby(KEY).size().rename(name)

    distance = gun_kills.groupby(KEY)["distance"]
    parts = [
        count(events.loc[kind == "round_officially_ended"], "rounds"),
        count(fired, "shots"),
        count(gun_hits, "hits"),
        count(gun_hits.loc[gun_hits["hitgroup"] == "head"], "head_hits"),
        count(kills, "kills"),
        count(gun_kills, "gun_kills"),
        count(events.loc[kind == "player_died"], "deaths"),
        hurt.groupby(KEY)["damage"].sum().rename("damage"),
        _share(gun_kills, "headshot", "headshot_kill_share"),
        _share(kills, "through_smoke", "smoke_kill_share"),
        _share(kills, "penetrated", "wallbang_kill_share"),
        _share(kills, "no_scope", "noscope_kill_share"),
        _share(kills, "in_air", "inair_kill_share"),
        _share(kills, "attacker_blind", "blind_kill_share"),
        _share(bullets, "penetrated", "wallbang_hit_share"),
        distance.mean().rename("kill_distance_mean"),
        distance.quantile(0.9).rename("kill_distance_p90"),
        count(events.loc[kind == "player_jump"], "jumps"),
        count(events.loc[kind == "player_footstep"], "footsteps"),
        count(events.loc[kind == "weapon_zoom"], "zooms"),
        count(events.loc[kind == "weapon_reload"], "reloads"),
    ]
    frame = pd.concat(parts, axis=1).reindex(pd.Index(events[KEY].unique(), name=KEY))
    frame[list(_COUNTS)] = frame[list(_COUNTS)].fillna(0.0)
    frame["accuracy"] = _ratio(frame["hits"], frame["shots"])
    frame["headshot_hit_share"] = _ratio(frame["head_hits"], frame["hits"])
    frame["kd_ratio"] = frame["kills"] / (frame["deaths"] + 1.0)
    frame["reloads_per_shot"] = _ratio(frame["reloads"], frame["shots"])
    for count_name, rate_name in _PER_ROUND.items():
        frame[rate_name] = _ratio(frame[count_name], frame["rounds"])
    frame = frame.drop(columns=["head_hits", "gun_kills", "reloads"])
    return frame.astype("float64").reset_index()


def add_match_context(frame: pd.DataFrame, features: list[str], match_column: str = "match_id") -> pd.DataFrame:
    """`frame` plus, per feature, `<feature>_vs_match` (value − the match's median) and `<feature>_match_rank`
    (percentile rank within the match). Uses no labels."""
    by_match = frame.groupby(match_column)
    context = {}
    for name in features:
        context[f"{name}_vs_match"] = frame[name] - by_match[name].transform("median")
        context[f"{name}_match_rank"] = by_match[name].rank(pct=True)
    return pd.concat([frame, pd.DataFrame(context, index=frame.index)], axis=1)


def cs2_features_via_feature_layer(data: CS2Dataset, feature_set: str | Path = COMBAT_FEATURE_SET) -> pd.DataFrame:
    """Per-player features built by the feature layer: the events go into a throw-away local lake (a
    temporary directory, removed afterwards) and `build_features` runs `feature_set` on DuckDB, with a
    cutoff a day after the matches start, so every event is before it."""
    with tempfile.TemporaryDirectory(prefix="playerguard-cs2-") as home:
        settings = Settings(home=Path(home))
        LocalLake(settings.lake_dir).append_table(data.to_arrow(), source="cs2cd")
        cutoff = (MATCH_START + timedelta(days=1)).to_pydatetime()
        features = build_features(settings, cutoff, feature_set=feature_set)
    return features.drop(columns=["cutoff"]).astype({KEY: "string"})


def cs2_training_frame(
    data_dir: Path | None = None,
    feature_source: str = "feature_layer",
    *,
    match_ids: Iterable[str] | None = None,
) -> tuple[pd.DataFrame, list[str], str]:
    """One row per labelled player: player_id, match_id, group, is_cheater, the combat features and the
    hits-per-shot baseline; the feature names; and the source used ("feature_layer" or "pandas")."""
    if feature_source not in FEATURE_SOURCES:
        raise ConfigError(f"unknown feature source {feature_source!r}: use {' or '.join(FEATURE_SOURCES)}")
    data = load_cs2cd(data_dir, match_ids=match_ids)
    if feature_source == "feature_layer":
        features = cs2_features_via_feature_layer(data)
    else:
        features = cs2_player_features_pandas(data.events)
    names = [c for c in features.columns if c != KEY]
    frame = data.labels.merge(features, on=KEY, how="left", validate="one_to_one")
    frame = frame.merge(data.matches[["match_id", "group"]], on="match_id", how="left", validate="many_to_one")
    baseline = hits_per_shot(data.events).rename(BASELINE_COLUMN)
    frame = frame.merge(baseline, left_on=KEY, right_index=True, how="left", validate="one_to_one")
    return frame, names, feature_source


def _operating_point(model: InhumanPlayModel, scores: np.ndarray, y: np.ndarray) -> dict[str, float]:
    flagged = scores >= model.threshold_
    return {"fpr_at_threshold": float(flagged[y == 0].mean()), "recall_at_threshold": float(flagged[y == 1].mean())}


def _metrics(y: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    return {
        "roc_auc": roc_auc(y, scores),
        "pr_auc": pr_auc(y, scores),
        "recall_at_1pct_fpr": recall_at_fpr(y, scores, TARGET_FPR),
    }


def _summary(per_fold: list[dict[str, float]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for metric in per_fold[0]:
        values = np.array([fold[metric] for fold in per_fold], dtype="float64")
        summary[metric] = {"mean": float(values.mean()), "std": float(values.std(ddof=1)), "folds": values.tolist()}
    return summary


def _supervised(directions: dict[str, str], seed: int) -> InhumanPlayModel:
    return InhumanPlayModel(directions=directions, group_column="match_id", target_fpr=TARGET_FPR, random_state=seed)


def _unsupervised(directions: dict[str, str], detector: str, seed: int) -> InhumanPlayModel:
    return InhumanPlayModel(directions=directions, detector=detector, target_fpr=TARGET_FPR, random_state=seed)


def evaluate_cs2(
    data_dir: Path | None = None,
    folds: int = 5,
    seed: int = 0,
    *,
    feature_source: str = "feature_layer",
    match_ids: Iterable[str] | None = None,
) -> dict:
    """Grouped `folds`-fold evaluation on CS2CD (see the module docstring); figures as a nested dict.

    Each result holds, per metric, the mean, the standard deviation (ddof=1) and the per-fold values.
    `feature_source`: "feature_layer" (the packaged `combat` feature set) or "pandas"
    (`cs2_player_features_pandas`, the exploration path).
    """
    if folds < 2:
        raise DataError(f"folds must be at least 2, got {folds}")
    frame, names, source = cs2_training_frame(data_dir, feature_source, match_ids=match_ids)
    chosen = CS2_DIRECTIONS if source == "feature_layer" else PANDAS_DIRECTIONS
    directions = {name: way for name, way in chosen.items() if name in names}
    if len(directions) < len(chosen):
        missing = sorted(set(chosen) - set(directions))
        raise DataError(f"the {source} features lack the detector's feature(s) {', '.join(missing)}")
    labelled = frame.loc[frame["group"] == "with_cheater"].reset_index(drop=True)
    reference = frame.loc[frame["group"] == "no_cheater"].reset_index(drop=True)
    before = set(labelled.columns)
    labelled = add_match_context(labelled, list(directions))
    columns = [KEY, "match_id", *names]
    context_columns = columns + [c for c in labelled.columns if c not in before]
    y_all = labelled["is_cheater"].to_numpy(dtype="int8")

    detectors = ("tail", "isolation_forest")
    reference_models = {d: _unsupervised(directions, d, seed).fit(reference[columns]) for d in detectors}
    results: dict[str, list[dict[str, float]]] = {}

    def record(name: str, y: np.ndarray, scores: np.ndarray, model: InhumanPlayModel | None = None) -> None:
        row = _metrics(y, scores) | (_operating_point(model, scores, y) if model is not None else {})
        results.setdefault(name, []).append(row)

    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train_rows, test_rows in splitter.split(labelled, y_all, labelled["match_id"]):
        train, test, y = labelled.iloc[train_rows], labelled.iloc[test_rows], y_all[test_rows]
        for name, used in (("supervised", columns), ("supervised_match_context", context_columns)):
            model = _supervised(directions, seed).fit(train[used], train["is_cheater"])
            record(name, y, model.predict_score(test[used]), model)
        population = pd.concat([reference[columns], train[columns]], ignore_index=True)
        for detector, model in reference_models.items():
            record(f"unsupervised_{detector}_reference", y, model.predict_score(test[columns]), model)
            unlabelled = _unsupervised(directions, detector, seed).fit(population)
            record(f"unsupervised_{detector}_population", y, unlabelled.predict_score(test[columns]), unlabelled)
        record("baseline_hits_per_shot", y, test[BASELINE_COLUMN].to_numpy())

    return {
        "data": {
            "players_with_cheater_matches": len(labelled),
            "cheaters": int(y_all.sum()),
            "matches_with_cheater": int(labelled["match_id"].nunique()),
            "reference_players_no_cheater": len(reference),
            "folds": folds,
            "seed": seed,
            "feature_source": source,
            "features": names,
            "detector_features": reference_models["tail"].detector_features_,
        },
        **{name: _summary(per_fold) for name, per_fold in results.items()},
    }
