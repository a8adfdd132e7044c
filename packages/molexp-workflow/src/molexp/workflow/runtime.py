"""Runtime contract and execution results.

``WorkflowRuntime`` is the template every runtime shares (the default one is the pydantic-graph
driven ``GraphWorkflowRuntime``, the optional one ``DaskRuntime``): a runtime implements only
``prepare`` (a ``PreparedExecution``: how tasks are dispatched), and ``result_from_trace``
assembles the same ``WorkflowResult`` for all of them.
``WorkflowResult`` / ``TaskStatus`` / ``TaskTiming`` / ``TaskError`` / ``TaskPersistence`` describe
what happened, ``ExecutionOptions`` validates the keyword options every runtime accepts and
``WorkflowExecution`` is the live handle returned by ``spec.start()``. How a runtime executes under
a tracked run is shared in :mod:`molexp.workflow._lifecycle`.
"""

from __future__ import annotations

import enum
import traceback as traceback_module
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import asyncio

    from molexp.workflow._resume import ResumePlan
    from molexp.workflow.protocols import RemoteExecutor, RunContextProtocol, RunProtocol
    from molexp.workflow.spec import Workflow

__all__ = [
    "EXECUTION_STATE_VERSION",
    "ExecutionOptions",
    "ExecutionTrace",
    "PreparedExecution",
    "TaskError",
    "TaskPersistence",
    "TaskStatus",
    "TaskTiming",
    "WorkflowExecution",
    "WorkflowResult",
    "WorkflowRuntime",
    "WorkflowStatus",
    "create_default_runtime",
    "result_from_trace",
]


EXECUTION_STATE_VERSION = 4
"""Schema version of ``WorkflowResult.to_state()`` payloads.

2: per task ``snapshot_key`` / ``output_persisted`` / ``persistence_detail``, the ``resumed``
task list and ``resumed_from`` (the execution whose outputs were re-used).
3: per task ``cache``: for a ``cache=True`` task, how the cache answered (``"hit"``, or
``"miss: "`` and what changed: which function, distribution version, config key, input or run
value; ``"not stored: ..."`` when the result could not be cached); None for other tasks.
4: per task ``code_hash`` (of its snapshot: its code and all the first-party code it reaches);
``sources``, the source of each task function by ``code_hash`` (what ``molexp diff`` compares);
``distributions``, the version of every installed distribution the tasks' code reaches.
"""


class TaskStatus(enum.StrEnum):
    """Lifecycle of one task within one execution."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CACHED = "cached"
    RESUMED = "resumed"
    """Not run: its output was re-used from the previous attempt of the same run."""
    CANCELLED = "cancelled"


class WorkflowStatus(enum.StrEnum):
    """Outcome of a whole execution."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)


@dataclass(frozen=True, slots=True)
class TaskTiming:
    """When a task ran, as epoch-second floats (``time.time()``) plus datetime views."""

    started_at: float
    finished_at: float

    @property
    def duration(self) -> float:
        """Seconds from start to finish."""
        return self.finished_at - self.started_at

    @property
    def started_datetime(self) -> datetime:
        """``started_at`` as a UTC datetime."""
        return _utc(self.started_at)

    @property
    def finished_datetime(self) -> datetime:
        """``finished_at`` as a UTC datetime."""
        return _utc(self.finished_at)


@dataclass(frozen=True, slots=True)
class TaskError:
    """A task failure: exception type name, message and formatted traceback."""

    type: str
    message: str
    traceback: str
    exception: BaseException | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_exception(cls, exc: BaseException) -> TaskError:
        return cls(
            type=type(exc).__qualname__,
            message=str(exc),
            traceback="".join(traceback_module.format_exception(exc)),
            exception=exc,
        )

    def to_dict(self) -> dict[str, str]:
        """The error as ``{"type", "message", "traceback"}`` strings."""
        return {"type": self.type, "message": self.message, "traceback": self.traceback}


@dataclass(frozen=True, slots=True)
class TaskPersistence:
    """Whether a task's output was persisted for the next attempt of its run.

    ``snapshot_key`` is the resume key ``"<code_hash>:<config_hash>:<run_config_hash>"`` (None
    when no snapshot could be taken);
    ``detail`` says why a task that succeeded was not persisted.
    """

    snapshot_key: str | None
    output_persisted: bool
    detail: str | None = None


_NOT_PERSISTED = TaskPersistence(snapshot_key=None, output_persisted=False)
_STATUS_TEXT = {status: status.value for status in TaskStatus}


_UTC_SECONDS: dict[int, str] = {}


def _utc_second(second: int) -> str:
    text = datetime.fromtimestamp(second, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if len(_UTC_SECONDS) >= 256:
        _UTC_SECONDS.clear()
    _UTC_SECONDS[second] = text
    return text


def _isoformat(timestamp: float) -> str:
    """``datetime.fromtimestamp(timestamp, UTC).isoformat()``, three times faster.

    Execution states format two timestamps per task; the seconds part is memoised and the
    microseconds are rounded exactly as ``datetime`` does (half-even on the fraction;
    ``timestamp - int(timestamp)`` is exactly ``math.modf``'s fraction for a positive float).
    """
    if timestamp < 0:
        return datetime.fromtimestamp(timestamp, tz=UTC).isoformat()
    second = int(timestamp)
    micros = round((timestamp - second) * 1e6)
    if micros == 1_000_000:
        second, micros = second + 1, 0
    text = _UTC_SECONDS.get(second) or _utc_second(second)
    return f"{text}.{micros:06d}+00:00" if micros else f"{text}+00:00"


@dataclass(slots=True, repr=False)
class WorkflowResult:
    """Everything one execution produced.

    ``outputs`` only holds tasks that succeeded, were served from the cache or were resumed.
    ``failed`` lists the failed tasks in the order they failed; ``skipped`` the tasks never run
    because a dependency failed. ``result[task]`` is the output of ``task`` and ``result.output``
    the output of the workflow's single sink task. Under a run, ``persistence`` tells per task
    whether its output was persisted for the next attempt and ``resumed_from`` names the earlier
    execution whose outputs were re-used (see :mod:`molexp.workflow._resume`). ``cache`` says,
    per ``cache=True`` task, how the cache answered, and ``code_hashes``, ``sources`` and
    ``distributions`` what code ran (see ``EXECUTION_STATE_VERSION``).
    """

    workflow_name: str
    workflow_id: str
    status: WorkflowStatus
    outputs: dict[str, Any]
    statuses: dict[str, TaskStatus]
    timings: dict[str, TaskTiming]
    errors: dict[str, TaskError]
    failed: list[str]
    skipped: list[str]
    sinks: tuple[str, ...]
    started_at: datetime
    finished_at: datetime
    persistence: dict[str, TaskPersistence] = field(default_factory=dict)
    resumed_from: str | None = None
    cache: dict[str, str] = field(default_factory=dict)
    code_hashes: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    distributions: dict[str, str] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        """Seconds from start to finish."""
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def resumed(self) -> list[str]:
        """Tasks whose output was re-used from the previous attempt instead of running them."""
        return [name for name, status in self.statuses.items() if status is TaskStatus.RESUMED]

    def __repr__(self) -> str:
        # Summary only: results of large workflows would otherwise print every output.
        return (
            f"WorkflowResult(workflow={self.workflow_name!r}, status={str(self.status)!r}, "
            f"tasks={len(self.statuses)}, failed={self.failed!r}, skipped={len(self.skipped)})"
        )

    def _repr_html_(self) -> str:
        """A compact table for notebooks: one row per task with its status, duration, a short
        ``reprlib`` view of its output and its error (every text escaped)."""
        import reprlib
        from html import escape

        shorten = reprlib.Repr()
        shorten.maxstring = shorten.maxother = 60
        cell = 'style="text-align:left;vertical-align:top;padding:1px 8px"'
        rows = []
        for task, status in self.statuses.items():
            timing = self.timings.get(task)
            error = self.errors.get(task)
            values = (
                task,
                str(status),
                "" if timing is None else f"{timing.duration:.3g} s",
                shorten.repr(self.outputs[task]) if task in self.outputs else "",
                "" if error is None else f"{error.type}: {error.message}"[:200],
            )
            rows.append("<tr>" + "".join(f"<td {cell}>{escape(v)}</td>" for v in values) + "</tr>")
        head = "".join(
            f"<th {cell}>{name}</th>" for name in ("task", "status", "duration", "output", "error")
        )
        title = (
            f"WorkflowResult {self.workflow_name}: {self.status}, {len(self.statuses)} tasks "
            f"in {self.duration:.3g} s"
        )
        return (
            f'<div class="molexp-repr"><strong>{escape(title)}</strong>'
            '<table class="molexp" style="border-collapse:collapse">'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
        )

    @property
    def succeeded(self) -> bool:
        """Whether the workflow's status is ``SUCCEEDED``."""
        return self.status is WorkflowStatus.SUCCEEDED

    def __getitem__(self, task: str) -> Any:
        try:
            return self.outputs[task]
        except KeyError:
            pass
        status = self.statuses.get(task)
        if status is None:
            known = ", ".join(map(repr, self.statuses)) or "none"
            raise KeyError(f"workflow {self.workflow_name!r} has no task {task!r} (tasks: {known})")
        reason = f"its status is {status}"
        if task in self.errors:
            error = self.errors[task]
            reason += f" ({error.type}: {error.message})"
        raise KeyError(f"task {task!r} of workflow {self.workflow_name!r} has no output: {reason}")

    @property
    def output(self) -> Any:
        """Output of the single sink task (a task nothing depends on)."""
        if len(self.sinks) != 1:
            raise ValueError(
                f"workflow {self.workflow_name!r} has {len(self.sinks)} sink tasks "
                f"({', '.join(map(repr, self.sinks))}); use result[task] to pick one"
            )
        return self[self.sinks[0]]

    def to_state(self) -> dict[str, Any]:
        """Plain-JSON execution state (what ``record_execution_state`` receives under a run).

        ``version`` is the schema version of this payload (``EXECUTION_STATE_VERSION``).
        """
        tasks: dict[str, Any] = {}
        # Runs once per task of every execution under a run: lookups bound to locals.
        timing_of = self.timings.get
        error_of = self.errors.get
        persistence_of = self.persistence.get
        cache_of = self.cache.get
        code_hash_of = self.code_hashes.get
        isoformat = _isoformat
        status_text = _STATUS_TEXT
        for name, status in self.statuses.items():
            timing = timing_of(name)
            error = error_of(name)
            kept = persistence_of(name, _NOT_PERSISTED)
            if timing is None:
                started = finished = duration = None
            else:
                started = isoformat(timing.started_at)
                finished = isoformat(timing.finished_at)
                duration = timing.finished_at - timing.started_at
            tasks[name] = {
                "status": status_text[status],
                "started_at": started,
                "finished_at": finished,
                "duration": duration,
                "error": error.to_dict() if error else None,
                "snapshot_key": kept.snapshot_key,
                "output_persisted": kept.output_persisted,
                "persistence_detail": kept.detail,
                "cache": cache_of(name),
                "code_hash": code_hash_of(name),
            }
        return {
            "version": EXECUTION_STATE_VERSION,
            "workflow_id": self.workflow_id,
            "workflow_name": self.workflow_name,
            "status": str(self.status),
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "duration": self.duration,
            "failed": list(self.failed),
            "skipped": list(self.skipped),
            "resumed": self.resumed,
            "resumed_from": self.resumed_from,
            "tasks": tasks,
            "sources": dict(self.sources),
            "distributions": dict(self.distributions),
        }


class StatusView(Mapping[str, TaskStatus]):
    """Live read-only ``task name -> TaskStatus`` view over a runtime's status list."""

    __slots__ = ("_index", "_statuses")

    def __init__(self, names: Sequence[str], statuses: list[TaskStatus]) -> None:
        self._index = {name: i for i, name in enumerate(names)}
        self._statuses = statuses

    def __getitem__(self, task: str) -> TaskStatus:
        return self._statuses[self._index[task]]

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def __repr__(self) -> str:
        return f"StatusView({dict(self)!r})"


class WorkflowExecution:
    """Handle on a running execution (from ``await spec.start(...)``).

    Await it for the :class:`WorkflowResult`; ``statuses`` is live; ``cancel()`` cancels the running
    tasks and lets nothing new start (tasks not started end ``cancelled``).
    """

    def __init__(
        self,
        workflow_name: str,
        future: asyncio.Future[WorkflowResult],
        statuses: Mapping[str, TaskStatus],
        cancel: Callable[[], None],
    ) -> None:
        self.workflow_name = workflow_name
        self._future = future
        self._statuses = statuses
        self._cancel = cancel

    @property
    def statuses(self) -> Mapping[str, TaskStatus]:
        """Live status of each task, by task name."""
        return self._statuses

    def done(self) -> bool:
        """Whether the execution has finished (its result is available)."""
        return self._future.done()

    def cancel(self) -> None:
        """Request cancellation; awaiting the handle then returns a ``cancelled`` result."""
        if not self._future.done():
            self._cancel()

    def __await__(self) -> Generator[Any, None, WorkflowResult]:
        return self._future.__await__()

    def __repr__(self) -> str:
        state = "done" if self.done() else "running"
        return f"WorkflowExecution({self.workflow_name!r}, {state})"


_OPTION_NAMES = (
    "inputs",
    "config",
    "cache",
    "max_concurrency",
    "raise_on_failure",
    "remote_executor",
    "resume",
    "snapshot",
)


@dataclass(frozen=True, slots=True)
class ExecutionOptions:
    """The keyword options every runtime's ``execute``/``start`` accept, validated.

    ``resume`` (under a run): re-use the outputs of unchanged tasks that succeeded in the run's
    previous attempt (``False`` runs everything). ``snapshot`` (with ``run=``): extra keys for the
    workflow snapshot stored on the run (e.g. ``{"script": "/abs/path.py"}``).
    """

    inputs: Any = None
    config: Mapping[str, Any] | None = None
    cache: Any = None
    max_concurrency: int | None = None
    raise_on_failure: bool = True
    remote_executor: RemoteExecutor | None = None
    resume: bool = True
    snapshot: Mapping[str, Any] | None = None

    def as_kwargs(self) -> dict[str, Any]:
        """The options as the keyword arguments of ``WorkflowRuntime.execute``/``start``."""
        return {name: getattr(self, name) for name in _OPTION_NAMES}

    @classmethod
    def from_kwargs(cls, workflow_name: str, kwargs: Mapping[str, Any]) -> ExecutionOptions:
        unknown = sorted(set(kwargs) - set(_OPTION_NAMES))
        if unknown:
            raise TypeError(
                f"workflow {workflow_name!r}: unknown execution option(s) {', '.join(unknown)} "
                f"(valid: {', '.join(_OPTION_NAMES)})"
            )
        options = cls(**kwargs)
        options._check(workflow_name)
        return options

    def _check(self, workflow_name: str) -> None:
        limit = self.max_concurrency
        if limit is not None and not is_positive_int(limit):
            raise ValueError(
                f"workflow {workflow_name!r}: max_concurrency must be a positive int, got {limit!r}"
            )
        if self.config is not None and not isinstance(self.config, Mapping):
            raise TypeError(
                f"workflow {workflow_name!r}: config must be a mapping, "
                f"got {type(self.config).__name__}"
            )
        if self.remote_executor is not None and not callable(self.remote_executor):
            raise TypeError(
                f"workflow {workflow_name!r}: remote_executor must be an async callable"
            )
        if not isinstance(self.resume, bool):
            raise TypeError(
                f"workflow {workflow_name!r}: resume must be True or False, got {self.resume!r}"
            )
        if self.snapshot is not None and not (
            isinstance(self.snapshot, Mapping) and all(isinstance(k, str) for k in self.snapshot)
        ):
            raise TypeError(
                f"workflow {workflow_name!r}: snapshot must be a mapping with string keys, "
                f"got {self.snapshot!r}"
            )
        for method in ("lookup", "put"):
            if self.cache is not None and not callable(getattr(self.cache, method, None)):
                raise TypeError(
                    f"workflow {workflow_name!r}: cache must be a Caching instance "
                    f"(with lookup/put), got {type(self.cache).__name__}"
                )


def is_positive_int(value: object) -> bool:
    """True for ints >= 1 (``bool`` excluded): the valid ``max_concurrency`` values."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


class ExecutionTrace(Protocol):
    """What a runtime records while driving one execution (task ``i`` is ``names[i]``)."""

    statuses: list[TaskStatus]
    outputs: list[Any]
    started: list[float]
    finished: list[float]
    errors: dict[int, TaskError]
    failure_order: list[int]
    cache_notes: dict[int, str]
    cancel_requested: bool
    started_at: float
    finished_at: float


_OUTPUT_STATUSES = (TaskStatus.SUCCEEDED, TaskStatus.CACHED, TaskStatus.RESUMED)


def result_from_trace(
    workflow_name: str,
    workflow_id: str,
    names: Sequence[str],
    sinks: Sequence[str],
    trace: ExecutionTrace,
) -> WorkflowResult:
    """The :class:`WorkflowResult` of a finished execution, the same for every runtime."""
    statuses = trace.statuses
    outputs: dict[str, Any] = {}
    timings: dict[str, TaskTiming] = {}
    for index, task_status in enumerate(statuses):
        if task_status in _OUTPUT_STATUSES:
            outputs[names[index]] = trace.outputs[index]
        if trace.started[index]:
            timings[names[index]] = TaskTiming(trace.started[index], trace.finished[index])
    if trace.failure_order:
        status = WorkflowStatus.FAILED
    elif trace.cancel_requested or TaskStatus.CANCELLED in statuses:
        status = WorkflowStatus.CANCELLED
    else:
        status = WorkflowStatus.SUCCEEDED
    return WorkflowResult(
        workflow_name=workflow_name,
        workflow_id=workflow_id,
        status=status,
        outputs=outputs,
        statuses=dict(zip(names, statuses, strict=True)),
        timings=timings,
        errors={names[index]: trace.errors[index] for index in trace.failure_order},
        failed=[names[index] for index in trace.failure_order],
        skipped=[n for n, s in zip(names, statuses, strict=True) if s is TaskStatus.SKIPPED],
        sinks=tuple(sinks),
        started_at=datetime.fromtimestamp(trace.started_at, tz=UTC),
        finished_at=datetime.fromtimestamp(trace.finished_at, tz=UTC),
        cache={names[index]: note for index, note in trace.cache_notes.items()},
    )


class PreparedExecution(ABC):
    """One execution a runtime has validated and set up, not started yet.

    ``names`` and the live ``statuses`` back the :class:`WorkflowExecution` handle of
    ``start()``; ``request_cancel`` stops the execution; ``drive`` executes the tasks under the
    run context (if any) with the resume plan (if any) and returns the result.
    """

    names: Sequence[str]
    statuses: list[TaskStatus]

    @abstractmethod
    def request_cancel(self) -> None:
        """Ask the execution to stop: running tasks are cancelled, pending ones never start."""

    async def ready(self) -> None:  # noqa: B027 - an optional hook
        """Called before the run is opened (e.g. to connect to a cluster); nothing by default."""

    @abstractmethod
    async def drive(
        self, run_context: RunContextProtocol | None, plan: ResumePlan | None
    ) -> WorkflowResult:
        """Execute the tasks and return the result."""


class WorkflowRuntime(ABC):
    """What a runtime implements to execute a compiled :class:`~molexp.workflow.Workflow`.

    ``execute`` and ``start`` (seed 03's signatures; ``kwargs`` are the
    :class:`ExecutionOptions` fields: inputs, config, cache, max_concurrency,
    raise_on_failure, remote_executor, resume, snapshot) are the same for every runtime: they
    validate the arguments, ask :meth:`prepare` for a :class:`PreparedExecution` and run it
    under the run lifecycle (:func:`molexp.workflow._lifecycle.execute_with_lifecycle`: opening
    ``run``, the workflow snapshot, resume, the execution state, failing the run).
    ``run_context`` executes under an already open run. A runtime implements only
    :meth:`prepare`: how the tasks are dispatched.
    """

    execution_label = "molexp-workflow"
    """Prefix of the asyncio task name of a started execution."""

    @abstractmethod
    def prepare(self, spec: Workflow, options: ExecutionOptions) -> PreparedExecution:
        """Set up one execution of ``spec`` (synchronously, before any task body runs)."""

    async def execute(
        self,
        spec: Workflow,
        run: RunProtocol | None = None,
        run_context: RunContextProtocol | None = None,
        *,
        profile_config: Any = None,
        **kwargs: Any,
    ) -> WorkflowResult:
        """Execute ``spec`` to completion."""
        return await self._begin(spec, run, run_context, profile_config, kwargs)

    async def start(
        self,
        spec: Workflow,
        run: RunProtocol | None = None,
        run_context: RunContextProtocol | None = None,
        *,
        profile_config: Any = None,
        **kwargs: Any,
    ) -> WorkflowExecution:
        """Start executing ``spec`` in the background and return its handle."""
        import asyncio

        execution = self._begin(spec, run, run_context, profile_config, kwargs)
        prepared = execution.prepared
        future = asyncio.get_running_loop().create_task(
            execution.result(), name=f"{self.execution_label}:{spec.name}"
        )
        return WorkflowExecution(
            spec.name,
            future,
            StatusView(prepared.names, prepared.statuses),
            prepared.request_cancel,
        )

    def _begin(
        self,
        spec: Workflow,
        run: RunProtocol | None,
        run_context: RunContextProtocol | None,
        profile_config: Any,
        kwargs: Mapping[str, Any],
    ) -> _Execution:
        from molexp.workflow._lifecycle import validate_run_arguments

        options = validate_run_arguments(spec, run, run_context, profile_config, kwargs)
        prepared = self.prepare(spec, options)
        return _Execution(spec, options, prepared, run, run_context, profile_config)


@dataclass(slots=True)
class _Execution:
    spec: Workflow
    options: ExecutionOptions
    prepared: PreparedExecution
    run: RunProtocol | None
    run_context: RunContextProtocol | None
    profile_config: Any

    def __await__(self) -> Generator[Any, None, WorkflowResult]:
        return self.result().__await__()

    async def result(self) -> WorkflowResult:
        from molexp.workflow._lifecycle import execute_with_lifecycle

        await self.prepared.ready()  # before a run is opened: no run for an unreachable cluster
        return await execute_with_lifecycle(
            self.spec,
            self.options,
            run=self.run,
            run_context=self.run_context,
            profile_config=self.profile_config,
            drive=self.prepared.drive,
        )


def create_default_runtime() -> WorkflowRuntime:
    """The runtime used when none is given: the pydantic-graph driven ``GraphWorkflowRuntime``."""
    from molexp.workflow._pydantic_graph.runtime import GraphWorkflowRuntime

    return GraphWorkflowRuntime()
