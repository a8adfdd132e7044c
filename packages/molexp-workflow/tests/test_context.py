"""TaskContext: identity, config mapping, logging and the run-backed helpers."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from molexp.workflow import NoRunContextError, TaskContext, workflow
from workflow_fakes import FakeRunContext


async def _context_of(**execute_kwargs: Any) -> TaskContext:
    wf = workflow(name="ctx")
    captured: list[TaskContext] = []

    @wf.task
    async def grab(ctx: TaskContext) -> None:
        captured.append(ctx)

    await wf.build().execute(**execute_kwargs)
    return captured[0]


async def test_identity_fields() -> None:
    wf = workflow(name="ident")
    seen: dict[str, Any] = {}

    @wf.task
    async def me(ctx: TaskContext) -> None:
        seen.update(
            task=ctx.task_name, wf=ctx.workflow_name, id=ctx.workflow_id, rc=ctx.run_context
        )

    spec = wf.build()
    await spec.execute()
    assert seen == {"task": "me", "wf": "ident", "id": spec.workflow_id, "rc": None}


async def test_config_is_empty_by_default_and_read_only() -> None:
    ctx = await _context_of()
    assert dict(ctx.config) == {}
    assert ctx.config.get("missing", 3) == 3
    ctx = await _context_of(config={"lr": 0.1, "depth": 3})
    assert ctx.config["lr"] == 0.1
    assert dict(ctx.config) == {"lr": 0.1, "depth": 3}
    assert len(ctx.config) == 2
    with pytest.raises(TypeError):
        ctx.config["lr"] = 1  # type: ignore[index]


async def test_missing_config_key_error_names_task_key_and_available_keys() -> None:
    ctx = await _context_of(config={"lr": 0.1, "depth": 3})
    with pytest.raises(KeyError) as info:
        ctx.config["batch"]
    message = str(info.value)
    assert "task 'grab'" in message
    assert "'batch'" in message
    assert "'depth', 'lr'" in message
    ctx = await _context_of()
    with pytest.raises(KeyError, match="available keys: none"):
        ctx.config["x"]


async def test_config_argument_is_copied() -> None:
    config = {"a": 1}
    ctx = await _context_of(config=config)
    config["a"] = 2
    assert ctx.config["a"] == 1


@pytest.mark.parametrize(
    ("helper", "use"),
    [
        ("set_result", lambda ctx: ctx.set_result("k", 1)),
        ("log_metric", lambda ctx: ctx.log_metric("loss", 0.5)),
        ("log_metrics", lambda ctx: ctx.log_metrics({"loss": 0.5})),
        ("artifact", lambda ctx: ctx.artifact.save("a.json", {})),
        ("find_asset", lambda ctx: ctx.find_asset("data")),
        ("checkpoint", lambda ctx: ctx.checkpoint("step")),
        ("params", lambda ctx: ctx.params),
    ],
)
async def test_run_helpers_without_a_run_raise_no_run_context_error(helper: str, use: Any) -> None:
    ctx = await _context_of()
    with pytest.raises(NoRunContextError) as info:
        use(ctx)
    message = str(info.value)
    assert f"ctx.{helper}" in message
    assert "task 'grab'" in message
    assert "spec.execute(run=run)" in message
    assert (info.value.task_name, info.value.helper) == ("grab", helper)


async def test_run_helpers_delegate_to_the_run_context() -> None:
    run_context = FakeRunContext(params={"lr": 0.01})
    run_context.assets["data"] = "asset-object"
    wf = workflow(name="helpers")

    @wf.task
    async def work(ctx: TaskContext) -> Any:
        ctx.set_result("loss", 0.5)
        ctx.log_metric("loss", 0.7, step=3, timestamp=12.5)
        ctx.log_metrics({"acc": 0.9}, step=4)
        ctx.artifact.save("metrics.json", {"loss": 0.5})
        ctx.log("train").append("loss=0.5")
        ctx.checkpoint("epoch-1", {"w": 1})
        return (ctx.params["lr"], ctx.find_asset("data"), ctx.run_context)

    result = await wf.build().execute(run_context=run_context)
    assert result.output == (0.01, "asset-object", run_context)
    assert run_context.results == {"loss": 0.5}
    assert run_context.artifact.saved == {"metrics.json": {"loss": 0.5}}
    assert run_context.logs["train"].lines == ["loss=0.5"]
    assert run_context.checkpoints == [("epoch-1", {"w": 1})]
    assert run_context.metrics == [("loss", 0.7, 3, 12.5), ("acc", 0.9, 4, None)]


async def test_log_without_a_run_goes_to_the_task_logger(caplog: pytest.LogCaptureFixture) -> None:
    ctx = await _context_of()
    with caplog.at_level(logging.INFO, logger="molexp.task.grab"):
        ctx.log("train").append("epoch 1 done")
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("molexp.task.grab", "[train] epoch 1 done")
    ]


async def test_context_repr_names_task_and_workflow() -> None:
    ctx = await _context_of()
    assert repr(ctx) == "TaskContext(task='grab', workflow='ctx')"
