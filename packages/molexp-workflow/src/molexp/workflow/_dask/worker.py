"""What runs inside a Dask worker: the task call, its context and the outcome sent back.

The client sends one pickled :class:`WorkerCall` per task; :func:`run_remote_task` rebuilds a
``TaskContext`` in the worker, runs the body (``async`` bodies under ``asyncio.run``, plain
functions directly, streams collected into a list) and always *returns* a :class:`TaskOutcome`
holding the pickled output: a task body that raises (or an output that cannot be pickled) gives
an outcome carrying its :class:`~molexp.workflow.TaskError`, so Dask only ever sees a failed future
when the worker itself could not run the task (killed, lost).

The run context in a worker: when the run's context offers a ``worker_opener()`` (the
workspace's ``RunContext`` does), the call carries that picklable opener and the worker opens a
run context of its own for the task (``ctx.log``, ``set_result``, ``artifact.save``...); what
only the run's owner may record comes back as the outcome's ``report``. Without an opener the
run-backed helpers raise :class:`RemoteRunContextError`, a ``NoRunContextError`` saying so. For a
``cache=True`` task the worker records what the body reads (``ctx.config`` keys, task name...)
and sends it back with the outcome, for the client's cache entry.

A module the call needs that the worker cannot import (a third-party package missing from the
worker's environment) fails the task with a ``ModuleNotFoundError`` naming the module and the
worker.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import inspect
import pickle
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NoReturn

from molexp.workflow.context import ExecutionScope, TaskContext
from molexp.workflow.errors import NoRunContextError
from molexp.workflow.runtime import TaskError

if TYPE_CHECKING:
    from molexp.workflow.protocols import WorkerRunContextProtocol, WorkerRunOpener
    from molexp.workflow.reads import RunRead

__all__ = [
    "BodyKind",
    "RemoteRunContextError",
    "TaskOutcome",
    "WorkerCall",
    "WorkerTaskContext",
    "body_of",
    "encode_call",
    "portable_error",
    "run_remote_task",
]


class BodyKind(enum.Enum):
    """How a task body is called in the worker."""

    ASYNC = "async"
    ASYNC_STREAM = "async_stream"
    SYNC = "sync"
    SYNC_STREAM = "sync_stream"


def _is_async_callable(fn: object) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - an object with an async __call__
    )


def _is_async_gen_callable(fn: object) -> bool:
    return inspect.isasyncgenfunction(fn) or inspect.isasyncgenfunction(
        getattr(fn, "__call__", None)  # noqa: B004
    )


def body_of(user_code: Callable[..., Any]) -> tuple[BodyKind, Callable[..., Any]]:
    """Classify a task's user code (``TaskRegistration.callable``) the way the runners do."""
    if _is_async_gen_callable(user_code):
        return BodyKind.ASYNC_STREAM, user_code
    if _is_async_callable(user_code):
        return BodyKind.ASYNC, user_code
    if inspect.isgeneratorfunction(user_code):
        return BodyKind.SYNC_STREAM, user_code
    return BodyKind.SYNC, user_code


class RemoteRunContextError(NoRunContextError):
    """A run-backed ``ctx`` helper was used in a task executing on a Dask worker."""

    def __init__(self, task_name: str, helper: str) -> None:
        RuntimeError.__init__(
            self,
            f"task {task_name!r} used ctx.{helper}, which needs the live run context, but the "
            "Dask runtime runs tasks remotely in Dask workers, and no run context can be opened "
            "there (the execution has no run, or its run context offers no worker_opener()). "
            "Return the value from the task instead and record it from the WorkflowResult "
            "after execution, or execute this workflow with the default runtime.",
        )
        self.task_name = task_name
        self.helper = helper

    def __reduce__(self) -> tuple[type[RemoteRunContextError], tuple[str, str]]:
        return type(self), (self.task_name, self.helper)


class WorkerTaskContext(TaskContext):
    """The ``ctx`` of a task in a Dask worker whose run cannot be opened there: helpers say why."""

    __slots__ = ()

    def _require_run(self, helper: str) -> NoReturn:
        raise RemoteRunContextError(self._task_name, helper)


@dataclass(frozen=True, slots=True)
class WorkerCall:
    """Everything a worker needs to run one task; sent pickled (see :func:`encode_call`).

    ``inputs`` is the workflow inputs for a task without dependencies and ``None`` otherwise;
    dependency outputs arrive as the :class:`TaskOutcome` arguments of :func:`run_remote_task`.
    ``track_reads``: record what the body reads (a ``cache=True`` task about to be stored).
    ``run_opener``: opens the run's context in the worker (``None``: none can be opened there).
    """

    task_name: str
    workflow_name: str
    workflow_id: str
    kind: BodyKind
    body: Callable[..., Any]
    dep_names: tuple[str, ...]
    config: Mapping[str, Any]
    inputs: Any = None
    track_reads: bool = False
    run_opener: WorkerRunOpener | None = None


def _dumps(value: Any) -> bytes:
    import cloudpickle  # a dependency of dask.distributed

    data: bytes = cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return data


def encode_call(call: WorkerCall) -> bytes:
    """Pickle ``call`` on the client; a ``TypeError`` naming the task when that is impossible.

    Pickling here rather than inside Dask turns an unpicklable body, input or config into a
    failure of that task instead of a submission Dask can only log.
    """
    try:
        return _dumps(call)
    except Exception as exc:
        raise TypeError(
            f"task {call.task_name!r} cannot be sent to the Dask workers: its body, inputs or "
            f"config cannot be pickled ({type(exc).__name__}: {exc})"
        ) from exc


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """What one task produced: its pickled output or its error, and when it ran (epoch s).

    Outputs travel pickled so that an output which cannot leave the worker fails its task
    (Dask itself would only log the serialization error and never finish the future).
    ``reads``/``uncacheable``: what the body read, when the call asked (``track_reads``).
    ``report``: what the worker's run context handed back for the owner to record.
    """

    payload: bytes | None
    error: TaskError | None
    started_at: float = 0.0
    finished_at: float = 0.0
    reads: tuple[RunRead, ...] = ()
    uncacheable: tuple[str, ...] = ()
    report: Any = None

    @classmethod
    def of(cls, task_name: str, output: Any) -> TaskOutcome:
        """The outcome carrying ``output``; a ``TypeError`` naming the task if it won't pickle."""
        try:
            return cls(_dumps(output), None)
        except Exception as exc:
            raise TypeError(
                f"the output of task {task_name!r} ({type(output).__name__}) cannot be pickled "
                f"to move between the client and the Dask workers ({type(exc).__name__}: {exc})"
            ) from exc

    def output(self) -> Any:
        """The unpickled output (``None`` for a failed task)."""
        return None if self.payload is None else pickle.loads(self.payload)


def _task_inputs(call: WorkerCall, dependencies: tuple[TaskOutcome, ...]) -> Any:
    if not call.dep_names:
        return call.inputs
    if len(call.dep_names) == 1:
        return dependencies[0].output()
    return MappingProxyType(
        {name: outcome.output() for name, outcome in zip(call.dep_names, dependencies, strict=True)}
    )


async def _collect(stream: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in stream]


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def _run_body(call: WorkerCall, ctx: TaskContext) -> Any:
    kind = call.kind
    if kind is BodyKind.ASYNC:
        return asyncio.run(_await(call.body(ctx)))
    if kind is BodyKind.ASYNC_STREAM:
        return asyncio.run(_collect(call.body(ctx)))
    if kind is BodyKind.SYNC_STREAM:
        return list(call.body(ctx))
    output = call.body(ctx)
    if inspect.isawaitable(output):
        return asyncio.run(_await(output))
    return output


def portable_error(exc: BaseException) -> TaskError:
    """``TaskError`` of ``exc``, keeping the exception object only if it survives pickling."""
    error = TaskError.from_exception(exc)
    try:
        pickle.loads(_dumps(exc))
    except Exception:
        return dataclasses.replace(error, exception=None)
    return error


def _worker_name() -> str:
    """``host`` and, inside a Dask worker, its address: names the worker in errors."""
    import socket

    host = socket.gethostname()
    try:
        from distributed import get_worker

        return f"{host} ({get_worker().address})"
    except (ImportError, ValueError):
        return host


def _load_call(encoded_call: bytes) -> WorkerCall:
    try:
        call: WorkerCall = pickle.loads(encoded_call)
    except ModuleNotFoundError as exc:
        missing = exc.name or str(exc)
        raise ModuleNotFoundError(
            f"Dask worker {_worker_name()} cannot import module {missing!r}, which the task "
            "needs: install it in the workers' environment (the user's own modules are sent "
            "with the task; third-party packages must be installed on every worker)",
            name=exc.name,
        ) from None
    return call


def _context_for(
    call: WorkerCall, dependencies: tuple[TaskOutcome, ...]
) -> tuple[TaskContext, WorkerRunContextProtocol | None]:
    inputs = _task_inputs(call, dependencies)
    if call.run_opener is None:
        scope = ExecutionScope(call.workflow_name, call.workflow_id, call.config)
        return WorkerTaskContext(scope, call.task_name, inputs), None
    run = call.run_opener.open(call.task_name)
    scope = ExecutionScope(call.workflow_name, call.workflow_id, call.config, run)
    return TaskContext(scope, call.task_name, inputs), run


def _run_call(call: WorkerCall, ctx: TaskContext) -> TaskOutcome:
    if not call.track_reads:
        return TaskOutcome.of(call.task_name, _run_body(call, ctx))
    from molexp.workflow.reads import ReadRecorder

    recorder = ReadRecorder()
    ctx._track_reads(recorder)
    outcome = TaskOutcome.of(call.task_name, _run_body(call, ctx))
    return dataclasses.replace(
        outcome, reads=recorder.reads(), uncacheable=tuple(recorder.uncacheable)
    )


def _close(run: WorkerRunContextProtocol | None, outcome: TaskOutcome) -> TaskOutcome:
    """Close the worker's run context; its report rides on ``outcome`` (a close error fails it)."""
    if run is None:
        return outcome
    try:
        report = run.close()
    except Exception as exc:
        return dataclasses.replace(outcome, payload=None, error=portable_error(exc))
    return dataclasses.replace(outcome, report=report)


def run_remote_task(encoded_call: bytes, *dependencies: TaskOutcome) -> TaskOutcome:
    """Run one task in the worker and return its outcome.

    Whatever the task body raises fails the task, ``SystemExit`` included (it would otherwise
    take the worker process down, and Dask would retry the task on other workers); only a
    ``KeyboardInterrupt`` propagates. The worker's run context is closed either way, so what the
    body recorded before failing still reaches the owner.
    """
    started_at = time.time()
    run: WorkerRunContextProtocol | None = None
    try:
        call = _load_call(encoded_call)
        ctx, run = _context_for(call, dependencies)
        outcome = _run_call(call, ctx)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        outcome = TaskOutcome(None, portable_error(exc))
    outcome = _close(run, outcome)
    return dataclasses.replace(outcome, started_at=started_at, finished_at=time.time())
