"""What a task sees while it runs: ``TaskContext`` and, for actors, ``ActorContext``.

``ctx.inputs`` is the workflow ``inputs`` for a task without dependencies, the output of its only
dependency, or a read-only mapping ``dependency name -> output`` (in ``depends_on`` order) when it
has several. ``ctx.config`` is the read-only merged configuration of the execution.

The run-backed helpers (``set_result``, ``artifact``, ``find_asset``, ``checkpoint``, ``params``)
delegate to the run context and raise :class:`~molexp.workflow.NoRunContextError` without one.
``ctx.log(name)`` always works: under a run it is the run's log ``logs/<name>.log``; without a run
it returns a handle whose lines go to the standard logger ``molexp.task.<task name>`` at INFO
level, prefixed with ``[<name>]``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from molexp.workflow.errors import ChannelClosedError, NoRunContextError

if TYPE_CHECKING:
    import asyncio

    from molexp.workflow.protocols import (
        ArtifactSaverProtocol,
        LogHandleProtocol,
        RunContextProtocol,
    )

__all__ = ["ActorContext", "ExecutionScope", "TaskContext"]

_EMPTY_CONFIG: Final[Mapping[str, Any]] = MappingProxyType({})


class ConfigKeyError(KeyError):
    """``ctx.config[key]`` for a key the configuration does not have (readable message)."""

    def __str__(self) -> str:
        return str(self.args[0])


class TaskConfig(Mapping[str, Any]):
    """Read-only view of the execution config whose missing keys name the task asking."""

    __slots__ = ("_data", "_task_name")

    def __init__(self, data: Mapping[str, Any], task_name: str) -> None:
        self._data = data
        self._task_name = task_name

    def __getitem__(self, key: str) -> Any:
        try:
            return self._data[key]
        except KeyError:
            available = ", ".join(repr(k) for k in sorted(self._data, key=str)) or "none"
            raise ConfigKeyError(
                f"task {self._task_name!r}: config has no key {key!r} (available keys: {available})"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"TaskConfig({dict(self._data)!r})"


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

    __slots__ = ("_config", "_scope", "inputs", "task_name")

    def __init__(self, scope: ExecutionScope, task_name: str, inputs: Any) -> None:
        self._scope = scope
        self.task_name = task_name
        self.inputs = inputs
        self._config: TaskConfig | None = None

    @property
    def workflow_name(self) -> str:
        return self._scope.workflow_name

    @property
    def workflow_id(self) -> str:
        return self._scope.workflow_id

    @property
    def run_context(self) -> RunContextProtocol | None:
        """The live run context, or ``None`` when the workflow runs without a run."""
        return self._scope.run_context

    @property
    def config(self) -> Mapping[str, Any]:
        """Read-only merged config; a missing key raises a ``KeyError`` naming the task."""
        if self._config is None:
            self._config = TaskConfig(self._scope.config, self.task_name)
        return self._config

    def _require_run(self, helper: str) -> RunContextProtocol:
        run_context = self._scope.run_context
        if run_context is None:
            raise NoRunContextError(self.task_name, helper)
        return run_context

    @property
    def params(self) -> Mapping[str, Any]:
        """The run's parameters (needs a run)."""
        return self._require_run("params").params

    @property
    def artifact(self) -> ArtifactSaverProtocol:
        """The run's artifact saver: ``ctx.artifact.save(name, data)`` (needs a run)."""
        return self._require_run("artifact").artifact

    def set_result(self, key: str, value: Any) -> None:
        """Store a lightweight result value on the run record (needs a run)."""
        self._require_run("set_result").set_result(key, value)

    def find_asset(self, name: str) -> Any:
        """Look an asset up run -> experiment -> project -> workspace (needs a run)."""
        return self._require_run("find_asset").find_asset(name)

    def checkpoint(self, name: str, data: Any = None) -> Any:
        """Write a checkpoint of the run (needs a run)."""
        return self._require_run("checkpoint").checkpoint(name, data)

    def log(self, name: str) -> LogHandleProtocol:
        """A log handle: the run's ``logs/<name>.log`` under a run, else a ``logging`` logger."""
        run_context = self._scope.run_context
        if run_context is not None:
            return run_context.log(name)
        return _LoggerLogHandle(self.task_name, name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(task={self.task_name!r}, workflow={self.workflow_name!r})"


class ActorContext(TaskContext):
    """Task context of an :class:`~molexp.workflow.Actor`, adding named channels.

    Channels are per-execution asyncio queues shared by every task of that execution; they are
    unbounded, so ``emit`` never blocks. Use them from ``async def`` code on the event loop.
    """

    __slots__ = ()

    def emit(self, channel: str, item: Any) -> None:
        """Put ``item`` on ``channel``; raises ``ChannelClosedError`` if it was closed."""
        self._scope.channel(channel).put(item, self.task_name)

    async def receive(self, channel: str, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        """Wait for the next item of ``channel``.

        Raises ``TimeoutError`` after ``timeout`` seconds and ``ChannelClosedError`` once the
        channel is closed and drained.
        """
        return await self._scope.channel(channel).get(self.task_name, timeout)

    async def channel(self, name: str) -> AsyncIterator[Any]:
        """Iterate over the items of channel ``name`` until it is closed."""
        queue = self._scope.channel(name)
        while True:
            try:
                item = await queue.get(self.task_name, None)
            except ChannelClosedError:
                return
            yield item

    def close(self, channel: str) -> None:
        """Close ``channel``: consumers finish after draining what was already emitted."""
        self._scope.channel(channel).close()
