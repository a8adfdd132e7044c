"""Unreadable records: listings skip and report them, direct loads raise naming file and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from molexp.assets import RecordError, UnsupportedVersionError
from molexp.workspace import BrokenRecordWarning, Experiment, Workspace


def edit(path: Path, **changes: object) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_broken_run_is_skipped_by_listing_and_reported(exp: Experiment) -> None:
    good = exp.Run(id="good")
    bad = exp.Run(id="bad")
    bad.record_path.write_text("{truncated")
    fresh = Workspace(exp.workspace.root).project("qm9").experiment("baseline")
    with pytest.warns(BrokenRecordWarning, match=r"run-bad/run\.json"):
        listed = fresh.list_runs()
    assert [run.id for run in listed] == [good.id]
    (broken,) = exp.workspace.broken_records()
    assert broken.path == bad.record_path
    assert "not valid JSON" in broken.error
    with pytest.raises(RecordError, match=r"run-bad/run\.json.*not valid JSON"):
        fresh.get_run("bad")


def test_invalid_field_names_file_and_field(exp: Experiment) -> None:
    run = exp.Run(id="odd")
    edit(run.record_path, status="exploded")
    fresh = Workspace(exp.workspace.root).project("qm9").experiment("baseline")
    with pytest.raises(RecordError, match=r"run\.json \(field 'status'\)") as info:
        fresh.get_run("odd")
    assert info.value.field == "status"
    assert info.value.path == run.record_path


def test_newer_schema_version_is_a_clear_error(exp: Experiment) -> None:
    run = exp.Run(id="future")
    edit(run.record_path, version=99)
    fresh = Workspace(exp.workspace.root).project("qm9").experiment("baseline")
    with pytest.raises(UnsupportedVersionError, match="schema version 99 is newer"):
        fresh.get_run("future")
    edit(exp.workspace.record_path, version=2)
    with pytest.raises(UnsupportedVersionError, match=r"workspace\.json"):
        Workspace(exp.workspace.root)


def test_record_in_the_wrong_directory_is_broken(exp: Experiment) -> None:
    run = exp.Run(id="moved")
    edit(run.record_path, id="elsewhere")
    fresh = Workspace(exp.workspace.root).project("qm9").experiment("baseline")
    with pytest.raises(RecordError, match="id 'elsewhere' does not match its directory"):
        fresh.get_run("moved")


def test_broken_project_and_experiment_records(ws: Workspace) -> None:
    ok = ws.Project("ok")
    ok.Experiment("fine")
    broken_exp = ok.Experiment("broken")
    broken_project = ws.Project("bad")
    edit(broken_exp.record_path, n_replicas="many")
    broken_project.record_path.write_text("[]")
    fresh = Workspace(ws.root)
    with pytest.warns(BrokenRecordWarning, match=r"bad/project\.json"):
        assert [p.id for p in fresh.list_projects()] == ["ok"]
    with pytest.warns(BrokenRecordWarning, match=r"broken/experiment\.json"):
        assert [e.id for e in fresh.project("ok").list_experiments()] == ["fine"]
    assert sorted(b.path.name for b in fresh.broken_records()) == [
        "experiment.json",
        "project.json",
    ]
    with pytest.raises(RecordError, match="expected a JSON object"):
        Workspace(ws.root).project("bad")
    with pytest.raises(RecordError, match="n_replicas"):
        Workspace(ws.root).project("ok").experiment("broken")


def test_an_invalid_workspace_id_is_refused_when_the_workspace_opens(ws: Workspace) -> None:
    ws.materialize()
    for bad in ["", "..", "a/b", " padded"]:
        edit(ws.record_path, id=bad)
        with pytest.raises(RecordError, match=r"workspace\.json \(field 'id'\): workspace id"):
            Workspace(ws.root)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"results": {"loss": float("nan")}}, "results", r"results\['loss'\] is nan"),
        ({"parameters": {"lr": float("inf")}}, "parameters", "cannot hold NaN or infinity"),
        ({"created_at": "2026-01-01T00:00:00"}, "created_at", "timezone"),
        ({"replica_index": -1}, "replica_index", ">= 0"),
        ({"tags": [""]}, "tags", "non-empty strings"),
        ({"experiment_id": ""}, "experiment_id", "experiment id must not be empty"),
        (
            {
                "owner": {
                    "host": "h",
                    "pid": 0,
                    "started_at": "2026-01-01T00:00:00Z",
                    "heartbeat_at": "2026-01-01T00:00:00Z",
                }
            },
            "owner.pid",
            ">= 1",
        ),
    ],
)
def test_run_fields_are_checked_when_read_as_when_written(
    exp: Experiment, changes: dict[str, object], field: str, message: str
) -> None:
    run = exp.Run(id="checked")
    edit(run.record_path, **changes)
    fresh = Workspace(exp.workspace.root).project("qm9").experiment("baseline")
    with pytest.raises(RecordError, match=message) as info:
        fresh.get_run("checked")
    assert info.value.field == field and info.value.path == run.record_path


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"seeds": [1, 2]}, "seeds"),  # n_replicas is 1
        ({"n_replicas": 0}, "n_replicas"),
        ({"name": "a/b"}, "name"),
        ({"parameters": {"x": float("nan")}}, "parameters"),
    ],
)
def test_experiment_fields_are_checked_when_read(
    exp: Experiment, changes: dict[str, object], field: str
) -> None:
    edit(exp.record_path, **changes)
    with pytest.raises(RecordError) as info:
        Workspace(exp.workspace.root).project("qm9").experiment("baseline")
    assert info.value.field == field
