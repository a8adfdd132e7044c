"""Actors: concurrent tasks talking over per-execution channels."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from molexp.workflow import (
    Actor,
    ActorContext,
    ChannelClosedError,
    TaskContext,
    WorkflowBuilder,
)


class Producer(Actor):
    async def execute(self, ctx: ActorContext) -> Any:
        for i in range(5):
            ctx.emit("numbers", i)
            await asyncio.sleep(0)
        ctx.close("numbers")
        return await ctx.receive("total", timeout=2)


class Consumer(Actor):
    async def execute(self, ctx: ActorContext) -> list[int]:
        seen = [item async for item in ctx.channel("numbers")]
        ctx.emit("total", sum(seen))
        return seen


async def test_two_independent_actors_run_concurrently_and_talk() -> None:
    builder = WorkflowBuilder(name="actors")
    builder.add(Consumer())  # registered first: it must wait for the producer's items
    builder.add(Producer())
    result = await builder.build().execute()
    assert result["consumer"] == [0, 1, 2, 3, 4]
    assert result["producer"] == 10


async def test_channels_are_per_execution() -> None:
    class Sender(Actor):
        async def execute(self, ctx: ActorContext) -> None:
            ctx.emit("box", ctx.inputs)

    class Receiver(Actor):
        async def execute(self, ctx: ActorContext) -> object:
            return await ctx.receive("box", timeout=2)

    builder = WorkflowBuilder(name="isolated")
    builder.add(Sender())
    builder.add(Receiver())
    spec = builder.build()
    first, second = await asyncio.gather(spec.execute("one"), spec.execute("two"))
    assert first["receiver"] == "one"
    assert second["receiver"] == "two"


async def test_receive_timeout_names_channel_and_task() -> None:
    class Waiter(Actor):
        async def execute(self, ctx: ActorContext) -> None:
            await ctx.receive("never", timeout=0.01)

    builder = WorkflowBuilder(name="timeout")
    builder.add(Waiter())
    result = await builder.build().execute(raise_on_failure=False)
    error = result.errors["waiter"]
    assert error.type == "TimeoutError"
    assert "task 'waiter'" in error.message and "'never'" in error.message


async def test_closed_channels_refuse_emit_and_end_every_consumer() -> None:
    class Closer(Actor):
        async def execute(self, ctx: ActorContext) -> str:
            ctx.emit("c", 1)
            ctx.close("c")
            ctx.close("c")  # idempotent
            with pytest.raises(
                ChannelClosedError, match="task 'closer' cannot emit to channel 'c'"
            ):
                ctx.emit("c", 2)
            return "closed"

    class Reader(Actor):
        async def execute(self, ctx: ActorContext) -> list[object]:
            items = [item async for item in ctx.channel("c")]
            with pytest.raises(ChannelClosedError, match="receive from channel 'c'"):
                await ctx.receive("c")
            return items

    builder = WorkflowBuilder(name="closing")
    builder.add(Closer())
    builder.add(Reader(), name="reader_one", depends_on=["closer"])
    builder.add(Reader(), name="reader_two", depends_on=["closer"])
    result = await builder.build().execute()
    assert result["reader_one"] + result["reader_two"] == [1]


async def test_actor_context_only_for_actors() -> None:
    builder = WorkflowBuilder(name="kinds")
    kinds: dict[str, type] = {}

    class Plain(Actor):
        async def execute(self, ctx: ActorContext) -> None:
            kinds["actor"] = type(ctx)

    @builder.task
    async def function(ctx: TaskContext) -> None:
        kinds["function"] = type(ctx)

    builder.add(Plain())
    await builder.build().execute()
    assert kinds == {"actor": ActorContext, "function": TaskContext}


async def test_invalid_channel_name() -> None:
    class Bad(Actor):
        async def execute(self, ctx: ActorContext) -> None:
            ctx.emit("", 1)

    builder = WorkflowBuilder(name="badchannel")
    builder.add(Bad())
    result = await builder.build().execute(raise_on_failure=False)
    assert "channel names must be non-empty strings" in result.errors["bad"].message
