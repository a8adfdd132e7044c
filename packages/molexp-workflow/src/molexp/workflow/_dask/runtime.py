"""``DaskRuntime``: execute workflows on a Dask cluster, and ``runtime_from_config`` for profiles.

``distributed`` is imported only when a ``DaskRuntime`` is created (a missing install is an
``ImportError`` naming the ``molexp-workflow[dask]`` extra). The runtime connects lazily, on its
first execution: to the scheduler at ``address`` when one is given, to the caller's ``client=``,
or else to a ``LocalCluster`` it starts itself. ``close()`` (or leaving ``async with`` / ``with``)
closes what the runtime created; a caller's client is left open.

Validation, the run lifecycle (opening the run, resume, recording the execution state, failing
the run) and the result semantics are the ``WorkflowRuntime`` template shared with the default
runtime; this module only supplies ``prepare`` (a ``DaskExecution`` on a connected client).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from molexp.workflow._dask.execution import DaskExecution
from molexp.workflow._dask.plan import DaskPlan, plan_workflow
from molexp.workflow._lifecycle import merged_config, resolve_cache
from molexp.workflow.runtime import (
    ExecutionOptions,
    PreparedExecution,
    WorkflowResult,
    WorkflowRuntime,
    is_positive_int,
)

if TYPE_CHECKING:
    from types import ModuleType, TracebackType

    from distributed import Client
    from molexp.workflow._resume import ResumePlan
    from molexp.workflow.protocols import RunContextProtocol
    from molexp.workflow.spec import Workflow

__all__ = ["DaskRuntime", "import_distributed", "runtime_from_config"]

DASK_RUNTIME_NAME = "dask"
DEFAULT_RUNTIME_NAMES = ("default",)


def import_distributed() -> ModuleType:
    """``import distributed``, or an ``ImportError`` saying which extra to install."""
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(
            "DaskRuntime needs the `distributed` package, which is not installed; install the "
            "Dask extra with `pip install 'molexp-workflow[dask]'`"
        ) from exc
    return distributed


class _Closable(Protocol):
    def close(self) -> Any: ...


class DaskRuntime(WorkflowRuntime):
    """Runs every task of a workflow as a Dask future; use with ``spec.execute(runtime=...)``.

    ``address`` connects to a running scheduler (``"tcp://host:8786"``); ``client`` uses an
    existing synchronous ``distributed.Client`` (never closed by this runtime); with neither, a
    ``LocalCluster(n_workers, processes=processes, threads_per_worker=threads_per_worker)`` is
    started on the first execution. Close it with ``close()`` or ``async with DaskRuntime() as
    runtime``. Task bodies run in the workers, with the user's first-party modules shipped by
    value; under a run whose context offers ``worker_opener()`` the run-backed ``ctx`` helpers
    work there (else they raise ``NoRunContextError``). Everything else (inputs, config,
    statuses, errors, skipping, the run lifecycle) behaves as with the default runtime.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        client: Client | None = None,
        n_workers: int | None = None,
        processes: bool = True,
        threads_per_worker: int = 1,
    ) -> None:
        self._distributed = import_distributed()
        if address is not None and not isinstance(address, str):
            raise TypeError(
                f"DaskRuntime: address must be a scheduler address string such as "
                f"'tcp://host:8786', got {type(address).__name__} {address!r}"
            )
        if address is not None and client is not None:
            raise ValueError("DaskRuntime: pass either address= or client=, not both")
        if client is not None and not isinstance(client, self._distributed.Client):
            raise TypeError(
                f"DaskRuntime: client must be a distributed.Client, got {type(client).__name__}"
            )
        if client is not None and client.asynchronous:
            raise ValueError(
                "DaskRuntime: client must be a synchronous distributed.Client "
                "(created without asynchronous=True)"
            )
        if n_workers is not None and not is_positive_int(n_workers):
            raise ValueError(f"DaskRuntime: n_workers must be a positive int, got {n_workers!r}")
        if n_workers is not None and (address is not None or client is not None):
            raise ValueError(
                "DaskRuntime: n_workers only applies to the LocalCluster started without "
                "address= or client="
            )
        if not isinstance(processes, bool):
            raise TypeError(f"DaskRuntime: processes must be True or False, got {processes!r}")
        if not is_positive_int(threads_per_worker):
            raise ValueError(
                "DaskRuntime: threads_per_worker must be a positive int, "
                f"got {threads_per_worker!r}"
            )
        self.address = address
        self.n_workers = n_workers
        self.processes = processes
        self.threads_per_worker = threads_per_worker
        self._client: Client | None = client
        self._owns_client = client is None
        self._cluster: _Closable | None = None
        self._closed = False
        self._lock = threading.Lock()
        self._plans: weakref.WeakKeyDictionary[Workflow, DaskPlan] = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        if self.address is not None:
            target = f"address={self.address!r}"
        elif not self._owns_client:
            target = "client=<given>"
        else:
            target = f"LocalCluster(n_workers={self.n_workers}, processes={self.processes})"
        state = "closed" if self._closed else "connected" if self._client else "not started"
        return f"DaskRuntime({target}, {state})"

    # -- connection -------------------------------------------------------------------------

    @property
    def client(self) -> Client:
        """The Dask client, connecting (or starting the ``LocalCluster``) first if needed.

        This blocks while connecting; executions connect in a worker thread instead.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("DaskRuntime is closed; create a new one")
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self) -> Client:
        distributed = self._distributed  # an untyped module: annotate what comes out of it
        if self.address is not None:
            try:
                remote: Client = distributed.Client(self.address, set_as_default=False)
            except OSError as exc:
                raise ConnectionError(
                    f"DaskRuntime: cannot connect to the Dask scheduler at {self.address!r}: {exc}"
                ) from exc
            return remote
        cluster: _Closable = distributed.LocalCluster(
            n_workers=self.n_workers,
            processes=self.processes,
            threads_per_worker=self.threads_per_worker,
            dashboard_address=":0",  # a free port: several runtimes may run side by side
        )
        try:
            client: Client = distributed.Client(cluster, set_as_default=False)
        except BaseException:
            cluster.close()
            raise
        self._cluster = cluster
        return client

    async def _connected_client(self) -> Client:
        client = self._client
        if client is not None and not self._closed:
            return client
        return await asyncio.to_thread(lambda: self.client)

    def close(self) -> None:
        """Close the client and ``LocalCluster`` this runtime created (idempotent)."""
        with self._lock:
            self._closed = True
            client, cluster = self._client, self._cluster
            self._client = None
            self._cluster = None
        if client is not None and self._owns_client:
            owned: _Closable = client
            owned.close()
        if cluster is not None:
            cluster.close()

    async def __aenter__(self) -> DaskRuntime:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.close)

    def __enter__(self) -> DaskRuntime:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- WorkflowRuntime --------------------------------------------------------------------

    execution_label = "molexp-workflow-dask"

    def prepare(self, spec: Workflow, options: ExecutionOptions) -> PreparedExecution:
        """Plan ``spec`` (once per workflow, cached) and set up one execution on the cluster.

        Args:
            spec: The workflow to execute.
            options: Options of this execution.

        Returns:
            The prepared execution, not yet started.

        Raises:
            RuntimeError: If this runtime has been closed.
        """
        if self._closed:
            raise RuntimeError(f"workflow {spec.name!r}: this DaskRuntime is closed")
        plan = self._plans.get(spec)
        if plan is None:
            plan = self._plans[spec] = plan_workflow(spec)
        return _DaskPrepared(self, spec, plan, options)


class _DaskPrepared(PreparedExecution):
    """One execution: a ``DaskExecution`` and the client it runs on (connected in ``ready``)."""

    def __init__(
        self, runtime: DaskRuntime, spec: Workflow, plan: DaskPlan, options: ExecutionOptions
    ) -> None:
        self.runtime = runtime
        self.spec = spec
        self.plan = plan
        self.options = options
        self.execution = DaskExecution(
            plan,
            inputs=options.inputs,
            max_concurrency=options.max_concurrency,
            remote_executor=options.remote_executor,
        )
        self.names = plan.names
        self.statuses = self.execution.statuses
        self.client: Client | None = None

    def request_cancel(self) -> None:
        self.execution.request_cancel()

    async def ready(self) -> None:
        self.client = await self.runtime._connected_client()

    async def drive(
        self, run_context: RunContextProtocol | None, resume_plan: ResumePlan | None
    ) -> WorkflowResult:
        assert self.client is not None, "ready() connects the client before drive()"
        options = self.options
        uses_cache = any(task.registration.cache for task in self.plan.tasks)
        return await self.execution.run(
            self.client,
            config=merged_config(run_context, options),
            run_context=run_context,
            resume_plan=resume_plan,
            cache=resolve_cache(options, run_context, self.spec) if uses_cache else None,
        )


def runtime_from_config(config: Mapping[str, Any]) -> WorkflowRuntime | None:
    """The runtime a profile asks for: a :class:`DaskRuntime` for ``runtime = "dask"``.

    Returns ``None`` (use the default runtime) when ``runtime`` is absent or ``"default"``. For
    ``"dask"``, ``address``, ``n_workers``, ``processes`` and ``threads_per_worker`` are passed to
    :class:`DaskRuntime`. Any other ``runtime`` value is a ``ValueError`` naming it.
    """
    if not isinstance(config, Mapping):
        raise TypeError(
            f"runtime_from_config: config must be a mapping, got {type(config).__name__}"
        )
    name = config.get("runtime")
    if name is None or name in DEFAULT_RUNTIME_NAMES:
        return None
    if name != DASK_RUNTIME_NAME:
        known = ", ".join(repr(n) for n in (DASK_RUNTIME_NAME, *DEFAULT_RUNTIME_NAMES))
        raise ValueError(
            f"profile config: runtime = {name!r} is not a known runtime (known: {known}; "
            "leave it out for the default runtime)"
        )
    return DaskRuntime(
        config.get("address"),
        n_workers=config.get("n_workers"),
        processes=config.get("processes", True),
        threads_per_worker=config.get("threads_per_worker", 1),
    )
