"""Finding the workspace and the run a command is about.

The workspace is ``--workspace/-w`` when given, else ``$MOLEXP_WORKSPACE``, else found walking up
from the current directory: the nearest directory that either holds ``workspace.json`` (it is the
workspace) or holds a ``molexp.toml`` with a ``workspace = "DIR"`` key (DIR, relative to that file,
is the workspace). A RUN argument is either
a run directory (anything containing ``run.json``) or a run id that must be unique in the
workspace, or among the projects and experiments ``-p``/``-e`` select (:class:`Selection`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any

from molexp.workspace.layout import RUN_FILE, WORKSPACE_FILE

from ._errors import CliError

if TYPE_CHECKING:
    from molexp.workspace import Run, Workspace

__all__ = [
    "WORKSPACE_ENV",
    "Selection",
    "find_workspace_root",
    "open_workspace",
    "resolve_run",
    "resolve_workspace_root",
]

WORKSPACE_ENV = "MOLEXP_WORKSPACE"


def _patterns(value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


@dataclass(frozen=True)
class Selection:
    """What ``-p/--project`` and ``-e/--experiment`` select: each option repeatable, each value
    an id, a name or a glob (``'cu-*'``, ``'run?'``, ``'[ab]*'``) matched against both; an empty
    option selects everything.

    A value that is exactly the id or name of a project (an experiment) of the workspace is
    that one only, never a glob: names may hold ``*``, ``?`` and ``[``, and ``-p 'proj[1]'``
    must not select ``proj1`` instead of the project named ``proj[1]``. Which values those are
    is known once the workspace is: :meth:`in_workspace`.
    """

    projects: tuple[str, ...] = ()
    experiments: tuple[str, ...] = ()
    literal_projects: frozenset[str] = frozenset()
    literal_experiments: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls,
        projects: str | Iterable[str] | None = None,
        experiments: str | Iterable[str] | None = None,
    ) -> Selection:
        return cls(_patterns(projects), _patterns(experiments))

    def __bool__(self) -> bool:
        return bool(self.projects or self.experiments)

    def in_workspace(self, workspace: Workspace) -> Selection:
        """This selection with each value that names a project (an experiment) of
        ``workspace`` exactly, by id or name, taken as that name only."""
        if not self:
            return self
        projects: set[str] = set()
        experiments: set[str] = set()
        for project in workspace.list_projects():
            projects.update(_id_and_name(project))
            if self.experiments:
                for experiment in project.list_experiments():
                    experiments.update(_id_and_name(experiment))
        return replace(
            self,
            literal_projects=frozenset(projects.intersection(self.projects)),
            literal_experiments=frozenset(experiments.intersection(self.experiments)),
        )

    def projects_matching(self, id_: object, name: object = None) -> list[str]:
        """The ``-p`` values that select a project with this id and name."""
        return _matching(self.projects, self.literal_projects, id_, name)

    def experiments_matching(self, id_: object, name: object = None) -> list[str]:
        """The ``-e`` values that select an experiment with this id and name."""
        return _matching(self.experiments, self.literal_experiments, id_, name)

    def project(self, id_: object, name: object = None) -> bool:
        return not self.projects or bool(self.projects_matching(id_, name))

    def experiment(self, id_: object, name: object = None) -> bool:
        return not self.experiments or bool(self.experiments_matching(id_, name))

    def describe(self) -> str:
        """The options as typed, e.g. ``-p demo -e 'cu-*'``."""
        parts = [f"-p {p!r}" for p in self.projects] + [f"-e {e!r}" for e in self.experiments]
        return " ".join(parts)


def _names(id_: object, name: object) -> list[str]:
    return [str(id_)] + ([str(name)] if name is not None else [])


def _id_and_name(item: Any) -> list[str]:
    return _names(item.id, getattr(item, "name", None))


def _matching(
    patterns: Iterable[str], literal: frozenset[str], id_: object, name: object
) -> list[str]:
    names = _names(id_, name)
    return [
        pattern
        for pattern in patterns
        if any(n == pattern or (pattern not in literal and fnmatchcase(n, pattern)) for n in names)
    ]


def find_workspace_root(start: Path) -> Path | None:
    """The nearest directory at or above ``start`` that holds ``workspace.json``."""
    current = Path(start).resolve()
    for directory in (current, *current.parents):
        if (directory / WORKSPACE_FILE).is_file():
            return directory
    return None


def _named_workspace(directory: Path) -> tuple[Path, Path] | None:
    """``(molexp.toml, the workspace it names)`` when ``directory`` holds a profile file with a
    ``workspace`` key (a malformed file raises its ``ProfileError``)."""
    from .profiles import PROFILE_FILENAME, ProfileFile

    profile_file = directory / PROFILE_FILENAME
    if not profile_file.is_file():
        return None
    named = ProfileFile.load(profile_file).workspace
    return None if named is None else (profile_file, named)


def resolve_workspace_root(
    option: Path | None,
    *,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Path:
    """The workspace root chosen by ``-w``, ``$MOLEXP_WORKSPACE``, else the nearest directory
    upwards from ``cwd`` that is a workspace or whose ``molexp.toml`` names one."""
    env = os.environ if environ is None else environ
    if option is not None:
        return _checked_root(Path(option), "--workspace")
    from_env = env.get(WORKSPACE_ENV, "").strip()
    if from_env:
        return _checked_root(Path(from_env), f"${WORKSPACE_ENV}")
    start = (Path.cwd() if cwd is None else Path(cwd)).resolve()
    for directory in (start, *start.parents):
        if (directory / WORKSPACE_FILE).is_file():
            return directory
        named = _named_workspace(directory)
        if named is not None:
            profile_file, root = named
            return _checked_root(
                root,
                f"{profile_file} names workspace",
                hint="; run the script that creates it, or `molexp init` it",
            )
    raise CliError(
        f"no workspace found: no {WORKSPACE_FILE}, and no molexp.toml with a workspace key, in "
        f"{start} or its parents; pass --workspace DIR, set ${WORKSPACE_ENV}, add "
        f'workspace = "DIR" to molexp.toml, or create one with `molexp init`'
    )


def _checked_root(path: Path, source: str, *, hint: str = "") -> Path:
    root = path.expanduser().resolve()
    if not (root / WORKSPACE_FILE).is_file():
        raise CliError(
            f"{source} {path} is not a workspace: {root / WORKSPACE_FILE} is missing{hint}"
        )
    return root


def open_workspace(option: Path | None) -> Workspace:
    """Load the workspace chosen by :func:`resolve_workspace_root`."""
    from molexp.workspace import Workspace

    return Workspace.load(resolve_workspace_root(option))


def resolve_run(
    reference: str, workspace_option: Path | None, selection: Selection | None = None
) -> Run:
    """The run named by ``reference``: a run directory, or a run id unique in the workspace
    (or among the projects and experiments ``selection`` keeps, when given)."""
    selection = selection or Selection()
    candidate = Path(reference).expanduser()
    if (candidate / RUN_FILE).is_file():
        run = open_run_dir(candidate)
        selection = selection.in_workspace(run.workspace)
        if not _selected(selection, run.project, run.experiment):
            raise CliError(
                f"run directory {candidate} belongs to {run.project.id}/{run.experiment.id}, "
                f"which {selection.describe()} does not select"
            )
        return run
    workspace = open_workspace(workspace_option)
    selection = selection.in_workspace(workspace)
    found = list(workspace.runs(where={"id": reference})) if _is_text(reference) else []
    matches = [
        row
        for row in found
        if not selection
        or _selected(
            selection,
            workspace.project(row.project),
            workspace.project(row.project).experiment(row.experiment),
        )
    ]
    if not matches:
        if found:
            listing = ", ".join(f"{row.project}/{row.experiment}" for row in found)
            raise CliError(
                f"run {reference!r} is in {listing}, which {selection.describe()} does not select"
            )
        raise CliError(
            f"unknown run {reference!r} in workspace {workspace.root}: no run has this id and no "
            f"directory {candidate} holds a {RUN_FILE} (list runs with `molexp ls runs`)"
        )
    if len(matches) > 1:
        listing = ", ".join(f"{row.project}/{row.experiment}/{row.id}" for row in matches)
        raise CliError(
            f"run id {reference!r} is ambiguous in workspace {workspace.root}: it matches "
            f"{listing}; narrow it with -p PROJECT / -e EXPERIMENT or pass the run directory"
        )
    row = matches[0]
    return workspace.project(row.project).experiment(row.experiment).get_run(row.id)


def _selected(selection: Selection, project: Any, experiment: Any) -> bool:
    return selection.project(project.id, getattr(project, "name", None)) and (
        selection.experiment(experiment.id, getattr(experiment, "name", None))
    )


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
