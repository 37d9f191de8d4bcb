"""HTML for the console's pages: the layout, the queue and error pages. Plain strings, and every value that
comes from a flag, an event or a request goes through `esc` (or `href`, which escapes too)."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from urllib.parse import quote, urlencode

from playerguard.review.queue import STATUSES, QueueFilter, QueuePage, QueueRow, ReviewRecord

SHORTCUTS_QUEUE = "j / k: next / previous flag · o or Enter: open it"
SHORTCUTS_FLAG = "j / k: next / previous flag · c: confirm · d: dismiss · u: back to the queue"


def esc(value: object) -> str:
    """Text for HTML content or a quoted attribute."""
    return escape("" if value is None else str(value), quote=True)


def href(path: str, params: Mapping[str, str] | None = None) -> str:
    """An escaped URL: path segments quoted, parameters encoded."""
    query = urlencode({k: v for k, v in (params or {}).items() if v not in (None, "")})
    return esc(path + (f"?{query}" if query else ""))


def flag_path(flag_id: str) -> str:
    return "/flags/" + quote(flag_id, safe="")


def layout(title: str, body: str, *, page: str, reviewer: str) -> str:
    """A whole document; `page` (queue or flag) tells the keyboard script which shortcuts apply."""
    return (
        "<!doctype html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{esc(title)} · playerguard review</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="stylesheet" href="/static/review.css"><script src="/static/review.js" defer></script>'
        f'</head><body data-page="{esc(page)}"><header><a class="brand" href="/">playerguard review</a>'
        f'<span class="who">reviewer: <b id="reviewer">{esc(reviewer)}</b></span></header>'
        f"<main>{body}</main></body></html>"
    )


def notice(record: ReviewRecord | None, player_id: str | None, labelled: bool) -> str:
    """The banner after a verdict: what was decided, and what it replaced."""
    if record is None:
        return ""
    replaced = (
        f", replacing {esc(record.replaces)}" if record.replaces and record.replaces != record.verdict else ""
    )
    labels = " Its player's label is in the next training set." if labelled else ""
    return (
        f'<p class="notice" id="notice">Flag <code>{esc(record.flag_id[:12])}</code> (player '
        f"{esc(player_id)}) {esc(record.verdict)} by {esc(record.reviewer)}{replaced}.{labels}</p>"
    )


def _select(name: str, options: list[str], current: str | None, everything: str) -> str:
    items = [f'<option value="">{esc(everything)}</option>'] + [
        f'<option value="{esc(o)}"{" selected" if o == current else ""}>{esc(o)}</option>' for o in options
    ]
    return f'<label>{esc(name)} <select name="{esc(name)}">{"".join(items)}</select></label>'


def _filters_form(filters: QueueFilter, choices: Mapping[str, list[str]]) -> str:
    status = filters.status or "all"
    statuses = "".join(
        f'<option value="{s}"{" selected" if s == status else ""}>{s}</option>' for s in (*STATUSES, "all")
    )
    return (
        '<form class="filters" method="get" action="/">'
        f'<label>status <select name="status">{statuses}</select></label>'
        + _select("model", choices.get("model", []), filters.model, "any model")
        + _select("action", choices.get("action", []), filters.action, "any action")
        + _select("day", choices.get("day", []), filters.day, "any day")
        + '<button type="submit">Filter</button></form>'
    )


def _counts(page: QueuePage, filters: QueueFilter) -> str:
    links = []
    for status in STATUSES:
        params = {**filters.params(), "status": status}
        current = ' aria-current="true"' if filters.status == status else ""
        links.append(
            f'<a class="count {status}" href="{href("/", params)}"{current} data-status="{status}">'
            f"{status} <b>{page.counts.get(status, 0):,}</b></a>"
        )
    return f'<nav class="counts" id="counts">{"".join(links)}</nav>'


def _row(row: QueueRow, filters: QueueFilter) -> str:
    link = href(flag_path(row.flag_id), filters.params())
    return (
        f'<tr data-href="{link}" data-flag="{esc(row.flag_id)}">'
        f'<td><a href="{link}"><code>{esc(row.flag_id[:12])}</code></a></td>'
        f'<td class="player">{esc(row.player_id)}</td><td>{esc(row.model)}</td><td>{esc(row.action)}</td>'
        f'<td><span class="sev {esc(row.severity)}">{esc(row.severity)}</span></td>'
        f'<td class="num">{row.score:.3f}</td><td>{esc(row.event_time)}</td>'
        f'<td><span class="status {esc(row.status)}">{esc(row.status)}</span></td></tr>'
    )


def _pager(page: QueuePage, filters: QueueFilter) -> str:
    parts = [f"page {page.page:,} of {page.pages:,} · {page.total:,} flags"]
    if page.page > 1:
        parts.insert(
            0,
            f'<a rel="prev" href="{href("/", {**filters.params(), "page": str(page.page - 1)})}">← newer</a>',
        )
    if page.page < page.pages:
        parts.append(
            f'<a rel="next" href="{href("/", {**filters.params(), "page": str(page.page + 1)})}">more →</a>'
        )
    return f'<p class="pager">{" · ".join(parts)}</p>'


def queue_page(
    page: QueuePage,
    filters: QueueFilter,
    choices: Mapping[str, list[str]],
    *,
    reviewer: str,
    banner: str = "",
) -> str:
    """The queue: filters, counts per status, one page of flags (most severe, highest score first)."""
    rows = "".join(_row(r, filters) for r in page.rows) or '<tr><td colspan="8">No flags match.</td></tr>'
    body = (
        f"{banner}<h1>Review queue</h1>{_filters_form(filters, choices)}{_counts(page, filters)}"
        '<table class="queue" id="queue"><thead><tr><th>flag</th><th>player</th><th>model</th><th>action</th>'
        f"<th>severity</th><th>score</th><th>event time (UTC)</th><th>status</th></tr></thead><tbody>{rows}"
        f'</tbody></table>{_pager(page, filters)}<p class="keys">{esc(SHORTCUTS_QUEUE)}</p>'
    )
    return layout("Queue", body, page="queue", reviewer=reviewer)


def error_page(status: int, message: str, *, reviewer: str = "") -> str:
    body = f'<h1>{status}</h1><p class="error" id="error">{esc(message)}</p><p><a href="/">Back to the queue</a></p>'
    return layout(f"Error {status}", body, page="error", reviewer=reviewer)
