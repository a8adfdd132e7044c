"""Index answers are reused only while the run index is unchanged."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from functools import partial
from pathlib import Path

import httpx
from molexp.server._cache import IndexCache
from server_helpers import Lab

API = "/api/v1"


def test_value_is_reused_until_another_connection_commits(lab: Lab) -> None:
    cache = IndexCache(lab.ws.catalog.db_path)
    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    assert cache.get("k", compute) == 1
    assert cache.get("k", compute) == 1
    lab.ws.project("qm9").experiment("baseline").Run(id="fresh")
    lab.ws.runs()  # the workspace writes its queued row at its next read: a commit
    assert cache.get("k", compute) == 2
    cache.close()


def test_commit_from_another_process_invalidates(lab: Lab) -> None:
    cache = IndexCache(lab.ws.catalog.db_path)
    assert cache.get("k", lambda: "before") == "before"
    code = (
        "from molexp.workspace import Workspace; import sys; "
        "Workspace.load(sys.argv[1]).project('qm9').experiment('baseline').Run(id='other')"
    )
    subprocess.run([sys.executable, "-c", code, str(lab.root)], check=True)
    assert cache.get("k", lambda: "after") == "after"
    cache.close()


def test_replaced_index_file_invalidates(lab: Lab, tmp_path: Path) -> None:
    db_path = tmp_path / "index.sqlite"
    sqlite3.connect(db_path).execute("CREATE TABLE t (x)").connection.commit()
    cache = IndexCache(db_path)
    assert cache.get("k", lambda: 1) == 1
    replacement = tmp_path / "new.sqlite"
    sqlite3.connect(replacement).execute("CREATE TABLE t (x)").connection.commit()
    replacement.replace(db_path)
    assert cache.get("k", lambda: 2) == 2
    cache.close()


def test_missing_index_is_never_cached(tmp_path: Path) -> None:
    cache = IndexCache(tmp_path / "absent.sqlite")
    assert cache.get("k", lambda: 1) == 1
    assert cache.get("k", lambda: 2) == 2


def test_oldest_entries_are_dropped(lab: Lab) -> None:
    cache = IndexCache(lab.ws.catalog.db_path, max_entries=2)
    for key in ("a", "b", "c"):
        cache.get(key, partial(str, key))
    assert cache.get("a", lambda: "recomputed") == "recomputed"
    assert cache.get("c", lambda: "recomputed") == "c"
    cache.close()


async def test_api_shows_runs_created_after_the_first_request(
    client: httpx.AsyncClient, lab: Lab
) -> None:
    url = f"{API}/projects/qm9/experiments/baseline"
    before = (await client.get(url)).json()["run_count"]
    page_before = (await client.get(f"{url}/runs")).json()["total"]
    run = lab.ws.project("qm9").experiment("baseline").Run(parameters={"extra": 1}, id="late")
    with run.start() as ctx:
        ctx.set_result("new_metric", 3.5)
    after = (await client.get(url)).json()
    assert after["run_count"] == before + 1
    assert "extra" in after["param_keys"] and "new_metric" in after["result_keys"]
    assert (await client.get(f"{url}/runs")).json()["total"] == page_before + 1
    detail = (await client.get(f"{API}/runs", params={"where": "extra == 1"})).json()
    assert [item["id"] for item in detail["items"]] == ["late"]
