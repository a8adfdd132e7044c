"""The typer application: every ``molexp`` command's arguments, options and help.

Command bodies live in ``_cmd_*`` modules and are imported inside each command, so building the
application (and ``molexp --help``) never imports the workspace, workflow or rich rendering code.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["Listing", "app"]

app = typer.Typer(
    name="molexp",
    help="MolExp: run workflows bound to experiments, and inspect the workspace record.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

WorkspaceOption = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        "-w",
        metavar="DIR",
        help="Workspace directory (default: $MOLEXP_WORKSPACE, else the nearest workspace.json "
        "upwards from the current directory).",
        show_default=False,
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print machine-readable JSON only.", show_default=False)
]
IdsOption = Annotated[
    bool,
    typer.Option(
        "--ids",
        help="Print only the run ids, one per line (for shell pipelines).",
        show_default=False,
    ),
]
ProfileOption = Annotated[
    str | None,
    typer.Option(
        "--profile",
        metavar="NAME",
        help="Profile name from molexp.toml (default: 'default').",
        show_default=False,
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        metavar="FILE",
        help="Profile file to use instead of the molexp.toml found beside "
        "the script or in the workspace root.",
        show_default=False,
    ),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="KEY=VALUE",
        help="Override a config value: key.sub=value (repeatable; true/false, "
        "numbers and quoted strings are typed).",
        show_default=False,
    ),
]
HeartbeatOption = Annotated[
    float | None,
    typer.Option(
        "--heartbeat-interval",
        metavar="SECONDS",
        help="Seconds between heartbeats of an executing run (default: the profile's "
        "heartbeat_interval, else 30).",
        show_default=False,
    ),
]
ProjectOption = Annotated[
    list[str] | None,
    typer.Option(
        "--project",
        "-p",
        metavar="PROJECT",
        help="Only this project: id, name or glob such as 'cu-*' (repeatable: any of them).",
        show_default=False,
    ),
]
ExperimentOption = Annotated[
    list[str] | None,
    typer.Option(
        "--experiment",
        "-e",
        metavar="EXPERIMENT",
        help="Only this experiment: id, name or glob such as 'cu-*' (repeatable: any of them).",
        show_default=False,
    ),
]
NarrowProjectOption = Annotated[
    list[str] | None,
    typer.Option(
        "--project",
        "-p",
        metavar="PROJECT",
        help="Look for RUN only in this project: id, name or glob (repeatable).",
        show_default=False,
    ),
]
NarrowExperimentOption = Annotated[
    list[str] | None,
    typer.Option(
        "--experiment",
        "-e",
        metavar="EXPERIMENT",
        help="Look for RUN only in this experiment: id, name or glob (repeatable).",
        show_default=False,
    ),
]
RunArgument = Annotated[
    str,
    typer.Argument(
        help="A run id (unique in the workspace) or a run directory.",
        metavar="RUN",
        show_default=False,
    ),
]


PythonOption = Annotated[
    Path | None,
    typer.Option(
        "--python",
        metavar="PATH",
        help="Python that runs the script (default: python in molexp.toml, else $VIRTUAL_ENV, "
        "else a .venv beside the script, else molexp's own).",
        show_default=False,
    ),
]


class Listing(StrEnum):
    projects = "projects"
    experiments = "experiments"
    runs = "runs"


class Executor(StrEnum):
    local = "local"
    slurm = "slurm"


class Policy(StrEnum):
    default = "default"
    rerun_failed = "rerun-failed"
    force = "force"


@app.command()
def run(
    script: Annotated[
        Path,
        typer.Argument(
            help="Python script that binds workflows to experiments and calls me.entry(ws).",
            metavar="SCRIPT",
        ),
    ],
    profile: ProfileOption = None,
    config: ConfigOption = None,
    set_values: SetOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; change nothing on disk.")
    ] = False,
    rerun_failed: Annotated[
        bool,
        typer.Option(
            "--rerun-failed", help="Execute failed and cancelled runs again (a new attempt)."
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Execute every run again, even succeeded ones.")
    ] = False,
    outdated: Annotated[
        bool,
        typer.Option(
            "--outdated",
            help="Execute succeeded runs again whose tasks changed since their last attempt "
            "(code, task config, run config); unchanged tasks are resumed.",
        ),
    ] = False,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs",
            "-j",
            metavar="N",
            help="Runs executed concurrently (N > 1: one `molexp execute` process per run).",
        ),
    ] = 1,
    project: ProjectOption = None,
    experiment: ExperimentOption = None,
    as_json: JsonOption = False,
    executor: Annotated[
        Executor | None,
        typer.Option(
            "--executor",
            help="local, or slurm: submit the runs of each experiment as one job array "
            "(default: the profile's executor, else local).",
            show_default=False,
        ),
    ] = None,
    partition: Annotated[
        str | None, typer.Option("--partition", help="Slurm partition.", show_default=False)
    ] = None,
    time_limit: Annotated[
        str | None,
        typer.Option(
            "--time",
            metavar="TIME",
            help="Slurm time limit per run: minutes or [D-]HH:MM:SS.",
            show_default=False,
        ),
    ] = None,
    cpus_per_task: Annotated[
        int | None,
        typer.Option(
            "--cpus-per-task", metavar="N", help="Slurm CPUs per run.", show_default=False
        ),
    ] = None,
    mem: Annotated[
        str | None,
        typer.Option(
            "--mem", metavar="SIZE", help="Slurm memory per run (e.g. 4G).", show_default=False
        ),
    ] = None,
    gpus: Annotated[
        str | None,
        typer.Option(
            "--gpus",
            metavar="GPUS",
            help="Slurm GPUs per run (e.g. 1 or a100:2).",
            show_default=False,
        ),
    ] = None,
    account: Annotated[
        str | None, typer.Option("--account", help="Slurm account.", show_default=False)
    ] = None,
    qos: Annotated[str | None, typer.Option("--qos", help="Slurm QOS.", show_default=False)] = None,
    sbatch: Annotated[
        list[str] | None,
        typer.Option(
            "--sbatch",
            metavar="OPTION",
            help="Extra #SBATCH option, e.g. --sbatch=--constraint=avx2 (repeatable).",
            show_default=False,
        ),
    ] = None,
    preamble: Annotated[
        list[str] | None,
        typer.Option(
            "--preamble",
            metavar="LINE",
            help="Shell line run in the job before molexp (e.g. 'module load x'; repeatable).",
            show_default=False,
        ),
    ] = None,
    hold: Annotated[
        bool,
        typer.Option("--hold", help="Submit the job arrays held (start with scontrol release)."),
    ] = False,
    heartbeat_interval: HeartbeatOption = None,
    python: PythonOption = None,
) -> None:
    """Execute the workflows a script binds to experiments, one run per replica.

    Run ids are derived from the parameters, the replica index and the profile, so running the
    same command again finds the same runs: succeeded ones are skipped, failed ones are skipped
    unless --rerun-failed. With --executor slurm (or executor = "slurm" in the profile) the runs
    of each experiment are submitted as one Slurm job array instead.
    """
    from ._cmd_run import ExecutionOverrides, RunOptions, run_command

    slurm = {
        "partition": partition,
        "time": time_limit,
        "cpus_per_task": cpus_per_task,
        "mem": mem,
        "gpus": gpus,
        "account": account,
        "qos": qos,
        "extra_sbatch": sbatch or None,
        "preamble": preamble or None,
        "hold": hold or None,
    }
    code = run_command(
        RunOptions(
            script=script,
            profile=profile,
            config=config,
            overrides=tuple(set_values or ()),
            dry_run=dry_run,
            rerun_failed=rerun_failed,
            force=force,
            outdated=outdated,
            jobs=jobs,
            project=tuple(project or ()),
            experiment=tuple(experiment or ()),
            as_json=as_json,
            execution=ExecutionOverrides(
                executor=None if executor is None else executor.value,
                heartbeat_interval=heartbeat_interval,
                slurm=tuple((key, value) for key, value in slurm.items() if value is not None),
            ),
            python=python,
        )
    )
    raise typer.Exit(code)


@app.command()
def execute(
    run_dir: Annotated[
        Path, typer.Argument(help="The run directory to execute.", metavar="RUN_DIR")
    ],
    profile: ProfileOption = None,
    config: ConfigOption = None,
    set_values: SetOption = None,
    as_json: JsonOption = False,
    policy: Annotated[Policy | None, typer.Option("--policy", hidden=True)] = None,
    task: Annotated[
        str | None,
        typer.Option(
            "--task",
            metavar="NAME",
            help="Execute only this remote task of the run, with the inputs its submitter left "
            "in <run_dir>/remote/NAME/ (what a remote task's Slurm job runs).",
            show_default=False,
        ),
    ] = None,
    call_id: Annotated[str | None, typer.Option("--call-id", hidden=True)] = None,
    slurm_job: Annotated[str | None, typer.Option("--slurm-job", hidden=True)] = None,
    heartbeat_interval: HeartbeatOption = None,
    python: PythonOption = None,
) -> None:
    """Execute one run in this process (the worker entry for schedulers).

    Re-imports the script recorded on the run, finds the workflow bound to the run's experiment
    and executes it under the run, with the profile given here or else the one stored on the
    run. Exits 1 if the run fails, 3 if another live process is executing it.
    """
    from ._cmd_run import WorkerOptions, execute_command

    code = execute_command(
        run_dir,
        profile=profile,
        config=config,
        overrides=tuple(set_values or ()),
        as_json=as_json,
        policy=None if policy is None else policy.value,
        worker=WorkerOptions(
            task=task,
            call_id=call_id,
            slurm_job=slurm_job,
            heartbeat_interval=heartbeat_interval,
        ),
        python=python,
    )
    raise typer.Exit(code)


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Workspace directory.", metavar="PATH")] = Path(),
    name: Annotated[
        str | None,
        typer.Option(
            "--name", help="Workspace name (default: the directory name).", show_default=False
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create (materialize) a workspace; an existing one is left as it is."""
    from ._cmd_manage import init_command

    init_command(path, name=name, as_json=as_json)


@app.command("ls")
def list_command(
    what: Annotated[
        Listing | None,
        typer.Argument(
            help="projects, experiments or runs (default: an overview tree).",
            metavar="WHAT",
        ),
    ] = None,
    project: ProjectOption = None,
    experiment: ExperimentOption = None,
    status: Annotated[
        str | None,
        typer.Option(
            "--status", metavar="STATUS", help="Only runs with this status.", show_default=False
        ),
    ] = None,
    where: Annotated[
        str | None,
        typer.Option(
            "--where",
            metavar="EXPR",
            help="Only runs matching this query (see `molexp query`).",
            show_default=False,
        ),
    ] = None,
    outdated: Annotated[
        bool,
        typer.Option(
            "--outdated",
            help="Only succeeded runs whose tasks changed since in the script that created them "
            "(it is imported again; nothing is written), naming the changed tasks.",
            show_default=False,
        ),
    ] = False,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
    ids: IdsOption = False,
) -> None:
    """List projects, experiments or runs (an overview tree by default)."""
    from ._cmd_inspect import ls_command

    ls_command(
        None if what is None else what.value,
        project=tuple(project or ()),
        experiment=tuple(experiment or ()),
        status=status,
        where=where,
        workspace=workspace,
        as_json=as_json,
        ids=ids,
        outdated=outdated,
    )


AttemptOption = Annotated[
    int | None,
    typer.Option(
        "--attempt",
        metavar="N",
        help="One attempt of the run (1 is the first; default: the latest).",
        show_default=False,
    ),
]


@app.command()
def show(
    run: RunArgument,
    attempt: Annotated[
        int | None,
        typer.Option(
            "--attempt",
            metavar="N",
            help="Show attempt N: its results, artifacts, logs and what changed from N-1.",
            show_default=False,
        ),
    ] = None,
    project: NarrowProjectOption = None,
    experiment: NarrowExperimentOption = None,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a run: parameters, config and its hash, status, attempts, results and assets."""
    from ._cmd_inspect import show_command
    from ._resolve import Selection

    show_command(
        run,
        workspace=workspace,
        as_json=as_json,
        attempt=attempt,
        selection=Selection.of(project, experiment),
    )


@app.command()
def diff(
    run_a: Annotated[
        str,
        typer.Argument(
            help="The first run: an id (unique in the workspace) or a run directory.",
            metavar="RUN_A",
            show_default=False,
        ),
    ],
    run_b: Annotated[
        str,
        typer.Argument(
            help="The second run, compared with the first.", metavar="RUN_B", show_default=False
        ),
    ],
    show_all: Annotated[
        bool, typer.Option("--all", help="List every field, the same ones too.")
    ] = False,
    project: NarrowProjectOption = None,
    experiment: NarrowExperimentOption = None,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """What differs between two runs: parameters, profile, config, workflow, results, and where
    their latest attempts ran."""
    from ._cmd_diff import diff_command
    from ._resolve import Selection

    diff_command(
        run_a,
        run_b,
        workspace=workspace,
        as_json=as_json,
        show_all=show_all,
        selection=Selection.of(project, experiment),
    )


@app.command()
def metrics(
    run: RunArgument,
    name: Annotated[
        str | None,
        typer.Argument(
            help="A metric: print its points (default: last, min, max and points of each).",
            metavar="NAME",
            show_default=False,
        ),
    ] = None,
    project: NarrowProjectOption = None,
    experiment: NarrowExperimentOption = None,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print a run's metric series: a summary of each, or the points of NAME."""
    from ._cmd_metrics import metrics_command
    from ._resolve import Selection

    metrics_command(
        run,
        name,
        workspace=workspace,
        as_json=as_json,
        selection=Selection.of(project, experiment),
    )


@app.command()
def logs(
    run: RunArgument,
    name: Annotated[
        str | None,
        typer.Argument(
            help="Log name (default: every log of the run).", metavar="NAME", show_default=False
        ),
    ] = None,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            "-f",
            help="Keep printing new lines while the run is running; for a queued run, wait "
            "for it to start writing the log.",
        ),
    ] = False,
    tail: Annotated[
        int | None,
        typer.Option(
            "--tail", "-n", metavar="N", help="Only the last N lines.", show_default=False
        ),
    ] = None,
    attempt: AttemptOption = None,
    project: NarrowProjectOption = None,
    experiment: NarrowExperimentOption = None,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print a run's logs (those of its latest attempt, unless --attempt names another)."""
    from ._cmd_inspect import logs_command
    from ._resolve import Selection

    logs_command(
        run,
        name,
        follow=follow,
        tail=tail,
        workspace=workspace,
        attempt=attempt,
        selection=Selection.of(project, experiment),
        as_json=as_json,
    )


@app.command()
def artifacts(
    run: RunArgument,
    attempt: AttemptOption = None,
    project: NarrowProjectOption = None,
    experiment: NarrowExperimentOption = None,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """List a run's artifacts (the latest of each name, or those attempt N showed)."""
    from ._cmd_inspect import artifacts_command
    from ._resolve import Selection

    artifacts_command(
        run,
        workspace=workspace,
        as_json=as_json,
        attempt=attempt,
        selection=Selection.of(project, experiment),
    )


@app.command()
def assets(
    kind: Annotated[
        str | None,
        typer.Option(
            "--kind",
            metavar="KIND",
            help="Only assets of this kind (data, "
            "artifact, log, checkpoint, error_trace, "
            "execution_state).",
            show_default=False,
        ),
    ] = None,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the workspace's asset catalog."""
    from ._cmd_inspect import assets_command

    assets_command(kind=kind, workspace=workspace, as_json=as_json)


class ExportFormat(StrEnum):
    ro_crate = "ro-crate"


@app.command()
def export(
    target: Annotated[
        str,
        typer.Argument(
            help="What to export: a run (id or directory), an experiment or a project (id or "
            "name); every run of an experiment or project is exported.",
            metavar="TARGET",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            metavar="PATH",
            help="Where to write: a .zip file, or else a directory.",
            show_default=False,
        ),
    ],
    export_format: Annotated[
        ExportFormat,
        typer.Option("--format", help="Export format (a Workflow Run RO-Crate)."),
    ] = ExportFormat.ro_crate,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing output (a zip, or a crate).")
    ] = False,
    license_id: Annotated[
        str | None,
        typer.Option(
            "--license",
            metavar="LICENSE",
            help="License of the crate, e.g. https://spdx.org/licenses/CC-BY-4.0.",
            show_default=False,
        ),
    ] = None,
    project: Annotated[
        list[str] | None,
        typer.Option(
            "--project",
            "-p",
            metavar="PROJECT",
            help="Look for TARGET only in this project: id, name or glob (repeatable).",
            show_default=False,
        ),
    ] = None,
    experiment: Annotated[
        list[str] | None,
        typer.Option(
            "--experiment",
            "-e",
            metavar="EXPERIMENT",
            help="Look for TARGET only in this experiment: id, name or glob (repeatable).",
            show_default=False,
        ),
    ] = None,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Export runs for publication: a Workflow Run RO-Crate with the workflow source,
    parameters, config, results, metrics, artifacts (sha256), logs, every attempt and its
    environment, and the assets runs used and produced (needs molexp-cli[export])."""
    from ._cmd_export import export_command
    from ._resolve import Selection

    export_command(
        target,
        output=output,
        export_format=export_format.value,
        force=force,
        license_id=license_id,
        workspace=workspace,
        as_json=as_json,
        selection=Selection.of(project, experiment),
    )


@app.command()
def status(
    runs: Annotated[
        list[str] | None,
        typer.Argument(
            help="Run ids or run directories (default: every queued or running run).",
            metavar="RUN...",
            show_default=False,
        ),
    ] = None,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show queued and running runs with the scheduler state of their jobs."""
    from ._cmd_cluster import status_command

    status_command(runs or [], workspace=workspace, as_json=as_json)


@app.command()
def sync(
    heartbeat_timeout: Annotated[
        float,
        typer.Option(
            "--heartbeat-timeout",
            metavar="SECONDS",
            help="Seconds without heartbeat after which a running run on another host is stale.",
        ),
    ] = 600.0,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Reconcile runs with Slurm (ended, lost or held jobs) and reap runs whose owner died."""
    from ._cmd_cluster import sync_command

    sync_command(heartbeat_timeout=heartbeat_timeout, workspace=workspace, as_json=as_json)


@app.command()
def cancel(
    run: RunArgument, workspace: WorkspaceOption = None, as_json: JsonOption = False
) -> None:
    """Mark a pending, queued or running run as cancelled (and scancel its Slurm job)."""
    from ._cmd_manage import cancel_command

    cancel_command(run, workspace=workspace, as_json=as_json)


@app.command()
def reap(
    heartbeat_timeout: Annotated[
        float,
        typer.Option(
            "--heartbeat-timeout",
            metavar="SECONDS",
            help="Seconds without heartbeat after which a run on another host is stale.",
        ),
    ] = 600.0,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Mark stale running runs (dead owner process, or silent for too long) as failed."""
    from ._cmd_manage import reap_command

    reap_command(heartbeat_timeout=heartbeat_timeout, workspace=workspace, as_json=as_json)


@app.command()
def profiles(
    location: Annotated[
        Path | None,
        typer.Argument(
            help="A script or directory whose molexp.toml to read (default: current directory).",
            metavar="SCRIPT_OR_DIR",
            show_default=False,
        ),
    ] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the profiles of a molexp.toml with each merged config and its config_hash."""
    from ._cmd_manage import profiles_command

    profiles_command(location, config=config, as_json=as_json)


@app.command()
def query(
    expression: Annotated[
        str,
        typer.Argument(
            help="e.g. 'lr < 1e-3 or batch == 64', 'status == \"failed\" and params.depth >= 3'.",
            metavar="EXPR",
        ),
    ],
    order_by: Annotated[
        str | None,
        typer.Option(
            "--order-by",
            metavar="FIELD",
            help="Field to sort by; prefix with - for descending.",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", metavar="N", help="At most N runs.", show_default=False)
    ] = None,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
    ids: IdsOption = False,
) -> None:
    """Query the run index."""
    from ._cmd_inspect import query_command

    query_command(
        expression, order_by=order_by, limit=limit, workspace=workspace, as_json=as_json, ids=ids
    )


@app.command()
def serve(
    workspace: WorkspaceOption = None,
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Address to bind. Anything but loopback requires a token (one is generated "
            "and printed when --token is not given).",
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8765,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            metavar="TOKEN",
            help="Require this access token on every request.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the workspace's API (/api/v1) and web UI until interrupted."""
    from ._cmd_serve import serve_command

    serve_command(workspace=workspace, host=host, port=port, token=token)


@app.command()
def pull(
    source: Annotated[
        str | None,
        typer.Argument(
            help="The remote workspace, ssh://user@host[:port]/path (default: --profile's "
            "[remote] table).",
            metavar="SOURCE",
            show_default=False,
        ),
    ] = None,
    profile: ProfileOption = None,
    config: ConfigOption = None,
    project: ProjectOption = None,
    experiment: ExperimentOption = None,
    artifacts: Annotated[
        list[str] | None,
        typer.Option(
            "--artifacts",
            metavar="GLOB",
            help="Also mirror the artifacts matching GLOB (their name or path under artifacts/; "
            "repeatable). Records, logs and metrics are always mirrored.",
            show_default=False,
        ),
    ] = None,
    workspace: Annotated[
        Path | None,
        typer.Option(
            "--workspace",
            "-w",
            metavar="DIR",
            help="The local mirror (created if missing; default: $MOLEXP_WORKSPACE).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Mirror a remote workspace's records, logs and chosen artifacts here, incrementally."""
    from ._cmd_remote import pull_command

    pull_command(
        source,
        profile=profile,
        config=config,
        workspace=workspace,
        projects=project or [],
        experiments=experiment or [],
        artifacts=artifacts or [],
        as_json=as_json,
    )
