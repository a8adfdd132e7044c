"""The Slurm bridge for whole runs: submit them as job arrays, then reconcile them with Slurm.

Submitting (``molexp run --executor slurm``): the runs to execute of one experiment become ONE
job array (one ``sbatch`` call; more than ``MAX_ARRAY_SIZE`` runs are split). Under the
experiment's submission lock (``<experiment>/slurm/.submit.lock``) every run is decided again,
then the submission directory ``<experiment>/slurm/<submission>/`` receives the batch script
``job.sh`` and the manifest ``runs.txt`` (line ``i + 1``: the run directory of array index
``i``). The array is submitted held, each run is marked ``queued`` with a :class:`SlurmJobInfo`
(job id, array index, profile, script...) in its new execution record, the per-index log
paths ``<i>.out``/``<i>.err`` are made links to ``slurm.out``/``slurm.err`` in that attempt's
execution directory, and only then is the array released: a task can never start before its
run records the job. A held array whose submitter died before releasing it is released by the
next ``molexp run``/``sync`` (unless it was submitted with ``hold``).

Reconciling (``molexp sync``, ``molexp status``, and ``molexp run`` before it plans): for every
run still ``queued``/``running`` whose current attempt is a Slurm job, ``squeue`` (live) then
``sacct`` (finished) tell what became of the job. A job that ended without the run ending
(walltime ``TIMEOUT``, ``scancel`` -> ``CANCELLED``, ``NODE_FAIL``, ``OUT_OF_MEMORY``, a worker
that died...) or that neither command knows any more ends the attempt ``failed`` (or
``cancelled``) with the scheduler's reason as the run's ``ErrorInfo``.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from molexp.assets import atomic_write_text, file_mode, make_dirs

from ._errors import one_line
from ._execute import ExecutionPolicy, RunOutcome, get_or_create_run, outcome_of
from ._plan import Action, PlannedRun
from ._slurm import SlurmClient, SlurmError
from ._slurm_job import LOST_ERROR_TYPE, SlurmJobInfo, current_job
from ._slurm_script import MAX_ARRAY_SIZE, ArrayScript, render_array_script
from ._slurm_text import JobKey, JobPhase, JobState

if TYPE_CHECKING:
    from molexp.workspace import Run

    from .profiles import ExecutionSettings

__all__ = ["JobReport", "reconcile", "slurm_runs", "submit_runs"]

SLURM_DIR = "slurm"
SUBMIT_LOCK = ".submit.lock"
STDOUT_NAME = "slurm.out"
STDERR_NAME = "slurm.err"


def _now() -> datetime:
    return datetime.now(UTC)


# -- submission --------------------------------------------------------------------------------


def _groups(runs: Sequence[PlannedRun]) -> Iterator[list[PlannedRun]]:
    by_experiment: dict[Path, list[PlannedRun]] = {}
    for planned in runs:
        by_experiment.setdefault(Path(planned.experiment.experiment_dir), []).append(planned)
    for group in by_experiment.values():
        for start in range(0, len(group), MAX_ARRAY_SIZE):
            yield group[start : start + MAX_ARRAY_SIZE]


def submit_runs(
    runs: Sequence[PlannedRun],
    *,
    settings: ExecutionSettings,
    script: Path,
    policy: ExecutionPolicy,
    client: SlurmClient,
    python: str | None = None,
) -> list[RunOutcome]:
    """Submit the planned runs to execute as job arrays (one per experiment); one outcome each.

    Runs whose decision is ``skip`` are reported skipped without being touched.
    """
    from filelock import FileLock

    outcomes: dict[str, RunOutcome] = {}
    to_submit = []
    for planned in runs:
        if planned.decision.action is Action.execute:
            to_submit.append(planned)
        else:
            outcomes[planned.run_id] = outcome_of(
                planned, "skipped", planned.status, planned.decision.reason
            )
    for group in _groups(to_submit):
        slurm_dir = Path(group[0].experiment.experiment_dir) / SLURM_DIR
        make_dirs(slurm_dir)
        # An explicit umask mode: older filelock releases default to 0o644, which would
        # keep the rest of a lab from submitting runs of this experiment.
        with FileLock(str(slurm_dir / SUBMIT_LOCK), mode=file_mode()):
            for outcome in _submit_group(
                group, slurm_dir, settings, script, policy, client, python or sys.executable
            ):
                outcomes[outcome.run_id] = outcome
    return [outcomes[planned.run_id] for planned in runs]


def _submit_group(
    group: Sequence[PlannedRun],
    slurm_dir: Path,
    settings: ExecutionSettings,
    script: Path,
    policy: ExecutionPolicy,
    client: SlurmClient,
    python: str,
) -> list[RunOutcome]:
    outcomes: list[RunOutcome] = []
    selected: list[tuple[PlannedRun, Run]] = []
    for planned in group:
        run = get_or_create_run(planned)
        decision = policy.decide(run)
        if decision.action is Action.skip:
            outcomes.append(outcome_of(planned, "skipped", str(run.status), decision.reason))
            continue
        if run.status == "running":  # a crashed attempt (--rerun-failed): end it first
            run.reap(heartbeat_timeout=policy.heartbeat_timeout)
        selected.append((planned, run))
    if not selected:
        return outcomes
    stamp = _now().strftime("%Y%m%dT%H%M%S")
    files = ArrayScript(slurm_dir / f"{stamp}-{uuid.uuid4().hex[:6]}")
    files.directory.mkdir(parents=True)
    atomic_write_text(
        files.manifest, "".join(f"{run.run_dir}\n" for _, run in selected), durable=False
    )
    experiment = group[0].experiment
    options = settings.slurm
    text = render_array_script(
        files,
        options,
        count=len(selected),
        job_name=f"molexp-{experiment.id}",
        python=python,
        heartbeat_interval=settings.heartbeat_interval,
    )
    atomic_write_text(files.script, text, durable=False, executable=True)  # 0o777 - umask
    try:
        job_id = client.submit(files.script, hold=True)
    except SlurmError as exc:
        reason = f"sbatch failed: {exc.message}"
        return outcomes + [outcome_of(p, "failed", str(r.status), reason) for p, r in selected]
    cwd = str(Path.cwd())
    submitted_at = _now()
    for index, (planned, run) in enumerate(selected):
        info = SlurmJobInfo(
            job_id=job_id,
            array_index=index,
            job=str(JobKey(job_id, index)),
            submission_dir=str(files.directory),
            stdout=str(files.stdout_link(index)),
            stderr=str(files.stderr_link(index)),
            options=options.to_json(),
            hold=options.hold,
            profile={
                "name": planned.profile.name,
                "config": dict(planned.profile.config),
                "overrides": dict(planned.profile.overrides),
            },
            submitted_at=submitted_at,
            script=str(script),
            cwd=cwd,
        )
        outcomes.append(_queue(planned, run, info, files, index))
    if not options.hold:
        try:
            client.release(job_id)
        except SlurmError as exc:
            note = f"; releasing it failed ({exc.message}): `molexp sync` retries"
            for outcome in outcomes:
                if outcome.action == "submitted":
                    outcome.reason += note
    return outcomes


def _queue(
    planned: PlannedRun, run: Run, info: SlurmJobInfo, files: ArrayScript, index: int
) -> RunOutcome:
    from molexp.workspace import RunStateError

    try:
        record = run.mark_queued(info.model_dump(mode="json"), profile=planned.profile)
    except RunStateError as exc:
        return outcome_of(planned, "skipped", str(run.status), f"not queued: {one_line(str(exc))}")
    execution_dir = Path(run.run_dir) / "execution" / record.execution_id
    execution_dir.mkdir(parents=True, exist_ok=True)
    for link, target in (
        (files.stdout_link(index), execution_dir / STDOUT_NAME),
        (files.stderr_link(index), execution_dir / STDERR_NAME),
    ):
        link.symlink_to(target)
    held = " (held: `scontrol release` starts it)" if info.hold else ""
    return outcome_of(planned, "submitted", "queued", f"Slurm job {info.job}{held}")


# -- reconciliation ----------------------------------------------------------------------------


@dataclass
class JobReport:
    """One run with a Slurm attempt: what Slurm says and what reconciling did about it."""

    run: Run
    info: SlurmJobInfo
    state: JobState | None
    """``None`` when neither ``squeue`` nor ``sacct`` knows the job."""
    action: str = ""
    """``""`` (nothing to do), ``failed``, ``cancelled`` or ``released``."""
    reason: str = ""

    @property
    def slurm_state(self) -> str:
        return "unknown to squeue and sacct" if self.state is None else self.state.describe()

    def to_json(self) -> dict[str, Any]:
        run = self.run
        state = self.state
        return {
            "run_id": run.id,
            "project": str(run.project.id),
            "experiment": str(run.experiment.id),
            "status": str(run.status),
            "job": self.info.job,
            "slurm_state": None if state is None else state.state,
            "slurm_detail": self.slurm_state,
            "slurm_reason": None if state is None else state.reason,
            "elapsed": None if state is None else state.elapsed,
            "time_limit": None if state is None else state.time_limit,
            "action": self.action,
            "reason": self.reason,
            "log": str(self.info.log),
            "run_dir": str(run.run_dir),
        }


def slurm_runs(runs: Iterable[Run]) -> list[tuple[Run, SlurmJobInfo]]:
    """The runs still ``queued``/``running`` whose current attempt is a Slurm job."""
    found = []
    for run in runs:
        if str(run.status) not in {"queued", "running"}:
            continue
        info = current_job(run)
        if info is not None:
            found.append((run, info))
    return found


def reconcile(
    pairs: Sequence[tuple[Run, SlurmJobInfo]], client: SlurmClient, *, apply: bool = True
) -> list[JobReport]:
    """Ask Slurm about every job and (``apply``) end or release the runs it has left behind."""
    states = client.states(info.key for _, info in pairs)
    reports = [JobReport(run, info, states.get(info.key)) for run, info in pairs]
    if apply:
        for report in reports:
            _settle(report, client)
    return reports


def _settle(report: JobReport, client: SlurmClient) -> None:
    state, info, run = report.state, report.info, report.run
    if state is not None and state.phase is JobPhase.live:
        if state.held and not info.hold and str(run.status) == "queued":
            client.release(info.job_id)
            report.action = "released"
            report.reason = "held by a submitter that did not release it; released"
        return
    if state is not None and state.phase is JobPhase.unknown:
        return
    status = "cancelled" if state is not None and state.phase is JobPhase.cancelled else "failed"
    if _end_attempt(run, info, status, state):
        report.action = status
        report.reason = "" if run.metadata.error is None else run.metadata.error.message


def _error_for(run_status: str, info: SlurmJobInfo, state: JobState | None) -> Any:
    from molexp.workspace import ErrorInfo

    where = f"; job output: {info.log}"
    if state is None:
        return ErrorInfo(
            type=LOST_ERROR_TYPE,
            message=f"Slurm job {info.job} is known to neither squeue nor sacct while the run is "
            f"still {run_status} (cancelled before it started, purged, or lost with its node)"
            + where,
        )
    if state.phase is JobPhase.succeeded:
        what = "never started" if run_status == "queued" else "did not finish"
        message = f"Slurm job {info.job} completed but the run {what}"
    else:
        message = f"Slurm job {info.job} ended {state.describe()} while the run was {run_status}"
    kind = "".join(part.title() for part in state.state.split("_"))
    return ErrorInfo(type=f"Slurm{kind}", message=message + where)


def _end_attempt(run: Run, info: SlurmJobInfo, status: str, state: JobState | None) -> bool:
    """End the run's attempt of this job as ``status``; False if the run moved on meanwhile."""
    from molexp.workspace import RunStatus, StaleRecordError

    for _ in range(5):
        run.reload()
        current = current_job(run)
        if str(run.status) not in {"queued", "running"} or current is None:
            return False
        if current.job != info.job or current.submitted_at != info.submitted_at:
            return False
        error = _error_for(str(run.status), info, state)
        now = _now()
        metadata = run.metadata
        metadata.status = RunStatus(status)
        metadata.finished_at = now
        metadata.error = error
        metadata.owner = None
        last = metadata.execution_history[-1]
        last.status = RunStatus(status)
        last.finished_at = now
        last.error = error
        try:
            run.save()
        except StaleRecordError:
            continue
        return True
    return False
