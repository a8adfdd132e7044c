"""Output helpers shared by the commands: JSON on stdout, rich tables, value formatting.

``--json`` output is produced by :func:`print_json` only (nothing else is written to stdout in
that mode); human output goes through a rich console that never truncates when stdout is not a
terminal.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

__all__ = [
    "format_duration",
    "format_time",
    "format_value",
    "json_default",
    "make_table",
    "print_json",
    "stdout_console",
]

_WIDE = 200


def json_default(value: Any) -> Any:
    """Serialize what ``json`` cannot: datetimes (ISO 8601), paths, enums, pydantic models."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):
        return model_dump(mode="json")
    return str(value)


def print_json(data: Any) -> None:
    """Write ``data`` as indented JSON to stdout (the only output of ``--json`` commands)."""
    sys.stdout.write(json.dumps(data, indent=2, default=json_default, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def stdout_console() -> Console:
    """A rich console on stdout; wide and colourless when stdout is not a terminal."""
    from rich.console import Console

    if sys.stdout.isatty():
        return Console()
    width = max(shutil.get_terminal_size((_WIDE, 24)).columns, _WIDE)
    return Console(width=width, no_color=True, highlight=False, soft_wrap=False)


def make_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for index, column in enumerate(columns):
        # The first column is an identifier: never wrap it, so it can be copied whole.
        table.add_column(column, overflow="fold", no_wrap=index == 0)
    for row in rows:
        table.add_row(*(format_value(cell) for cell in row))
    return table


def format_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict | list):
        return json.dumps(value, default=json_default, sort_keys=True)
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


def format_time(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{int(minutes)}m{rest:04.1f}s"
    hours, minutes = divmod(minutes, 60)
    return f"{int(hours)}h{int(minutes):02d}m"
