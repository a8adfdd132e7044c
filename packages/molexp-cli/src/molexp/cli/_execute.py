"""Executing planned runs: in this process, or as parallel ``molexp execute`` subprocesses.

A run is executed only while its execution lock (``<run_dir>/.molexp-execute.lock``, an OS file
lock released automatically if the process dies) is held, and only if ``decide`` still says so
once the lock is held, so two ``molexp`` processes never execute one run at the same time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from molexp.workflow import Workflow
    from molexp.workspace import ProfileConfig, Run, RunContext

__all__ = [
    "EXECUTE_LOCK_NAME",
    "EXIT_BUSY",
    "ExecutionPolicy",
    "RunOutcome",
    "claim_run",
    "execute_claimed",
    "execute_plan_in_process",
    "execute_plan_in_subprocesses",
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
        )


@dataclass
class RunOutcome:
    """What happened to one run: ``executed``, ``failed`` or ``skipped`` (with the reason)."""

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

    run_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(run_dir / EXECUTE_LOCK_NAME), timeout=0)
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
    """The run's workflow snapshot plus the script, working directory and workflow identity.

    ``molexp execute`` re-imports that script from that directory. Existing snapshot keys (e.g.
    the workflow layer's own) are kept.
    """
    return {
        **(run.metadata.workflow_snapshot or {}),
        "script": str(script),
        "cwd": str(Path.cwd()),
        "workflow_id": spec.workflow_id,
        "name": spec.name,
    }


def record_script(run: Run, spec: Workflow, script: Path) -> None:
    """Store :func:`script_payload` on the run (no write when it is already there)."""
    payload = script_payload(run, spec, script)
    if payload != (run.metadata.workflow_snapshot or {}):
        run.set_workflow(payload)


class _ScriptKeepingRun:
    """The run as the workflow layer sees it: its own ``set_workflow`` payload is merged with
    the CLI's keys, so the recorded script survives even an attempt that never finishes."""

    def __init__(self, run: Run, payload: Mapping[str, Any]) -> None:
        self._run = run
        self._payload = dict(payload)

    @property
    def id(self) -> str:
        return self._run.id

    def start(self, profile_config: Any = None) -> RunContext:
        return self._run.start(profile_config=profile_config)

    def set_workflow(self, payload: Mapping[str, Any]) -> None:
        self._run.set_workflow({**self._payload, **payload})


async def execute_claimed(
    run: Run,
    spec: Workflow,
    profile: ProfileConfig,
    *,
    script: Path,
    progress: RunProgress | None = None,
) -> tuple[str, float | None]:
    """Execute ``spec`` under ``run`` (the caller holds the claim); returns (status, seconds)."""
    record_script(run, spec, script)
    tracked = _ScriptKeepingRun(run, script_payload(run, spec, script))
    started = time.monotonic()
    if progress is not None and progress.enabled:
        handle = await spec.start(run=tracked, profile_config=profile, raise_on_failure=False)
        while not handle.done():
            progress.show_tasks(handle.statuses)
            await asyncio.sleep(0.1)
        await handle
        progress.show_tasks(handle.statuses)
    else:
        await spec.execute(run=tracked, profile_config=profile, raise_on_failure=False)
    elapsed = time.monotonic() - started
    run.reload()
    return str(run.status), elapsed


def _outcome(
    planned: PlannedRun, action: str, status: str | None, duration: float | None, reason: str
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
    return _outcome(planned, "skipped", planned.status, None, planned.decision.reason)


def _get_or_create_run(planned: PlannedRun) -> Run:
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
) -> list[RunOutcome]:
    """Execute the plan's runs one after the other in this process."""
    outcomes = []
    for planned in runs:
        if planned.decision.action is not Action.execute:
            outcomes.append(_skipped(planned))
            progress.advance()
            continue
        progress.start_run(f"{planned.project_id}/{planned.experiment_id} #{planned.replica_index}")
        run = _get_or_create_run(planned)
        with claim_run(run.run_dir) as claimed:
            if not claimed:
                outcome = _outcome(
                    planned, "skipped", str(run.status), None, "being executed by another process"
                )
            else:
                run.reload()
                decision = policy.decide(run)
                if decision.action is Action.skip:
                    outcome = _outcome(planned, "skipped", str(run.status), None, decision.reason)
                else:
                    status, duration = await execute_claimed(
                        run, planned.workflow, planned.profile, script=script, progress=progress
                    )
                    action = "executed" if status == "succeeded" else "failed"
                    outcome = _outcome(planned, action, status, duration, planned.decision.reason)
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
        run = _get_or_create_run(planned)
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
        return _outcome(planned, "failed", None, None, reason)
    action = str(report.get("action", "failed"))
    reason = planned.decision.reason if action == "executed" else str(report.get("reason", ""))
    return _outcome(planned, action, report.get("status"), report.get("duration"), reason)


def _parse_report(stdout: str) -> Mapping[str, Any] | None:
    """The JSON report ``molexp execute --json`` printed, or None if there is none."""
    try:
        value = json.loads(stdout)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
