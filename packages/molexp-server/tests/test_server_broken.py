"""Broken records show as broken (path + error) and never turn a request into a 500."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from molexp.server import create_app
from molexp.workspace import Workspace
from server_helpers import Lab, make_client

# The server reports broken records in its answers; the warnings the listings emit are expected.
pytestmark = pytest.mark.filterwarnings("ignore::molexp.workspace.BrokenRecordWarning")

API = "/api/v1"


def _project_file(lab: Lab) -> Path:
    return lab.ws.project("qm9").project_dir / "project.json"


def _experiment_file(lab: Lab, experiment: str = "baseline") -> Path:
    return lab.ws.project("qm9").experiment(experiment).experiment_dir / "experiment.json"


async def _get(lab: Lab, url: str, **params: str) -> httpx.Response:
    """A request through a freshly created app (nothing cached from before the damage)."""
    async with make_client(create_app(lab.root)) as http:
        return await http.get(url, params=params)


async def test_corrupt_run_record_is_listed_as_broken(lab: Lab) -> None:
    (lab.first.run_dir / "run.json").write_text("{ not json")
    page = await _get(lab, f"{API}/projects/qm9/experiments/baseline/runs")
    assert page.status_code == 200
    [broken] = page.json()["broken"]
    assert broken["path"] == "projects/qm9/experiments/baseline/runs/run-ok0/run.json"
    assert "JSON" in broken["error"]
    assert broken["broken"] is True
    overview = await _get(lab, f"{API}/workspace")
    assert [item["path"] for item in overview.json()["broken"]] == [broken["path"]]
    everything = await _get(lab, f"{API}/runs")
    assert [item["path"] for item in everything.json()["broken"]] == [broken["path"]]


async def test_broken_run_detail_and_files_answer_409_naming_the_file(lab: Lab) -> None:
    (lab.first.run_dir / "run.json").write_text(json.dumps({"id": "ok0", "version": 1}))
    for url in (
        f"{API}/runs/ok0",
        f"{API}/runs/ok0/logs",
        f"{API}/runs/ok0/artifacts",
        f"{API}/runs/ok0/artifacts/notes.txt",
    ):
        response = await _get(lab, url)
        assert response.status_code == 409, url
        assert "run.json" in response.json()["detail"]
        assert "broken" in response.json()["detail"]


async def test_run_record_from_a_newer_version_is_reported(lab: Lab) -> None:
    path = lab.first.run_dir / "run.json"
    record = json.loads(path.read_text())
    record["version"] = 99
    path.write_text(json.dumps(record))
    page = await _get(lab, f"{API}/projects/qm9/experiments/baseline/runs")
    [broken] = page.json()["broken"]
    assert "newer" in broken["error"]
    detail = await _get(lab, f"{API}/runs/ok0")
    assert detail.status_code == 409
    assert "newer" in detail.json()["detail"]


async def test_broken_experiment_is_skipped_and_reported(lab: Lab) -> None:
    _experiment_file(lab, "sweep").write_text("[]")
    experiments = await _get(lab, f"{API}/projects/qm9/experiments")
    assert experiments.status_code == 200
    assert [item["id"] for item in experiments.json()] == ["baseline"]
    overview = (await _get(lab, f"{API}/workspace")).json()
    assert [item["path"] for item in overview["broken"]] == [
        "projects/qm9/experiments/sweep/experiment.json"
    ]
    assert overview["counts"]["experiments"] == 1
    missing = await _get(lab, f"{API}/projects/qm9/experiments/sweep/runs")
    assert missing.status_code == 409  # the experiment exists, its record is broken


async def test_broken_project_is_skipped_and_reported(lab: Lab) -> None:
    _project_file(lab).write_text('{"id": 5}')
    projects = await _get(lab, f"{API}/projects")
    assert projects.status_code == 200
    assert projects.json() == []
    overview = (await _get(lab, f"{API}/workspace")).json()
    assert overview["broken"][0]["path"] == "projects/qm9/project.json"
    assert overview["counts"]["projects"] == 0
    experiments = await _get(lab, f"{API}/projects/qm9/experiments")
    assert experiments.status_code == 409  # the project exists, its record is broken


async def test_corrupt_execution_state_leaves_tasks_empty(lab: Lab) -> None:
    execution = lab.first.metadata.execution_history[-1].execution_id
    (lab.first.run_dir / "execution" / execution / "state.json").write_text("garbage")
    detail = await _get(lab, f"{API}/runs/ok0")
    assert detail.status_code == 200
    assert detail.json()["tasks"] == []
    assert detail.json()["execution_state_id"] is not None


async def test_unknown_task_state_shapes_give_no_rows(lab: Lab) -> None:
    execution = lab.first.metadata.execution_history[-1].execution_id
    state = lab.first.run_dir / "execution" / execution / "state.json"
    state.write_text(json.dumps({"tasks": "not a mapping"}))
    assert (await _get(lab, f"{API}/runs/ok0")).json()["tasks"] == []
    state.write_text(json.dumps({"tasks": [{"name": "a", "status": "failed", "error": "bad"}]}))
    [task] = (await _get(lab, f"{API}/runs/ok0")).json()["tasks"]
    assert (task["name"], task["status"], task["error"]) == ("a", "failed", "bad")


async def test_same_server_notices_damage_and_repair(client: httpx.AsyncClient, lab: Lab) -> None:
    url = f"{API}/projects/qm9/experiments/baseline/runs"
    assert (await client.get(url)).json()["broken"] == []
    record = lab.first.run_dir / "run.json"
    good = record.read_bytes()
    record.write_text("{ torn write")
    assert [item["path"] for item in (await client.get(url)).json()["broken"]] == [
        "projects/qm9/experiments/baseline/runs/run-ok0/run.json"
    ]
    tmp = record.with_name("run.json.tmp")
    tmp.write_bytes(good)
    tmp.replace(record)  # repaired the way MolExp writes: an atomic rename
    assert (await client.get(url)).json()["broken"] == []


async def test_broken_list_matches_the_workspace_own_report(lab: Lab) -> None:
    (lab.first.run_dir / "run.json").write_text("[]")
    moved = lab.succeeded[1].run_dir / "run.json"
    record = json.loads(moved.read_text())
    record["experiment_id"] = "sweep"  # a record that does not belong where it lies
    moved.write_text(json.dumps(record))
    _experiment_file(lab, "sweep").write_text("{")
    expected = sorted(
        (item.path.relative_to(lab.root).as_posix(), item.error)
        for item in Workspace.load(lab.root).broken_records()
    )
    overview = (await _get(lab, f"{API}/workspace")).json()
    assert sorted((item["path"], item["error"]) for item in overview["broken"]) == expected
    assert len(expected) == 3
    in_baseline = (await _get(lab, f"{API}/projects/qm9/experiments/baseline/runs")).json()
    assert len(in_baseline["broken"]) == 2
