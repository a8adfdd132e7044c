"""User-supplied names never escape their directory: bad ones raise ValueError."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from molexp.workspace import Experiment, Workspace

HOSTILE = ["", ".", "..", "a/b", "/abs", "..\\up", "nul\x00byte", "tab\tname", " pad", "x" * 300]


@pytest.mark.parametrize("name", HOSTILE)
def test_hierarchy_rejects_hostile_names(ws: Workspace, name: str) -> None:
    with pytest.raises(ValueError):
        ws.Project(name)
    with pytest.raises(ValueError):
        ws.Project("fine", id=name)
    project = ws.Project("fine")
    with pytest.raises(ValueError):
        project.Experiment(name)
    with pytest.raises(ValueError):
        project.Experiment("ok", id=name)
    exp = project.Experiment("ok")
    with pytest.raises(ValueError):
        exp.Run(id=name)
    with pytest.raises(ValueError):
        exp.get_run(name)
    with pytest.raises(ValueError):
        ws.find_run(name)
    with pytest.raises(ValueError):
        ws.delete_project(name)


@pytest.mark.parametrize("name", HOSTILE)
def test_run_context_rejects_hostile_names(exp: Experiment, name: str, tmp_path: Path) -> None:
    source = tmp_path / "data.txt"
    source.write_text("x")
    with exp.Run().start() as ctx:
        for action in (
            lambda: ctx.log(name),
            lambda: ctx.artifact.save(name, "x"),
            lambda: ctx.checkpoint(name),
            lambda: ctx.find_asset(name),
            lambda: ctx.data_assets.import_asset(name, source),
        ):
            with pytest.raises(ValueError):
                action()
    assert {p.name for p in exp.experiment_dir.iterdir()} <= {
        "runs",
        "experiment.json",
        ".experiment.json.lock",
        ".assets",
    }


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(max_size=20))
def test_any_accepted_project_name_stays_inside_the_workspace(ws: Workspace, name: str) -> None:
    try:
        project = ws.Project(name)
    except ValueError:
        return
    assert project.project_dir.parent == ws.root / "projects"
    assert project.project_dir.resolve().parent == (ws.root / "projects").resolve()
