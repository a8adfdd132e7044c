"""Executing planned runs: in this process, or as parallel ``molexp execute`` subprocesses.

Every execution passes the run's owner heartbeat interval and the remote executor that sends
tasks with a ``remote={"executor": "slurm", ...}`` hint to Slurm (:class:`Executing`). A run is
executed only while its execution lock (``<run_dir>/.molexp-execute.lock``, an OS file
lock released automatically if the process dies) is held, and only if ``decide`` still says so
once the lock is held, so two ``molexp`` processes never execute one run at the same time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import ClaimedElsewhere
from ._plan import (
    DEFAULT_HEARTBEAT_TIMEOUT,
    Action,
    Decision,
    PlannedRun,
    decide,
    describe_owner,
    owner_is_alive,
)
from ._progress import RunProgress
from ._slurm_job import lost_before_start

if TYPE_CHECKING:
    from molexp.workflow import Workflow
    from molexp.workflow.protocols import RemoteExecutor
    from molexp.workspace import ProfileConfig, Run, RunContext

__all__ = [
    "EXECUTE_LOCK_NAME",
    "EXIT_BUSY",
    "ClaimedElsewhere",
    "Executing",
    "ExecutionPolicy",
    "RunOutcome",
    "claim_run",
    "execute_claimed",
    "execute_plan_in_process",
    "execute_plan_in_subprocesses",
    "get_or_create_run",
    "outcome_of",
    "record_script",
    "script_payload",
]

EXECUTE_LOCK_NAME = ".molexp-execute.lock"
EXIT_BUSY = 3
"""Exit code of ``molexp execute`` when another live process is executing the run."""


@dataclass(frozen=True)
class ExecutionPolicy:
    """The ``--rerun-failed`` / ``--force`` switches, re-applied under the execution lock."""

    rerun_failed: bool = False
    force: bool = False
    heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT

    def decide(self, run: Run) -> Decision:
        owner = run.metadata.owner
        return decide(
            str(run.status),
            owner_alive=owner_is_alive(owner, heartbeat_timeout=self.heartbeat_timeout),
            owner=describe_owner(owner),
            rerun_failed=self.rerun_failed,
            force=self.force,
            lost_before_start=lost_before_start(run),
        )


@dataclass(frozen=True)
class Executing:
    """How runs execute: owner heartbeat interval (seconds) and the remote-task executor."""

    heartbeat_interval: float | None = None
    remote_executor: RemoteExecutor | None = None
    runtime: Mapping[str, Any] | None = None
    """Options for ``molexp.workflow.runtime_from_config`` (e.g. the Dask runtime's address)."""


@dataclass
class RunOutcome:
    """What happened to one run: ``executed``, ``failed``, ``skipped`` or ``submitted`` (to a
    scheduler), with the reason."""

    run_id: str
    project: str
    experiment: str
    replica_index: int | None
    action: str
    status: str | None
    duration: float | None
    reason: str
    run_dir: Path

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "project": self.project,
            "experiment": self.experiment,
            "replica_index": self.replica_index,
            "action": self.action,
            "status": self.status,
            "duration": self.duration,
            "reason": self.reason,
            "run_dir": str(self.run_dir),
        }


@contextlib.contextmanager
def claim_run(run_dir: Path) -> Iterator[bool]:
    """Hold the run's execution lock for the body; yields False if another process holds it."""
    from filelock import FileLock, Timeout
    from molexp.assets import file_mode, make_dirs

    make_dirs(run_dir)
    # An explicit umask mode: older filelock releases default to 0o644, which would keep
    # another lab member from executing (resuming) this run.
    lock = FileLock(str(run_dir / EXECUTE_LOCK_NAME), timeout=0, mode=file_mode())
    try:
        lock.acquire()
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


def script_payload(run: Run, spec: Workflow, script: Path) -> dict[str, Any]:
    """The run's workflow snapshot plus the script, working directory, workflow identity and
    the git state of the script's checkout (``{"commit", "dirty"}``; absent outside git).

    ``molexp execute`` re-imports that script from that directory. Existing snapshot keys (e.g.
    the workflow layer's own) are kept.
    """
    payload = {
        **(run.metadata.workflow_snapshot or {}),
        "script": str(script),
        "cwd": str(Path.cwd()),
        "workflow_id": spec.workflow_id,
        "name": spec.name,
    }
    git = git_state(script)
    if git is not None:
        payload["git"] = dict(git)
    return payload


@functools.lru_cache(maxsize=16)
def git_state(script: Path) -> dict[str, Any] | None:
    """The commit checked out where ``script`` lives and whether that commit alone may not
    reproduce it (``{"commit", "dirty"}``: the workflow layer's ``git_checkout``), None
    outside git.

    Asked once per script and invocation: ``molexp run`` and ``molexp execute`` clear the
    cache when they start, so the runs of one invocation record the checkout as it was when
    their script was imported."""
    from molexp.workflow.snapshot_ref import git_checkout

    commit, dirty = git_checkout(script)
    return None if commit is None or dirty is None else {"commit": commit, "dirty": dirty}


def record_script(run: Run, spec: Workflow, script: Path) -> None:
    """Store :func:`script_payload` on the run (no write when it is already there)."""
    payload = script_payload(run, spec, script)
    if payload != (run.metadata.workflow_snapshot or {}):
        run.set_workflow(payload)


class _ScriptKeepingRun:
    """The run as the workflow layer sees it: its own ``set_workflow`` payload is merged with
    the CLI's keys, so the recorded script survives even an attempt that never finishes."""

    def __init__(
        self, run: Run, payload: Mapping[str, Any], heartbeat_interval: float | None
    ) -> None:
        self._run = run
        self._payload = dict(payload)
        self._heartbeat_interval = heartbeat_interval

    @property
    def id(self) -> str:
        return self._run.id

    def start(self, profile_config: Any = None) -> RunContext:
        return self._run.start(
            profile_config=profile_config, heartbeat_interval=self._heartbeat_interval
        )

    def set_workflow(self, payload: Mapping[str, Any]) -> None:
        self._run.set_workflow({**self._payload, **payload})


async def execute_claimed(
    run: Run,
    spec: Workflow,
    profile: ProfileConfig,
    *,
    script: Path,
    executing: Executing = Executing(),
    progress: RunProgress | None = None,
) -> tuple[str, float | None]:
    """Execute ``spec`` under ``run`` (the caller holds the claim); returns (status, seconds).

    A run still marked ``running`` whose owner is gone (a crashed attempt) is reaped to
    ``failed`` first, so the new attempt can start and resume from it.
    """
    if run.status == "running":
        run.reap()
    record_script(run, spec, script)
    payload = script_payload(run, spec, script)
    tracked = _ScriptKeepingRun(run, payload, executing.heartbeat_interval)
    options: dict[str, Any] = {
        "run": tracked,
        "profile_config": profile,
        "raise_on_failure": False,
        "remote_executor": executing.remote_executor,
    }
    from molexp.workspace import RunStateError

    started = time.monotonic()
    try:
        with _runtime_for(executing) as runtime:
            if runtime is not None:
                options["runtime"] = runtime
            if progress is not None and progress.enabled:
                handle = await spec.start(**options)
                while not handle.done():
                    progress.show_tasks(handle.statuses)
                    await asyncio.sleep(0.1)
                await handle
                progress.show_tasks(handle.statuses)
            else:
                await spec.execute(**options)
    except RunStateError as exc:
        run.reload()
        history = run.metadata.execution_history
        if history and (history[-1].host, history[-1].pid) != (socket.gethostname(), os.getpid()):
            raise ClaimedElsewhere(str(exc)) from None
        raise
    elapsed = time.monotonic() - started
    run.reload()
    return str(run.status), elapsed


@contextlib.contextmanager
def _runtime_for(executing: Executing) -> Iterator[Any]:
    """The profile's workflow runtime (None: the default one), closed after the execution."""
    if not executing.runtime:
        yield None
        return
    from molexp.workflow import runtime_from_config

    runtime = runtime_from_config(executing.runtime)
    try:
        yield runtime
    finally:
        close = getattr(runtime, "close", None)
        if callable(close):
            close()


def outcome_of(
    planned: PlannedRun,
    action: str,
    status: str | None,
    reason: str,
    duration: float | None = None,
) -> RunOutcome:
    return RunOutcome(
        run_id=planned.run_id,
        project=planned.project_id,
        experiment=planned.experiment_id,
        replica_index=planned.replica_index,
        action=action,
        status=status,
        duration=duration,
        reason=reason,
        run_dir=planned.run_dir,
    )


def _skipped(planned: PlannedRun) -> RunOutcome:
    return outcome_of(planned, "skipped", planned.status, planned.decision.reason)


def get_or_create_run(planned: PlannedRun) -> Run:
    """The planned run, created on disk if it does not exist yet."""
    return planned.experiment.Run(
        parameters=planned.parameters,
        id=planned.run_id,
        replica_index=planned.replica_index,
        seed=planned.seed,
    )


async def execute_plan_in_process(
    runs: Sequence[PlannedRun],
    *,
    script: Path,
    policy: ExecutionPolicy,
    progress: RunProgress,
    executing_for: Callable[[PlannedRun], Executing] | None = None,
) -> list[RunOutcome]:
    """Execute the plan's runs one after the other in this process."""
    outcomes = []
    for planned in runs:
        if planned.decision.action is not Action.execute:
            outcomes.append(_skipped(planned))
            progress.advance()
            continue
        progress.start_run(f"{planned.project_id}/{planned.experiment_id} #{planned.replica_index}")
        run = get_or_create_run(planned)
        with claim_run(run.run_dir) as claimed:
            if not claimed:
                outcome = outcome_of(
                    planned, "skipped", str(run.status), "being executed by another process"
                )
            else:
                run.reload()
                decision = policy.decide(run)
                if decision.action is Action.skip:
                    outcome = outcome_of(planned, "skipped", str(run.status), decision.reason)
                else:
                    try:
                        status, duration = await execute_claimed(
                            run,
                            planned.workflow,
                            planned.profile,
                            script=script,
                            executing=executing_for(planned) if executing_for else Executing(),
                            progress=progress,
                        )
                    except ClaimedElsewhere as exc:
                        outcome = outcome_of(
                            planned,
                            "skipped",
                            str(run.status),
                            f"being executed by another process: {exc}",
                        )
                    else:
                        action = "executed" if status == "succeeded" else "failed"
                        outcome = outcome_of(
                            planned, action, status, planned.decision.reason, duration
                        )
        outcomes.append(outcome)
        progress.advance()
    return outcomes


def execute_plan_in_subprocesses(
    runs: Sequence[PlannedRun],
    *,
    script: Path,
    policy: ExecutionPolicy,
    profile_args_for: Callable[[PlannedRun], Sequence[str]],
    jobs: int,
    progress: RunProgress,
) -> list[RunOutcome]:
    """Execute the plan's runs as up to ``jobs`` concurrent ``molexp execute RUN_DIR`` processes."""
    outcomes: dict[int, RunOutcome] = {}
    pending: list[tuple[int, PlannedRun]] = []
    for index, planned in enumerate(runs):
        if planned.decision.action is not Action.execute:
            outcomes[index] = _skipped(planned)
            progress.advance()
            continue
        run = get_or_create_run(planned)
        record_script(run, planned.workflow, script)
        pending.append((index, planned))

    policy_args = ["--policy", _policy_name(policy)]
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {
            pool.submit(
                _execute_subprocess, planned, [*profile_args_for(planned), *policy_args]
            ): index
            for index, planned in pending
        }
        for future in as_completed(futures):
            outcomes[futures[future]] = future.result()
            progress.advance()
    return [outcomes[index] for index in range(len(runs))]


def _policy_name(policy: ExecutionPolicy) -> str:
    if policy.force:
        return "force"
    if policy.rerun_failed:
        return "rerun-failed"
    return "default"


def _execute_subprocess(planned: PlannedRun, extra_args: Sequence[str]) -> RunOutcome:
    command = [
        sys.executable,
        "-m",
        "molexp.cli",
        "execute",
        str(planned.run_dir),
        "--json",
        *extra_args,
    ]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    report = _parse_report(completed.stdout)
    if report is None:
        message = completed.stderr.strip().splitlines()
        reason = message[-1] if message else f"molexp execute exited with {completed.returncode}"
        return outcome_of(planned, "failed", None, reason)
    action = str(report.get("action", "failed"))
    reason = planned.decision.reason if action == "executed" else str(report.get("reason", ""))
    return outcome_of(planned, action, report.get("status"), reason, report.get("duration"))


def _parse_report(stdout: str) -> Mapping[str, Any] | None:
    """The JSON report ``molexp execute --json`` printed, or None if there is none."""
    try:
        value = json.loads(stdout)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
