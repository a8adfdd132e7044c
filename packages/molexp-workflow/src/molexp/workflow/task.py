"""Task base classes (``Task``, ``Actor``), the ``FunctionTask`` wrapper and task runners.

A *runner* is the single coroutine function the runtime awaits for a task: it hides whether the
task is ``async`` (awaited directly), synchronous (run with ``asyncio.to_thread`` so it never blocks
the event loop) or streaming (an async iterator whose items are collected into a list).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from molexp.workflow.context import TaskContext

__all__ = ["Actor", "FunctionTask", "Task", "TaskRunner"]

TaskRunner: TypeAlias = "Callable[[TaskContext], Awaitable[Any]]"

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake_case(name: str) -> str:
    """``"FetchHTTPData"`` -> ``"fetch_http_data"`` (the default name of a task class)."""
    return _CAMEL_BOUNDARY.sub("_", name).lower()


class Task:
    """Base class for reusable tasks: subclass it and define ``execute(self, ctx)``.

    ``execute`` may be ``async def`` or a plain method (run in a worker thread). A subclass may
    instead define ``stream(self, ctx)`` as an async generator: the task's output is then the
    list of yielded items. The task name defaults to the class name in snake_case; pass ``name=``
    (or set a class attribute ``name``) to choose another. ``config`` (a mapping or a pydantic
    model) is carried into the registration and folded into the cache key of ``cache=True`` tasks.
    The base class deliberately defines neither method, so a subclass may type them freely.
    """

    name: str | None = None
    config: Any = None

    def __init__(self, *, name: str | None = None, config: Any = None) -> None:
        if name is not None:
            self.name = name
        if config is not None:
            self.config = config

    @property
    def task_name(self) -> str:
        """The name this task registers under when no explicit name is given."""
        return self.name if self.name is not None else snake_case(type(self).__name__)


class Actor(Task):
    """A long-lived task that talks to other actors over named channels.

    Define ``async def execute(self, ctx: ActorContext)``. Channels are asyncio queues that
    belong to one execution and are shared by all its tasks: ``ctx.emit(channel, item)``,
    ``await ctx.receive(channel, timeout=None)``, ``async for item in ctx.channel(name)`` (ends when
    the channel is closed) and ``ctx.close(channel)``. Two actors with no dependency between them
    run concurrently, so one can produce while the other consumes.
    """


class FunctionTask:
    """Wraps a plain function registered with ``@wf.task`` so it behaves like a ``Runnable``.

    Every function task has the class qualname ``"FunctionTask"``; the workflow id therefore only
    depends on task names and edges, never on the function bodies.
    """

    __slots__ = ("fn", "name", "runner")

    def __init__(self, fn: Callable[..., Any], name: str) -> None:
        self.fn = fn
        self.name = name
        self.runner: TaskRunner = runner_for_callable(fn, name)

    async def execute(self, ctx: TaskContext) -> Any:
        """Call the wrapped function the way the runtime does."""
        return await self.runner(ctx)

    def __repr__(self) -> str:
        return f"FunctionTask({self.name!r}, fn={getattr(self.fn, '__qualname__', self.fn)!r})"


def _is_async_callable(fn: Any) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - an object with an async __call__
    )


def _is_async_gen_callable(fn: Any) -> bool:
    return inspect.isasyncgenfunction(fn) or inspect.isasyncgenfunction(
        getattr(fn, "__call__", None)  # noqa: B004
    )


def _stream_runner(stream: Callable[[TaskContext], AsyncIterator[Any]]) -> TaskRunner:
    async def run_stream(ctx: TaskContext) -> list[Any]:
        return [item async for item in stream(ctx)]

    return run_stream


def _thread_runner(fn: Callable[[TaskContext], Any], collect: bool) -> TaskRunner:
    import asyncio

    def call(ctx: TaskContext) -> Any:
        result = fn(ctx)
        return list(result) if collect else result

    async def run_in_thread(ctx: TaskContext) -> Any:
        result = await asyncio.to_thread(call, ctx)
        if inspect.isawaitable(result):
            return await result
        return result

    return run_in_thread


def runner_for_callable(fn: Callable[..., Any], task_name: str) -> TaskRunner:
    """Build the runner of a function task after checking it can be called as ``fn(ctx)``."""
    if not callable(fn):
        raise TypeError(f"task {task_name!r}: expected a callable, got {type(fn).__name__}")
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: trust the caller
        signature = None
    if signature is not None:
        try:
            signature.bind(None)
        except TypeError:
            raise TypeError(
                f"task {task_name!r}: {getattr(fn, '__qualname__', fn)!r} must accept exactly one "
                f"positional argument `ctx` (its signature is {signature})"
            ) from None
    if _is_async_gen_callable(fn):
        return _stream_runner(fn)
    if _is_async_callable(fn):
        runner: TaskRunner = fn
        return runner
    return _thread_runner(fn, collect=inspect.isgeneratorfunction(fn))


def runner_for_object(task: object, task_name: str) -> TaskRunner:
    """Build the runner of a ``Task``/``Runnable``/``Streamable`` object.

    ``execute`` is used when the object has one, else ``stream``.
    """
    execute = getattr(task, "execute", None)
    stream = getattr(task, "stream", None)
    if isinstance(task, Actor) and execute is not None and not _is_async_callable(execute):
        raise TypeError(
            f"actor {task_name!r}: {type(task).__qualname__}.execute must be `async def` "
            "(channels are asyncio queues used on the event loop)"
        )
    if callable(execute):
        return runner_for_callable(execute, task_name)
    if callable(stream):
        return _stream_runner(stream)
    raise TypeError(
        f"task {task_name!r}: {type(task).__qualname__} has neither an execute(ctx) nor a "
        "stream(ctx) method"
    )


def normalize_config(config: Any, task_name: str) -> Mapping[str, Any] | None:
    """Turn a task config (mapping or pydantic model) into a plain dict, or ``None``."""
    if config is None:
        return None
    if isinstance(config, Mapping):
        return dict(config)
    model_dump = getattr(config, "model_dump", None)
    if callable(model_dump):
        dumped = model_dump(mode="python")
        if isinstance(dumped, Mapping):
            return dict(dumped)
    raise TypeError(
        f"task {task_name!r}: config must be a mapping or a pydantic model, "
        f"got {type(config).__name__}"
    )
