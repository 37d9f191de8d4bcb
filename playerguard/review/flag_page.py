"""HTML for one flag: the scores, each reason against the population, the rules that fired, the player's
recent play, earlier flags and verdicts, and the verdict form."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from playerguard.review.activity import Activity
from playerguard.review.attribute import AttributeTrend
from playerguard.review.pages import SHORTCUTS_FLAG, esc, flag_path, href, layout
from playerguard.review.population import Placement
from playerguard.review.queue import HistoryRow, QueueFilter, ReviewRecord
from playerguard.review.svg import daily_bars, daily_lines, percentile_bar
from playerguard.stream.notifiers.local import OutboxEntry

MODELS: tuple[str, ...] = ("inhuman_play", "churn", "purchase")


@dataclass(frozen=True)
class FlagView:
    """Everything the flag page shows, gathered by the app."""

    entry: OutboxEntry
    filters: QueueFilter
    previous: str | None
    following: str | None
    last_review: ReviewRecord | None
    history: list[HistoryRow]
    activity: Activity
    placements: dict[str, Placement | None]  # reason name -> placement (feature reasons)
    population_available: bool
    csrf: str
    trend: AttributeTrend | None = None  # inhuman play: the attribute behind the top reason, per day


def _number(value: Any) -> str:
    if value is None:
        return "—"
    return f"{value:.4g}" if isinstance(value, float) else esc(value)


def _scores(view: FlagView) -> str:
    """Each model's score: this flag's for its model, else the player's latest flag of that model."""
    flag = view.entry.flag
    latest: dict[str, tuple[float, str, str]] = {}
    for item in view.history:
        latest.setdefault(
            item.row.model, (item.row.score, item.model_version, f"flag at {item.row.event_time}")
        )
    latest[flag.model] = (flag.score, flag.model_version, f"this flag (threshold {flag.threshold:.3f})")
    rows = []
    for model in (*MODELS, *sorted(set(latest) - set(MODELS))):
        if model in latest:
            score, version, source = latest[model]
            rows.append(
                f'<tr data-model="{esc(model)}"><td>{esc(model)}</td><td class="num">{score:.3f}</td>'
                f"<td>{esc(version)}</td><td>{esc(source)}</td></tr>"
            )
        else:
            rows.append(
                f'<tr data-model="{esc(model)}"><td>{esc(model)}</td><td class="num">—</td><td>—</td>'
                "<td>not flagged (below the policy's thresholds)</td></tr>"
            )
    return (
        '<section><h2>Scores</h2><table class="scores" id="scores"><thead><tr><th>model</th><th>score</th>'
        f"<th>model version</th><th>from</th></tr></thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


def _reasons(view: FlagView) -> str:
    features = [r for r in view.entry.flag.reasons if r.get("kind", "feature") == "feature"]
    if not features:
        return "<section><h2>Reasons</h2><p>This flag carries no feature reasons.</p></section>"
    rows = []
    for reason in features:
        placement = view.placements.get(str(reason.get("name")))
        if placement is not None:
            where = (
                f'{percentile_bar(placement)} <span class="pct">p{placement.percentile:.0f}</span> '
                f'<span class="muted">median {placement.quantiles[50]:.4g}, p95 {placement.quantiles[95]:.4g}, '
                f"{placement.players:,} players</span>"
            )
        elif not view.population_available:
            where = '<span class="muted">no feature snapshot to compare with</span>'
        else:
            where = '<span class="muted">no population values</span>'
        contribution = reason.get("contribution")
        method = f' <span class="muted">({esc(reason["method"])})</span>' if reason.get("method") else ""
        rows.append(
            f'<tr><td><code>{esc(reason.get("name"))}</code></td><td class="num">{_number(reason.get("value"))}</td>'
            f'<td class="num">{_number(contribution)}{method}</td><td>{where}</td></tr>'
        )
    return (
        '<section><h2>Reasons</h2><table class="reasons" id="reasons"><thead><tr><th>feature</th><th>value</th>'
        f"<th>contribution</th><th>against the population</th></tr></thead><tbody>{''.join(rows)}</tbody>"
        "</table></section>"
    )


def _rules(view: FlagView) -> str:
    rules = [r for r in view.entry.flag.reasons if r.get("kind") == "rule"]
    if not rules:
        return '<section><h2>Rules that fired</h2><p id="rules">None.</p></section>'
    items = "".join(f"<li><code>{esc(r.get('name'))}</code> at {_number(r.get('value'))}</li>" for r in rules)
    return f'<section><h2>Rules that fired</h2><ul id="rules">{items}</ul></section>'


def _activity(activity: Activity) -> str:
    title = (
        f'<h2>Recent play <span class="muted">{esc(activity.days[0])} to {esc(activity.days[-1])}</span></h2>'
    )
    if activity.problem:
        return f'<section>{title}<p class="muted" id="activity">{esc(activity.problem)}</p></section>'
    if not activity.counts:
        return f'<section>{title}<p id="activity">No events from this player on these days.</p></section>'
    rows = "".join(
        f"<tr><td>{esc(t)}</td><td>{daily_bars(activity.series(t), activity.days)}</td>"
        f'<td class="num">{sum(activity.series(t)):,}</td><td class="num">{activity.series(t)[-1]:,}</td></tr>'
        for t in activity.types
    )
    return (
        f'<section>{title}<table class="activity" id="activity"><thead><tr><th>event type</th>'
        f"<th>per day</th><th>total</th><th>flag day</th></tr></thead><tbody>{rows}</tbody></table></section>"
    )


def _decision(review: ReviewRecord) -> str:
    replaced = (
        f" (replacing {esc(review.replaces)})"
        if review.replaces and review.replaces != review.verdict
        else ""
    )
    note = f": {esc(review.note)}" if review.note else ""
    return f"{esc(review.reviewed_at[:19])} {esc(review.reviewer)} {esc(review.verdict)}{replaced}{note}"


def _trend(trend: AttributeTrend | None) -> str:
    if trend is None:
        return ""
    player_days = [v for v in trend.player if v is not None]
    everyone_days = [v for v in trend.everyone if v is not None]
    summary = (
        f"player {min(player_days):.4g} to {max(player_days):.4g} on {len(player_days)} days"
        if player_days
        else "no value for the player on these days"
    )
    if everyone_days:
        summary += f"; everyone {min(everyone_days):.4g} to {max(everyone_days):.4g}"
    return (
        f'<section id="trend"><h2>Behind the top reason: <code>{esc(trend.query.feature)}</code></h2>'
        f"<p>{esc(trend.query.label)}, per day: {daily_lines(trend.player, trend.everyone, trend.days)}</p>"
        f'<p class="muted">{esc(summary)} (red: the player, grey: everyone)</p></section>'
    )


def _history(view: FlagView) -> str:
    rows = []
    for item in view.history:
        row = item.row
        decided = "<br>".join(_decision(review) for review in item.reviews)
        current = ' class="current"' if row.flag_id == view.entry.flag.flag_id else ""
        rows.append(
            f'<tr{current}><td><a href="{href(flag_path(row.flag_id), view.filters.params())}">'
            f"<code>{esc(row.flag_id[:12])}</code></a></td><td>{esc(row.event_time)}</td><td>{esc(row.model)}</td>"
            f'<td>{esc(row.action)}</td><td class="num">{row.score:.3f}</td>'
            f'<td><span class="status {esc(row.status)}">{esc(row.status)}</span></td><td>{decided}</td></tr>'
        )
    return (
        '<section><h2>Earlier flags and verdicts</h2><table class="history" id="history"><thead><tr><th>flag</th>'
        "<th>event time</th><th>model</th><th>action</th><th>score</th><th>status</th><th>verdicts: when, who, note</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


def _verdict_form(view: FlagView) -> str:
    entry = view.entry
    hidden = "".join(
        f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">' for k, v in view.filters.params().items()
    )
    override = ""
    if entry.status != "pending":
        by = f" by {esc(view.last_review.reviewer)}" if view.last_review else ""
        override = (
            f'<p class="decided">Already <b>{esc(entry.status)}</b>{by} at {esc(entry.reviewed_at)}. '
            '<label><input type="checkbox" name="override" value="1" id="override"> replace that verdict '
            "(a changed verdict needs this)</label></p>"
        )
    return (
        f'<section><h2>Verdict</h2><form method="post" id="verdict" action="{href(flag_path(entry.flag.flag_id) + "/verdict")}">'
        f'<input type="hidden" name="csrf" value="{esc(view.csrf)}">{hidden}{override}'
        '<label class="note">Note (optional) <textarea name="note" id="note" rows="2" maxlength="2000"></textarea>'
        '</label><button type="submit" name="verdict" value="confirmed" id="confirm" class="confirm">Confirm (c)'
        '</button> <button type="submit" name="verdict" value="dismissed" id="dismiss" class="dismiss">'
        "Dismiss (d)</button></form></section>"
    )


def _navigation(view: FlagView) -> str:
    params = view.filters.params()
    links = [f'<a id="back" href="{href("/", params)}">← queue (u)</a>']
    if view.previous:
        links.append(
            f'<a rel="prev" id="prev" href="{href(flag_path(view.previous), params)}">previous (k)</a>'
        )
    if view.following:
        links.append(f'<a rel="next" id="next" href="{href(flag_path(view.following), params)}">next (j)</a>')
    return f'<nav class="flagnav">{" · ".join(links)}</nav>'


def flag_page(view: FlagView, *, reviewer: str, banner: str = "", error: str = "") -> str:
    """The page of one flag."""
    flag, entry = view.entry.flag, view.entry
    problem = f'<p class="error" id="error">{esc(error)}</p>' if error else ""
    head = (
        f'<h1>Player <span id="player">{esc(flag.player_id)}</span></h1>'
        f'<p class="facts"><span class="sev {esc(flag.severity)}">{esc(flag.severity)}</span> '
        f"{esc(flag.model)} → {esc(flag.action)} · score {flag.score:.3f} · event "
        f"<code>{esc(flag.event_id)}</code> at {esc(flag.event_timestamp)} · "
        f'<span class="status {esc(entry.status)}" id="status">{esc(entry.status)}</span> · flag '
        f"<code>{esc(flag.flag_id[:12])}</code></p>"
    )
    body = (
        f"{banner}{problem}{_navigation(view)}{head}{_verdict_form(view)}{_scores(view)}{_reasons(view)}"
        f'{_rules(view)}{_activity(view.activity)}{_trend(view.trend)}{_history(view)}<p class="keys">{esc(SHORTCUTS_FLAG)}</p>'
    )
    return layout(f"Flag {flag.flag_id[:12]}", body, page="flag", reviewer=reviewer)
