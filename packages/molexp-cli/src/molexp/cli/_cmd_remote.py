"""Working on a cluster over SSH: ``molexp run`` with a remote profile, ``-w ssh://``, ``pull``.

``molexp run SCRIPT --profile NAME`` where the profile has a ``[remote]`` table stages the script
(``_stage``) on the login host and runs the remote ``PYTHON -m molexp.cli run <staged script>
--profile NAME --executor slurm --json`` there, detached from the connection (``_agent detach``):
planning, run ids and the Slurm bridge's guarantees are the remote's own, and a connection lost
mid-submission never cuts the submission in half; running the same command again finds the runs
queued with live jobs and skips them. The remote summary is rendered here.

``molexp status|sync|ls|show|logs|cancel|... -w ssh://user@host[:port]/path`` runs the same
command on the host against that workspace and passes its output through (:func:`forward`).

``molexp pull`` mirrors records, logs and chosen artifacts into a local workspace (``_pull``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ._errors import CliError, CliUsageError, one_line
from ._ssh import (
    SSH_FAILED,
    RemoteSettings,
    Ssh,
    SshError,
    describe_ssh_failure,
    format_ssh_url,
    is_ssh_url,
    parse_ssh_url,
    remote_shell_command,
)

if TYPE_CHECKING:
    from ._cmd_run import RunOptions

__all__ = ["FORWARDED", "REMOTE_SIDE_ENV", "forward", "pull_command", "remote_run"]

REMOTE_SIDE_ENV = "MOLEXP_ON_REMOTE"
"""Set in the remote ``molexp run``: the profile's ``[remote]`` table names where it already is."""
REMOTE_PYTHON_ENV = "MOLEXP_REMOTE_PYTHON"
FORWARDED = (
    "status",
    "sync",
    "ls",
    "show",
    "logs",
    "cancel",
    "query",
    "artifacts",
    "metrics",
    "reap",
    "diff",
    "assets",
)
"""Commands that run on the remote host with ``-w ssh://...``."""


def _agent(remote: RemoteSettings, *args: str) -> str:
    return remote_shell_command([remote.python, "-m", "molexp.cli._agent", *args])


# -- molexp run ----------------------------------------------------------------------------------


def remote_settings_for(options: RunOptions, script: Path) -> tuple[RemoteSettings, Path] | None:
    """The profile's ``[remote]`` table and its file, when this run goes to a remote host."""
    from .profiles import ProfileFile, find_profile_file

    if os.environ.get(REMOTE_SIDE_ENV):
        return None
    path = options.config or find_profile_file([script.parent])
    if path is None:
        return None
    settings = ProfileFile.load(path).execution(options.profile, options.overrides)
    return None if settings.remote is None else (settings.remote, path)


def _frames(blobs: dict[str, bytes]) -> bytes:
    import hashlib

    parts = []
    for digest, data in blobs.items():
        parts.append(json.dumps({"path": digest, "size": len(data)}).encode() + b"\n")
        parts.append(data)
        parts.append(json.dumps({"sha256": hashlib.sha256(data).hexdigest()}).encode() + b"\n")
    parts.append(b'{"end": true}\n')
    return b"".join(parts)


def stage(ssh: Ssh, remote: RemoteSettings, script: Path, profile_file: Path | None) -> str:
    """Upload what the remote lacks and materialize the tree; the staged script's path."""
    from ._stage import stage_plan

    tree = stage_plan(script, profile_file, remote.workspace)
    blobs = tree.blobs()
    answer = ssh.check(
        ssh.run(
            _agent(remote, "missing", remote.stage_dir), input=json.dumps(list(blobs)).encode()
        ),
        "finding the staged files",
    )
    missing = set(json.loads(answer))
    payload = _frames({d: b for d, b in blobs.items() if d in missing})
    payload += json.dumps(tree.spec()).encode()
    answer = ssh.check(
        ssh.run(_agent(remote, "stage", remote.stage_dir, remote.workspace), input=payload),
        "staging the script",
    )
    return f"{json.loads(answer)['tree']}/{tree.script}"


def remote_run(options: RunOptions, remote: RemoteSettings, profile_file: Path) -> int:
    """``molexp run`` on the remote host (see the module doc); returns its exit code."""
    from ._cmd_run import ExecutionOverrides

    if options.python is not None:
        raise CliUsageError(
            "--python names a local interpreter; a remote profile runs its [remote] python"
        )
    script = options.script
    ssh = Ssh.to(remote.target)
    staged = stage(ssh, remote, script, profile_file)
    execution = options.execution
    if execution.executor is None:
        execution = replace(execution, executor="slurm")
    remote_options = replace(
        options,
        script=Path(staged),
        config=None,
        python=None,
        as_json=options.as_json or not options.dry_run,
        execution=ExecutionOverrides(
            execution.executor, execution.heartbeat_interval, execution.slurm
        ),
    )
    call_dir = f"{remote.stage_dir}/calls/{uuid.uuid4().hex}"
    argv = [remote.python, "-m", "molexp.cli._agent", "detach", call_dir, "--"]
    argv += [remote.python, "-m", "molexp.cli", "run", *remote_options.to_args()]
    env = {
        "MOLEXP_WORKSPACE": remote.workspace,
        REMOTE_SIDE_ENV: "1",
        "MOLEXP_PYTHON_CHOSEN": remote.python,
    }
    command = remote_shell_command(argv, env=env, cwd=str(Path(staged).parent))
    completed = ssh.run(command)
    sys.stderr.write(completed.stderr.decode(errors="replace"))
    sys.stderr.flush()
    output = completed.stdout.decode(errors="replace")
    if options.as_json or options.dry_run or not output.strip():
        sys.stdout.write(output)
        sys.stdout.flush()
        return completed.returncode
    try:
        summary = json.loads(output)
    except ValueError:
        sys.stdout.write(output)
        return completed.returncode
    _print_remote_summary(summary, remote, options)
    return completed.returncode


def _print_remote_summary(
    summary: dict[str, Any], remote: RemoteSettings, options: RunOptions
) -> None:
    from ._launcher import launcher
    from ._output import format_duration, make_table, stdout_console

    console = stdout_console()
    rows = [
        (
            r["run_id"],
            f"{r['project']}/{r['experiment']}",
            r["replica_index"],
            r["status"] or "-",
            format_duration(r["duration"]),
            r["action"],
            r["reason"],
        )
        for r in summary.get("runs", [])
    ]
    where = remote.target.describe()
    console.print(
        make_table(
            f"Runs on {where}",
            ["run id", "experiment", "replica", "status", "duration", "action", "reason"],
            rows,
        )
    )
    counts = {k: summary.get(k, 0) for k in ("executed", "failed", "skipped", "submitted")}
    submitted = f", {counts['submitted']} submitted" if counts["submitted"] else ""
    console.print(
        f"{counts['executed']} executed, {counts['failed']} failed, {counts['skipped']} skipped"
        + submitted
    )
    url = format_ssh_url(remote.target, remote.workspace)
    profile = f" --profile {options.profile}" if options.profile else ""
    molexp = launcher()
    console.print(f"records: {url}", highlight=False, soft_wrap=True)
    console.print(f"status:  {molexp} status -w {url}", highlight=False, soft_wrap=True)
    console.print(f"pull:    {molexp} pull{profile} -w LOCAL_DIR", highlight=False, soft_wrap=True)


# -- -w ssh://... ---------------------------------------------------------------------------------


def _workspace_url(args: Sequence[str]) -> tuple[int, int, str] | None:
    """``(index of the option, number of args it spans, URL)`` of an ``ssh://`` workspace."""
    for index, arg in enumerate(args):
        if arg == "--":
            return None
        if arg in {"-w", "--workspace"} and index + 1 < len(args) and is_ssh_url(args[index + 1]):
            return index, 2, args[index + 1]
        for prefix in ("--workspace=", "-w"):
            if arg.startswith(prefix) and is_ssh_url(arg[len(prefix) :]):
                return index, 1, arg[len(prefix) :]
    return None


def remote_for_url(url: str, *, cwd: Path | None = None) -> RemoteSettings:
    """The remote of an ``ssh://`` workspace: a profile of the nearest ``molexp.toml`` whose
    ``[remote]`` has this host and workspace gives its python and ssh options; else
    ``$MOLEXP_REMOTE_PYTHON``, else ``python3`` on the remote PATH."""
    from .profiles import PROFILE_FILENAME, ProfileError, ProfileFile

    try:
        target, path = parse_ssh_url(url)
    except ValueError as exc:
        raise CliUsageError(str(exc)) from None
    start = (cwd or Path.cwd()).resolve()
    for directory in (start, *start.parents):
        candidate = directory / PROFILE_FILENAME
        if not candidate.is_file():
            continue
        try:
            profiles = ProfileFile.load(candidate)
            for name in profiles.names:
                remote = profiles.execution(name).remote
                if (
                    remote is not None
                    and remote.target.host == target.host
                    and remote.workspace == path
                    and (target.port is None or target.port == remote.target.port)
                ):
                    return remote
        except ProfileError:
            pass
        break
    python = os.environ.get(REMOTE_PYTHON_ENV, "").strip() or "python3"
    return RemoteSettings(target=target, workspace=path, python=python)


def forward(args: Sequence[str]) -> int | None:
    """Run ``molexp ARGS`` on the remote host when ``-w`` is an ``ssh://`` URL (else None)."""
    found = _workspace_url(args)
    if found is None:
        return None
    command = next((a for a in args if not a.startswith("-")), "")
    if command == "pull":
        return None
    if command not in FORWARDED:
        raise CliUsageError(
            f"-w ssh://... works with {', '.join(FORWARDED)}; `molexp run` goes to a remote "
            "host through a profile with a [remote] table"
        )
    index, span, url = found
    remote = remote_for_url(url)
    rest = [*args[:index], *args[index + span :]]
    argv = [remote.python, "-m", "molexp.cli", *rest, "--workspace", remote.workspace]
    ssh = Ssh.to(remote.target)
    sys.stdout.flush()
    # stdin closed (ssh -n): ssh must not swallow the input of a `while read` loop around it
    process = subprocess.Popen(
        ssh.argv(remote_shell_command(argv)), stdin=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, err = process.communicate()
    if process.returncode == SSH_FAILED:
        raise SshError(describe_ssh_failure(remote.target, err.decode(errors="replace")))
    sys.stderr.write(err.decode(errors="replace"))
    sys.stderr.flush()
    return process.returncode


# -- molexp pull ---------------------------------------------------------------------------------


def _pull_source(source: str | None, profile: str | None, config: Path | None) -> RemoteSettings:
    from .profiles import ProfileFile, find_profile_file

    if source is not None and profile is not None:
        raise CliUsageError("give either SOURCE (ssh://...) or --profile, not both")
    if source is not None:
        if not is_ssh_url(source):
            raise CliUsageError(f"SOURCE must be ssh://user@host[:port]/path, got {source!r}")
        return remote_for_url(source)
    path = config or find_profile_file([Path.cwd()])
    if path is None:
        raise CliUsageError(
            "nothing to pull from: give ssh://user@host/path or --profile NAME (a profile of "
            "the molexp.toml here with a [remote] table)"
        )
    remote = ProfileFile.load(path).execution(profile).remote
    if remote is None:
        raise CliUsageError(f"{path}: profile {profile or 'default'!r} has no [remote] table")
    return remote


def _local_root(workspace: Path | None) -> Path:
    from ._resolve import WORKSPACE_ENV

    if workspace is None:
        named = os.environ.get(WORKSPACE_ENV, "").strip()
        if not named:
            raise CliUsageError("name the local mirror with -w DIR (created if missing)")
        workspace = Path(named)
    root = workspace.expanduser().absolute()
    if root.exists() and not root.is_dir():
        raise CliUsageError(f"-w {workspace}: not a directory")
    root.mkdir(parents=True, exist_ok=True)
    return root


def pull_command(
    source: str | None,
    *,
    profile: str | None,
    config: Path | None,
    workspace: Path | None,
    projects: Sequence[str],
    experiments: Sequence[str],
    artifacts: Sequence[str],
    as_json: bool,
) -> None:
    """``molexp pull``: mirror a remote workspace incrementally (see ``_pull``)."""
    from molexp.workspace.layout import WORKSPACE_FILE

    from ._output import print_json
    from ._pull import PullState, plan_pull, state_path

    remote = _pull_source(source, profile, config)
    root = _local_root(workspace)
    url = format_ssh_url(remote.target, remote.workspace)
    ssh = Ssh.to(remote.target)
    args = [remote.workspace]
    for flag, values in (("--project", projects), ("--experiment", experiments)):
        for value in values:
            args += [flag, value]
    for glob in artifacts:
        args += ["--artifacts", glob]
    manifest = json.loads(
        ssh.check(ssh.run(_agent(remote, "manifest", *args)), "listing the workspace")
    )
    if not manifest:
        raise CliError(f"{url} is not a MolExp workspace (no {WORKSPACE_FILE})")
    state_file = state_path(root, url)
    state = PullState.load(state_file, url)
    local_ws = root / WORKSPACE_FILE
    if local_ws.is_file() and WORKSPACE_FILE not in state.files:
        remote_ws = next(e for e in manifest if e["path"] == WORKSPACE_FILE)
        from ._agent import file_sha256

        if file_sha256(local_ws) != remote_ws["sha256"]:
            raise CliError(
                f"{root} is another workspace, not a mirror of {url}: pull into an empty directory"
            )
    plan = plan_pull(manifest, state, root)
    for rel, sha in plan.unchanged:
        if state.files.get(rel, {}).get("sha256") != sha:
            state.record(rel, root / rel, sha)
    transferred, size, corrupt = _fetch(ssh, remote, root, plan.fetch, state, state_file)
    state.save(state_file)
    for rel, why in plan.conflicts:
        sys.stderr.write(f"warning: {rel}: {why}; not overwritten\n")
    if corrupt:
        raise CliError(
            f"{len(corrupt)} file(s) arrived corrupted ({corrupt[0]}, ...): run molexp pull again"
        )
    report = {
        "source": url,
        "workspace": str(root),
        "transferred": transferred,
        "bytes": size,
        "unchanged": len(plan.unchanged),
        "skipped": [{"path": rel, "reason": why} for rel, why in plan.conflicts],
    }
    if as_json:
        print_json(report)
        return
    print(
        f"pulled {transferred} file(s) ({size} bytes) from {url}: {len(plan.unchanged)} up to "
        f"date, {len(plan.conflicts)} skipped (changed here)"
    )
    print(f"browse: molexp serve -w {root}")


def _fetch(
    ssh: Ssh,
    remote: RemoteSettings,
    root: Path,
    entries: Sequence[Any],
    state: Any,
    state_file: Path,
) -> tuple[int, int, list[str]]:
    """Stream ``entries`` from the remote into place; (files written, bytes, corrupt paths)."""
    import time

    from ._agent import read_stream

    if not entries:
        return 0, 0, []
    paths = [str(e["path"]) for e in entries]
    process = ssh.popen(_agent(remote, "send", remote.workspace))
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None
    process.stdin.write(json.dumps(paths).encode())
    process.stdin.close()
    written, size, corrupt = 0, 0, []
    last_save = time.monotonic()

    def open_target(rel: str) -> tuple[IO[bytes], Any]:
        final = root / rel
        final.parent.mkdir(parents=True, exist_ok=True)
        temp = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.pull-tmp")
        handle = temp.open("wb")

        def finish(ok: bool) -> None:
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
            if ok:
                temp.replace(final)
            else:
                temp.unlink(missing_ok=True)

        return handle, finish

    try:
        for rel, digest, length in read_stream(process.stdout, open_target):
            if digest is None:
                if length:
                    corrupt.append(rel)
                continue
            state.record(rel, root / rel, digest)
            written += 1
            size += length
            if time.monotonic() - last_save > 2:
                state.save(state_file)
                last_save = time.monotonic()
    except ValueError as exc:
        process.kill()
        err = process.stderr.read().decode(errors="replace")
        process.wait()
        state.save(state_file)
        if process.returncode == SSH_FAILED or "closed" in err:
            raise SshError(
                describe_ssh_failure(remote.target, err) + "; run molexp pull again to resume"
            ) from None
        raise SshError(
            f"pull from {remote.target.describe()} broke off: {one_line(str(exc))}; "
            "run molexp pull again to resume"
        ) from None
    process.wait()
    return written, size, corrupt
