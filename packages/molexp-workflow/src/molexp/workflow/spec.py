"""Authoring and compilation of workflows.

Authoring: ``workflow(name)`` returns a ``WorkflowDSL`` whose ``@wf.task`` decorator registers
functions; ``WorkflowBuilder`` adds ``.add(task, ...)`` for ``Task``/``Actor`` objects. Each
declaration becomes a frozen ``TaskRegistration``. Compilation: ``build()`` validates the graph and
returns an immutable ``Workflow`` with a deterministic ``workflow_id``. Also home of the
``parallel_map`` / ``join`` helpers for concurrency *inside* a task.
"""

from __future__ import annotations

import graphlib
import hashlib
import inspect
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast, overload

from molexp.workflow.errors import ParallelMapError, WorkflowValidationError
from molexp.workflow.runtime import ExecutionOptions, is_positive_int
from molexp.workflow.task import (
    Actor,
    FunctionTask,
    Task,
    TaskRunner,
    normalize_config,
    runner_for_object,
)

if TYPE_CHECKING:
    from molexp.workflow.protocols import RemoteExecutor, RunContextProtocol, RunProtocol
    from molexp.workflow.runtime import WorkflowExecution, WorkflowResult, WorkflowRuntime

__all__ = [
    "TaskRegistration",
    "Workflow",
    "WorkflowBuilder",
    "WorkflowDSL",
    "join",
    "parallel_map",
    "workflow",
]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
R = TypeVar("R")
K = TypeVar("K")


@dataclass(frozen=True, slots=True)
class TaskRegistration:
    """One declared task: its name, how to run it, what it depends on and its hints.

    ``task`` is the registered object (a ``FunctionTask`` wrapping the function for function
    tasks) and ``task_type_qualname`` its class qualname, which feeds the workflow id. ``runner``
    is the coroutine function the runtime awaits with the task context.
    """

    name: str
    runner: TaskRunner
    depends_on: tuple[str, ...]
    task_type_qualname: str
    task: object
    remote: Mapping[str, Any] | None = None
    cache: bool = False
    is_actor: bool = False
    config: Mapping[str, Any] | None = None
    track_dependency_versions: bool = True

    @property
    def callable(self) -> Callable[..., Any]:
        """The user's code: the decorated function, or the task object's bound ``execute``."""
        if isinstance(self.task, FunctionTask):
            return self.task.fn
        execute = getattr(self.task, "execute", None)
        code = execute if callable(execute) else getattr(self.task, "stream", None)
        return cast("Callable[..., Any]", code)


def _stable_workflow_id(name: str, registrations: Iterable[TaskRegistration]) -> str:
    """16 hex chars of sha256 over the name and each task's (name, class qualname, sorted deps).

    Tasks are taken sorted by name and serialised as canonical JSON, so the id depends on the
    topology only: not on registration order, process, machine or task bodies.
    """
    tasks = [
        [reg.name, reg.task_type_qualname, sorted(reg.depends_on)]
        for reg in sorted(registrations, key=lambda reg: reg.name)
    ]
    payload = json.dumps([name, tasks], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def _check_name(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__} {value!r}")
    if not value.strip():
        raise WorkflowValidationError(f"{what} must be a non-empty string, got {value!r}")
    return value


def validate_graph(name: str, registrations: Sequence[TaskRegistration]) -> None:
    """Raise ``WorkflowValidationError`` on self/unknown dependencies or a cycle."""
    import difflib

    known = {reg.name for reg in registrations}
    problems: list[str] = []
    for reg in registrations:
        for dep in reg.depends_on:
            if dep == reg.name:
                problems.append(f"task {reg.name!r} depends on itself")
            elif dep not in known:
                close = difflib.get_close_matches(dep, sorted(known - {reg.name}), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append(f"task {reg.name!r} depends on unknown task {dep!r}{hint}")
    if problems:
        raise WorkflowValidationError(f"workflow {name!r} is invalid: " + "; ".join(problems))
    sorter = graphlib.TopologicalSorter({reg.name: reg.depends_on for reg in registrations})
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        # graphlib lists each node before the node that depends on it; read it backwards.
        cycle = [str(node) for node in reversed(exc.args[1])]
        raise WorkflowValidationError(
            f"workflow {name!r} has a dependency cycle: " + " depends on ".join(map(repr, cycle))
        ) from None


def _topological_levels(registrations: Sequence[TaskRegistration]) -> list[list[str]]:
    """Tasks grouped by longest distance from a root, registration order within a level.

    Kahn's algorithm, O(tasks + edges), on a graph already validated by ``validate_graph``.
    """
    position = {reg.name: i for i, reg in enumerate(registrations)}
    dependents: list[list[int]] = [[] for _ in registrations]
    remaining = [len(reg.depends_on) for reg in registrations]
    for i, reg in enumerate(registrations):
        for dep in reg.depends_on:
            dependents[position[dep]].append(i)
    level = [0] * len(registrations)
    frontier = [i for i, count in enumerate(remaining) if count == 0]
    while frontier:
        following: list[int] = []
        for i in frontier:
            for dependent in dependents[i]:
                level[dependent] = max(level[dependent], level[i] + 1)
                remaining[dependent] -= 1
                if remaining[dependent] == 0:
                    following.append(dependent)
        frontier = following
    levels: list[list[str]] = [[] for _ in range(max(level, default=-1) + 1)]
    for i, reg in enumerate(registrations):
        levels[level[i]].append(reg.name)
    return levels


class Workflow:
    """A compiled workflow: immutable task registrations plus a deterministic ``workflow_id``.

    Create it with ``wf.build()`` (which validates the graph). Executing re-validates, before any
    task body runs. ``tasks`` maps task names to registrations in registration order;
    ``_tasks`` is the ordered tuple of registrations a runtime reinterprets (seed 03:
    ``{t.name: set(t.depends_on) for t in spec._tasks}``).
    """

    def __init__(self, name: str, registrations: Iterable[TaskRegistration]) -> None:
        self.name = _check_name(name, "workflow name")
        registered: dict[str, TaskRegistration] = {}
        for reg in registrations:
            if reg.name in registered:
                raise WorkflowValidationError(
                    f"workflow {name!r}: task name {reg.name!r} is registered twice"
                )
            registered[reg.name] = reg
        self._tasks: tuple[TaskRegistration, ...] = tuple(registered.values())
        self.tasks: Mapping[str, TaskRegistration] = MappingProxyType(registered)
        self.workflow_id = _stable_workflow_id(name, registered.values())
        self._runtime: WorkflowRuntime | None = None

    def validate(self) -> None:
        """Raise ``WorkflowValidationError`` if a dependency is unknown, a self-loop or a cycle."""
        validate_graph(self.name, list(self._tasks))

    def dependencies(self) -> dict[str, tuple[str, ...]]:
        """``task name -> names it depends on``, in registration order."""
        return {reg.name: reg.depends_on for reg in self._tasks}

    def topological_order(self) -> list[str]:
        """Every task after all its dependencies (deterministic: by level, then registration)."""
        return [name for level in self.levels() for name in level]

    def levels(self) -> list[list[str]]:
        """Tasks grouped by their longest distance from a root task (validates the graph first)."""
        registrations = list(self._tasks)
        validate_graph(self.name, registrations)
        return _topological_levels(registrations)

    def describe(self) -> str:
        """A printable multi-line summary: tasks by level with their dependencies and hints."""
        lines = [f"Workflow {self.name!r} (id {self.workflow_id}), {len(self._tasks)} task(s)"]
        for index, level in enumerate(self.levels()):
            lines.append(f"  level {index}:")
            for name in level:
                reg = self.tasks[name]
                hints = []
                if reg.is_actor:
                    hints.append("actor")
                if reg.cache:
                    hints.append("cache")
                if reg.remote is not None:
                    hints.append(f"remote={dict(reg.remote)}")
                deps = f" <- {', '.join(reg.depends_on)}" if reg.depends_on else ""
                extra = f" [{', '.join(hints)}]" if hints else ""
                lines.append(f"    {name} ({reg.task_type_qualname}){deps}{extra}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Workflow(name={self.name!r}, id={self.workflow_id}, tasks={list(self.tasks)})"

    def bind_to(self, experiment: Any) -> Workflow:
        """Bind this workflow to a workspace experiment (process-local registry); returns self."""
        from molexp.workflow.bindings import set_workflow

        return set_workflow(experiment, self)

    @classmethod
    def for_experiment(cls, experiment: Any) -> Workflow | None:
        """The workflow bound to ``experiment`` in this process, or ``None``."""
        from molexp.workflow.bindings import get_workflow

        return get_workflow(experiment)

    def _get_runtime(self) -> WorkflowRuntime:
        if self._runtime is None:
            from molexp.workflow.runtime import create_default_runtime

            self._runtime = create_default_runtime()
        return self._runtime

    async def execute(
        self,
        inputs: Any = None,
        *,
        run: RunProtocol | None = None,
        run_context: RunContextProtocol | None = None,
        config: Mapping[str, Any] | None = None,
        profile_config: Any = None,
        cache: Any = None,
        max_concurrency: int | None = None,
        raise_on_failure: bool = True,
        remote_executor: RemoteExecutor | None = None,
        resume: bool = True,
        snapshot: Mapping[str, Any] | None = None,
        runtime: WorkflowRuntime | None = None,
    ) -> WorkflowResult:
        """Execute the workflow and return its :class:`~molexp.workflow.WorkflowResult`.

        ``inputs`` is what root tasks see as ``ctx.inputs``; ``config`` the ``ctx.config`` mapping
        (merged over the run's profile config under a run). ``run=`` opens ``run.start(
        profile_config=...)`` around the execution; ``run_context=`` uses an already open one.
        ``cache`` is a ``Caching`` for ``cache=True`` tasks; ``max_concurrency`` bounds the running
        tasks; ``remote_executor`` runs tasks with a ``remote=`` hint. Raises ``WorkflowFailed``
        when a task fails unless ``raise_on_failure=False``. Under a run, ``resume`` re-uses the
        outputs of unchanged tasks that succeeded in the run's previous attempt (``False``
        recomputes everything) and ``snapshot`` adds keys (e.g. ``{"script": path}``) to the
        workflow snapshot stored on the run.
        """
        options = ExecutionOptions(
            inputs,
            config,
            cache,
            max_concurrency,
            raise_on_failure,
            remote_executor,
            resume,
            snapshot,
        )
        chosen = runtime if runtime is not None else self._get_runtime()
        return await chosen.execute(
            self, run, run_context, profile_config=profile_config, **options.as_kwargs()
        )

    async def start(
        self,
        inputs: Any = None,
        *,
        run: RunProtocol | None = None,
        run_context: RunContextProtocol | None = None,
        config: Mapping[str, Any] | None = None,
        profile_config: Any = None,
        cache: Any = None,
        max_concurrency: int | None = None,
        raise_on_failure: bool = True,
        remote_executor: RemoteExecutor | None = None,
        resume: bool = True,
        snapshot: Mapping[str, Any] | None = None,
        runtime: WorkflowRuntime | None = None,
    ) -> WorkflowExecution:
        """Like :meth:`execute` but return a :class:`~molexp.workflow.WorkflowExecution` at once."""
        options = ExecutionOptions(
            inputs,
            config,
            cache,
            max_concurrency,
            raise_on_failure,
            remote_executor,
            resume,
            snapshot,
        )
        chosen = runtime if runtime is not None else self._get_runtime()
        return await chosen.start(
            self, run, run_context, profile_config=profile_config, **options.as_kwargs()
        )

    async def execute_task(
        self,
        task_name: str,
        inputs: Any = None,
        *,
        config: Mapping[str, Any] | None = None,
        run_context: RunContextProtocol | None = None,
    ) -> Any:
        """Execute the single task ``task_name`` with these inputs and config; return its output.

        For workers that run one task of a workflow elsewhere (a scheduler job for a task with a
        ``remote=`` hint): ``ctx.inputs`` is ``inputs`` as given (the ``name -> output`` mapping
        for a task with several dependencies), ``ctx.config`` is ``config`` and
        ``ctx.run_context`` is ``run_context``. The task's exception propagates unchanged;
        nothing is cached or recorded. An unknown task raises ``KeyError``, an actor
        ``ValueError``.
        """
        from molexp.workflow._single_task import execute_task

        return await execute_task(self, task_name, inputs, config=config, run_context=run_context)

    def execute_sync(self, inputs: Any = None, **kwargs: Any) -> WorkflowResult:
        """Run :meth:`execute` with ``asyncio.run`` (for scripts; not from a running loop)."""
        import asyncio

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.execute(inputs, **kwargs))
        raise RuntimeError(
            f"workflow {self.name!r}: execute_sync() cannot be called while an event loop is "
            "running; use `await spec.execute(...)` instead"
        )


class _Authoring:
    """Shared registration logic of ``WorkflowDSL`` and ``WorkflowBuilder``."""

    def __init__(self, name: str) -> None:
        self.name = _check_name(name, "workflow name")
        self._registrations: dict[str, TaskRegistration] = {}
        self._names_by_object: dict[int, str] = {}

    @overload
    def task(self, fn: F, /) -> F: ...

    @overload
    def task(
        self,
        fn: None = None,
        /,
        *,
        depends_on: Sequence[str | object] | None = None,
        name: str | None = None,
        remote: Mapping[str, Any] | None = None,
        cache: bool = False,
        config: Mapping[str, Any] | Any | None = None,
        track_dependency_versions: bool = True,
    ) -> Callable[[F], F]: ...

    def task(
        self,
        fn: F | None = None,
        /,
        *,
        depends_on: Sequence[str | object] | None = None,
        name: str | None = None,
        remote: Mapping[str, Any] | None = None,
        cache: bool = False,
        config: Mapping[str, Any] | Any | None = None,
        track_dependency_versions: bool = True,
    ) -> F | Callable[[F], F]:
        """Register a function ``fn(ctx)`` (async or sync) as a task; returns ``fn`` unchanged.

        Use bare (``@wf.task``) or with options (``@wf.task(depends_on=["fetch"], cache=True)``).
        ``depends_on`` entries are task names or previously registered functions/task objects.
        ``track_dependency_versions=False`` keeps the versions of the third-party distributions
        the task's code reaches out of its cache and resume key (an upgrade then keeps hits).
        """

        def register(function: F) -> F:
            if not callable(function):
                raise TypeError(
                    f"workflow {self.name!r}: @task expects a function, "
                    f"got {type(function).__name__} {function!r}"
                )
            task_name = name if name is not None else getattr(function, "__name__", None)
            if task_name is None:
                raise TypeError(
                    f"workflow {self.name!r}: cannot infer a task name for {function!r}; "
                    "pass @task(name=...)"
                )
            task_name = _check_name(task_name, f"task name of {function!r}")
            wrapper = FunctionTask(function, task_name)
            self._register(
                task_name,
                wrapper,
                wrapper.runner,
                function,
                depends_on=depends_on,
                remote=remote,
                cache=cache,
                config=config,
                track_dependency_versions=track_dependency_versions,
            )
            return function

        if fn is None:
            return register
        if isinstance(fn, str):
            raise TypeError(
                f"workflow {self.name!r}: use @wf.task(name={fn!r}) to name a task, "
                "not a positional string"
            )
        return register(fn)

    def _register(
        self,
        task_name: str,
        task_object: object,
        runner: TaskRunner,
        user_object: object,
        *,
        depends_on: Sequence[str | object] | None,
        remote: Mapping[str, Any] | None,
        cache: bool,
        config: Any,
        is_actor: bool = False,
        track_dependency_versions: bool = True,
    ) -> None:
        if task_name in self._registrations:
            raise WorkflowValidationError(
                f"workflow {self.name!r}: a task named {task_name!r} is already registered"
            )
        if not isinstance(cache, bool):
            raise TypeError(f"task {task_name!r}: cache must be True or False, got {cache!r}")
        if not isinstance(track_dependency_versions, bool):
            raise TypeError(
                f"task {task_name!r}: track_dependency_versions must be True or False, "
                f"got {track_dependency_versions!r}"
            )
        if remote is not None and not isinstance(remote, Mapping):
            raise TypeError(
                f"task {task_name!r}: remote must be a mapping of hints (e.g. "
                f"{{'partition': 'gpu'}}), got {type(remote).__name__}"
            )
        registration = TaskRegistration(
            name=task_name,
            runner=runner,
            depends_on=self._resolve_dependencies(task_name, depends_on),
            task_type_qualname=type(task_object).__qualname__,
            task=task_object,
            remote=MappingProxyType(dict(remote)) if remote is not None else None,
            cache=cache,
            is_actor=is_actor,
            config=_read_only(normalize_config(config, task_name)),
            track_dependency_versions=track_dependency_versions,
        )
        self._registrations[task_name] = registration
        self._names_by_object[id(user_object)] = task_name

    def _resolve_dependencies(
        self, task_name: str, depends_on: Sequence[str | object] | None
    ) -> tuple[str, ...]:
        if depends_on is None:
            return ()
        if isinstance(depends_on, str):
            raise TypeError(
                f"task {task_name!r}: depends_on must be a list of task names, got the string "
                f"{depends_on!r} (write depends_on=[{depends_on!r}])"
            )
        if not isinstance(depends_on, Iterable) or isinstance(depends_on, Mapping):
            raise TypeError(
                f"task {task_name!r}: depends_on must be a list of task names, "
                f"got {type(depends_on).__name__}"
            )
        resolved: list[str] = []
        seen: set[str] = set()  # a set: a sink on N tasks must not cost N^2 (issue 15)
        for dep in depends_on:
            if isinstance(dep, str):
                dep_name = _check_name(dep, f"task {task_name!r}: depends_on entry")
            elif id(dep) in self._names_by_object:
                dep_name = self._names_by_object[id(dep)]
            else:
                raise TypeError(
                    f"task {task_name!r}: depends_on entries must be task names (str) or tasks "
                    f"registered earlier in this workflow, got {type(dep).__name__} {dep!r}"
                )
            if dep_name in seen:
                raise WorkflowValidationError(
                    f"task {task_name!r}: depends_on lists {dep_name!r} twice"
                )
            seen.add(dep_name)
            resolved.append(dep_name)
        return tuple(resolved)

    def build(self) -> Workflow:
        """Validate the graph and return the compiled :class:`Workflow`."""
        spec = Workflow(self.name, self._registrations.values())
        spec.validate()
        return spec

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, tasks={list(self._registrations)})"


def _read_only(config: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    return MappingProxyType(dict(config)) if config is not None else None


class WorkflowDSL(_Authoring):
    """Functional authoring surface returned by :func:`workflow`: ``@wf.task`` then ``build()``."""


class WorkflowBuilder(_Authoring):
    """Authoring with reusable task objects: ``add(task, depends_on=...)`` plus ``@task``."""

    def add(
        self,
        task: object,
        depends_on: Sequence[str | object] | None = None,
        *,
        name: str | None = None,
        remote: Mapping[str, Any] | None = None,
        cache: bool = False,
        config: Mapping[str, Any] | Any | None = None,
        track_dependency_versions: bool = True,
    ) -> WorkflowBuilder:
        """Register a ``Task``/``Actor`` instance, any ``Runnable``/``Streamable`` or a callable.

        The name defaults to the task's ``name`` (class name in snake_case for ``Task``
        subclasses) or the function name. ``config`` defaults to the task's ``config``
        attribute. ``track_dependency_versions`` as for :meth:`task`. Returns the builder so
        calls can be chained.
        """
        if isinstance(task, type):
            raise TypeError(
                f"workflow {self.name!r}: add() expects a task instance, got the class "
                f"{task.__qualname__} (write add({task.__qualname__}()))"
            )
        is_object_task = isinstance(task, Task) or (
            callable(getattr(task, "execute", None)) or callable(getattr(task, "stream", None))
        )
        if not is_object_task:
            if not callable(task):
                raise TypeError(
                    f"workflow {self.name!r}: add() expects a Task, Actor, Runnable, Streamable "
                    f"or callable, got {type(task).__name__} {task!r}"
                )
            self.task(
                depends_on=depends_on,
                name=name,
                remote=remote,
                cache=cache,
                config=config,
                track_dependency_versions=track_dependency_versions,
            )(task)
            return self
        if name is not None:
            task_name = _check_name(name, f"name of {type(task).__qualname__} task")
        elif isinstance(task, Task):
            task_name = _check_name(task.task_name, f"name of {type(task).__qualname__} task")
        else:
            from molexp.workflow.task import snake_case

            task_name = snake_case(type(task).__name__)
        self._register(
            task_name,
            task,
            runner_for_object(task, task_name),
            task,
            depends_on=depends_on,
            remote=remote,
            cache=cache,
            config=config if config is not None else getattr(task, "config", None),
            is_actor=isinstance(task, Actor),
            track_dependency_versions=track_dependency_versions,
        )
        return self


def workflow(name: str) -> WorkflowDSL:
    """Start authoring a workflow: ``wf = workflow(name="demo")``, ``@wf.task``, ``wf.build()``."""
    return WorkflowDSL(name)


@overload
async def parallel_map(
    fn: Callable[[T], Awaitable[R]],
    items: Iterable[T],
    *,
    max_concurrency: int | None = None,
    return_exceptions: Literal[False] = False,
) -> list[R]: ...
@overload
async def parallel_map(
    fn: Callable[[T], Awaitable[R]],
    items: Iterable[T],
    *,
    max_concurrency: int | None = None,
    return_exceptions: Literal[True],
) -> list[R | BaseException]: ...
@overload
async def parallel_map(
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    max_concurrency: int | None = None,
    return_exceptions: Literal[False] = False,
) -> list[R]: ...
@overload
async def parallel_map(
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    max_concurrency: int | None = None,
    return_exceptions: Literal[True],
) -> list[R | BaseException]: ...


async def parallel_map(
    fn: Callable[[Any], Any],
    items: Iterable[Any],
    *,
    max_concurrency: int | None = None,
    return_exceptions: bool = False,
) -> list[Any]:
    """Apply ``fn`` to every item concurrently; results come back in input order.

    ``fn`` may be async or sync (sync calls run in worker threads). At most ``max_concurrency``
    calls run at once. If calls fail and ``return_exceptions`` is false, raises
    ``ParallelMapError`` with every successful result (``.results``) and the failures
    (``.errors``, index -> exception); with ``return_exceptions=True`` exceptions take the place
    of their results instead.
    """
    import asyncio

    work = list(items)
    if max_concurrency is not None and not is_positive_int(max_concurrency):
        raise ValueError(
            f"parallel_map: max_concurrency must be a positive int, got {max_concurrency!r}"
        )
    if not callable(fn):
        raise TypeError(f"parallel_map: fn must be callable, got {type(fn).__name__}")
    is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004
    )
    results: list[Any] = [None] * len(work)
    errors: dict[int, BaseException] = {}

    async def call(index: int) -> None:
        try:
            if is_async:
                value = await fn(work[index])
            else:
                value = await asyncio.to_thread(fn, work[index])
                if inspect.isawaitable(value):
                    value = await value
            results[index] = value
        except Exception as exc:
            errors[index] = exc

    if max_concurrency is None or max_concurrency >= len(work):
        await asyncio.gather(*(call(index) for index in range(len(work))))
    else:
        indices = iter(range(len(work)))

        async def worker() -> None:
            for index in indices:
                await call(index)

        await asyncio.gather(*(worker() for _ in range(max_concurrency)))
    if errors:
        if not return_exceptions:
            raise ParallelMapError(results, errors)
        for index, exc in errors.items():
            results[index] = exc
    return results


@overload
async def join(mapping: Mapping[K, Awaitable[T]], /) -> dict[K, T]: ...
@overload
async def join(*awaitables: Awaitable[T]) -> list[T]: ...


async def join(*awaitables: Any) -> Any:
    """Await several awaitables concurrently: ``join(a, b)`` -> list, ``join({k: a})`` -> dict.

    Order (or keys) are preserved. If one fails, the others are cancelled and the first error
    is raised.
    """
    import asyncio

    if len(awaitables) == 1 and isinstance(awaitables[0], Mapping):
        mapping: Mapping[Any, Awaitable[Any]] = awaitables[0]
        values = await join(*mapping.values())
        return dict(zip(mapping.keys(), values, strict=True))
    for position, item in enumerate(awaitables):
        problem = None
        if isinstance(item, Mapping):
            problem = "join() takes either one mapping or several awaitables, not both"
        elif not inspect.isawaitable(item):
            problem = (
                f"join(): argument {position} is not awaitable ({type(item).__name__} {item!r})"
            )
        if problem is not None:
            _close_coroutines(awaitables)
            raise TypeError(problem)
    tasks = [asyncio.ensure_future(item) for item in awaitables]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        raise


def _close_coroutines(values: Iterable[Any]) -> None:
    """Close the coroutines of a rejected ``join()`` call so none warns "never awaited"."""
    for value in values:
        nested = value.values() if isinstance(value, Mapping) else [value]
        for item in nested:
            if inspect.iscoroutine(item):
                item.close()
