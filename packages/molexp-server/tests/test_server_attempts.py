"""The API serves every attempt of a run: its results, artifacts (with their bytes), logs, task
states, and what changed from the attempt before."""

from __future__ import annotations

import json
import platform
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from molexp.server import create_app
from molexp.workspace import Run, Workspace
from server_helpers import make_client


def _eos_run(root: Path) -> Run:
    """One run executed twice: a code change between the attempts (murnaghan -> birch)."""
    run = Workspace(root, name="EOS").Project("eos").Experiment("cu").Run(id="cu1")
    for eos, b0, extra in (("murnaghan", 140.1, True), ("birch", 138.7, False)):
        with run.start() as ctx:
            ctx.set_result("eos", eos)
            ctx.set_result("b0", b0)
            ctx.artifact.save("fit.json", {"eos": eos, "b0": b0})
            if extra:
                ctx.artifact.save("strains.json", [0.98, 1.0, 1.02])
            ctx.log("fit").append(f"fitted {eos}")
            ctx.record_execution_state({"tasks": {"fit": {"status": "succeeded"}}})
    return run


@pytest.fixture
async def eos(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    root = (tmp_path / "lab").resolve()
    _eos_run(root)
    async with make_client(create_app(root)) as http:
        yield http


async def test_the_run_lists_its_attempts_with_what_changed(eos: httpx.AsyncClient) -> None:
    detail = (await eos.get("/api/v1/runs/cu1")).json()
    assert detail["results"] == {"eos": "birch", "b0": 138.7}
    first, second = detail["attempts"]
    assert (first["results_changed"], first["artifacts_changed"]) == (0, 0)
    assert (second["results_changed"], second["artifacts_changed"]) == (2, 1)
    assert first["python"] == second["python"] == sys.executable
    assert first["environment"]["platform"] == platform.platform()


async def test_an_attempt_shows_its_results_artifacts_logs_and_changes(
    eos: httpx.AsyncClient,
) -> None:
    first = (await eos.get("/api/v1/runs/cu1/attempts/1")).json()
    assert first["attempt"]["attempt"] == 1 and first["latest"] is False
    assert first["results"] == first["own_results"] == {"eos": "murnaghan", "b0": 140.1}
    assert [(a["name"], a["attempt"]) for a in first["artifacts"]] == [
        ("fit.json", 1),
        ("strains.json", 1),
    ]
    assert all(len(a["content_hash"]) == 64 for a in first["artifacts"])
    assert [log["name"] for log in first["logs"]] == ["fit"]
    assert [task["name"] for task in first["tasks"]] == ["fit"]
    assert first["changes"]["before"] is None

    second = (await eos.get("/api/v1/runs/cu1/attempts/2")).json()
    assert second["latest"] is True and second["own_results"] == {"eos": "birch", "b0": 138.7}
    # strains.json was saved by attempt 1 only: still in attempt 2's view.
    assert [(a["name"], a["attempt"]) for a in second["artifacts"]] == [
        ("fit.json", 2),
        ("strains.json", 1),
    ]
    changes = second["changes"]
    assert (changes["before"], changes["after"]) == (1, 2)
    assert [(c["key"], c["before"], c["after"]) for c in changes["results"]] == [
        ("b0", 140.1, 138.7),
        ("eos", "murnaghan", "birch"),
    ]
    [fit] = changes["artifacts"]
    assert fit["name"] == "fit.json" and fit["change"] == "changed"
    assert fit["before_hash"] == first["artifacts"][0]["content_hash"]

    backwards = (await eos.get("/api/v1/runs/cu1/attempts/1?against=2")).json()["changes"]
    assert backwards["before"] == 2 and backwards["results"][1]["after"] == "murnaghan"


async def test_logs_and_artifacts_of_any_attempt(eos: httpx.AsyncClient) -> None:
    latest = (await eos.get("/api/v1/runs/cu1/logs/fit")).json()
    assert latest["text"] == "fitted birch\n"
    old = (await eos.get("/api/v1/runs/cu1/logs/fit", params={"attempt": 1})).json()
    assert old["text"] == "fitted murnaghan\n"
    assert [log["name"] for log in (await eos.get("/api/v1/runs/cu1/logs")).json()] == ["fit"]

    current = await eos.get("/api/v1/runs/cu1/artifacts/fit.json")
    assert json.loads(current.content)["eos"] == "birch"
    kept = await eos.get("/api/v1/runs/cu1/artifacts/fit.json", params={"attempt": 1})
    assert kept.status_code == 200 and json.loads(kept.content)["eos"] == "murnaghan"
    assert kept.headers["content-type"].startswith("application/json")
    listed = (await eos.get("/api/v1/runs/cu1/artifacts", params={"attempt": 1})).json()
    assert [(a["name"], a["attempt"]) for a in listed] == [("fit.json", 1), ("strains.json", 1)]
    view = (await eos.get("/api/v1/runs/cu1/artifacts")).json()
    assert [(a["name"], a["attempt"]) for a in view] == [("fit.json", 2), ("strains.json", 1)]


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/api/v1/runs/cu1/attempts/3", 404),
        ("/api/v1/runs/cu1/attempts/0", 422),
        ("/api/v1/runs/cu1/logs?attempt=0", 422),
        ("/api/v1/runs/cu1/logs/fit?attempt=9", 404),
        ("/api/v1/runs/cu1/artifacts/plot.png?attempt=1", 404),
        ("/api/v1/runs/cu1/attempts/1?against=5", 404),
    ],
)
async def test_a_missing_attempt_is_named(eos: httpx.AsyncClient, url: str, status: int) -> None:
    answer = await eos.get(url)
    assert answer.status_code == status, answer.text
    if status == 404:
        assert "cu1" in answer.json()["detail"]


async def test_a_queued_run_shows_the_logs_of_its_latest_started_attempt(tmp_path: Path) -> None:
    root = (tmp_path / "lab").resolve()
    run = _eos_run(root)
    run.mark_queued({"job_id": "42"})
    async with make_client(create_app(root)) as http:
        text = (await http.get("/api/v1/runs/cu1/logs/fit")).json()["text"]
        assert text == "fitted birch\n"
        detail = (await http.get("/api/v1/runs/cu1")).json()
        assert [a["status"] for a in detail["attempts"]] == ["succeeded", "succeeded", "pending"]
        pending = (await http.get("/api/v1/runs/cu1/attempts/3")).json()
        assert pending["logs"] == [] and pending["changes"]["results"] == []
