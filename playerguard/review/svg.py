"""Small inline SVG pictures for the flag page: a percentile bar and a daily bar chart. Only numbers go
into them; any text is escaped by the caller's `esc`."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from playerguard.review.population import Placement


def percentile_bar(placement: Placement, width: int = 220, height: int = 18) -> str:
    """The population from p0 to p100, p5–p95 and p25–p75 shaded, the median ticked, the player marked."""

    def x(percentile: float) -> float:
        return round(percentile / 100 * (width - 2) + 1, 1)

    marker = x(placement.percentile)
    title = escape(
        f"{placement.feature}: {placement.value:g} is at p{placement.percentile:.0f} of {placement.players} players"
    )
    return (
        f'<svg class="pbar" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{title}"><title>{title}</title>'
        f'<rect x="1" y="6" width="{width - 2}" height="6" fill="#e5e7eb"/>'
        f'<rect x="{x(5)}" y="6" width="{x(95) - x(5)}" height="6" fill="#cbd5e1"/>'
        f'<rect x="{x(25)}" y="6" width="{x(75) - x(25)}" height="6" fill="#94a3b8"/>'
        f'<rect x="{x(50) - 0.5}" y="4" width="1" height="10" fill="#334155"/>'
        f'<rect x="{round(marker - 1.5, 1)}" y="1" width="3" height="16" fill="#dc2626"/></svg>'
    )


def daily_bars(values: Sequence[int], days: Sequence[str], width: int = 168, height: int = 24) -> str:
    """One bar per day, scaled to the largest day; each bar's tooltip names its day and count."""
    if not values:
        return ""
    top = max(values) or 1
    step = width / len(values)
    bars = "".join(
        f'<rect x="{round(i * step + 1, 1)}" y="{round(height - v / top * (height - 2), 1)}" '
        f'width="{round(max(step - 2, 1), 1)}" height="{round(v / top * (height - 2), 1)}" fill="#2563eb">'
        f"<title>{escape(str(day))}: {v}</title></rect>"
        for i, (v, day) in enumerate(zip(values, days, strict=True))
        if v
    )
    return (
        f'<svg class="bars" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="events per day"><rect x="0" y="{height - 1}" width="{width}" height="1" fill="#cbd5e1"/>'
        f"{bars}</svg>"
    )


def daily_lines(
    player: Sequence[float | None],
    everyone: Sequence[float | None],
    days: Sequence[str],
    width: int = 336,
    height: int = 64,
) -> str:
    """Two daily series on one scale: everyone in grey, the player in red, with a dot per day that has a value."""
    known = [v for v in (*player, *everyone) if v is not None]
    if not known:
        return ""
    low, high = min(0.0, *known), max(known) or 1.0
    step = width / max(len(days), 1)

    def point(i: int, value: float) -> tuple[float, float]:
        return round(i * step + step / 2, 1), round(
            height - 4 - (value - low) / ((high - low) or 1) * (height - 8), 1
        )

    def series(values: Sequence[float | None], colour: str, dots: bool) -> str:
        points = [(i, point(i, v)) for i, v in enumerate(values) if v is not None]
        line = " ".join(f"{x},{y}" for _, (x, y) in points)
        marks = (
            "".join(
                f'<circle cx="{x}" cy="{y}" r="2.5" fill="{colour}"><title>{escape(str(days[i]))}: {values[i]:.4g}</title></circle>'
                for i, (x, y) in points
            )
            if dots
            else ""
        )
        return f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="1.5"/>{marks}'

    return (
        f'<svg class="lines" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="daily values: player in red, everyone in grey">'
        f'<rect x="0" y="{height - 1}" width="{width}" height="1" fill="#cbd5e1"/>'
        f"{series(everyone, '#94a3b8', False)}{series(player, '#dc2626', True)}</svg>"
    )
