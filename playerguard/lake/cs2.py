"""The CS2CD adapter: real Counter-Strike 2 match events (Loo and Lužkov, 2025, CC-BY-4.0) as envelope events.

A player is a (match, pseudonym) pair, since pseudonyms are reused across matches: `player_id` is
`"<match_id>:<player>"`, `session_id` the match, `game_id` "cs2", `platform` "pc". Every match starts
at the same fixed instant (2026-01-01 UTC) and an event's time is that instant plus tick / 64 seconds.
`event_id` is `cs2cd:<match_id>:<n>`, n being the row's position within its match in the source file
(the file repeats some rows exactly, so content alone cannot tell them apart).

Conversions, so that every event belongs to one player:
- `other_player` becomes the other player's `player_id` (victim for damage and deaths, thrower for
  blindness), so a feature can join on it.
- Damage and deaths with no attacker (the bomb, falls, map triggers) take the victim as attacker, the
  source's own convention for "no kill by a player" (attacker equal to victim).
- A round end is a match-wide event: it is given to every player of the match. The source records each
  round end twice at the same tick; the repeat goes to `rejected`.
- Other rows without a player (a few spawns) go to `rejected` with the reason.
- Every `player_death` (attributed to the attacker) also yields a `player_died` event for the victim,
  with the same attributes and `other_player` the attacker, so deaths can be counted per player; a few
  deaths name no victim (a player who left) and yield none.
Booleans become 0/1 floats; the numeric attributes are float64, the string ones are strings.

Two attributes are derived, because feature definitions compare attributes with constants only:
`self_inflicted` (1 when the attacker is the victim, on damage and death events) and `weapon_class`
(`gun`, `knife`, `grenade`, `taser` or `world`; the source spells weapons with and without a `weapon_`
prefix, depending on the event type).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from playerguard.errors import DataError
from playerguard.lake.envelope import ENVELOPE_COLUMNS, NUMBER, PARTITION_COLUMN, STRING, to_arrow

GAME_ID = "cs2"
PLATFORM = "pc"
TICKS_PER_SECOND = 64
MATCH_START = pd.Timestamp("2026-01-01", tz="UTC")
DATA_DIR_ENV = "PLAYERGUARD_CS2CD_DIR"

NUMERIC_ATTRIBUTES: tuple[str, ...] = (
    "tick", "headshot", "distance", "damage", "through_smoke", "penetrated", "no_scope", "in_air",
    "attacker_blind", "blind_duration", "rank_old", "rank_new", "num_wins",
)  # fmt: skip
STRING_ATTRIBUTES: tuple[str, ...] = ("weapon", "hitgroup", "other_player")
DERIVED_ATTRIBUTES: dict[str, str] = {"self_inflicted": NUMBER, "weapon_class": STRING}
ATTRIBUTE_TYPES: dict[str, str] = (
    {name: NUMBER for name in NUMERIC_ATTRIBUTES} | {name: STRING for name in STRING_ATTRIBUTES} | DERIVED_ATTRIBUTES
)
ATTACKER_EVENTS = frozenset({"player_hurt", "player_death", "bullet_damage"})
MATCH_EVENTS = frozenset({"round_officially_ended"})
VICTIM_EVENT = "player_died"
GRENADES = frozenset({"hegrenade", "flashbang", "smokegrenade", "molotov", "incgrenade", "decoy", "inferno"})
WORLD = frozenset({"", "world", "worldent", "planted_c4", "trigger_hurt"})
GROUPS = ("with_cheater", "no_cheater")
_SOURCE_COLUMNS = ("match_id", "event_type", "player") + NUMERIC_ATTRIBUTES + STRING_ATTRIBUTES


def default_data_dir() -> Path:
    """`$PLAYERGUARD_CS2CD_DIR` if set, else `shared/data/cs2cd` beside the repository."""
    configured = os.environ.get(DATA_DIR_ENV)
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cs2cd"


@dataclass(frozen=True)
class CS2Dataset:
    """CS2CD as envelope events, plus per-player labels and the match table."""

    events: pd.DataFrame
    """Envelope columns, typed attributes and `event_date`, in the order `envelope.conform` produces."""
    rejected: pd.DataFrame
    """Source rows that could not become events: `row` (JSON) and `reason`."""
    labels: pd.DataFrame
    """One row per player: `player_id`, `match_id`, `is_cheater` (Int8 0/1)."""
    matches: pd.DataFrame
    """One row per match: `match_id`, `group`, `map`, `server`, `avg_rank`, `match_making_type`."""

    @property
    def attribute_types(self) -> dict[str, str]:
        return dict(ATTRIBUTE_TYPES)

    def to_arrow(self) -> pa.Table:
        """The events as an Arrow table with the lake's schema (for `EventLake.append_table`)."""
        return to_arrow(self.events, self.attribute_types)


def _read(path: Path, what: str, columns: Iterable[str] | None, match_ids: list[str] | None) -> pa.Table:
    if not path.exists():
        raise DataError(f"CS2CD {what} not found at {path}; set {DATA_DIR_ENV} to the cs2cd directory")
    filters = None if match_ids is None else [("match_id", "in", match_ids)]
    return pq.read_table(path, columns=None if columns is None else list(columns), filters=filters)


def _selected_matches(matches: pd.DataFrame, match_ids: Iterable[str] | None, groups: Iterable[str] | None) -> pd.DataFrame:
    selected = matches
    if groups is not None:
        wanted = list(groups)
        unknown = sorted(set(wanted) - set(GROUPS))
        if unknown:
            raise DataError(f"unknown CS2CD group {unknown[0]!r}: use {' or '.join(GROUPS)}")
        selected = selected.loc[selected["group"].isin(wanted)]
    if match_ids is not None:
        wanted_ids = list(match_ids)
        missing = sorted(set(wanted_ids) - set(matches["match_id"]))
        if missing:
            raise DataError(f"unknown CS2CD match {missing[0]!r} ({len(missing)} unknown)")
        selected = selected.loc[selected["match_id"].isin(wanted_ids)]
    return selected.reset_index(drop=True)


def _source_frame(table: pa.Table) -> pd.DataFrame:
    """The source rows with booleans and integers as float64, strings as pandas strings."""
    columns = {}
    for name in _SOURCE_COLUMNS:
        column = table.column(name)
        if name in NUMERIC_ATTRIBUTES:
            columns[name] = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
        else:
            columns[name] = column.to_pandas(types_mapper=pd.ArrowDtype).astype("string")
    frame = pd.DataFrame(columns)
    # Position of each row within its match in the source file: the stable part of event_id.
    frame["ordinal"] = frame.groupby("match_id", sort=False).cumcount()
    return frame


def _rejected(rows: pd.DataFrame, reason: str) -> pd.DataFrame:
    source = rows.drop(columns=["ordinal"]).astype(object).where(rows.drop(columns=["ordinal"]).notna(), None)
    return pd.DataFrame({"row": source.apply(lambda r: r.to_json(), axis=1).astype("string"), "reason": reason})


def weapon_class(weapon: pd.Series) -> pd.Series:
    """`gun`, `knife`, `grenade`, `taser` or `world` per weapon name (with or without `weapon_`); NA stays NA."""
    missing = weapon.isna()
    name = weapon.astype("string").fillna("").str.removeprefix("weapon_")
    classes = pd.Series("gun", index=weapon.index, dtype="string")
    classes = classes.mask(name.str.startswith("knife") | (name == "bayonet"), "knife")
    classes = classes.mask(name.isin(GRENADES), "grenade")
    classes = classes.mask(name == "taser", "taser")
    classes = classes.mask(name.isin(WORLD), "world")
    return classes.mask(missing)


def _victim_events(deaths: pd.DataFrame) -> pd.DataFrame:
    """The victim's side of each death with a known victim: a `player_died` event, other_player the attacker."""
    deaths = deaths.loc[deaths["other_player"].notna()]
    victims = deaths.assign(
        event_type=VICTIM_EVENT,
        player=deaths["other_player"],
        other_player=deaths["player"],
    )
    return victims.assign(event_id=deaths["event_id"] + ":victim")


def _round_ends(round_ends: pd.DataFrame, labels: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each round end once per player of its match; repeats of a round end at the same tick, rejected."""
    repeat = round_ends.duplicated(["match_id", "tick"])
    first = round_ends.loc[~repeat].drop(columns=["player"])
    players = labels[["match_id", "player"]]
    fanned = first.merge(players, on="match_id", how="inner", validate="many_to_many")
    fanned["event_id"] = (
        "cs2cd:" + fanned["match_id"] + ":" + fanned["ordinal"].astype("string") + ":" + fanned["player"]
    )
    return fanned, _rejected(round_ends.loc[repeat], "repeated round end (the source records each twice)")


def _player_events(source: pd.DataFrame, labels: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Source rows as per-player events (see the module docstring), and the rows rejected with a reason."""
    is_round_end = source["event_type"].isin(MATCH_EVENTS).to_numpy()
    round_events, rejected_repeats = _round_ends(source.loc[is_round_end], labels)
    events = source.loc[~is_round_end]
    attacker_event = events["event_type"].isin(ATTACKER_EVENTS)
    events = events.assign(player=events["player"].where(~(events["player"].isna() & attacker_event), events["other_player"]))
    unattributed = events["player"].isna().to_numpy()
    rejected_unattributed = _rejected(events.loc[unattributed], "no player to attribute the event to")
    events, attacker_event = events.loc[~unattributed], attacker_event.loc[~unattributed]
    same_player = (events["player"] == events["other_player"]).fillna(False).astype("float64")
    events = events.assign(
        event_id="cs2cd:" + events["match_id"] + ":" + events["ordinal"].astype("string"),
        self_inflicted=same_player.where(attacker_event),
    )
    victims = _victim_events(events.loc[events["event_type"] == "player_death"])
    events = pd.concat([events, victims, round_events], ignore_index=True)
    events = events.sort_values(["match_id", "tick", "ordinal"], kind="stable", ignore_index=True)
    return events, pd.concat([rejected_repeats, rejected_unattributed], ignore_index=True)


def _envelope(events: pd.DataFrame) -> pd.DataFrame:
    """Envelope columns, typed attributes and `event_date`, in the order `envelope.conform` produces."""
    index = events.index
    offsets = pd.to_timedelta(events["tick"].to_numpy() / TICKS_PER_SECOND, unit="s")
    columns: dict[str, pd.Series | pd.Index] = {
        "event_id": events["event_id"].astype("string"),
        "event_type": events["event_type"].astype("string"),
        "event_timestamp": (MATCH_START + offsets).as_unit("us"),
        "player_id": (events["match_id"] + ":" + events["player"]).astype("string"),
        "game_id": pd.Series(GAME_ID, index=index, dtype="string"),
        "platform": pd.Series(PLATFORM, index=index, dtype="string"),
        "session_id": events["match_id"].astype("string"),
        "app_version": pd.Series(pd.NA, index=index, dtype="string"),
    }
    columns |= {name: events[name].astype("float64") for name in NUMERIC_ATTRIBUTES}
    columns |= {name: events[name].astype("string") for name in ("weapon", "hitgroup")}
    columns["other_player"] = (events["match_id"] + ":" + events["other_player"]).astype("string")
    columns["self_inflicted"] = events["self_inflicted"].astype("float64")
    columns["weapon_class"] = weapon_class(events["weapon"])
    frame = pd.DataFrame(columns, index=index)[list(ENVELOPE_COLUMNS) + sorted(ATTRIBUTE_TYPES)]
    days = frame["event_timestamp"].dt.floor("D")
    day_names = {day: day.strftime("%Y-%m-%d") for day in days.unique()}
    frame[PARTITION_COLUMN] = days.map(day_names).astype("string")
    return frame


def load_cs2cd(
    data_dir: Path | None = None,
    *,
    match_ids: Iterable[str] | None = None,
    groups: Iterable[str] | None = None,
) -> CS2Dataset:
    """Load CS2CD (all of it, or the given matches and/or groups) as envelope events with labels.

    `data_dir` defaults to `default_data_dir()`, resolved at call time. Matches are filtered while
    reading the Parquet files, so a few of them load quickly; the whole set takes some seconds and
    holds about 1.3 GB as a DataFrame.
    """
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    matches = _read(root / "matches.parquet", "match table", None, None).to_pandas()
    matches = matches.drop(columns=["source_file"], errors="ignore")
    matches = _selected_matches(matches, match_ids, groups)
    selected_ids = None if match_ids is None and groups is None else matches["match_id"].tolist()
    labels = _read(root / "labels.parquet", "labels", None, selected_ids).to_pandas()
    source = _source_frame(_read(root / "events.parquet", "events", _SOURCE_COLUMNS, selected_ids))
    events, rejected = _player_events(source, labels)
    player_labels = pd.DataFrame(
        {
            "player_id": (labels["match_id"] + ":" + labels["player"]).astype("string"),
            "match_id": labels["match_id"].astype("string"),
            "is_cheater": labels["is_cheater"].astype("Int8"),
        }
    )
    return CS2Dataset(events=_envelope(events), rejected=rejected, labels=player_labels, matches=matches)
