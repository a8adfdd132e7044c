"""What a task sees while it runs: ``TaskContext`` and, for actors, ``ActorContext``.

``ctx.inputs`` is the workflow ``inputs`` for a task without dependencies, the output of its only
dependency, or a read-only mapping ``dependency name -> output`` (in ``depends_on`` order) when it
has several. ``ctx.config`` is the read-only merged configuration of the execution.

The run-backed helpers (``set_result``, ``log_metric``, ``log_metrics``, ``artifact``,
``find_asset``, ``checkpoint``, ``params``) delegate to the run context and raise
:class:`~molexp.workflow.NoRunContextError` without one.
``ctx.log(name)`` always works: under a run it is the run's log ``logs/<name>.log``; without a run
it returns a handle whose lines go to the standard logger ``molexp.task.<task name>`` at INFO
level, prefixed with ``[<name>]``.

For a ``cache=True`` task the runtime attaches a :class:`~molexp.workflow.reads.ReadRecorder`:
``ctx.config``, ``ctx.params``, ``ctx.run_context`` (then a read-recording view of the run
context), ``ctx.find_asset`` and the task/workflow names record what the task reads, so that its
cache entry is keyed on those values only (see :mod:`molexp.workflow.reads`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from molexp.workflow.errors import ChannelClosedError, ConfigKeyError, NoRunContextError

if TYPE_CHECKING:
    import asyncio
    from pathlib import Path

    from molexp.workflow.protocols import (
        ArtifactSaverProtocol,
        LogHandleProtocol,
        RunContextProtocol,
    )
    from molexp.workflow.reads import ReadRecorder, ReadSource

__all__ = ["ActorContext", "ExecutionScope", "TaskContext"]

_EMPTY_CONFIG: Final[Mapping[str, Any]] = MappingProxyType({})


class _ReadMapping(Mapping[str, Any]):
    """Read-only view of a mapping that records, when tracking, every key the task reads.

    ``get``, ``in``, ``items()`` and ``==`` go through ``__getitem__`` and ``__iter__``, so they
    are recorded too; copying or pickling the view records every key and gives a plain copy.
    """

    __slots__ = ("_data", "_reads", "_source")

    def __init__(
        self, data: Mapping[str, Any], source: ReadSource, reads: ReadRecorder | None
    ) -> None:
        self._data = data
        self._source: ReadSource = source
        self._reads = reads

    def __getitem__(self, key: str) -> Any:
        try:
            value = self._data[key]
        except KeyError:
            if self._reads is not None:
                self._reads.record_missing(self._source, key)
            raise self._missing(key) from None
        if self._reads is not None:
            self._reads.record(self._source, key, value)
        return value

    def _missing(self, key: str) -> KeyError:
        return KeyError(key)

    def __iter__(self) -> Iterator[str]:
        if self._reads is not None:
            self._reads.record_keys(self._source, self._data)
        return iter(self._data)

    def __len__(self) -> int:
        if self._reads is not None:
            self._reads.record_keys(self._source, self._data)
        return len(self._data)

    def __reduce__(self) -> tuple[type[dict[str, Any]], tuple[dict[str, Any]]]:
        return dict, (dict(self.items()),)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict(self._data)!r})"


class TaskConfig(_ReadMapping):
    """Read-only view of the execution config whose missing keys name the task asking."""

    __slots__ = ("_task_name",)

    def __init__(
        self, data: Mapping[str, Any], task_name: str, reads: ReadRecorder | None = None
    ) -> None:
        super().__init__(data, "config", reads)
        self._task_name = task_name

    def _missing(self, key: str) -> KeyError:
        available = ", ".join(repr(k) for k in sorted(self._data, key=str)) or "none"
        return ConfigKeyError(
            f"task {self._task_name!r}: config has no key {key!r} (available keys: {available})"
        )


_NOT_FOUND: Final = object()


class _RecordingRunContext:
    """``ctx.run_context`` of a ``cache=True`` task: the run context, recording what is read.

    Parameters and config are read-recording mappings; ``get_result`` and ``find_asset`` record
    what they return; the writers (``artifact``, ``set_result``, ``log``, ``checkpoint``,
    ``record_execution_state``, ``mark_failed``) are passed through. Any other attribute is
    recorded by its value, or, when the value cannot be hashed (the workspace, an unknown
    method), as a read the cache cannot repeat.
    """

    __slots__ = ("_reads", "_target")

    _WRITERS: Final = frozenset(
        {"flush_results", "flush_metrics", "record_metric_summaries", "heartbeat", "emit"}
    )

    def __init__(self, target: RunContextProtocol, reads: ReadRecorder) -> None:
        self._target = target
        self._reads = reads

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._target!r})"

    def _value(self, name: str) -> Any:
        value = getattr(self._target, name)
        self._reads.record("run_context", name, value)
        return value

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if name in self._WRITERS:
            return getattr(self._target, name)
        return self._value(name)

    @property
    def params(self) -> Mapping[str, Any]:
        return _ReadMapping(self._target.params, "params", self._reads)

    @property
    def config(self) -> Mapping[str, Any]:
        return _ReadMapping(self._target.config, "run_context.config", self._reads)

    @property
    def run_dir(self) -> Path:
        value: Path = self._value("run_dir")
        return value

    @property
    def execution_id(self) -> str:
        value: str = self._value("execution_id")
        return value

    @property
    def execution_dir(self) -> Path:
        value: Path = self._value("execution_dir")
        return value

    @property
    def workspace(self) -> Any:
        return self._value("workspace")

    @property
    def artifact(self) -> ArtifactSaverProtocol:
        return self._target.artifact

    def set_result(self, key: str, value: Any) -> None:
        self._target.set_result(key, value)

    def get_result(self, key: str, default: Any = None) -> Any:
        value = self._target.get_result(key, _NOT_FOUND)
        if value is _NOT_FOUND:
            self._reads.record_missing("get_result", key)
            return default
        self._reads.record("get_result", key, value)
        return value

    def log_metric(
        self, name: str, value: float, step: int | None = None, timestamp: Any = None
    ) -> None:
        self._target.log_metric(name, value, step, timestamp)

    def log_metrics(
        self, values: Mapping[str, float], *, step: int | None = None, timestamp: Any = None
    ) -> None:
        self._target.log_metrics(values, step=step, timestamp=timestamp)

    def log(self, name: str) -> LogHandleProtocol:
        return self._target.log(name)

    def find_asset(self, name: str, *args: Any, **kwargs: Any) -> Any:
        asset = self._target.find_asset(name, *args, **kwargs)
        if args or kwargs:
            self._reads.mark_uncacheable(f"find_asset({name!r}, ...) with more arguments")
        else:
            self._reads.record_asset(name, asset)
        return asset

    def checkpoint(self, name: str, data: Any = None) -> Any:
        return self._target.checkpoint(name, data)

    def record_execution_state(self, state: Mapping[str, Any]) -> Any:
        return self._target.record_execution_state(state)

    def mark_failed(self, error: BaseException | str, *, task_name: str | None = None) -> None:
        self._target.mark_failed(error, task_name=task_name)


class _LoggerLogHandle:
    """``ctx.log(name)`` without a run: lines go to ``logging.getLogger("molexp.task.<task>")``."""

    __slots__ = ("_logger", "_name")

    def __init__(self, task_name: str, name: str) -> None:
        self._logger = logging.getLogger(f"molexp.task.{task_name}")
        self._name = name

    def append(self, line: str) -> None:
        self._logger.info("[%s] %s", self._name, line)


_CLOSED: Final = object()


class _Channel:
    """One named asyncio queue of an execution; closing it ends every consumer's iteration."""

    __slots__ = ("closed", "name", "queue")

    def __init__(self, name: str) -> None:
        import asyncio

        self.name = name
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.closed = False

    def put(self, item: Any, task_name: str) -> None:
        if self.closed:
            raise ChannelClosedError(self.name, task_name, "emit to")
        self.queue.put_nowait(item)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.queue.put_nowait(_CLOSED)

    async def get(self, task_name: str, wait_seconds: float | None) -> Any:
        import asyncio

        try:
            async with asyncio.timeout(wait_seconds):
                item = await self.queue.get()
        except TimeoutError:
            raise TimeoutError(
                f"task {task_name!r} received nothing on channel {self.name!r} "
                f"within {wait_seconds} s"
            ) from None
        if item is _CLOSED:
            self.queue.put_nowait(_CLOSED)  # let every other consumer see the end too
            raise ChannelClosedError(self.name, task_name, "receive from")
        return item


class ExecutionScope:
    """Everything the tasks of one execution share: identity, config, run context, channels."""

    __slots__ = ("_channels", "config", "run_context", "workflow_id", "workflow_name")

    def __init__(
        self,
        workflow_name: str,
        workflow_id: str,
        config: Mapping[str, Any] | None = None,
        run_context: RunContextProtocol | None = None,
    ) -> None:
        self.workflow_name = workflow_name
        self.workflow_id = workflow_id
        self.config: Mapping[str, Any] = MappingProxyType(dict(config)) if config else _EMPTY_CONFIG
        self.run_context = run_context
        self._channels: dict[str, _Channel] = {}

    def channel(self, name: str) -> _Channel:
        """The channel called ``name``, created on first use."""
        found = self._channels.get(name)
        if found is None:
            if not isinstance(name, str) or not name:
                raise ValueError(f"channel names must be non-empty strings, got {name!r}")
            found = self._channels[name] = _Channel(name)
        return found


class TaskContext:
    """The context object passed to every task body as ``ctx``."""

    __slots__ = ("_config", "_reads", "_scope", "_task_name", "inputs")

    def __init__(self, scope: ExecutionScope, task_name: str, inputs: Any) -> None:
        self._scope = scope
        self._task_name = task_name
        self.inputs = inputs
        self._config: TaskConfig | None = None
        self._reads: ReadRecorder | None = None

    def _track_reads(self, reads: ReadRecorder | None) -> None:
        """Record what the task reads from its run into ``reads`` (None: stop recording)."""
        self._reads = reads
        self._config = None

    @property
    def task_name(self) -> str:
        """Name of the running task (recorded as read, for caching)."""
        if self._reads is not None:
            self._reads.record("ctx", "task_name", self._task_name)
        return self._task_name

    @property
    def workflow_name(self) -> str:
        """Name of the workflow (recorded as read, for caching)."""
        if self._reads is not None:
            self._reads.record("ctx", "workflow_name", self._scope.workflow_name)
        return self._scope.workflow_name

    @property
    def workflow_id(self) -> str:
        """Id of the workflow (recorded as read, for caching)."""
        if self._reads is not None:
            self._reads.record("ctx", "workflow_id", self._scope.workflow_id)
        return self._scope.workflow_id

    @property
    def run_context(self) -> RunContextProtocol | None:
        """The live run context, or ``None`` when the workflow runs without a run."""
        run_context = self._scope.run_context
        reads = self._reads
        if reads is None:
            return run_context
        reads.record("ctx", "run_context", run_context is not None)
        return None if run_context is None else _RecordingRunContext(run_context, reads)

    @property
    def config(self) -> Mapping[str, Any]:
        """Read-only merged config; a missing key raises a ``KeyError`` naming the task."""
        if self._config is None:
            self._config = TaskConfig(self._scope.config, self._task_name, self._reads)
        return self._config

    def _require_run(self, helper: str) -> RunContextProtocol:
        run_context = self._scope.run_context
        if run_context is None:
            raise NoRunContextError(self._task_name, helper)
        return run_context

    @property
    def params(self) -> Mapping[str, Any]:
        """The run's parameters (needs a run)."""
        params = self._require_run("params").params
        if self._reads is None:
            return params
        return _ReadMapping(params, "params", self._reads)

    @property
    def artifact(self) -> ArtifactSaverProtocol:
        """The run's artifact saver: ``ctx.artifact.save(name, data)`` (needs a run)."""
        return self._require_run("artifact").artifact

    def set_result(self, key: str, value: Any) -> None:
        """Store a lightweight result value on the run record (needs a run)."""
        self._require_run("set_result").set_result(key, value)

    def log_metric(
        self, name: str, value: float, step: int | None = None, timestamp: Any = None
    ) -> None:
        """Add a point to the run's metric series ``name`` (needs a run).

        ``step`` defaults to one more than the last step of ``name``; ``timestamp`` (Unix
        seconds or an aware datetime) to now.
        """
        self._require_run("log_metric").log_metric(name, value, step, timestamp)

    def log_metrics(
        self, values: Mapping[str, float], *, step: int | None = None, timestamp: Any = None
    ) -> None:
        """Add one point per ``name -> value`` to the run's metric series, as one durable
        batch (needs a run)."""
        self._require_run("log_metrics").log_metrics(values, step=step, timestamp=timestamp)

    def find_asset(self, name: str) -> Any:
        """Look an asset up run -> experiment -> project -> workspace (needs a run)."""
        asset = self._require_run("find_asset").find_asset(name)
        if self._reads is not None:
            self._reads.record_asset(name, asset)
        return asset

    def checkpoint(self, name: str, data: Any = None) -> Any:
        """Write a checkpoint of the run (needs a run)."""
        return self._require_run("checkpoint").checkpoint(name, data)

    def log(self, name: str) -> LogHandleProtocol:
        """A log handle: the run's ``logs/<name>.log`` under a run, else a ``logging`` logger."""
        run_context = self._scope.run_context
        if run_context is not None:
            return run_context.log(name)
        return _LoggerLogHandle(self._task_name, name)

    def __repr__(self) -> str:
        workflow = self._scope.workflow_name
        return f"{type(self).__name__}(task={self._task_name!r}, workflow={workflow!r})"


class ActorContext(TaskContext):
    """Task context of an :class:`~molexp.workflow.Actor`, adding named channels.

    Channels are per-execution asyncio queues shared by every task of that execution; they are
    unbounded, so ``emit`` never blocks. Use them from ``async def`` code on the event loop.
    """

    __slots__ = ()

    def emit(self, channel: str, item: Any) -> None:
        """Put ``item`` on ``channel``; raises ``ChannelClosedError`` if it was closed."""
        self._scope.channel(channel).put(item, self._task_name)

    async def receive(self, channel: str, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        """Wait for the next item of ``channel``.

        Raises ``TimeoutError`` after ``timeout`` seconds and ``ChannelClosedError`` once the
        channel is closed and drained.
        """
        if self._reads is not None:
            self._reads.mark_uncacheable(f"a message received on channel {channel!r}")
        return await self._scope.channel(channel).get(self._task_name, timeout)

    async def channel(self, name: str) -> AsyncIterator[Any]:
        """Iterate over the items of channel ``name`` until it is closed."""
        queue = self._scope.channel(name)
        if self._reads is not None:
            self._reads.mark_uncacheable(f"messages received on channel {name!r}")
        while True:
            try:
                item = await queue.get(self._task_name, None)
            except ChannelClosedError:
                return
            yield item

    def close(self, channel: str) -> None:
        """Close ``channel``: consumers finish after draining what was already emitted."""
        self._scope.channel(channel).close()
