"""``molexp export RUN|EXPERIMENT|PROJECT --format ro-crate -o OUT``: a run, every run of an
experiment, or every run of a project, written as a Workflow Run RO-Crate (``_rocrate``).

TARGET is looked up in that order: a run directory or a run id (unique in the workspace, or
among what ``-p``/``-e`` select), then an experiment (id or name, in the projects ``-p``
selects), then a project (id or name). ``OUT`` ending in ``.zip`` is a zip file, anything else
a directory; an existing ``OUT`` is replaced only with ``--force``, and then only when it is a
file or a directory holding an RO-Crate (never an arbitrary directory).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from molexp.workspace.layout import RUN_FILE

from ._errors import CliError, CliUsageError
from ._output import print_json, stdout_console
from ._resolve import Selection, open_workspace, resolve_run

if TYPE_CHECKING:
    from molexp.workspace import Experiment, Project, Run, Workspace

__all__ = ["export_command"]

FORMATS = ("ro-crate",)
CRATE_METADATA = "ro-crate-metadata.json"


def export_command(
    target: str,
    *,
    output: Path,
    export_format: str = "ro-crate",
    force: bool = False,
    license_id: str | None = None,
    workspace: Path | None,
    as_json: bool,
    selection: Selection | None = None,
) -> None:
    """Export ``target`` (run, experiment or project) to ``output``."""
    if export_format not in FORMATS:
        raise CliUsageError(
            f"unknown export format {export_format!r}; available: {', '.join(FORMATS)}"
        )
    _check_output(output, force=force)
    selection = selection or Selection()
    kind, label, runs = _resolve_target(target, workspace, selection)
    if not runs:
        raise CliError(f"{kind} {label} has no runs to export")
    from ._rocrate import write_crate

    title = f"MolExp {kind} {label}"
    description = (
        f"Workflow Run RO-Crate of {kind} {label}: {len(runs)} run(s), each attempt a "
        "CreateAction of its workflow, with parameters, profile config, results, metrics, "
        "artifacts, logs and the environment it ran in."
    )
    summary = write_crate(runs, output, title=title, description=description, license_id=license_id)
    if as_json:
        print_json({"target": label, "kind": kind, **summary.to_json()})
        return
    console = stdout_console()
    size = _size_text(summary.bytes)
    console.print(
        f"wrote RO-Crate {output} ({summary.layout}) for {kind} {label}: "
        f"{len(summary.runs)} run(s), {summary.attempts} attempt(s), {summary.files} file(s), "
        f"{size}"
    )
    for note in summary.notes:
        console.print(f"note: {note}")


def _size_text(count: int) -> str:
    value = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{count} B"  # pragma: no cover - the loop always returns


def _check_output(output: Path, *, force: bool) -> None:
    if not output.exists() and not output.is_symlink():
        return
    if not force:
        raise CliError(f"output {output} already exists; pass --force to replace it")
    if output.is_symlink() or output.is_file():
        if output.suffix.lower() != ".zip":
            raise CliError(
                f"output {output} is an existing file, not a .zip; refusing to replace it"
            )
        return
    if output.is_dir() and any(output.iterdir()) and not (output / CRATE_METADATA).is_file():
        raise CliError(
            f"output {output} is a directory that holds no {CRATE_METADATA}; refusing to "
            "replace it even with --force (choose a new or empty directory)"
        )


def _resolve_target(
    target: str, workspace_option: Path | None, selection: Selection
) -> tuple[str, str, list[Run]]:
    """``(kind, label, runs)`` of TARGET: a run, else an experiment, else a project."""
    candidate = Path(target).expanduser()
    if (candidate / RUN_FILE).is_file():
        run = resolve_run(target, workspace_option, selection)
        return "run", _run_label(run), [run]
    ws = open_workspace(workspace_option)
    rows = list(ws.runs(where={"id": target})) if _is_text(target) else []
    if rows:
        run = resolve_run(target, workspace_option, selection)
        return "run", _run_label(run), [run]
    selection = selection.in_workspace(ws)
    experiments = _matching_experiments(ws, target, selection)
    if len(experiments) > 1:
        listing = ", ".join(f"{e.project.id}/{e.id}" for e in experiments)
        raise CliError(
            f"experiment {target!r} is ambiguous in workspace {ws.root}: it matches {listing}; "
            "narrow it with -p PROJECT"
        )
    if experiments:
        experiment = experiments[0]
        return (
            "experiment",
            f"{experiment.project.id}/{experiment.id}",
            _runs_of(experiment),
        )
    projects = [p for p in _projects(ws, selection) if target in {p.id, p.name}]
    if projects:
        project = projects[0]
        runs = [
            run
            for experiment in project.list_experiments()
            if selection.experiment(experiment.id, experiment.name)
            for run in _runs_of(experiment)
        ]
        return "project", project.id, runs
    where = f" among what {selection.describe()} selects" if selection else ""
    raise CliError(
        f"unknown run, experiment or project {target!r} in workspace {ws.root}{where} "
        "(list them with `molexp ls`)"
    )


def _run_label(run: Run) -> str:
    return f"{run.project.id}/{run.experiment.id}/{run.id}"


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _projects(ws: Workspace, selection: Selection) -> list[Project]:
    return [p for p in ws.list_projects() if selection.project(p.id, p.name)]


def _matching_experiments(ws: Workspace, target: str, selection: Selection) -> list[Experiment]:
    return [
        experiment
        for project in _projects(ws, selection)
        for experiment in project.list_experiments()
        if target in {experiment.id, experiment.name}
        and selection.experiment(experiment.id, experiment.name)
    ]


def _runs_of(experiment: Experiment) -> list[Run]:
    return sorted(experiment.list_runs(), key=lambda run: (run.metadata.created_at, run.id))
