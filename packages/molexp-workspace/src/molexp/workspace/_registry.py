"""Process-local registry of workspaces a script exposes to the CLI (``me.entry(ws)``).

Registration is keyed by the workspace's resolved root: registering the same
workspace again is a no-op, and registering another object for the same root
replaces the earlier one (as re-running a script would).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._workspace import Workspace

__all__ = ["clear_registry", "entry", "registered_workspaces"]

_registry: dict[Path, Workspace] = {}
_lock = threading.Lock()


def entry(ws: Workspace) -> Workspace:
    """Register ``ws`` for CLI discovery and return it."""
    from ._workspace import Workspace

    if not isinstance(ws, Workspace):
        raise TypeError(f"entry() takes a Workspace, got {type(ws).__name__}: {ws!r}")
    with _lock:
        _registry[ws.root] = ws
    return ws


def registered_workspaces() -> list[Workspace]:
    """Registered workspaces in first-registration order."""
    with _lock:
        return list(_registry.values())


def clear_registry() -> None:
    """Forget every registered workspace (the CLI does this before importing a script)."""
    with _lock:
        _registry.clear()
