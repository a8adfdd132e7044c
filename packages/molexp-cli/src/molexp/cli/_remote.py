"""Remote tasks: a task with ``remote={"executor": "slurm", ...}`` runs as its own Slurm job.

Local side (:class:`SlurmTaskExecutor`, the workflow's ``remote_executor``): the task's inputs
and config are pickled into ``<run_dir>/remote/<task>/inputs.pkl`` next to a ``call.json``
record (:class:`RemoteCall`) and a batch script running
``molexp execute RUN_DIR --task NAME --call-id ID``; the job is submitted and the executor waits,
polling for ``outcome.pkl`` and asking Slurm about the job every few seconds. The outcome gives
the task's output (or re-raises its exception) and replays what the task recorded through the
run-backed helpers that must go through the run's owner (``set_result``, ``mark_failed``, the
summaries of the metric series the task logged). A job
that ends without an outcome (walltime, ``scancel``, node failure, a worker that could not
start) fails the task with the scheduler's reason; cancelling the waiting task cancels the job.
Tasks with a ``remote=`` hint for another executor run locally.

Worker side (:func:`execute_remote_call`): re-imports the run's script, runs the one task with
``Workflow.execute_task`` under a :class:`RemoteRunContext` and writes ``outcome.pkl``. Logs,
artifacts, checkpoints, metric series (a file of the job's own) and asset lookups go straight to
the run directory and the workspace catalog (both safe for several processes); results, metric
summaries and failure marks travel back in the outcome.

This needs a filesystem shared by the submitting host and the compute nodes (the run directory
is where both sides meet), the same Python environment on both (the job runs the submitter's
``sys.executable``) and picklable inputs and outputs.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import socket
import sys
import traceback
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from molexp.assets import (
    RecordError,
    VersionedRecord,
    atomic_write_bytes,
    atomic_write_json,
    load_record,
)
from molexp.assets.storage import create_exclusive_bytes

from ._errors import CliError, RemoteTaskError
from ._slurm import SlurmClient, SlurmError
from ._slurm_script import SlurmOptionError, SlurmOptions, render_task_script
from ._slurm_text import JobKey, JobPhase, JobState

if TYPE_CHECKING:
    from molexp.assets import Asset, CheckpointAsset, LogHandle
    from molexp.workflow import TaskContext, TaskRegistration
    from molexp.workflow.protocols import WorkerRunContextProtocol
    from molexp.workspace import MetricWriter, Run, Workspace

__all__ = [
    "REMOTE_DIR",
    "RemoteCall",
    "RemoteOutcome",
    "RemoteRunContext",
    "RemoteTaskError",
    "SlurmTaskExecutor",
    "execute_remote_call",
    "remote_dir",
]

REMOTE_DIR = "remote"
CALL_FILE = "call.json"
INPUTS_FILE = "inputs.pkl"
OUTCOME_FILE = "outcome.pkl"
SCRIPT_FILE = "job.sh"
EXECUTOR_KEY = "executor"
SLURM_EXECUTOR = "slurm"


class RemoteCall(VersionedRecord):
    """``<run_dir>/remote/<task>/call.json``: one submission of a remote task."""

    call_id: str
    task: str
    workflow: str
    workflow_id: str
    execution_id: str
    inputs_kind: Literal["value", "mapping"] = "value"
    """``mapping``: the inputs are the ``name -> output`` mapping of several dependencies."""
    options: dict[str, Any] = {}
    job_id: str | None = None
    submitted_at: datetime | None = None


@dataclass
class RemoteOutcome:
    """What the worker sends back (pickled to ``outcome.pkl``)."""

    call_id: str
    output: Any = None
    error: BaseException | None = None
    error_type: str | None = None
    error_message: str | None = None
    traceback_text: str | None = None
    results: dict[str, Any] = field(default_factory=dict)
    failures: list[tuple[str, str | None]] = field(default_factory=list)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Summaries of the metric series the task logged (``MetricSummary`` data), by name."""

    @property
    def failed(self) -> bool:
        return self.error_type is not None


def remote_dir(run_dir: Path, task_name: str) -> Path:
    """Where the files of the remote task ``task_name`` of a run live."""
    return Path(run_dir) / REMOTE_DIR / task_name


# -- local side ----------------------------------------------------------------------------------


class SlurmTaskExecutor:
    """The workflow ``remote_executor`` that runs Slurm-hinted tasks as Slurm jobs.

    ``base`` are the profile's Slurm options; the task's hint overrides them. ``poll_interval``
    is the longest pause between two looks for the outcome file and ``status_interval`` the
    pause between two questions to Slurm.
    """

    def __init__(
        self,
        base: SlurmOptions | None = None,
        *,
        client: SlurmClient | None = None,
        python: str | None = None,
        poll_interval: float = 2.0,
        status_interval: float = 5.0,
    ) -> None:
        self._base = base or SlurmOptions()
        self._client = client or SlurmClient()
        self._python = python or sys.executable
        self._poll_interval = poll_interval
        self._status_interval = status_interval

    async def __call__(self, registration: TaskRegistration, ctx: TaskContext) -> Any:
        hint = dict(registration.remote or {})
        if hint.get(EXECUTOR_KEY) != SLURM_EXECUTOR:
            return await registration.runner(ctx)
        run_context = ctx.run_context
        if run_context is None:
            raise RemoteTaskError(
                f"task {registration.name!r} is marked remote executor 'slurm', which needs a "
                "tracked run: the run directory is where the job finds its inputs"
            )
        hint.pop(EXECUTOR_KEY)
        try:
            options = self._base.merged(hint, where=f"task {registration.name!r}: remote")
        except SlurmOptionError as exc:
            raise RemoteTaskError(str(exc)) from None
        call, key, directory = await asyncio.to_thread(
            self._submit,
            registration.name,
            ctx,
            run_context.run_dir,
            run_context.execution_id,
            options,
        )
        try:
            outcome = await self._wait(call, key, directory)
        except asyncio.CancelledError:
            await asyncio.to_thread(self._client.cancel, [key])
            raise
        return _deliver(outcome, ctx, key, directory)

    def _submit(
        self,
        task_name: str,
        ctx: TaskContext,
        run_dir: Path,
        execution_id: str,
        options: SlurmOptions,
    ) -> tuple[RemoteCall, JobKey, Path]:
        directory = remote_dir(run_dir, task_name)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in (OUTCOME_FILE, INPUTS_FILE, CALL_FILE):
            (directory / stale).unlink(missing_ok=True)
        inputs = ctx.inputs
        kind: Literal["value", "mapping"] = "value"
        if isinstance(inputs, MappingProxyType):
            inputs, kind = dict(inputs), "mapping"
        try:
            payload = pickle.dumps({"inputs": inputs, "config": dict(ctx.config)})
        except Exception as exc:
            raise RemoteTaskError(
                f"the inputs of remote task {task_name!r} cannot be pickled for the Slurm job: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        atomic_write_bytes(directory / INPUTS_FILE, payload, durable=False)
        call = RemoteCall(
            call_id=uuid.uuid4().hex,
            task=task_name,
            workflow=ctx.workflow_name,
            workflow_id=ctx.workflow_id,
            execution_id=execution_id,
            inputs_kind=kind,
            options=options.to_json(),
        )
        atomic_write_json(directory / CALL_FILE, call, durable=False)
        script = directory / SCRIPT_FILE
        script.write_text(
            render_task_script(
                options,
                job_name=f"molexp-task-{task_name}",
                python=self._python,
                run_dir=Path(run_dir),
                task_name=task_name,
                call_id=call.call_id,
                log_dir=directory,
            )
        )
        job_id = self._client.submit(script, hold=options.hold)
        call = call.model_copy(update={"job_id": job_id, "submitted_at": datetime.now(UTC)})
        atomic_write_json(directory / CALL_FILE, call, durable=False)
        return call, JobKey(job_id), directory

    async def _wait(self, call: RemoteCall, key: JobKey, directory: Path) -> RemoteOutcome:
        loop = asyncio.get_running_loop()
        outcome_path = directory / OUTCOME_FILE
        pause = 0.05
        next_status = loop.time() + min(1.0, self._status_interval)
        while True:
            outcome = _read_outcome(outcome_path, call.call_id)
            if outcome is not None:
                return outcome
            if loop.time() >= next_status:
                next_status = loop.time() + self._status_interval
                try:
                    states = await asyncio.to_thread(self._client.states, [key])
                except SlurmError:  # the scheduler did not answer this time: ask again later
                    continue
                state = states.get(key)
                if state is None or state.phase is not JobPhase.live:
                    # The outcome is written before the worker exits; a shared filesystem may
                    # show it a moment later than the scheduler reports the job's end.
                    await asyncio.sleep(self._poll_interval)
                    outcome = _read_outcome(outcome_path, call.call_id)
                    if outcome is not None:
                        return outcome
                    raise _job_failure(call, key, state, directory)
            await asyncio.sleep(pause)
            pause = min(pause * 1.5, self._poll_interval)


def _read_outcome(path: Path, call_id: str) -> RemoteOutcome | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    outcome = pickle.loads(data)
    if not isinstance(outcome, RemoteOutcome) or outcome.call_id != call_id:
        return None
    return outcome


def _job_failure(
    call: RemoteCall, key: JobKey, state: JobState | None, directory: Path
) -> RemoteTaskError:
    what = "is known to neither squeue nor sacct" if state is None else f"ended {state.describe()}"
    return RemoteTaskError(
        f"remote task {call.task!r}: Slurm job {key} {what} without sending a result; "
        f"its output is in {directory / f'slurm-{key.job_id}.err'}"
    )


def _deliver(outcome: RemoteOutcome, ctx: TaskContext, key: JobKey, directory: Path) -> Any:
    run_context = ctx.run_context
    if run_context is not None:
        for name, value in outcome.results.items():
            run_context.set_result(name, value)
        for message, task_name in outcome.failures:
            run_context.mark_failed(message, task_name=task_name)
        if outcome.metrics:
            # the owner's workspace RunContext (a Slurm task needs a tracked run)
            run_context.record_metric_summaries(outcome.metrics)  # type: ignore[attr-defined]
    if not outcome.failed:
        return outcome.output
    where = f"raised in Slurm job {key}; its output is in {directory / f'slurm-{key.job_id}.err'}"
    if outcome.error is not None:
        outcome.error.add_note(where)
        raise outcome.error
    raise RemoteTaskError(
        f"remote task {ctx.task_name!r} {where}: {outcome.error_type}: {outcome.error_message}"
    )


# -- worker side ---------------------------------------------------------------------------------


class RemoteRunContext:
    """The run context of a task executing in its own Slurm job (for ``ctx.run_context``).

    It implements ``molexp.workflow.protocols.WorkerRunContextProtocol`` (checked by mypy at
    the end of this module), the surface every run context offers a task.

    Logs, artifacts, checkpoints, metric series and asset lookups are real (written to the
    attempt's files in the run directory and the workspace catalog, attributed to the task and
    the attempt, as the owner's ``RunContext`` writes them); ``set_result``, ``mark_failed`` and
    the metric summaries are collected and replayed by the process that owns the run.
    """

    def __init__(
        self, run: Run, *, execution_id: str, config: Mapping[str, Any], task_name: str
    ) -> None:
        from molexp.assets import Producer

        self._run = run
        self._execution_id = execution_id
        self._config = MappingProxyType(dict(config))
        self._task_name = task_name
        self._producer = Producer(run_id=run.id, execution_id=execution_id, task_name=task_name)
        self._logs: dict[str, LogHandle] = {}
        self._metric_writer: MetricWriter | None = None
        self.results: dict[str, Any] = {}
        self.failures: list[tuple[str, str | None]] = []

    @property
    def params(self) -> Mapping[str, Any]:
        return MappingProxyType(self._run.parameters)

    @property
    def config(self) -> Mapping[str, Any]:
        return self._config

    @property
    def run_dir(self) -> Path:
        return Path(self._run.run_dir)

    @property
    def execution_id(self) -> str:
        return self._execution_id

    @property
    def execution_dir(self) -> Path:
        directory = self.run_dir / "execution" / self._execution_id
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    @property
    def workspace(self) -> Workspace:
        return self._run.workspace

    @property
    def artifact(self) -> Any:
        from molexp.assets import ArtifactStore

        return ArtifactStore(
            self.workspace.catalog, self._run.scope, self.run_dir, self._producer, per_attempt=True
        )

    def set_result(self, key: str, value: Any) -> None:
        if not isinstance(key, str) or not key:
            raise ValueError(f"result keys must be non-empty strings, got {key!r}")
        self.results[key] = value

    def get_result(self, key: str, default: Any = None) -> Any:
        if key in self.results:
            return self.results[key]
        return self._run.reload().results.get(key, default)

    def _metrics(self) -> MetricWriter:
        from molexp.workspace import MetricWriter

        if self._metric_writer is None:
            self._metric_writer = MetricWriter(self.execution_dir / "metrics")
        return self._metric_writer

    def log_metric(
        self, name: str, value: float, step: int | None = None, timestamp: Any = None
    ) -> None:
        self._metrics().log(name, value, step, timestamp)

    def log_metrics(
        self, values: Mapping[str, float], *, step: int | None = None, timestamp: Any = None
    ) -> None:
        self._metrics().log_many(values, step, timestamp)

    def metric_summaries(self) -> dict[str, dict[str, Any]]:
        """What the owner records of the series this task logged (flushed by ``close``)."""
        if self._metric_writer is None:
            return {}
        return {name: s.model_dump() for name, s in self._metric_writer.summaries().items()}

    def log(self, name: str) -> LogHandle:
        from molexp.assets import LogHandle

        handle = self._logs.get(name)
        if handle is None:
            handle = LogHandle(
                self.workspace.catalog,
                self._run.scope,
                self.run_dir,
                name,
                self._producer,
                per_attempt=True,
            )
            self._logs[name] = handle
        return handle

    def find_asset(self, name: str) -> Asset | None:
        run = self._run
        scopes = [run.scope, run.experiment.scope, run.project.scope, run.workspace.scope]
        asset = self.workspace.catalog.find(name, scopes)
        if asset is not None and (asset.producer is None or asset.producer.run_id != run.id):
            self.workspace.catalog.record_use(
                asset.id, run_id=run.id, execution_id=self._execution_id, task_name=self._task_name
            )
        return asset

    def checkpoint(self, name: str, data: Any = None) -> CheckpointAsset:
        from molexp.assets import CheckpointStore

        store = CheckpointStore(
            self.workspace.catalog, self._run.scope, self.run_dir, self._producer
        )
        return store.save(name, data)

    def record_execution_state(self, state: Mapping[str, Any]) -> Any:
        raise RemoteTaskError(
            f"task {self._task_name!r} runs in its own Slurm job: the execution state is "
            "recorded by the process that executes the workflow, not by a remote task"
        )

    def mark_failed(self, error: BaseException | str, *, task_name: str | None = None) -> None:
        message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        self.failures.append((message, task_name))

    def close(self) -> None:
        for handle in self._logs.values():
            handle.close()
        if self._metric_writer is not None:
            self._metric_writer.close()


def execute_remote_call(
    run: Run, task_name: str, call_id: str | None, *, import_workflow: Any
) -> tuple[int, str]:
    """Run the remote task of ``run`` described by its ``call.json``; (exit code, message).

    ``call_id`` is the call the job was submitted for (None: whatever call is current).
    ``import_workflow(run)`` imports the run's script and returns the workflow bound to its
    experiment. The outcome (output or error) is written to ``outcome.pkl`` in every case but a
    superseded call (another submission replaced this one): then nothing runs and the exit code
    is 0.
    """
    directory = remote_dir(Path(run.run_dir), task_name)
    call_path = directory / CALL_FILE
    if not call_path.is_file():
        raise CliError(
            f"run {run.id} has no remote call of task {task_name!r}: {call_path} is missing"
        )
    call = load_record(call_path, RemoteCall)
    if call_id is not None and call.call_id != call_id:
        return 0, (
            f"remote task {task_name!r} of run {run.id}: call {call_id} was superseded by "
            f"{call.call_id}; nothing to do"
        )
    holder = _claim_call(directory, call.call_id)
    if holder is not None:
        from ._execute import EXIT_BUSY

        return EXIT_BUSY, (
            f"remote task {task_name!r} of run {run.id}: call {call.call_id} is being executed "
            f"by {holder}"
        )
    spec = import_workflow(run)
    payload = pickle.loads((directory / INPUTS_FILE).read_bytes())
    inputs = payload["inputs"]
    if call.inputs_kind == "mapping":
        inputs = MappingProxyType(inputs)
    context = RemoteRunContext(
        run, execution_id=call.execution_id, config=payload["config"], task_name=task_name
    )
    outcome = RemoteOutcome(call_id=call.call_id)
    try:
        outcome.output = asyncio.run(
            spec.execute_task(task_name, inputs, config=context.config, run_context=context)
        )
    except Exception as exc:
        _record_error(outcome, exc)
    finally:
        context.close()
    outcome.results = dict(context.results)
    outcome.failures = list(context.failures)
    outcome.metrics = context.metric_summaries()
    data = _pickled(outcome, task_name)
    atomic_write_bytes(directory / OUTCOME_FILE, data)
    if outcome.failed:
        if outcome.traceback_text:
            sys.stderr.write(outcome.traceback_text)
        return 1, f"remote task {task_name!r} failed: {outcome.error_type}: {outcome.error_message}"
    return 0, f"remote task {task_name!r} of run {run.id} succeeded"


class CallClaim(VersionedRecord):
    """``<remote_dir>/.claim-<call_id>.json``: the process executing a remote call."""

    host: str
    pid: int
    slurm_job: str | None = None
    slurm_restart: int = 0

    def describe(self) -> str:
        job = f" (Slurm job {self.slurm_job})" if self.slurm_job else ""
        return f"process {self.pid} on host {self.host}{job}"


def _this_claim() -> CallClaim:
    return CallClaim(
        host=socket.gethostname(),
        pid=os.getpid(),
        slurm_job=os.environ.get("SLURM_JOB_ID"),
        slurm_restart=int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0),
    )


def _claim_call(directory: Path, call_id: str) -> str | None:
    """Claim the execution of ``call_id`` exclusively (across hosts); None if this process has
    it, else who does. A claim whose process is gone on this host, or that an earlier run of
    this same (requeued) Slurm job holds, is taken over."""
    path = directory / f".claim-{call_id}.json"
    mine = _this_claim()
    data = (mine.model_dump_json() + "\n").encode("utf-8")
    if create_exclusive_bytes(path, data):
        return None
    try:
        holder = load_record(path, CallClaim)
    except RecordError:
        return f"an unreadable claim {path}"
    from molexp.workspace import pid_alive

    dead_here = holder.host == mine.host and not pid_alive(holder.pid)
    requeued = (
        mine.slurm_job is not None
        and holder.slurm_job == mine.slurm_job
        and holder.slurm_restart < mine.slurm_restart
    )
    if dead_here or requeued:
        atomic_write_bytes(path, data)
        return None
    return holder.describe()


def _record_error(outcome: RemoteOutcome, exc: BaseException) -> None:
    outcome.error = exc
    outcome.error_type = type(exc).__name__
    outcome.error_message = str(exc) or type(exc).__name__
    outcome.traceback_text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def _pickled(outcome: RemoteOutcome, task_name: str) -> bytes:
    """The outcome's bytes; an unpicklable output or exception becomes a described error."""
    try:
        return pickle.dumps(outcome)
    except Exception as exc:
        problem = exc
    if outcome.failed:
        outcome.error = None  # keep its type, message and traceback as text
        try:
            return pickle.dumps(outcome)
        except Exception as exc:
            problem = exc
    fallback = RemoteOutcome(call_id=outcome.call_id, results={}, failures=outcome.failures)
    _record_error(
        fallback,
        RemoteTaskError(
            f"the output of remote task {task_name!r} cannot be pickled back to the submitting "
            f"process: {type(problem).__name__}: {problem}"
        ),
    )
    fallback.error = None
    return pickle.dumps(fallback)


if TYPE_CHECKING:
    # RemoteRunContext is not a second RunContext: it implements the workflow layer's protocol
    # of a task's run context in another process, which mypy checks here.
    _implements: type[WorkerRunContextProtocol] = RemoteRunContext
