"""``DaskExecution``: one workflow execution driven on a Dask client, completion by completion.

Scheduling is lazy and completion-driven: a task is submitted (``client.submit`` with the futures
of its dependencies as arguments, so their outputs move worker to worker) only once every
dependency succeeded, and completions come back through one ``distributed.as_completed`` (with
results) per execution. The driver itself runs on the caller's event loop; only the blocking
``as_completed.next_batch`` wait runs in a thread. So run-context, cache and resume bookkeeping all
happen on the event-loop thread, exactly as with the default runtime.

A failed task marks its not-yet-started transitive dependents ``skipped`` and they are never
submitted; independent branches go on. ``cancel()`` cancels what is in flight (Dask cannot
interrupt Python code already running in a worker: its result is discarded) and submits nothing
more. ``cache=True`` lookups and puts happen here, on the client, with the same snapshot keys as
the default runtime; tasks with a ``remote=`` hint and a ``remote_executor`` run through that hook
on the client; tasks the resume plan re-uses are not run at all.

The run context reaches the workers through the run context's ``worker_opener()`` (a picklable
:class:`~molexp.workflow.protocols.WorkerRunOpener`, sent with every task); the report each
worker's context returns (its results, for one) is handed to the owner's
``apply_worker_report`` here, on the client, before the task counts as finished.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import uuid
from collections import deque
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol, cast

from molexp.workflow._dask.shipping import ship_first_party_modules
from molexp.workflow._dask.worker import TaskOutcome, WorkerCall, encode_call, run_remote_task
from molexp.workflow._resume import snapshot_task
from molexp.workflow.cache import explain_miss
from molexp.workflow.context import ExecutionScope, TaskContext
from molexp.workflow.reads import RunRead, RunValues, whole_run_reads
from molexp.workflow.runtime import (
    TaskError,
    TaskStatus,
    WorkflowResult,
    result_from_trace,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from distributed import Client, Future
    from molexp.workflow._dask.plan import DaskPlan
    from molexp.workflow._resume import ResumePlan
    from molexp.workflow.protocols import RemoteExecutor, RunContextProtocol, WorkerRunOpener
    from molexp.workflow.spec import TaskRegistration

__all__ = ["DaskExecution"]

_logger = logging.getLogger("molexp.workflow")

_PENDING = TaskStatus.PENDING
_RUNNING = TaskStatus.RUNNING
_SUCCEEDED = TaskStatus.SUCCEEDED
_CACHED = TaskStatus.CACHED
_RESUMED = TaskStatus.RESUMED
_FAILED = TaskStatus.FAILED
_SKIPPED = TaskStatus.SKIPPED
_CANCELLED = TaskStatus.CANCELLED
_ABANDON_WAIT = 5.0
"""Seconds an interrupted execution waits for Dask to report its cancelled futures."""


class _Completions(Protocol):
    """The part of ``distributed.as_completed`` (with results) the driver uses."""

    def add(self, future: Future[TaskOutcome]) -> None: ...

    def next_batch(self, block: bool = True) -> list[tuple[Future[TaskOutcome], Any]]: ...


async def _call_remote_executor(
    executor: RemoteExecutor, registration: TaskRegistration, ctx: TaskContext
) -> Any:
    return await executor(registration, ctx)


class DaskExecution:
    """State and driving loop of one execution; ``statuses`` is live during ``run()``.

    It is created before the client is connected (``spec.start()`` hands out its live
    statuses at once); what depends on the client and the run is set when ``run()`` begins.
    """

    client: Client
    config: dict[str, Any]
    scope: ExecutionScope
    resume_plan: ResumePlan | None
    cache: Any
    opener: WorkerRunOpener | None
    _completions: _Completions

    def __init__(
        self,
        plan: DaskPlan,
        *,
        inputs: Any,
        max_concurrency: int | None,
        remote_executor: RemoteExecutor | None,
    ) -> None:
        size = len(plan.tasks)
        self.plan = plan
        self.token = uuid.uuid4().hex[:12]
        self.inputs = inputs
        self.limit = max_concurrency or sys.maxsize
        self.remote_executor = remote_executor
        self.statuses: list[TaskStatus] = [_PENDING] * size
        self.outputs: list[Any] = [None] * size
        self.started: list[float] = [0.0] * size
        self.finished: list[float] = [0.0] * size
        self.remaining = [len(task.deps) for task in plan.tasks]
        self.errors: dict[int, TaskError] = {}
        self.failure_order: list[int] = []
        self.ready: deque[int] = deque()
        # Per finished dependency still needed by a dependent: its Dask future, or None when its
        # output only exists on the client (cached, resumed, remote-executor tasks).
        self.handles: dict[int, Future[TaskOutcome] | None] = {}
        self.consumers = [len(task.dependents) for task in plan.tasks]
        self.in_flight: dict[Future[TaskOutcome], int] = {}
        self.local: dict[asyncio.Future[Any], int] = {}
        self.cache_entries: dict[int, tuple[Any, Any, RunValues]] = {}
        self.cache_notes: dict[int, str] = {}
        self.cancel_requested = False
        self.started_at = 0.0
        self.finished_at = 0.0
        self._batch: asyncio.Future[list[tuple[Future[TaskOutcome], Any]]] | None = None
        self._cancelling: asyncio.Task[None] | None = None

    async def run(
        self,
        client: Client,
        *,
        config: Mapping[str, Any],
        run_context: RunContextProtocol | None,
        resume_plan: ResumePlan | None,
        cache: Any,
    ) -> WorkflowResult:
        """Execute every task on ``client`` and return the result (failures are in it).

        ``config`` is the merged ``ctx.config``; ``cache`` the ``Caching`` of ``cache=True``
        tasks (``None`` when the workflow has none).
        """
        from distributed import as_completed

        self.client = client
        self.config = dict(config)
        self.scope = ExecutionScope(
            self.plan.workflow_name, self.plan.workflow_id, config, run_context
        )
        self.resume_plan = resume_plan
        self.cache = cache
        make_opener = getattr(run_context, "worker_opener", None)
        self.opener = make_opener() if make_opener is not None else None
        completions = cast("Callable[..., _Completions]", as_completed)
        self._completions = completions(loop=client.loop, with_results=True, raise_errors=False)
        ship_first_party_modules()  # the user's modules reach workers that cannot import them
        self.started_at = time.time()
        try:
            self._start()
            while self.in_flight or self.local:
                await self._wait()
                self._launch_ready()
            if self._cancelling is not None:
                await self._cancelling
        finally:
            if self.in_flight or self.local:  # interrupted: the caller was cancelled, or fatal
                await self._abandon()
            self.handles.clear()
        for index, status in enumerate(self.statuses):
            if status is _PENDING:  # only left behind by a cancellation request
                self.statuses[index] = _CANCELLED
        self.finished_at = time.time()
        return self._result()

    def request_cancel(self) -> None:
        """Submit nothing more and cancel what is in flight (``WorkflowExecution.cancel``)."""
        if self.cancel_requested:
            return
        self.cancel_requested = True
        self.ready.clear()
        for task in self.local:
            task.cancel()
        if self.in_flight:
            futures = list(self.in_flight)
            self._cancelling = asyncio.get_running_loop().create_task(
                asyncio.to_thread(self.client.cancel, futures)
            )

    # -- scheduling -------------------------------------------------------------------------

    def _start(self) -> None:
        resumed = self.resume_plan.resumed_outputs if self.resume_plan is not None else {}
        position = {name: i for i, name in enumerate(self.plan.names)}
        for name in resumed:
            self.statuses[position[name]] = _RESUMED
        self.ready.extend(root for root in self.plan.roots if self.statuses[root] is _PENDING)
        for name, output in resumed.items():  # makes the dependents of resumed tasks ready
            self._store_output(position[name], output, None)
        self._launch_ready()

    def _launch_ready(self) -> None:
        ready = self.ready
        while ready and not self.cancel_requested:
            if len(self.in_flight) + len(self.local) >= self.limit:
                return
            self._launch(ready.popleft())

    def _launch(self, index: int) -> None:
        task = self.plan.tasks[index]
        registration = task.registration
        if not (registration.cache and self._served_from_cache(index)):
            if registration.remote is not None and self.remote_executor is not None:
                self._start_local(index)
            else:
                self._submit(index)
        self._release_inputs_of(index)

    def _submit(self, index: int) -> None:
        task = self.plan.tasks[index]
        call = WorkerCall(
            task_name=task.name,
            workflow_name=self.plan.workflow_name,
            workflow_id=self.plan.workflow_id,
            kind=task.kind,
            body=task.body,
            dep_names=task.registration.depends_on,
            config=self.config,
            inputs=None if task.deps else self.inputs,
            track_reads=index in self.cache_entries,
            run_opener=self.opener,
        )
        self.statuses[index] = _RUNNING
        self.started[index] = time.time()
        arguments: list[Future[TaskOutcome] | TaskOutcome] = []
        try:
            encoded = encode_call(call)
            for dep in task.deps:
                handle = self.handles[dep]
                if handle is None:  # the output is on the client: send it along
                    arguments.append(TaskOutcome.of(self.plan.names[dep], self.outputs[dep]))
                else:
                    arguments.append(handle)
        except TypeError as exc:
            self.finished[index] = time.time()
            self._fail(index, TaskError.from_exception(exc))
            return
        future = self.client.submit(
            run_remote_task, encoded, *arguments, key=f"{task.name}-{self.token}", pure=False
        )
        self.in_flight[future] = index
        self._completions.add(future)

    def _start_local(self, index: int) -> None:
        task = self.plan.tasks[index]
        executor = self.remote_executor
        assert executor is not None
        ctx = TaskContext(self.scope, task.name, self._local_inputs(index, read_only=True))
        self.statuses[index] = _RUNNING
        self.started[index] = time.time()
        running = asyncio.get_running_loop().create_task(
            _call_remote_executor(executor, task.registration, ctx)
        )
        self.local[running] = index

    def _served_from_cache(self, index: int) -> bool:
        """Look ``index`` up in the cache; True when its output came from there."""
        task = self.plan.tasks[index]
        self.started[index] = time.time()
        # Tasks sent to the workers see the run context only through an opener; those run
        # through the remote executor see it (and are keyed on all of it: reads unobserved).
        local = task.registration.remote is not None and self.remote_executor is not None
        values = RunValues(
            task_name=task.name,
            workflow_name=self.plan.workflow_name,
            workflow_id=self.plan.workflow_id,
            config=self.config,
            run_context=self.scope.run_context if local or self.opener is not None else None,
        )
        try:
            snapshot = self.resume_plan.snapshot(task.name) if self.resume_plan else None
            if snapshot is None:
                snapshot = snapshot_task(task.registration)
            cache_inputs = self._local_inputs(index, read_only=False)
            lookup = self.cache.lookup(snapshot, cache_inputs, run=values)
        except Exception as exc:
            self.finished[index] = time.time()
            self._fail(index, TaskError.from_exception(exc))
            return True
        if lookup.hit:
            self.finished[index] = time.time()
            self.cache_notes[index] = "hit"
            self._succeed(index, lookup.value, None, _CACHED)
            return True
        self.cache_notes[index] = explain_miss(self.cache, snapshot, cache_inputs, values, lookup)
        if lookup.key is None:
            _logger.warning(
                "task %r of workflow %r runs uncached: %s",
                task.name,
                self.plan.workflow_name,
                lookup.reason,
            )
            self.cache_notes[index] = f"not stored: {lookup.reason}"
        else:
            self.cache_entries[index] = (snapshot, cache_inputs, values)
        return False

    def _local_inputs(self, index: int, *, read_only: bool) -> Any:
        """The task's inputs from outputs already on the client (cache keys, remote executor)."""
        task = self.plan.tasks[index]
        if not task.deps:
            return self.inputs
        if len(task.deps) == 1:
            return self.outputs[task.deps[0]]
        mapping = {
            name: self.outputs[dep]
            for name, dep in zip(task.registration.depends_on, task.deps, strict=True)
        }
        return MappingProxyType(mapping) if read_only else mapping

    def _release_inputs_of(self, index: int) -> None:
        """``index`` will not be submitted again: its dependencies have one consumer fewer."""
        for dep in self.plan.tasks[index].deps:
            self.consumers[dep] -= 1
            if self.consumers[dep] == 0:
                self.handles.pop(dep, None)

    # -- completions ------------------------------------------------------------------------

    async def _wait(self) -> None:
        waiters: set[asyncio.Future[Any]] = set(self.local)
        if self.in_flight:
            if self._batch is None:
                self._batch = asyncio.ensure_future(asyncio.to_thread(self._completions.next_batch))
            waiters.add(self._batch)
        done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        batch = self._batch
        if batch is not None and batch in done:
            self._batch = None
            for future, result in batch.result():
                self._on_dask_done(future, result)
        for finished in done:
            if finished is not batch:
                self._on_local_done(finished)

    def _on_dask_done(self, future: Future[TaskOutcome], result: Any) -> None:
        index = self.in_flight.pop(future)
        status = future.status
        if status == "finished":
            outcome: TaskOutcome = result
            self.started[index] = outcome.started_at
            self.finished[index] = outcome.finished_at
            if outcome.report is not None and not self._apply_report(index, outcome.report):
                return
            if outcome.error is None:
                self._succeed(index, outcome.output(), future, _SUCCEEDED, outcome)
            else:
                self._fail(index, outcome.error)
            return
        self.finished[index] = time.time()
        if status == "cancelled":
            self._cancel(index)
            return
        # The worker could not run the task (e.g. it died more often than the scheduler's
        # allowed-failures: KilledWorker); ``result`` is then (type, exception, traceback).
        if isinstance(result, tuple) and len(result) == 3 and isinstance(result[1], BaseException):
            error = TaskError.from_exception(result[1].with_traceback(result[2]))
        else:
            name = self.plan.names[index]
            error = TaskError.from_exception(
                RuntimeError(f"Dask reported task {name!r} as {status}: {result!r}")
            )
        self._fail(index, error)

    def _apply_report(self, index: int, report: Any) -> bool:
        """Record a worker's report through the owner's run context; False: the task failed."""
        try:
            self.scope.run_context.apply_worker_report(  # type: ignore[union-attr]
                report, self.plan.names[index]
            )
        except Exception as exc:
            self._fail(index, TaskError.from_exception(exc))
            return False
        return True

    def _on_local_done(self, finished: asyncio.Future[Any]) -> None:
        index = self.local.pop(finished)
        self.finished[index] = time.time()
        if finished.cancelled():
            self._cancel(index)
            return
        exc = finished.exception()
        if exc is None:
            output = finished.result()
            self._succeed(index, output, None, _SUCCEEDED)
        elif isinstance(exc, Exception):
            self._fail(index, TaskError.from_exception(exc))
        else:  # not a task failure (e.g. SystemExit): it stops the whole execution
            raise exc

    def _succeed(
        self,
        index: int,
        output: Any,
        handle: Future[TaskOutcome] | None,
        status: TaskStatus,
        outcome: TaskOutcome | None = None,
    ) -> None:
        name = self.plan.tasks[index].name
        entry = self.cache_entries.pop(index, None)
        if entry is not None:
            snapshot, cache_inputs, values = entry
            reads: tuple[RunRead, ...]
            uncacheable: tuple[str, ...] = ()
            if outcome is None:  # run through the remote executor: reads not observed
                reads = whole_run_reads(values)
            else:
                reads, uncacheable = outcome.reads, outcome.uncacheable
            try:
                if uncacheable:
                    why = f"it read {', '.join(uncacheable)}"
                    _logger.warning(
                        "task %r of workflow %r ran uncached: %s",
                        name,
                        self.plan.workflow_name,
                        why,
                    )
                    self.cache_notes[index] = f"not stored: {why}"
                else:
                    self.cache.put(snapshot, cache_inputs, output, reads=reads)
            except Exception as exc:  # a CacheStoreError names the task and fails it
                self._fail(index, TaskError.from_exception(exc))
                return
        self.statuses[index] = status
        self._store_output(index, output, handle)
        if self.resume_plan is not None:
            self.resume_plan.record_success(name, output)

    def _store_output(self, index: int, output: Any, handle: Future[TaskOutcome] | None) -> None:
        self.outputs[index] = output
        if self.consumers[index] > 0:
            self.handles[index] = handle
        for dependent in self.plan.tasks[index].dependents:
            self.remaining[dependent] -= 1
            if self.remaining[dependent] == 0 and self.statuses[dependent] is _PENDING:
                self.ready.append(dependent)

    def _fail(self, index: int, error: TaskError) -> None:
        self.statuses[index] = _FAILED
        self.errors[index] = error
        self.failure_order.append(index)
        self._mark_dependents(index, _SKIPPED)

    def _cancel(self, index: int) -> None:
        self.statuses[index] = _CANCELLED
        self._mark_dependents(index, _CANCELLED)

    def _mark_dependents(self, index: int, status: TaskStatus) -> None:
        """Give every not-yet-started transitive dependent of ``index`` the terminal ``status``."""
        stack = list(self.plan.tasks[index].dependents)
        while stack:
            dependent = stack.pop()
            if self.statuses[dependent] is _PENDING:
                self.statuses[dependent] = status
                self._release_inputs_of(dependent)
                stack.extend(self.plan.tasks[dependent].dependents)

    async def _abandon(self) -> None:
        for task in self.local:
            task.cancel()
        futures = list(self.in_flight)
        for index in [*self.in_flight.values(), *self.local.values()]:
            self.statuses[index] = _CANCELLED
        self.in_flight.clear()
        self.local.clear()
        if futures:
            await asyncio.to_thread(self.client.cancel, futures)
        if self._batch is not None:  # returns once the cancelled futures are reported
            await asyncio.wait([self._batch], timeout=_ABANDON_WAIT)

    # -- result -----------------------------------------------------------------------------

    def _result(self) -> WorkflowResult:
        plan = self.plan
        return result_from_trace(plan.workflow_name, plan.workflow_id, plan.names, plan.sinks, self)
