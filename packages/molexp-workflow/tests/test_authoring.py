"""Authoring: @wf.task, WorkflowBuilder.add, registrations and authoring-time errors."""

from __future__ import annotations

import functools
from typing import Any

import pytest
from molexp.workflow import (
    Actor,
    ActorContext,
    Task,
    TaskContext,
    TaskRegistration,
    Workflow,
    WorkflowBuilder,
    WorkflowDSL,
    WorkflowValidationError,
    workflow,
)
from pydantic import BaseModel


async def fetch(ctx: TaskContext) -> int:
    return 1


def test_decorators_return_the_original_function_and_register_tasks() -> None:
    wf = workflow(name="demo")
    assert isinstance(wf, WorkflowDSL)

    decorated = wf.task(fetch)

    @wf.task(depends_on=["fetch"], name="total")
    def summarize(ctx: TaskContext) -> int:
        return 2

    assert decorated is fetch
    assert summarize.__name__ == "summarize"
    spec = wf.build()
    assert isinstance(spec, Workflow)
    assert list(spec.tasks) == ["fetch", "total"]
    assert spec.tasks["total"].depends_on == ("fetch",)


def test_function_registration_fields() -> None:
    wf = workflow(name="demo")
    wf.task(fetch)
    wf.task(depends_on=["fetch"], remote={"partition": "gpu"}, cache=True, config={"k": 1})(
        lambda ctx: None
    )
    spec = wf.build()
    reg = spec.tasks["fetch"]
    assert isinstance(reg, TaskRegistration)
    assert reg.task_type_qualname == "FunctionTask"
    assert reg.callable is fetch
    assert (reg.remote, reg.cache, reg.is_actor, reg.config) == (None, False, False, None)
    hinted = spec.tasks["<lambda>"]
    assert dict(hinted.remote or {}) == {"partition": "gpu"}
    assert hinted.cache is True
    assert dict(hinted.config or {}) == {"k": 1}
    with pytest.raises(TypeError):
        hinted.remote["partition"] = "cpu"  # type: ignore[index]
    with pytest.raises(AttributeError):
        reg.name = "other"  # type: ignore[misc]


def test_depends_on_accepts_previously_registered_functions() -> None:
    wf = workflow(name="demo")
    wf.task(fetch)

    @wf.task(depends_on=[fetch])
    async def after(ctx: TaskContext) -> None:
        return None

    assert wf.build().tasks["after"].depends_on == ("fetch",)


class FetchHTTPData(Task):
    async def execute(self, ctx: TaskContext) -> str:
        return "data"


class Settings(BaseModel):
    lr: float = 0.1


class Train(Task):
    config = Settings()

    def execute(self, ctx: TaskContext) -> float:
        return 0.5


class Chat(Actor):
    async def execute(self, ctx: ActorContext) -> None:
        return None


def test_builder_add_task_objects_with_default_and_explicit_names() -> None:
    builder = WorkflowBuilder(name="objects")
    assert builder.add(FetchHTTPData()) is builder
    builder.add(Train(), depends_on=["fetch_http_data"])
    builder.add(FetchHTTPData(name="second"))
    builder.add(Chat(), name="chatter")
    spec = builder.build()
    assert list(spec.tasks) == ["fetch_http_data", "train", "second", "chatter"]
    assert spec.tasks["train"].task_type_qualname == "Train"
    assert dict(spec.tasks["train"].config or {}) == {"lr": 0.1}
    assert spec.tasks["chatter"].is_actor is True
    assert spec.tasks["fetch_http_data"].is_actor is False


def test_builder_add_plain_callable_and_runnable_objects() -> None:
    class Runner:
        def execute(self, ctx: TaskContext) -> int:
            return 3

    builder = WorkflowBuilder(name="mixed")
    builder.add(fetch)
    builder.add(Runner(), depends_on=["fetch"])
    spec = builder.build()
    assert spec.tasks["fetch"].task_type_qualname == "FunctionTask"
    assert spec.tasks["runner"].task_type_qualname.endswith("Runner")


def test_builder_task_decorator_is_available() -> None:
    builder = WorkflowBuilder(name="b")

    @builder.task
    async def compute(ctx: TaskContext) -> int:
        return 1

    assert list(builder.build().tasks) == ["compute"]


@pytest.mark.parametrize(
    ("register", "error", "fragment"),
    [
        (lambda wf: wf.task(42), TypeError, "expects a function"),
        (lambda wf: wf.task("fetch"), TypeError, "name='fetch'"),
        (lambda wf: wf.task(name="")(fetch), WorkflowValidationError, "non-empty"),
        (lambda wf: wf.task(name="   ")(fetch), WorkflowValidationError, "non-empty"),
        (lambda wf: wf.task(name=3)(fetch), TypeError, "must be a str"),
        (lambda wf: wf.task(depends_on="fetch")(fetch), TypeError, "depends_on=['fetch']"),
        (lambda wf: wf.task(depends_on=3)(fetch), TypeError, "depends_on must be a list"),
        (lambda wf: wf.task(depends_on=[3])(fetch), TypeError, "depends_on entries"),
        (lambda wf: wf.task(depends_on=[""])(fetch), WorkflowValidationError, "non-empty"),
        (lambda wf: wf.task(depends_on=["a", "a"])(fetch), WorkflowValidationError, "twice"),
        (lambda wf: wf.task(cache="yes")(fetch), TypeError, "cache must be True or False"),
        (lambda wf: wf.task(remote="gpu")(fetch), TypeError, "remote must be a mapping"),
        (lambda wf: wf.task(config=[1])(fetch), TypeError, "config must be a mapping"),
        (lambda wf: wf.task(lambda: None), TypeError, "exactly one positional argument"),
        (lambda wf: wf.task(lambda a, b: None), TypeError, "exactly one positional argument"),
        (lambda wf: wf.task(functools.partial(print)), TypeError, "pass @task(name=...)"),
    ],
)
def test_authoring_errors_name_the_problem(register: Any, error: type, fragment: str) -> None:
    wf = workflow(name="demo")
    with pytest.raises(error, match=None) as info:
        register(wf)
    assert fragment in str(info.value)


def test_errors_name_the_task() -> None:
    wf = workflow(name="demo")
    with pytest.raises(TypeError, match="task 'fetch'"):
        wf.task(depends_on="x")(fetch)
    wf.task(fetch)
    with pytest.raises(WorkflowValidationError, match="'fetch' is already registered"):
        wf.task(fetch)


def test_workflow_name_must_be_a_non_empty_string() -> None:
    with pytest.raises(WorkflowValidationError, match="workflow name"):
        workflow(name="")
    with pytest.raises(TypeError, match="workflow name"):
        WorkflowBuilder(name=None)  # type: ignore[arg-type]


def test_builder_add_errors() -> None:
    builder = WorkflowBuilder(name="b")
    with pytest.raises(TypeError, match=r"add\(FetchHTTPData\(\)\)"):
        builder.add(FetchHTTPData)
    with pytest.raises(TypeError, match="expects a Task"):
        builder.add(42)

    class Empty(Task):
        pass

    with pytest.raises(TypeError, match="task 'empty'.*neither an execute"):
        builder.add(Empty())

    class SyncActor(Actor):
        def execute(self, ctx: ActorContext) -> None:
            return None

    with pytest.raises(TypeError, match="actor 'sync_actor'.*async def"):
        builder.add(SyncActor())
    builder.add(FetchHTTPData())
    with pytest.raises(WorkflowValidationError, match="'fetch_http_data' is already registered"):
        builder.add(FetchHTTPData())


def test_snake_case_default_names() -> None:
    class HTTPFetch(Task):
        async def execute(self, ctx: TaskContext) -> None:
            return None

    class Simple(Task):
        name = "custom"

        async def execute(self, ctx: TaskContext) -> None:
            return None

    assert HTTPFetch().task_name == "http_fetch"
    assert Simple().task_name == "custom"
    assert Simple(name="override").task_name == "override"


async def test_registered_objects_are_runnable_and_expose_the_user_code() -> None:
    from molexp.workflow import Runnable, Streamable
    from molexp.workflow.context import ExecutionScope

    class Numbers(Task):
        async def stream(self, ctx: TaskContext) -> Any:
            yield 1

    builder = WorkflowBuilder(name="code")
    builder.add(fetch)
    builder.add(Train())
    builder.add(Numbers())
    spec = builder.build()
    function_task = spec.tasks["fetch"].task
    assert isinstance(function_task, Runnable)
    assert repr(function_task) == "FunctionTask('fetch', fn='fetch')"
    ctx = TaskContext(ExecutionScope("code", spec.workflow_id), "fetch", None)
    assert await function_task.execute(ctx) == 1
    train = spec.tasks["train"]
    assert train.callable == train.task.execute  # type: ignore[attr-defined]
    numbers = spec.tasks["numbers"]
    assert isinstance(numbers.task, Streamable)
    assert numbers.callable == numbers.task.stream
