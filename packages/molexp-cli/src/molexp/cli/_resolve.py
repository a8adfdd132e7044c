"""Finding the workspace and the run a command is about.

The workspace is ``--workspace/-w`` when given, else ``$MOLEXP_WORKSPACE``, else the nearest
directory holding ``workspace.json`` from the current directory upwards. A RUN argument is either
a run directory (anything containing ``run.json``) or a run id that must be unique in the
workspace.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ._errors import CliError

if TYPE_CHECKING:
    from molexp.workspace import Run, Workspace

__all__ = [
    "WORKSPACE_ENV",
    "WORKSPACE_FILE",
    "find_workspace_root",
    "open_workspace",
    "resolve_run",
    "resolve_workspace_root",
]

WORKSPACE_FILE = "workspace.json"
WORKSPACE_ENV = "MOLEXP_WORKSPACE"
RUN_FILE = "run.json"


def find_workspace_root(start: Path) -> Path | None:
    """The nearest directory at or above ``start`` that holds ``workspace.json``."""
    current = Path(start).resolve()
    for directory in (current, *current.parents):
        if (directory / WORKSPACE_FILE).is_file():
            return directory
    return None


def resolve_workspace_root(
    option: Path | None,
    *,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Path:
    """The workspace root chosen by ``-w``, ``$MOLEXP_WORKSPACE`` or the upward search."""
    env = os.environ if environ is None else environ
    if option is not None:
        return _checked_root(Path(option), "--workspace")
    from_env = env.get(WORKSPACE_ENV, "").strip()
    if from_env:
        return _checked_root(Path(from_env), f"${WORKSPACE_ENV}")
    start = Path.cwd() if cwd is None else cwd
    found = find_workspace_root(start)
    if found is None:
        raise CliError(
            f"no workspace found: no {WORKSPACE_FILE} in {Path(start).resolve()} or its parents; "
            f"pass --workspace DIR, set ${WORKSPACE_ENV}, or create one with `molexp init`"
        )
    return found


def _checked_root(path: Path, source: str) -> Path:
    root = path.expanduser().resolve()
    if not (root / WORKSPACE_FILE).is_file():
        raise CliError(f"{source} {path} is not a workspace: {root / WORKSPACE_FILE} is missing")
    return root


def open_workspace(option: Path | None) -> Workspace:
    """Load the workspace chosen by :func:`resolve_workspace_root`."""
    from molexp.workspace import Workspace

    return Workspace.load(resolve_workspace_root(option))


def resolve_run(reference: str, workspace_option: Path | None) -> Run:
    """The run named by ``reference``: a run directory, or a run id unique in the workspace."""
    candidate = Path(reference).expanduser()
    if (candidate / RUN_FILE).is_file():
        return open_run_dir(candidate)
    workspace = open_workspace(workspace_option)
    matches = list(workspace.runs(where={"id": reference})) if _is_text(reference) else []
    if not matches:
        raise CliError(
            f"unknown run {reference!r} in workspace {workspace.root}: no run has this id and no "
            f"directory {candidate} holds a {RUN_FILE} (list runs with `molexp ls runs`)"
        )
    if len(matches) > 1:
        listing = ", ".join(f"{row.project}/{row.experiment}/{row.id}" for row in matches)
        raise CliError(
            f"run id {reference!r} is ambiguous in workspace {workspace.root}: it matches "
            f"{listing}; pass the run directory instead"
        )
    row = matches[0]
    return workspace.project(row.project).experiment(row.experiment).get_run(row.id)


def _is_text(value: str) -> bool:
    """Whether ``value`` is valid Unicode (an argument may carry undecodable bytes)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def open_run_dir(run_dir: Path) -> Run:
    """Rebuild workspace/project/experiment/run from a run directory alone."""
    from molexp.workspace import RunContext

    return RunContext.open(run_dir.resolve())
