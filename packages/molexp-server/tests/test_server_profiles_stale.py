"""Profiles, ``--set`` overrides and stale runs through the API: listed, filtered, compared."""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from molexp.server import create_app
from molexp.workspace import OwnerInfo, ProfileConfig, RunStatus, Workspace
from molexp.workspace._records import utc_now
from molexp.workspace._stale import this_host
from server_helpers import make_client

API = "/api/v1"
EXP = f"{API}/projects/eos/experiments/cu"
DEAD_PID = 2**22 + 4321
FAST = {"n_strains": 5, "model": {"depth": 1}}


def _build(root: Path) -> Workspace:
    ws = Workspace(root)
    exp = ws.Project("eos").Experiment("cu", params={"element": "Cu"})
    for run_id, profile in (
        ("fast", ProfileConfig(name="fast", config=FAST)),
        (
            "fast7",
            ProfileConfig(name="fast", config={**FAST, "n_strains": 7}, overrides={"n_strains": 7}),
        ),
        ("accurate", ProfileConfig(name="accurate", config={"n_strains": 9})),
    ):
        with exp.Run(id=run_id).start(profile_config=profile) as ctx:
            ctx.set_result("e0", -3.5)
    now = utc_now()
    for run_id, pid in (("killed", DEAD_PID), ("alive", os.getpid())):
        run = exp.Run(id=run_id)
        run.metadata.status = RunStatus.running
        run.metadata.started_at = now
        run.metadata.owner = OwnerInfo(host=this_host(), pid=pid, started_at=now, heartbeat_at=now)
        run.save()
    return ws


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    ws = _build((tmp_path / "lab").resolve())
    async with make_client(create_app(ws.root)) as http:
        yield http


async def test_runs_carry_profile_label_config_and_staleness(client: httpx.AsyncClient) -> None:
    page = (await client.get(f"{EXP}/runs", params={"limit": 10})).json()
    rows = {row["id"]: row for row in page["items"]}
    assert rows["fast7"]["profile"] == "fast"
    assert rows["fast7"]["profile_label"] == "fast + n_strains=7"
    assert rows["fast7"]["overrides"] == {"n_strains": 7}
    assert rows["fast7"]["config"] == {"n_strains": 7, "model": {"depth": 1}}
    assert rows["fast"]["profile_label"] == "fast"
    assert {run_id for run_id, row in rows.items() if row["stale"]} == {"killed"}
    assert rows["killed"]["status"] == "running"
    assert rows["killed"]["stale_reason"] == (
        f"owner process {DEAD_PID} on host {this_host()} is no longer alive"
    )
    assert rows["alive"]["stale_reason"] is None

    info = (await client.get(EXP)).json()
    assert info["config_keys"] == ["model.depth", "n_strains"]
    assert info["stale_count"] == 1
    assert info["by_status"] == {"succeeded": 3, "running": 2}  # recorded statuses


async def test_config_fields_filter_and_sort(client: httpx.AsyncClient) -> None:
    page = (await client.get(f"{EXP}/runs", params={"where": "config.n_strains == 7"})).json()
    assert [row["id"] for row in page["items"]] == ["fast7"]
    page = (
        await client.get(
            f"{EXP}/runs", params={"where": "profile == 'fast'", "order_by": "-config.n_strains"}
        )
    ).json()
    assert [row["id"] for row in page["items"]] == ["fast7", "fast"]
    typo = await client.get(f"{EXP}/runs", params={"where": "config.n_strain == 7"})
    assert typo.status_code == 400
    assert "config.n_strains" in typo.json()["detail"]


async def test_run_detail_shows_overrides_and_staleness(client: httpx.AsyncClient) -> None:
    detail = (await client.get(f"{API}/runs/fast7")).json()
    assert detail["profile"]["label"] == "fast + n_strains=7"
    assert detail["profile"]["overrides"] == {"n_strains": 7}
    assert detail["stale"] is False
    killed = (await client.get(f"{API}/runs/killed")).json()
    assert (killed["status"], killed["stale"]) == ("running", True)
    assert str(DEAD_PID) in killed["stale_reason"]


async def test_compare_shows_profile_and_config_rows(client: httpx.AsyncClient) -> None:
    table = (await client.get(f"{EXP}/compare", params={"runs": "fast,fast7,accurate"})).json()
    rows = {(row["section"], row["key"]): row for row in table["rows"]}
    assert rows[("profile", "profile")]["values"] == ["fast", "fast + n_strains=7", "accurate"]
    assert rows[("profile", "profile")]["differs"] is True
    assert rows[("config", "n_strains")]["values"] == [5, 7, 9]
    assert rows[("config", "model.depth")]["values"] == [1, 1, None]
    assert rows[("param", "element")]["differs"] is False
    sections = [row["section"] for row in table["rows"]]
    order = ["param", "profile", "config", "result", "workflow", "git", "code", "python"]
    order += ["environment", "distributions"]
    assert sections == sorted(sections, key=order.index)
    same = (await client.get(f"{EXP}/compare", params={"runs": "fast,killed"})).json()
    (profile_row,) = [row for row in same["rows"] if row["section"] == "profile"]
    assert profile_row["values"] == ["fast", None]


async def test_a_death_is_seen_although_the_index_did_not_change(tmp_path: Path) -> None:
    """Answers are reused until the index changes, but a dying owner changes no record."""
    ws = Workspace((tmp_path / "lab").resolve())
    exp = ws.Project("eos").Experiment("cu")
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        now = utc_now()
        run = exp.Run(id="doomed")
        run.metadata.status = RunStatus.running
        run.metadata.owner = OwnerInfo(
            host=this_host(), pid=sleeper.pid, started_at=now, heartbeat_at=now
        )
        run.save()
        async with make_client(create_app(ws.root)) as http:
            assert (await http.get(EXP)).json()["stale_count"] == 0
            assert (await http.get(f"{EXP}/runs")).json()["items"][0]["stale"] is False
            sleeper.kill()
            sleeper.wait()
            assert (await http.get(EXP)).json()["stale_count"] == 1
            assert (await http.get(f"{EXP}/runs")).json()["items"][0]["stale"] is True
    finally:
        sleeper.kill()
        sleeper.wait()
