"""What keeps the server fast and its live tails on time under load (found by
``benchmarks/bench_server_load.py``): pages read from the index as a page and a count, and log
tails whose run-status checks neither wait for the service's lock nor hold up the lines. (The
broken-record checks, which follow the change feed instead of re-reading the tree per request,
are tested in ``test_server_broken_feed.py``.)

None of these tests is timed: each checks who waits for what.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from molexp.server import create_app
from molexp.server._service import RunRef, WorkspaceService
from molexp.server._sse import LogStreamSettings, stream_log
from molexp.workspace import Workspace
from server_helpers import Lab

API = "/api/v1"
GENEROUS = 30.0  # seconds: a deadlock shows as a timeout, a loaded machine never gets near it


async def test_a_page_reads_only_its_rows_from_the_index(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []
    runs = Workspace.runs

    def spy(self: Workspace, *args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return runs(self, *args, **kwargs)

    monkeypatch.setattr(Workspace, "runs", spy)
    transport = httpx.ASGITransport(app=create_app(lab.root))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        url = f"{API}/projects/qm9/experiments/baseline/runs"
        page = (await http.get(url, params={"limit": 2, "offset": 1})).json()
        whole = (await http.get(url, params={"limit": 100})).json()
        beyond = (await http.get(url, params={"limit": 2, "offset": 50})).json()
    assert [row["id"] for row in page["items"]] == [row["id"] for row in whole["items"][1:3]]
    assert page["total"] == whole["total"] == beyond["total"] == len(whole["items"])
    assert beyond["items"] == []
    assert {(call.get("limit"), call.get("offset")) for call in calls} >= {(2, 1), (2, 50)}
    assert all(call.get("limit") is not None for call in calls)


def test_terminal_probe_does_not_wait_for_the_service_lock(lab: Lab) -> None:
    service = WorkspaceService(Workspace.load(lab.root))
    probe = service.terminal_probe(RunRef("ok0"))
    answers: list[bool] = []
    with service._lock:  # another request holding the workspace
        asking = threading.Thread(target=lambda: answers.append(probe()))
        asking.start()
        asking.join(GENEROUS)
    assert answers == [True]


def test_terminal_probe_of_a_run_whose_record_went_away(lab: Lab) -> None:
    service = WorkspaceService(Workspace.load(lab.root))
    run = lab.ws.project("qm9").experiment("baseline").Run(id="going")
    run.save()
    probe = service.terminal_probe(RunRef("going"))
    assert probe() is False
    (run.run_dir / "run.json").unlink()
    assert probe() is True


async def test_lines_keep_flowing_while_the_status_check_is_slow(tmp_path: Path) -> None:
    """A status answer that takes long (a busy server) must not hold the lines back."""
    log = tmp_path / "busy.log"
    log.write_bytes(b"")
    answer = asyncio.Event()
    checks = 0

    async def slow_terminal() -> bool:
        nonlocal checks
        checks += 1
        await answer.wait()
        return True

    async def connected() -> bool:
        return False

    settings = LogStreamSettings(max_seconds=GENEROUS, poll_seconds=0.01)
    stream = stream_log(
        log, 0, is_terminal=slow_terminal, is_disconnected=connected, settings=settings
    )
    assert await anext(stream) == "retry: 2000\n\n"
    with log.open("ab") as handle:
        handle.write(b"seq 0\n")
    first = await asyncio.wait_for(anext(stream), GENEROUS)  # before any status answer
    assert '"text": "seq 0\\n"' in first
    assert checks == 1  # one check in flight, not one per poll
    with log.open("ab") as handle:
        handle.write(b"seq 1\n")
    second = await asyncio.wait_for(anext(stream), GENEROUS)
    assert '"text": "seq 1\\n"' in second
    with log.open("ab") as handle:
        handle.write(b"last")  # written before the run ended: sent with the end
    answer.set()
    rest = [message async for message in stream]
    assert '"text": "last"' in rest[0]
    assert rest[-1].startswith("event: end")
