"""``molexp export ... --format ro-crate``: the crate reads back with the rocrate library, meets
the Workflow Run / Process Run Crate MUSTs, and holds every record a round trip needs."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from molexp.cli import run_cli
from molexp.cli._rocrate import (
    JSON_VALUE,
    PROCESS_RUN_CRATE,
    WORKFLOW_RO_CRATE,
    WORKFLOW_RUN_CRATE,
    component,
)
from molexp.workspace import Run, Workspace

rocrate = pytest.importorskip("rocrate.rocrate")

SCRIPT = """
from pathlib import Path

from molexp.workspace import Workspace, entry
from molexp.workflow import TaskContext, workflow
from molexp.workflow.bindings import set_workflow

HERE = Path(__file__).parent
wf = workflow(name="fit")


@wf.task
def fit(ctx: TaskContext) -> float:
    data = ctx.find_asset("dataset")
    if (HERE / "fail").exists():
        raise RuntimeError("asked to fail")
    loss = ctx.params["lr"] * 10
    ctx.log_metric("loss", loss, step=0)
    ctx.log_metric("loss", loss / 2, step=1)
    ctx.set_result("loss", loss)
    ctx.set_result("shape", [2, 3])
    ctx.set_result("read", data.name if data is not None else None)
    ctx.artifact.save("model.json", {"lr": ctx.params["lr"]})
    ctx.log("fit").append(f"loss={loss}")
    return loss


spec = wf.build()
ws = Workspace(HERE / "lab")
project = ws.Project("demo", owner="Ada Lovelace")
for lr in (0.1, 0.2):
    exp = project.Experiment(f"lr-{lr}", params={"lr": lr, "model": {"depth": 2}})
    set_workflow(exp, spec)
other = ws.Project("other")
set_workflow(other.Experiment("solo", params={"lr": 0.5}), spec)
entry(ws)
"""


def invoke(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run_cli(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(err: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err


@pytest.fixture
def lab(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Path:
    """Three runs: demo/lr-0.1 (a failed attempt, then a succeeded one), demo/lr-0.2 (one
    attempt), other/solo (one attempt); the demo runs used the project's data asset."""
    monkeypatch.chdir(tmp_path)
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    source = tmp_path / "atoms.xyz"
    source.write_text("2\nH2\nH 0 0 0\nH 0 0 0.74\n")
    project = Workspace(tmp_path / "lab").Project("demo", owner="Ada Lovelace")
    project.data_assets.import_asset("dataset", source)
    (tmp_path / "fail").write_text("yes")
    code, _, _ = invoke(capsys, "run", str(script), "-e", "lr-0.1", "--json")
    assert code == 1
    (tmp_path / "fail").unlink()
    code, out, err = invoke(capsys, "run", str(script), "--rerun-failed", "--json")
    assert code == 0, (out, err)
    monkeypatch.setenv("MOLEXP_WORKSPACE", str(tmp_path / "lab"))
    return tmp_path / "lab"


def runs_of(lab: Path, project: str | None = None) -> dict[str, Run]:
    ws = Workspace.load(lab)
    found: dict[str, Run] = {}
    for p in ws.list_projects():
        if project is not None and p.id != project:
            continue
        for experiment in p.list_experiments():
            for run in experiment.list_runs():
                found[run.id] = run
    return found


def load_graph(path: Path) -> dict[str, dict[str, Any]]:
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            text = archive.read("ro-crate-metadata.json")
    else:
        text = (path / "ro-crate-metadata.json").read_bytes()
    return {entity["@id"]: entity for entity in json.loads(text)["@graph"]}


def ids(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [item["@id"] for item in items if isinstance(item, dict)]


def types(entity: dict[str, Any]) -> set[str]:
    value = entity.get("@type", [])
    return set(value if isinstance(value, list) else [value])


def value_of(pv: dict[str, Any]) -> Any:
    return json.loads(pv["value"]) if pv.get("additionalType") == JSON_VALUE else pv["value"]


def export(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code, out, err = invoke(capsys, "export", *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_project_export_reads_back_with_rocrate_and_meets_the_profiles(
    lab: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.zip"
    summary = export(capsys, "demo", "--format", "ro-crate", "-o", str(out))
    expected = runs_of(lab, "demo")
    assert summary["kind"] == "project" and summary["layout"] == "zip"
    assert sorted(r.rsplit("/", 1)[1] for r in summary["runs"]) == sorted(expected)
    assert summary["attempts"] == 3 and summary["notes"] == []

    crate = rocrate.ROCrate(out)
    root = crate.root_dataset
    conforms = {e.id if hasattr(e, "id") else e for e in root["conformsTo"]}
    assert {PROCESS_RUN_CRATE, WORKFLOW_RUN_CRATE, WORKFLOW_RO_CRATE} <= conforms
    for profile in (PROCESS_RUN_CRATE, WORKFLOW_RUN_CRATE):
        assert "CreativeWork" in types(crate.get(profile).properties())
    main = crate.mainEntity
    assert {"File", "SoftwareSourceCode", "ComputationalWorkflow"} <= types(main.properties())
    assert main["programmingLanguage"].id == "https://www.python.org/"
    actions = crate.get_by_type("CreateAction")
    assert len(actions) == 3
    mentioned = {e.id for e in root["mentions"]}
    for action in actions:
        assert action.id in mentioned
        assert action["instrument"].id == main.id
        assert action["startTime"] and action["endTime"]
        assert action.get("object")
        status = action.properties()["actionStatus"]["@id"]
        assert status in {
            "http://schema.org/CompletedActionStatus",
            "http://schema.org/FailedActionStatus",
        }
        if status.endswith("CompletedActionStatus"):
            assert action.get("result")
        else:
            assert "asked to fail" in action["error"]

    # every hasPart file is in the zip, with its size and sha256
    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
        files = [e for e in crate.data_entities if "File" in types(e.properties())]
        assert files and {e.id for e in root["hasPart"]} == {e.id for e in crate.data_entities}
        for entity in files:
            assert entity.id in names
            data = archive.read(entity.id)
            assert hashlib.sha256(data).hexdigest() == entity["sha256"]
            assert int(entity["contentSize"]) == len(data)


def test_round_trip_matches_the_workspace_records(
    lab: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "crate"
    export(capsys, "demo", "-o", str(out))
    graph = load_graph(out)
    runs = runs_of(lab, "demo")
    for run_id, run in runs.items():
        meta = run.metadata
        ref = f"#{meta.project_id}/{meta.experiment_id}/{run_id}"
        actions = sorted(
            (e for e in graph.values() if "CreateAction" in types(e) and e["@id"].startswith(ref)),
            key=lambda e: int(e["@id"].rsplit("/", 1)[1]),
        )
        # attempts: count, statuses, times, execution ids
        assert [a["identifier"] for a in actions] == [
            r.execution_id for r in meta.execution_history
        ]
        statuses = [a["actionStatus"]["@id"].rsplit("/", 1)[1] for a in actions]
        assert statuses == [
            "CompletedActionStatus" if r.status == "succeeded" else "FailedActionStatus"
            for r in meta.execution_history
        ]
        for action, record in zip(actions, meta.execution_history, strict=True):
            assert action["startTime"] == record.started_at.isoformat()
            assert action["endTime"] == record.finished_at.isoformat()
            host = graph[action["location"]["@id"]]
            assert host["name"] == record.host
            facts = {graph[i]["name"]: value_of(graph[i]) for i in ids(host["additionalProperty"])}
            assert record.environment is not None
            assert facts["platform"] == record.environment.platform
            assert facts["python_version"] == record.python_version
            assert graph[action["agent"]["@id"]]["name"] == "Ada Lovelace"
            if record.status == "failed":
                assert "asked to fail" in action["error"]
                traceback = [
                    e["@id"]
                    for e in graph.values()
                    if e.get("about", {}).get("@id") == action["@id"] and e["name"] == "traceback"
                ]
                assert traceback and "asked to fail" in (out / traceback[0]).read_text()
        # parameters
        params = {
            graph[i]["name"]: value_of(graph[i])
            for i in ids(actions[-1]["object"])
            if graph.get(i, {}).get("propertyID") == "param"
        }
        assert params == meta.parameters
        config_file = next(i for i in ids(actions[-1]["object"]) if i.endswith("config.json"))
        config = json.loads((out / config_file).read_text())
        assert meta.profile is not None
        assert config["config_hash"] == meta.profile.config_hash
        # results: the attempts' own results, merged in order, are the run's results
        merged: dict[str, Any] = {}
        for action in actions:
            for i in ids(action.get("result", [])):
                if graph.get(i, {}).get("propertyID") == "result":
                    merged[graph[i]["name"]] = value_of(graph[i])
        assert merged == meta.results
        # metric summaries of the attempt that logged them
        metrics = {
            graph[i]["name"]: graph[i]
            for i in ids(actions[-1]["result"])
            if graph.get(i, {}).get("propertyID") == "metric"
        }
        for name, summary in meta.metrics.items():
            assert metrics[name]["value"] == summary.last
            assert (metrics[name]["minValue"], metrics[name]["maxValue"]) == (
                summary.min,
                summary.max,
            )
        # artifacts, with the checksums the catalog recorded
        artifacts = {
            graph[i]["identifier"]: graph[i]
            for action in actions
            for i in ids(action.get("result", []))
            if "File" in types(graph.get(i, {}))
        }
        recorded = {asset.id: asset for attempt in run.attempts for asset in attempt.own_artifacts}
        assert set(artifacts) == set(recorded)
        for asset_id, asset in recorded.items():
            assert artifacts[asset_id]["sha256"] == asset.content_hash
            assert int(artifacts[asset_id]["contentSize"]) == asset.size
        # the record itself travels along
        record = json.loads(
            (out / "runs" / "demo" / meta.experiment_id / run_id / "run.json").read_text()
        )
        assert record["id"] == run_id and len(record["execution_history"]) == len(actions)
        # lineage: the data asset the task found is an object of every attempt that read it
        dataset = [
            i for i in ids(actions[-1]["object"]) if graph.get(i, {}).get("name") == "dataset"
        ]
        assert dataset, actions[-1]["object"]


def test_a_run_export_and_an_experiment_export(
    lab: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = runs_of(lab)
    solo = next(r for r in runs.values() if r.metadata.experiment_id == "solo")
    one = export(capsys, solo.id, "-o", str(tmp_path / "one.zip"))
    assert one["kind"] == "run" and one["runs"] == [f"other/solo/{solo.id}"]
    by_dir = export(capsys, str(solo.run_dir), "-o", str(tmp_path / "dir.zip"))
    assert by_dir["runs"] == one["runs"]
    experiment = export(capsys, "lr-0.1", "-o", str(tmp_path / "exp"))
    assert experiment["kind"] == "experiment" and len(experiment["runs"]) == 1
    assert experiment["attempts"] == 2
    graph = load_graph(tmp_path / "exp")
    assert (tmp_path / "exp" / graph["./"]["mainEntity"]["@id"]).read_text().startswith("\n")


def test_existing_output_is_refused_unless_force(
    lab: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.zip"
    out.write_bytes(b"precious")
    code, _, err = invoke(capsys, "export", "demo", "-o", str(out))
    assert code == 1
    assert_one_line_error(err)
    assert "already exists" in err and out.read_bytes() == b"precious"
    export(capsys, "demo", "-o", str(out), "--force")
    assert zipfile.is_zipfile(out)
    # a directory that is not a crate is never replaced, even with --force
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    code, _, err = invoke(capsys, "export", "demo", "-o", str(keep), "--force")
    assert code == 1
    assert_one_line_error(err)
    assert (keep / "notes.txt").read_text() == "mine"
    # a crate directory is
    crate_dir = tmp_path / "crate"
    export(capsys, "demo", "-o", str(crate_dir))
    export(capsys, "other", "-o", str(crate_dir), "--force")
    assert load_graph(crate_dir)["./"]["name"] == "MolExp project other"
    assert not any(p.name.startswith(".crate") for p in tmp_path.iterdir())


def test_unknown_target_and_bad_format_are_one_line_errors(
    lab: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = invoke(capsys, "export", "nope", "-o", str(tmp_path / "x.zip"))
    assert code == 1
    assert_one_line_error(err)
    assert "unknown run, experiment or project 'nope'" in err
    code, _, err = invoke(capsys, "export", "demo", "--format", "zipzap", "-o", "x.zip")
    assert code == 2
    assert_one_line_error(err)
    code, _, err = invoke(capsys, "export", "demo")
    assert code == 2
    assert_one_line_error(err)
    assert not (tmp_path / "x.zip").exists()


def test_task_code_snapshots_of_the_execution_state_become_source_files(
    lab: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = next(r for r in runs_of(lab).values() if r.metadata.experiment_id == "solo")
    state_file = run.attempts[-1].execution_dir / "state.json"
    state = json.loads(state_file.read_text())
    state["tasks"]["fit"]["code_hash"] = "c0de"
    state["sources"] = {"c0de": "def fit(ctx):\n    return 1\n"}
    state["distributions"] = {"numpy": "2.0.0"}
    state_file.write_text(json.dumps(state))
    out = tmp_path / "code"
    export(capsys, run.id, "-o", str(out))
    graph = load_graph(out)
    code = next(e for e in graph.values() if e.get("identifier") == "c0de")
    assert {"File", "SoftwareSourceCode"} <= types(code)
    assert (out / code["@id"]).read_text() == "def fit(ctx):\n    return 1\n"
    assert code["@id"].endswith("/code/fit.py")
    requirement = graph[ids(code["softwareRequirements"])[0]]
    assert (requirement["name"], requirement["softwareVersion"]) == ("numpy", "2.0.0")


def test_names_never_leave_their_directory() -> None:
    for hostile in ("..", ".", "../../etc/passwd", "a/b", "/abs", ".hidden", "", "x\x00y"):
        cleaned = component(hostile)
        assert cleaned and "/" not in cleaned and not cleaned.startswith(".")
        assert cleaned not in {".", ".."}
    assert component("model.json") == "model.json"
    assert component("loss/train") == "loss_train"


def test_missing_rocrate_is_one_line_naming_the_extra(
    lab: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "rocrate.rocrate", None)
    code, _, err = invoke(capsys, "export", "demo", "-o", str(tmp_path / "x.zip"))
    assert code == 1
    assert_one_line_error(err)
    assert "molexp-cli[export]" in err
    assert not (tmp_path / "x.zip").exists()


def test_directory_artifacts_renamed_files_and_a_crate_imported_as_a_data_asset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run from the Python API (no script recorded): a directory artifact becomes a Collection
    of its files, a name that is not a safe path keeps its original as alternateName, and the
    crate imported into a fresh workspace as a data asset reads back the same."""
    monkeypatch.chdir(tmp_path)
    ws = Workspace(tmp_path / "lab")
    run = ws.Project("p").Experiment("e", params={"x": [1, 2], "none": None}).Run(id="r1")
    frames = tmp_path / "frames"
    (frames / "sub").mkdir(parents=True)
    (frames / "a.txt").write_text("a")
    (frames / "sub" / "b.txt").write_text("b")
    with run.start() as ctx:
        ctx.artifact.save("frames", frames)
        ctx.artifact.save("odd name?.txt", "text")
        ctx.set_result("nested", {"a": [1, None]})
    out = tmp_path / "c.zip"
    summary = export(capsys, "r1", "-w", str(tmp_path / "lab"), "-o", str(out))
    assert any("workflow source of run r1 not found" in note for note in summary["notes"])
    fresh = Workspace(tmp_path / "fresh").Project("archive")
    asset = fresh.data_assets.import_asset("paper-crate", out)
    graph = load_graph(Path(fresh.workspace.root) / asset.path)
    assert graph == load_graph(out)
    collection = next(e for e in graph.values() if e.get("name") == "frames")
    assert "Collection" in types(collection)
    members = sorted(ids(collection["hasPart"]))
    assert [m.split("/frames/", 1)[1] for m in members] == ["a.txt", "sub/b.txt"]
    odd = next(e for e in graph.values() if e.get("name") == "odd name?.txt")
    assert odd["@id"].endswith("/artifacts/odd_name_.txt")
    assert odd["alternateName"] == "odd name?.txt"
    params = {e["name"]: value_of(e) for e in graph.values() if e.get("propertyID") == "param"}
    assert params == {"x": [1, 2], "none": None}
    results = {e["name"]: value_of(e) for e in graph.values() if e.get("propertyID") == "result"}
    assert results == {"nested": {"a": [1, None]}}
    main = graph[graph["./"]["mainEntity"]["@id"]]
    assert "ComputationalWorkflow" in types(main)
