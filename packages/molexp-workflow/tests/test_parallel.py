"""parallel_map and join: ordering, bounded concurrency, error handling."""

from __future__ import annotations

import asyncio
import inspect
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from molexp.workflow import ParallelMapError, join, parallel_map


async def test_results_keep_input_order_even_when_completion_order_differs() -> None:
    async def delayed(x: int) -> int:
        await asyncio.sleep(0.001 * (5 - x))
        return x * x

    assert await parallel_map(delayed, range(5)) == [0, 1, 4, 9, 16]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers()), st.one_of(st.none(), st.integers(min_value=1, max_value=8)))
def test_parallel_map_matches_map(items: list[int], limit: int | None) -> None:
    async def negate(x: int) -> int:
        await asyncio.sleep(0)
        return -x

    assert asyncio.run(parallel_map(negate, items, max_concurrency=limit)) == [-x for x in items]


async def test_max_concurrency_is_respected() -> None:
    running = 0
    peak = 0

    async def work(x: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.005)
        running -= 1
        return x

    assert await parallel_map(work, range(20), max_concurrency=4) == list(range(20))
    assert peak == 4


async def test_sync_functions_run_in_threads() -> None:
    loop_thread = threading.get_ident()
    idents = await parallel_map(lambda _: threading.get_ident(), range(3))
    assert loop_thread not in idents


async def test_failures_keep_the_successful_results() -> None:
    async def maybe(x: int) -> int:
        if x % 2:
            raise ValueError(f"odd {x}")
        return x

    with pytest.raises(ParallelMapError) as info:
        await parallel_map(maybe, range(5), max_concurrency=2)
    assert info.value.results == [0, None, 2, None, 4]
    assert sorted(info.value.errors) == [1, 3]
    assert str(info.value.errors[1]) == "odd 1"
    assert "2 of 5 parallel_map elements failed; first at index 1" in str(info.value)

    mixed = await parallel_map(maybe, range(3), return_exceptions=True)
    assert mixed[0] == 0 and mixed[2] == 2
    assert isinstance(mixed[1], ValueError)


async def test_parallel_map_argument_errors() -> None:
    with pytest.raises(ValueError, match="max_concurrency must be a positive int, got 0"):
        await parallel_map(str, [1], max_concurrency=0)
    with pytest.raises(TypeError, match="fn must be callable"):
        await parallel_map(3, [1])  # type: ignore[call-overload]


async def test_join_preserves_order_and_keys() -> None:
    async def value(x: int, delay: float) -> int:
        await asyncio.sleep(delay)
        return x

    assert await join(value(1, 0.01), value(2, 0)) == [1, 2]
    assert await join({"b": value(2, 0), "a": value(1, 0.01)}) == {"b": 2, "a": 1}
    assert await join() == []


async def test_join_cancels_the_others_on_failure() -> None:
    cancelled = asyncio.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def fail() -> None:
        raise RuntimeError("nope")

    with pytest.raises(RuntimeError, match="nope"):
        await join(slow(), fail())
    await asyncio.wait_for(cancelled.wait(), 1)


async def test_join_argument_errors() -> None:
    async def one() -> int:
        return 1

    first = one()
    with pytest.raises(TypeError, match="argument 1 is not awaitable"):
        await join(first, 3)  # type: ignore[call-overload]
    assert inspect.getcoroutinestate(first) == inspect.CORO_CLOSED  # so it never warns
    with pytest.raises(TypeError, match="either one mapping or several awaitables"):
        await join(one(), {"a": one()})  # type: ignore[call-overload]
