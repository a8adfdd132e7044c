"""Metric series over the API: summaries per run, and series downsampled server-side by LTTB."""

from __future__ import annotations

import math
from collections.abc import Sequence

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from molexp.server._lttb import lttb
from server_helpers import Lab

API = "/api/v1"


async def test_a_run_lists_its_metric_summaries(client: httpx.AsyncClient) -> None:
    body = (await client.get(f"{API}/runs/ok1/metrics")).json()
    assert body == [
        {"name": "loss", "last": 1 / 6, "last_step": 4, "min": 1 / 6, "max": 0.5, "count": 5}
    ]
    assert (await client.get(f"{API}/runs/boom/metrics")).json() == []


async def test_a_series_is_served_whole_when_short(client: httpx.AsyncClient) -> None:
    body = (await client.get(f"{API}/runs/ok0/metrics/loss")).json()
    assert body["total"] == 5 and body["downsampled"] is False
    assert body["steps"] == [0, 1, 2, 3, 4]
    assert body["values"] == [1.0, 0.5, 1 / 3, 0.25, 0.2]
    assert body["timestamps"] == [100.0, 101.0, 102.0, 103.0, 104.0]
    assert body["attempts"] == [1] * 5


async def test_a_long_series_is_downsampled_keeping_its_peak(
    client: httpx.AsyncClient, lab: Lab
) -> None:
    run = lab.ws.Project("QM9").Experiment("baseline").Run(id="long")
    with run.start() as ctx:
        for step in range(4999):
            ctx.log_metric("energy", 100.0 if step == 1234 else math.sin(step / 50))
    body = (await client.get(f"{API}/runs/long/metrics/energy", params={"points": 300})).json()
    assert body["total"] == 4999 and body["downsampled"] is True
    assert len(body["steps"]) == 300
    assert body["steps"][0] == 0 and body["steps"][-1] == 4998
    assert 100.0 in body["values"]


async def test_unknown_and_malformed_metrics_are_named(client: httpx.AsyncClient) -> None:
    missing = await client.get(f"{API}/runs/ok0/metrics/acc")
    assert missing.status_code == 404
    assert "no metric 'acc' (its metrics: loss)" in missing.json()["detail"]
    assert (await client.get(f"{API}/runs/ok0/metrics/%20x")).status_code == 400
    too_few = await client.get(f"{API}/runs/ok0/metrics/loss", params={"points": 2})
    assert too_few.status_code in (400, 422)


@given(st.lists(st.floats(-1e6, 1e6), max_size=300), st.integers(3, 50))
def test_lttb_keeps_the_ends_and_at_most_threshold_points_in_order(
    values: list[float], threshold: int
) -> None:
    kept = lttb(values, threshold)
    assert len(kept) == min(len(values), threshold)
    assert kept == sorted(set(kept))
    if values:
        assert kept[0] == 0 and kept[-1] == len(values) - 1


def test_lttb_picks_the_extreme_of_each_bucket() -> None:
    values = [0.0] * 12
    values[3], values[9] = 5.0, -3.0
    assert lttb(values, 5) == [0, 3, 4, 9, 11]


def test_a_long_series_is_downsampled_once_and_a_changed_one_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from molexp.server import _lttb

    calls: list[int] = []
    compute = _lttb._lttb

    def counting(values: Sequence[float], threshold: int) -> list[int]:
        calls.append(len(values))
        return compute(values, threshold)

    monkeypatch.setattr(_lttb, "_lttb", counting)
    values = [math.sin(index / 100) for index in range(_lttb.CACHE_MIN_POINTS)]
    first = lttb(values, 500)
    assert lttb(list(values), 500) == first and len(calls) == 1
    changed = [*values[:-1], 100.0]
    assert lttb(changed, 500)[-1] == len(values) - 1 and len(calls) == 2
    assert lttb(values, 400) != first and len(calls) == 3
    lttb(values[:1000], 500)  # short series are not remembered
    lttb(values[:1000], 500)
    assert len(calls) == 5
