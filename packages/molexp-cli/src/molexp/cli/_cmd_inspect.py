"""Read-only inspection commands: ``ls``, ``show``, ``logs``, ``artifacts``, ``assets``, ``query``.

Each listing command prints a rich table (or tree) for people and, with ``--json``, JSON only.
Nothing here writes to the workspace.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import CliError, CliUsageError
from ._output import (
    format_duration,
    format_value,
    make_table,
    print_json,
    stdout_console,
)
from ._resolve import Selection, open_workspace, resolve_run

if TYPE_CHECKING:
    from molexp.assets import Asset
    from molexp.workspace import Run, RunSummary, Workspace

__all__ = [
    "artifacts_command",
    "assets_command",
    "logs_command",
    "ls_command",
    "query_command",
    "show_command",
    "status_text",
    "summary_json",
]

_FOLLOW_INTERVAL = 0.2
_SCHEDULER_CHECK_SECONDS = 10.0
"""How often a wait for a queued run's log asks Slurm whether its job still lives."""


def status_text(status: Any, stale: str | None) -> str:
    """A run's status for people: ``running (stale: <why>)`` when its owner is gone."""
    return f"{status} (stale: {stale})" if stale else str(status)


def summary_json(row: RunSummary) -> dict[str, Any]:
    """One run-index row as JSON (nested params/results/config; ``stale`` is derived)."""
    stale = row.stale_reason()
    return {
        "id": row.id,
        "project": row.project,
        "experiment": row.experiment,
        "status": str(row.status),
        "stale": stale is not None,
        "stale_reason": stale,
        "created_at": row.created_at,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
        "profile": row.profile,
        "profile_label": row.profile_label,
        "overrides": row.overrides,
        "config": row.config,
        "config_hash": row.config_hash,
        "workflow_id": row.workflow_id,
        "replica_index": row.replica_index,
        "seed": row.seed,
        "params": row.params,
        "results": row.results,
        "metrics": {name: summary.model_dump() for name, summary in row.metrics.items()},
        "tags": row.tags,
        "run_dir": row.run_dir,
    }


def _runs_table(title: str, rows: Sequence[RunSummary]) -> Any:
    """Runs as a table; a ``metrics`` column (each series' last value) when any run has one."""
    with_metrics = any(row.metrics for row in rows)
    columns = ["run id", "experiment", "status", "profile", "config", "params", "results"]
    return make_table(
        title,
        [*columns, *(["metrics"] if with_metrics else []), "finished"],
        [
            (
                row.id,
                f"{row.project}/{row.experiment}",
                status_text(row.status, row.stale_reason()),
                row.profile_label,
                row.config or None,
                row.params,
                row.results,
                *([{k: m.last for k, m in row.metrics.items()}] if with_metrics else []),
                row.finished_at,
            )
            for row in rows
        ],
    )


def _query_runs(
    workspace: Workspace,
    where: str | Mapping[str, Any] | None,
    *,
    order_by: str | None = None,
    limit: int | None = None,
    project: str | None = None,
    experiment: str | None = None,
) -> list[RunSummary]:
    """``workspace.runs(...)``; a bad query is a usage error, a broken record stays one."""
    from molexp.assets import RecordError
    from molexp.workspace import QuerySyntaxError, UnknownFieldError

    try:
        return list(
            workspace.runs(
                where=where, order_by=order_by, limit=limit, project=project, experiment=experiment
            )
        )
    except QuerySyntaxError as exc:
        raise CliUsageError(
            f"query syntax error in {exc.query!r} at column {exc.column}: {exc.reason}"
        ) from exc
    except UnknownFieldError as exc:
        raise CliUsageError(str(exc)) from exc
    except RecordError:
        raise  # reported with the record's file and field, not as a query error
    except ValueError as exc:
        raise CliUsageError(f"invalid query: {exc}") from exc


def _check_output(*, as_json: bool, ids: bool) -> None:
    if as_json and ids:
        raise CliUsageError("--ids and --json are two output formats: choose one")


def _print_runs(rows: Sequence[RunSummary], title: str, *, as_json: bool, ids: bool) -> None:
    """Runs as a table, JSON (``--json``) or bare ids one per line (``--ids``)."""
    if as_json:
        print_json([summary_json(row) for row in rows])
    elif ids:
        for row in rows:
            print(row.id)
    else:
        stdout_console().print(_runs_table(title, rows))


def _print_outdated(ws: Workspace, rows: Sequence[RunSummary], *, as_json: bool, ids: bool) -> None:
    """The succeeded runs of ``rows`` whose tasks changed, with the changed tasks and why."""
    from ._outdated import find_outdated_runs

    report = find_outdated_runs(ws, rows)
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    if as_json:
        print_json([{**summary_json(o.summary), "changed": o.changed} for o in report.runs])
    elif ids:
        for outdated in report.runs:
            print(outdated.summary.id)
    else:
        stdout_console().print(
            make_table(
                f"{len(report.runs)} outdated run(s) in {ws.root}",
                ["run id", "experiment", "profile", "finished", "changed tasks"],
                [
                    (
                        o.summary.id,
                        f"{o.summary.project}/{o.summary.experiment}",
                        o.summary.profile_label,
                        o.summary.finished_at,
                        "; ".join(f"{task}: {why}" for task, why in o.changed.items()),
                    )
                    for o in report.runs
                ],
            )
        )
        for script in sorted({outdated.script for outdated in report.runs}):
            print(f"re-run them: molexp run {_shown_path(script)} --outdated", file=sys.stderr)


def _shown_path(path: Path) -> str:
    """``path`` relative to the current directory when it is below it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _check_status(status: str | None) -> str | None:
    from molexp.workspace import RunStatus

    if status is None:
        return None
    valid = [member.value for member in RunStatus]
    if status not in valid:
        raise CliUsageError(
            f"--status {status!r} is not a run status; use one of {', '.join(valid)}"
        )
    return status


def ls_command(
    what: str | None,
    *,
    project: str | Sequence[str] | None,
    experiment: str | Sequence[str] | None,
    status: str | None,
    where: str | None,
    workspace: Path | None,
    as_json: bool,
    ids: bool = False,
    outdated: bool = False,
) -> None:
    """``molexp ls``: projects, experiments, runs, or an overview tree (default).

    ``project``/``experiment`` select by id, name or glob; several values: any of them.
    ``outdated`` lists the succeeded runs whose tasks changed since (``_outdated``)."""
    if outdated and what not in (None, "runs"):
        raise CliUsageError("--outdated lists runs: use `molexp ls --outdated` or `ls runs`")
    what = "runs" if outdated else what
    if ids and what != "runs":
        raise CliUsageError("--ids lists run ids: use it with `molexp ls runs`")
    _check_output(as_json=as_json, ids=ids)
    wanted_status = _check_status(status)
    ws = open_workspace(workspace)
    selection = Selection.of(project, experiment).in_workspace(ws)
    if what == "runs":
        rows = _query_runs(ws, where)
        if selection:
            kept = _selected_experiments(ws, selection)
            rows = [row for row in rows if (row.project, row.experiment) in kept]
        if wanted_status is not None:
            rows = [row for row in rows if str(row.status) == wanted_status]
        if outdated:
            _print_outdated(ws, rows, as_json=as_json, ids=ids)
        else:
            _print_runs(rows, f"Runs in {ws.root}", as_json=as_json, ids=ids)
        return
    counts = _status_counts(_query_runs(ws, where))
    projects = [p for p in ws.list_projects() if selection.project(p.id, p.name)]
    if selection.projects and not projects:
        wanted = ", ".join(map(repr, selection.projects))
        raise CliError(f"no project {wanted} in workspace {ws.root}")
    overview = [_project_json(p, counts, selection) for p in projects]
    if what == "projects":
        _print_projects(ws, overview, as_json)
    elif what == "experiments":
        _print_experiments(ws, overview, as_json)
    else:
        _print_overview(ws, overview, as_json)


def _status_counts(rows: Iterable[RunSummary]) -> dict[tuple[str, str], dict[str, int]]:
    """Runs per experiment and state: a ``running`` run whose owner is gone counts as
    ``stale`` (its recorded status stays ``running`` until ``molexp reap``)."""
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for row in rows:
        per_status = counts.setdefault((row.project, row.experiment), {})
        state = "stale" if row.stale else str(row.status)
        per_status[state] = per_status.get(state, 0) + 1
    return counts


def _selected_experiments(ws: Workspace, selection: Selection) -> set[tuple[str, str]]:
    """``(project id, experiment id)`` of every experiment ``selection`` keeps (read once, so
    filtering many runs by name or glob costs no record reads per run)."""
    return {
        (str(project.id), str(experiment.id))
        for project in ws.list_projects()
        if selection.project(project.id, project.name)
        for experiment in project.list_experiments()
        if selection.experiment(experiment.id, experiment.name)
    }


def _project_json(
    project: Any, counts: Mapping[tuple[str, str], Mapping[str, int]], selection: Selection
) -> dict[str, Any]:
    experiments = []
    for exp in project.list_experiments():
        if not selection.experiment(exp.id, exp.name):
            continue
        runs = dict(counts.get((project.id, exp.id), {}))
        experiments.append(
            {
                "id": exp.id,
                "name": exp.name,
                "params": dict(exp.params),
                "n_replicas": exp.n_replicas,
                "runs": runs,
                "total_runs": sum(runs.values()),
            }
        )
    return {
        "id": project.id,
        "name": project.name,
        "description": project.description,
        "experiments": experiments,
        "total_runs": sum(e["total_runs"] for e in experiments),
    }


def _format_counts(runs: Mapping[str, int]) -> str:
    return ", ".join(f"{count} {status}" for status, count in sorted(runs.items())) or "no runs"


def _print_projects(ws: Workspace, overview: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print_json(
            [
                {k: v for k, v in p.items() if k != "experiments"}
                | {"experiments": len(p["experiments"])}
                for p in overview
            ]
        )
        return
    rows = [
        (p["id"], p["name"], p["description"], len(p["experiments"]), p["total_runs"])
        for p in overview
    ]
    stdout_console().print(
        make_table(
            f"Projects in {ws.root}", ["id", "name", "description", "experiments", "runs"], rows
        )
    )


def _print_experiments(ws: Workspace, overview: list[dict[str, Any]], as_json: bool) -> None:
    items = [{"project": p["id"], **e} for p in overview for e in p["experiments"]]
    if as_json:
        print_json(items)
        return
    rows = [
        (e["project"], e["id"], e["name"], e["params"], e["n_replicas"], _format_counts(e["runs"]))
        for e in items
    ]
    stdout_console().print(
        make_table(
            f"Experiments in {ws.root}",
            ["project", "id", "name", "params", "replicas", "runs"],
            rows,
        )
    )


def _print_overview(ws: Workspace, overview: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print_json(
            {
                "workspace": {"id": ws.id, "name": ws.name, "root": ws.root},
                "projects": overview,
            }
        )
        return
    from rich.tree import Tree

    tree = Tree(f"workspace {ws.name} ({ws.id}) at {ws.root}")
    for project in overview:
        branch = tree.add(f"project {project['id']} ({project['total_runs']} runs)")
        for exp in project["experiments"]:
            branch.add(f"experiment {exp['id']}: {_format_counts(exp['runs'])}")
    if not overview:
        tree.add("no projects yet")
    stdout_console().print(tree)


def _run_assets(run: Run) -> list[Asset]:
    from molexp.assets import AssetScope

    workspace = run.workspace
    scope = AssetScope.for_run(workspace.id, run.project.id, run.experiment.id, run.id)
    return list(workspace.catalog.query_assets(within=scope))


def _asset_json(asset: Asset, root: Path) -> dict[str, Any]:
    data: dict[str, Any] = asset.model_dump(mode="json")
    data["absolute_path"] = str(root / asset.path)
    return data


def show_command(
    reference: str,
    *,
    workspace: Path | None,
    as_json: bool,
    attempt: int | None = None,
    selection: Selection | None = None,
) -> None:
    """``molexp show RUN [--attempt N] [-p P] [-e E]``."""
    from molexp.workspace import stale_reason

    from ._cmd_attempts import changes_text, python_text, show_attempt

    run = resolve_run(reference, workspace, selection)
    if attempt is not None:
        show_attempt(run, attempt, as_json=as_json)
        return
    meta = run.metadata
    assets = _run_assets(run)
    root = Path(run.workspace.root)
    stale = stale_reason(meta)
    if as_json:
        data = meta.model_dump(mode="json")
        data["stale"] = stale is not None
        data["stale_reason"] = stale
        data["run_dir"] = str(run.run_dir)
        data["assets"] = [_asset_json(asset, root) for asset in assets]
        data["tasks"] = _task_states(run, assets)
        print_json(data)
        return
    from rich.table import Table

    console = stdout_console()
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    profile = meta.profile
    for label, value in (
        ("run", meta.id),
        ("experiment", f"{meta.project_id}/{meta.experiment_id}"),
        ("status", status_text(meta.status, stale)),
        ("replica", meta.replica_index),
        ("seed", meta.seed),
        ("created", meta.created_at),
        ("started", meta.started_at),
        ("finished", meta.finished_at),
        ("params", meta.parameters),
        ("profile", None if profile is None else profile.label),
        ("config", None if profile is None else profile.config),
        ("config_hash", None if profile is None else profile.config_hash),
        ("workflow_id", meta.workflow_id),
        ("git", _git_text((meta.workflow_snapshot or {}).get("git"))),
        ("results", meta.results),
        ("metrics", _metrics_text(meta.metrics)),
        ("run_dir", run.run_dir),
    ):
        if value is not None or label not in {"git", "metrics"}:
            facts.add_row(label, format_value(value))
    if meta.error is not None:
        task = f" in task {meta.error.task_name}" if meta.error.task_name else ""
        facts.add_row("error", f"{meta.error.type}{task}: {meta.error.message}")
    console.print(facts)
    history = run.attempts
    attempts = [
        (
            item.number,
            item.execution_id,
            str(item.status),
            item.started_at,
            item.finished_at,
            _duration(item.started_at, item.finished_at),
            item.record.profile_name,
            python_text(item.record.python, item.record.python_version),
            changes_text(item.diff()) if item.number > 1 else "",
            None
            if item.error is None
            else f"{item.error.task_name + ': ' if item.error.task_name else ''}"
            f"{item.error.type}: {item.error.message}",
        )
        for item in history
    ]
    columns = ["#", "execution", "status", "started", "finished", "duration", "profile", "python"]
    console.print(make_table("Attempts", [*columns, "changes", "error"], attempts))
    tasks = _task_states(run, assets)
    if tasks:
        console.print(
            make_table(
                "Tasks of the latest attempt",
                ["task", "status", "duration", "cache"],
                [
                    (task["task"], task["status"], _seconds_text(task["duration"]), task["cache"])
                    for task in tasks
                ],
            )
        )
    if len(history) > 1:
        console.print(f"molexp show {run.id} --attempt N: one attempt's results, artifacts, logs")
    latest = history[-1] if history else None
    console.print(
        make_table(
            "Assets",
            ["kind", "name", "attempt", "size", "path"],
            [
                (str(a.kind), a.name, latest.number_of(a) if latest else None, a.size, a.path)
                for a in assets
            ],
        )
    )


def _duration(started: Any, finished: Any) -> str:
    if started is None or finished is None:
        return "-"
    return format_duration((finished - started).total_seconds())


def _git_text(git: Any) -> str | None:
    """``3f2a9c1b7d4e (uncommitted changes)``: the script's checkout when the run was executed."""
    if not isinstance(git, dict) or not isinstance(git.get("commit"), str):
        return None
    return str(git["commit"])[:12] + (" (uncommitted changes)" if git.get("dirty") else "")


def _metrics_text(metrics: Mapping[str, Any]) -> str | None:
    """``loss 0.12 (min 0.1, max 2.3, 400 points)`` per metric series of the run."""
    if not metrics:
        return None
    return "; ".join(
        f"{name} {format_value(m.last)} (min {format_value(m.min)}, max {format_value(m.max)}, "
        f"{m.count} points)"
        for name, m in metrics.items()
    )


def _seconds_text(seconds: Any) -> str:
    """A task's recorded duration (seconds, or absent) as the tables show durations."""
    return format_duration(seconds) if isinstance(seconds, int | float) else "-"


def _task_states(run: Run, assets: list[Any]) -> list[dict[str, Any]]:
    """The tasks of the latest attempt that recorded an execution state: status, duration in
    seconds and, for a ``cache=True`` task, how the cache answered (what changed on a miss)."""
    order = {record.execution_id: i for i, record in enumerate(run.metadata.execution_history)}
    states = [
        asset
        for asset in assets
        if str(asset.kind) == "execution_state" and asset.execution_id in order
    ]
    if not states:
        return []
    latest = max(states, key=lambda asset: order[asset.execution_id])
    try:
        state = json.loads((Path(run.workspace.root) / latest.path).read_bytes())
    except (OSError, ValueError):
        return []
    tasks = state.get("tasks") if isinstance(state, dict) else None
    if not isinstance(tasks, dict):
        return []
    return [
        {
            "task": name,
            "status": info.get("status"),
            "duration": info.get("duration"),
            "cache": info.get("cache"),
        }
        for name, info in tasks.items()
        if isinstance(info, dict)
    ]


def _log_files(run: Run, attempt: int | None) -> tuple[str, dict[str, Path], int | None]:
    """The logs of attempt ``attempt`` (None: the latest), how to name that attempt, its number."""
    from ._cmd_attempts import attempt_of

    chosen = attempt_of(run, attempt)
    if chosen is None:
        return f"run {run.id}", {}, None
    return f"run {run.id} attempt {chosen.number}", chosen.logs, chosen.number


def _tail(text: str, count: int | None) -> str:
    if count is None:
        return text
    if count <= 0:
        return ""
    lines = text.splitlines(keepends=True)
    return "".join(lines[-count:])


def logs_command(
    reference: str,
    name: str | None,
    *,
    follow: bool,
    tail: int | None,
    workspace: Path | None,
    attempt: int | None = None,
    selection: Selection | None = None,
    as_json: bool = False,
) -> None:
    """``molexp logs RUN [NAME] [--attempt N]``: one log, or every log with a header each.

    The logs of the latest attempt, unless ``--attempt`` names another. With ``--json`` one
    object: ``run_id``, ``attempt`` (its number, or null) and ``logs`` (name -> lines).
    """
    if tail is not None and tail < 0:
        raise CliUsageError(f"--tail must be 0 or more, got {tail}")
    if as_json and follow:
        raise CliUsageError("--follow prints lines as they come; it cannot be combined with --json")
    run = resolve_run(reference, workspace, selection)
    which, logs, number = _log_files(run, attempt)
    if name is not None and name not in logs and follow and _unfinished(run):
        which, logs, number = _wait_for_log(run, attempt, name)
    if name is not None:
        if name not in logs:
            available = ", ".join(logs) or "none"
            hint = (
                f" (the run is {run.status}: --follow waits for the log)"
                if _unfinished(run)
                else ""
            )
            raise CliError(f"{which} has no log {name!r}; available: {available}{hint}")
        selected = {name: logs[name]}
    else:
        selected = logs
    if as_json:
        texts = {
            log_name: _tail(path.read_text(encoding="utf-8", errors="replace"), tail)
            for log_name, path in selected.items()
        }
        print_json(
            {
                "run_id": run.id,
                "attempt": number,
                "logs": {log_name: text.splitlines() for log_name, text in texts.items()},
            }
        )
        return
    if not selected:
        sys.stderr.write(f"{which} has no logs\n")
        return
    if follow and len(selected) > 1:
        raise CliUsageError(
            f"--follow needs one log; {which} has {', '.join(selected)}: name one of them"
        )
    for log_name, path in selected.items():
        if len(selected) > 1:
            sys.stdout.write(f"==> {log_name} <==\n")
        sys.stdout.write(_tail(path.read_text(encoding="utf-8", errors="replace"), tail))
    sys.stdout.flush()
    if follow:
        _follow(run, next(iter(selected.values())))


_UNFINISHED = frozenset({"pending", "queued", "running"})


def _unfinished(run: Run) -> bool:
    return str(run.status) in _UNFINISHED


def _wait_for_log(
    run: Run, attempt: int | None, name: str
) -> tuple[str, dict[str, Path], int | None]:
    """``_log_files`` once the run has a log ``name`` or has ended (``--follow`` of a log a
    queued or starting run has not written yet, e.g. right after a submission).

    A run whose Slurm job ended without starting it stays queued until ``molexp sync``: Slurm
    is asked at once and every ``_SCHEDULER_CHECK_SECONDS``, and such a job ends the wait
    with an error (read only, like ``molexp status``).
    """
    sys.stderr.write(f"waiting for run {run.id} ({run.status}) to write its log {name!r}\n")
    sys.stderr.flush()
    asked = time.monotonic() - _SCHEDULER_CHECK_SECONDS
    while True:
        time.sleep(_FOLLOW_INTERVAL)
        run.reload()
        found = _log_files(run, attempt)
        if name in found[1] or not _unfinished(run):
            return found
        if time.monotonic() - asked < _SCHEDULER_CHECK_SECONDS:
            continue
        asked = time.monotonic()
        ended = _ended_job(run)
        if ended is None:
            continue
        run.reload()  # a job that ended after writing the run's last record is no orphan
        found = _log_files(run, attempt)
        if name in found[1] or not _unfinished(run):
            return found
        raise CliError(
            f"run {run.id} is still {run.status} but {ended}: it will not write its log "
            f"{name!r} (`molexp sync` settles the run)"
        )


def _ended_job(run: Run) -> str | None:
    """How the run's Slurm job ended, if Slurm says it has (None: live, unknown, not a job)."""
    from ._cmd_cluster import _job_reports
    from ._slurm_text import JobPhase

    reports, problem = _job_reports([run], apply=False)
    if problem is not None or not reports:
        return None
    report = reports[0]
    if report.state is None:
        return f"its Slurm job {report.info.job} is known to neither squeue nor sacct"
    if report.state.phase in (JobPhase.live, JobPhase.unknown):
        return None
    return f"its Slurm job {report.info.job} ended {report.state.describe()}"


def _follow(run: Run, path: Path) -> None:
    """Print what is appended to ``path`` until the run is no longer running."""
    position = path.stat().st_size
    last_check = 0.0
    while True:
        size = path.stat().st_size
        if size > position:
            with path.open("rb") as handle:
                handle.seek(position)
                chunk = handle.read(size - position)
            position = size
            sys.stdout.write(chunk.decode("utf-8", errors="replace"))
            sys.stdout.flush()
            continue
        now = time.monotonic()
        if now - last_check >= 1.0:
            last_check = now
            run.reload()
            if str(run.status) not in {"running", "pending", "queued"}:
                return
        time.sleep(_FOLLOW_INTERVAL)


def artifacts_command(
    reference: str,
    *,
    workspace: Path | None,
    as_json: bool,
    attempt: int | None = None,
    selection: Selection | None = None,
) -> None:
    """``molexp artifacts RUN [--attempt N]``: the run's current artifacts (the latest of each
    name), or those attempt N showed."""
    from ._cmd_attempts import attempt_of

    run = resolve_run(reference, workspace, selection)
    root = Path(run.workspace.root)
    chosen = attempt_of(run, attempt)
    if chosen is not None:
        artifacts: list[Asset] = list(chosen.artifacts.values())
    else:
        artifacts = [asset for asset in _run_assets(run) if str(asset.kind) == "artifact"]
    if as_json:
        print_json([_asset_json(asset, root) for asset in artifacts])
        return
    title = f"Artifacts of run {run.id}"
    if chosen is not None and (attempt is not None or not chosen.is_latest):
        title += f" (attempt {chosen.number})"
    stdout_console().print(
        make_table(
            title,
            ["name", "attempt", "media type", "size", "updated", "path"],
            [
                (
                    a.name,
                    chosen.number_of(a) if chosen is not None else None,
                    getattr(a, "media_type", None),
                    a.size,
                    a.updated_at,
                    root / a.path,
                )
                for a in artifacts
            ],
        )
    )


def assets_command(*, kind: str | None, workspace: Path | None, as_json: bool) -> None:
    """``molexp assets [--kind K]``."""
    from molexp.assets import AssetKind

    valid = [member.value for member in AssetKind]
    if kind is not None and kind not in valid:
        raise CliUsageError(f"--kind {kind!r} is not an asset kind; use one of {', '.join(valid)}")
    ws = open_workspace(workspace)
    assets = list(ws.catalog.query_assets(kind=kind))
    if as_json:
        print_json([_asset_json(asset, ws.root) for asset in assets])
        return
    rows = [
        (
            asset.id,
            str(asset.kind),
            asset.name,
            "/".join(
                part
                for part in (
                    asset.scope.project_id,
                    asset.scope.experiment_id,
                    asset.scope.run_id,
                )
                if part
            )
            or "workspace",
            asset.size,
            asset.path,
        )
        for asset in assets
    ]
    stdout_console().print(
        make_table(f"Assets in {ws.root}", ["id", "kind", "name", "scope", "size", "path"], rows)
    )


def query_command(
    expression: str,
    *,
    order_by: str | None,
    limit: int | None,
    workspace: Path | None,
    as_json: bool,
    ids: bool = False,
) -> None:
    """``molexp query EXPR``."""
    if limit is not None and limit < 0:
        raise CliUsageError(f"--limit must be 0 or more, got {limit}")
    _check_output(as_json=as_json, ids=ids)
    ws = open_workspace(workspace)
    rows = _query_runs(ws, expression, order_by=order_by, limit=limit)
    _print_runs(rows, f"{len(rows)} run(s) matching {expression!r}", as_json=as_json, ids=ids)
