"""Workspace -> Project -> Experiment -> Run: creation, laziness, identity, lookup, deletion."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from molexp.workspace import Experiment, Project, RunStatus, StaleRecordError, Workspace


def tree(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*")) if root.exists() else []


def test_constructing_a_workspace_writes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "lab"
    ws = Workspace(root, name="Lab")
    assert ws.root == root.resolve()
    assert ws.name == "Lab"
    assert not ws.materialized
    assert len(ws.runs()) == 0
    assert ws.broken_records() == []
    assert not root.exists()
    assert list(tmp_path.iterdir()) == []


def test_materialize_writes_the_record_once(root: Path) -> None:
    ws = Workspace(root, name="Lab").materialize()
    record = json.loads((root / "workspace.json").read_text())
    assert record["id"] == ws.id
    assert record["name"] == "Lab"
    assert record["version"] == 1
    before = (root / "workspace.json").read_bytes()
    ws.materialize()
    assert (root / "workspace.json").read_bytes() == before


def test_first_project_materializes_the_workspace(ws: Workspace, root: Path) -> None:
    project = ws.Project("QM9 Baseline", description="d", owner="me", tags=["a"], config={"k": 1})
    assert ws.materialized
    assert project.id == "qm9-baseline"
    assert project.project_dir == root / "projects" / "qm9-baseline"
    stored = json.loads((project.project_dir / "project.json").read_text())
    assert stored["name"] == "QM9 Baseline"
    assert stored["workspace_id"] == ws.id
    assert (project.description, project.owner, project.tags, project.config) == (
        "d",
        "me",
        ["a"],
        {"k": 1},
    )


def test_a_second_workspace_object_adopts_the_stored_identity(root: Path) -> None:
    first = Workspace(root, name="Lab").materialize()
    second = Workspace(root, name="Other name")
    assert (second.id, second.name) == (first.id, "Lab")
    lazy = Workspace(root / "elsewhere")
    racing = Workspace(root / "elsewhere")
    lazy.materialize()
    racing.materialize()
    assert racing.id == lazy.id


def test_load_requires_workspace_json(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"workspace\.json"):
        Workspace.load(tmp_path / "nothing")
    Workspace(tmp_path / "lab").materialize()
    assert Workspace.load(tmp_path / "lab").root == (tmp_path / "lab").resolve()


def test_save_persists_metadata_edits_and_detects_concurrent_changes(root: Path) -> None:
    ws = Workspace(root).materialize()
    ws.metadata.description = "shared lab"
    ws.save()
    other = Workspace(root)
    assert other.metadata.description == "shared lab"
    other.metadata.name = "renamed"
    other.save()
    ws.metadata.description = "conflict"
    with pytest.raises(StaleRecordError, match="workspace.json"):
        ws.save()
    assert ws.reload().name == "renamed"


def test_project_factory_is_idempotent_and_returns_the_same_object(ws: Workspace) -> None:
    first = ws.Project("QM9")
    assert ws.Project("QM9") is first
    assert ws.Project("qm9", description="ignored") is first
    reopened = Workspace(ws.root).Project("QM9", description="not applied")
    assert reopened.id == first.id
    assert reopened.description is None


def test_project_lookup_by_id_or_name(ws: Workspace) -> None:
    project = ws.Project("QM9 Set", id="qm9")
    assert ws.project("qm9") is project
    fresh = Workspace(ws.root)
    assert fresh.project("qm9").id == "qm9"
    assert fresh.project("QM9 Set").id == "qm9"
    with pytest.raises(KeyError, match="nope"):
        ws.project("nope")
    with pytest.raises(KeyError, match=r"\.\./x"):
        ws.project("../x")


def test_list_projects_merges_disk_and_cache(ws: Workspace) -> None:
    a = ws.Project("a")
    other = Workspace(ws.root)
    other.Project("b")
    listed = ws.list_projects()
    assert [p.id for p in listed] == ["a", "b"]
    assert listed[0] is a


def test_delete_project_removes_directory_runs_and_assets(ws: Workspace, tmp_path: Path) -> None:
    keep = ws.Project("keep").Experiment("e")
    gone = ws.Project("gone").Experiment("e")
    with gone.Run().start() as ctx:
        ctx.artifact.save("a.json", {"x": 1})
    with keep.Run().start() as ctx:
        ctx.artifact.save("a.json", {"x": 2})
    ws.delete_project("gone")
    assert not (ws.root / "projects" / "gone").exists()
    assert {row.project for row in ws.runs()} == {"keep"}
    assert {asset.scope.project_id for asset in ws.assets.list()} == {"keep"}
    assert [p.id for p in ws.list_projects()] == ["keep"]
    with pytest.raises(KeyError, match="gone"):
        ws.delete_project("gone")


def test_experiment_factory(project: Project) -> None:
    exp = project.Experiment(
        "Base Line", params={"lr": 1e-3}, n_replicas=3, seeds=[42, 123, 456], git_commit="abc123"
    )
    assert exp.id == "base-line"
    assert project.Experiment("Base Line") is exp
    assert exp.params is exp.parameter_space
    assert exp.params == {"lr": 1e-3}
    assert (exp.n_replicas, exp.seeds, exp.get_seeds(), exp.git_commit) == (
        3,
        [42, 123, 456],
        [42, 123, 456],
        "abc123",
    )
    assert exp.experiment_dir == project.project_dir / "experiments" / "base-line"
    assert project.experiment("base-line") is exp
    assert [e.id for e in project.list_experiments()] == ["base-line"]
    with pytest.raises(KeyError, match="missing"):
        project.experiment("missing")


def test_experiment_params_edits_persist_through_save(exp: Experiment) -> None:
    exp.params["batch"] = 64
    exp.save()
    reopened = Workspace(exp.workspace.root).project("qm9").experiment("baseline")
    assert reopened.params == {"lr": 1e-3, "batch": 64}


def test_default_seeds_are_replica_indices(project: Project) -> None:
    assert project.Experiment("one").get_seeds() == [0]
    assert project.Experiment("three", n_replicas=3).get_seeds() == [0, 1, 2]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"n_replicas": 0}, ValueError, "n_replicas must be an integer >= 1"),
        ({"seeds": [1, 2]}, ValueError, "2 seeds given for n_replicas=1"),
        ({"n_replicas": 2, "seeds": [1, "x"]}, ValueError, "seeds must be integers"),
        ({"params": {"when": object()}}, TypeError, r"params\['when'\] is a object"),
        ({"params": {"x": float("nan")}}, ValueError, "NaN"),
        ({"workflow_source": ""}, ValueError, "workflow_source must be a non-empty path"),
    ],
)
def test_experiment_rejects_bad_definitions(
    project: Project, kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        project.Experiment("bad", **kwargs)  # type: ignore[arg-type]
    assert not (project.project_dir / "experiments" / "bad" / "experiment.json").exists()


def test_workflow_source_captures_git_commit(project: Project, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "train.py").write_text("print('hi')\n")
    subprocess.run([*git, "add", "train.py"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "init"], check=True)
    head = subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    exp = project.Experiment("tracked", workflow_source=str(repo / "train.py"))
    assert exp.git_commit == head
    assert exp.workflow_source == str(repo / "train.py")
    assert exp.metadata.workflow_source_path == str((repo / "train.py").resolve())
    run = exp.Run()
    assert run.metadata.workflow_snapshot == {"source": str(repo / "train.py"), "git_commit": head}


def test_workflow_source_outside_git_has_no_commit(project: Project, tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    exp = project.Experiment("untracked", workflow_source=str(tmp_path / "plain" / "train.py"))
    assert exp.git_commit is None
    assert exp.metadata.workflow_source_path == str((tmp_path / "plain" / "train.py").resolve())


def test_runs_are_fresh_unless_an_id_is_given(exp: Experiment) -> None:
    first, second = exp.Run(), exp.run()
    assert first.id != second.id
    assert len(first.id) == 12
    assert first.run_dir == exp.experiment_dir / "runs" / f"run-{first.id}"
    stable = exp.Run(parameters={"seed": 42}, id="baseline-seed-42", replica_index=0, seed=42)
    assert exp.Run(id="baseline-seed-42") is stable
    assert stable.parameters == {"lr": 1e-3, "seed": 42}
    assert (stable.metadata.replica_index, stable.metadata.seed) == (0, 42)
    assert stable.status is RunStatus.pending
    reloaded = Workspace(exp.workspace.root).project("qm9").experiment("baseline")
    loaded = reloaded.Run(parameters={"lr": 5.0}, id="baseline-seed-42")
    assert loaded.parameters == {"lr": 1e-3, "seed": 42}


def test_get_run_and_list_runs(exp: Experiment) -> None:
    runs = [exp.Run(id=f"r{i}") for i in range(3)]
    runs[1].cancel()
    assert exp.get_run("r0") is runs[0]
    assert [r.id for r in exp.list_runs()] == ["r0", "r1", "r2"]
    assert [r.id for r in exp.list_runs(status="cancelled")] == ["r1"]
    other = Workspace(exp.workspace.root).project("qm9").experiment("baseline")
    assert other.get_run("r1").status is RunStatus.cancelled
    with pytest.raises(KeyError, match="nope"):
        exp.get_run("nope")


def test_get_run_sees_changes_made_by_another_process(exp: Experiment) -> None:
    run = exp.Run(id="shared")
    other = Workspace(exp.workspace.root).project("qm9").experiment("baseline").get_run("shared")
    other.cancel()
    assert run.metadata.status == "pending"
    assert exp.get_run("shared") is run
    assert run.metadata.status == "cancelled"


def test_record_edits_save_and_reload_with_conflict_detection(exp: Experiment) -> None:
    ws = exp.workspace
    run = exp.Run(id="edited")
    run.metadata.tags.append("keep")
    run.save()
    twin = Workspace(ws.root).project("qm9").experiment("baseline").get_run("edited")
    assert twin.metadata.tags == ["keep"]
    assert ws.runs().to_records()[0]["tags"] == ["keep"]
    twin.metadata.tags.append("twin")
    twin.save()
    run.metadata.tags.append("stale")
    with pytest.raises(StaleRecordError, match=r"run\.json"):
        run.save()
    assert run.reload().metadata.tags == ["keep", "twin"]
    run.metadata.status = "nonsense"  # type: ignore[assignment]
    with pytest.raises(ValueError, match="run 'edited': metadata field 'status' is invalid"):
        run.save()
    run.reload()

    project = exp.project
    project.metadata.description = "molecules"
    project.save()
    other = Workspace(ws.root).project("qm9")
    assert other.description == "molecules"
    other.metadata.owner = "someone"
    other.save()
    project.metadata.tags.append("late")
    with pytest.raises(StaleRecordError, match=r"project\.json"):
        project.save()
    assert project.reload().owner == "someone"

    exp.metadata.description = "first"
    exp.save()
    other_exp = Workspace(ws.root).project("qm9").experiment("baseline")
    other_exp.metadata.description = "second"
    other_exp.save()
    with pytest.raises(StaleRecordError, match=r"experiment\.json"):
        exp.save()
    assert exp.reload().description == "second"
