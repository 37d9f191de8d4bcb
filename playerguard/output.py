"""Tables a person can read: aligned in a terminal, tab-separated when piped, or JSON on request."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from playerguard.errors import ConfigError

OUTPUT_FORMATS = ("table", "plain", "json")


def resolve_format(requested: str | None) -> str:
    """The requested format, or `table` in a terminal and `plain` when piped."""
    if requested is None:
        return "table" if sys.stdout.isatty() else "plain"
    if requested not in OUTPUT_FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(OUTPUT_FORMATS)}, not {requested!r}")
    return requested


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def render_rows(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], fmt: str | None, *, title: str | None = None
) -> None:
    """Print `rows` (only `columns`, in order) in the format: nothing is cut off in any of them."""
    chosen = resolve_format(fmt)
    if chosen == "json":
        print(json.dumps([{c: row.get(c) for c in columns} for row in rows], default=str, indent=2))
        return
    if chosen == "plain":
        print("\t".join(columns))
        for row in rows:
            print("\t".join(_text(row.get(c)).replace("\t", " ").replace("\n", " ") for c in columns))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column.replace("_", " "), overflow="fold")
    for row in rows:
        table.add_row(*(_text(row.get(c)) for c in columns))
    Console(soft_wrap=True).print(table)


@contextmanager
def working(message: str) -> Iterator[None]:
    """Show that long work is under way: a spinner in a terminal, one line on stderr when piped."""
    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:
        print(f"{message} ...", file=sys.stderr, flush=True)
        yield
        return
    with console.status(message):
        yield
