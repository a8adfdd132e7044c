"""Compact HTML and text for notebooks: what ``_repr_html_`` and ``__repr__`` of the workspace
objects (``Run``, ``Experiment``, ``Project``, ``RunQueryResult``) are built from.

Every user string (ids, names, tags, parameters, results, error messages) goes through
:func:`html.escape`, so a ``<script>`` in a tag is shown, never run. Long values (paths excepted)
are cut to ``MAX_TEXT`` characters and long tables to ``MAX_ROWS`` rows; nothing here reads from
disk.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from enum import Enum
from html import escape
from pathlib import PurePath
from typing import Any

__all__ = ["MAX_ROWS", "MAX_TEXT", "facts_html", "grid_html", "grid_text", "short_text"]

MAX_TEXT = 80
MAX_ROWS = 50
_TABLE = '<table class="molexp" style="border-collapse:collapse">'
_CELL = 'style="text-align:left;vertical-align:top;padding:1px 8px"'


def short_text(value: Any, limit: int = MAX_TEXT) -> str:
    """``value`` as one short line: mappings ``k=v, ...``, sequences ``a, b``, floats to six
    significant digits, times to the second, None as empty; cut to ``limit`` characters."""
    text = _plain(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plain(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, Mapping):
        return ", ".join(f"{key}={_plain(item)}" for key, item in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(_plain(item) for item in value)
    return str(value)


def _cell(value: Any) -> str:
    if isinstance(value, PurePath):
        return escape(str(value))  # a path is copied whole, never cut
    return escape(short_text(value))


def facts_html(title: str, rows: Iterable[tuple[str, Any]], *, after: str = "") -> str:
    """A titled two-column table (label, value) of the rows whose value is not empty."""
    body = "".join(
        f"<tr><th {_CELL}>{escape(label)}</th><td {_CELL}>{_cell(value)}</td></tr>"
        for label, value in rows
        if value not in (None, "", {}, [])
    )
    return (
        f'<div class="molexp-repr"><strong>{escape(title)}</strong>'
        f"{_TABLE}<tbody>{body}</tbody></table>{after}</div>"
    )


def grid_html(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], *, caption: str | None = None
) -> str:
    """A table with a header row; past ``MAX_ROWS`` rows a last line says how many are left."""
    head = "".join(f"<th {_CELL}>{escape(header)}</th>" for header in headers)
    body = "".join(
        "<tr>" + "".join(f"<td {_CELL}>{_cell(value)}</td>" for value in row) + "</tr>"
        for row in rows[:MAX_ROWS]
    )
    more = len(rows) - MAX_ROWS
    if more > 0:
        body += f'<tr><td colspan="{len(headers)}" {_CELL}>… {more} more</td></tr>'
    title = f"<caption {_CELL}>{escape(caption)}</caption>" if caption else ""
    return f"{_TABLE}{title}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def grid_text(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, limit: int = 10) -> str:
    """The same table as aligned text (``limit`` rows, then ``… N more``), for ``__repr__``."""
    shown = [[short_text(value, 40) for value in row] for row in rows[:limit]]
    widths = [
        max([len(header), *(len(row[index]) for row in shown)])
        for index, header in enumerate(headers)
    ]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in [list(headers), *shown]
    ]
    if len(rows) > limit:
        lines.append(f"… {len(rows) - limit} more")
    return "\n".join(lines)
