"""Workspace resolution (-w, $MOLEXP_WORKSPACE, upward search) and RUN references."""

from __future__ import annotations

from pathlib import Path

import pytest
from molexp.cli._errors import CliError
from molexp.cli._resolve import find_workspace_root, resolve_run, resolve_workspace_root
from molexp.workspace import Workspace


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "lab").materialize()


def test_upward_search_finds_nearest(workspace: Workspace) -> None:
    nested = workspace.root / "projects" / "deep" / "er"
    nested.mkdir(parents=True)
    assert find_workspace_root(nested) == workspace.root
    assert resolve_workspace_root(None, cwd=nested, environ={}) == workspace.root


def test_option_beats_environment_beats_search(workspace: Workspace, tmp_path: Path) -> None:
    other = Workspace(tmp_path / "other").materialize()
    env = {"MOLEXP_WORKSPACE": str(other.root)}
    assert resolve_workspace_root(None, cwd=workspace.root, environ=env) == other.root
    assert resolve_workspace_root(workspace.root, cwd=other.root, environ=env) == workspace.root


def test_no_workspace_found_explains_the_choices(tmp_path: Path) -> None:
    with pytest.raises(CliError) as info:
        resolve_workspace_root(None, cwd=tmp_path, environ={})
    message = info.value.message
    assert "no workspace found" in message and "--workspace" in message
    assert "MOLEXP_WORKSPACE" in message


def test_bad_option_and_env_are_named(tmp_path: Path) -> None:
    with pytest.raises(CliError, match="--workspace"):
        resolve_workspace_root(tmp_path, environ={})
    with pytest.raises(CliError, match=r"\$MOLEXP_WORKSPACE"):
        resolve_workspace_root(None, environ={"MOLEXP_WORKSPACE": str(tmp_path)})


def test_run_by_id_and_by_directory(workspace: Workspace) -> None:
    run = workspace.Project("p").Experiment("e").Run(id="r1")
    assert resolve_run("r1", workspace.root).run_dir == run.run_dir
    assert resolve_run(str(run.run_dir), None).id == "r1"


def test_unknown_run_is_named(workspace: Workspace) -> None:
    with pytest.raises(CliError, match="unknown run 'zzz'"):
        resolve_run("zzz", workspace.root)


def test_ambiguous_run_id_lists_matches(workspace: Workspace) -> None:
    workspace.Project("p").Experiment("a").Run(id="same")
    workspace.Project("p").Experiment("b").Run(id="same")
    with pytest.raises(CliError) as info:
        resolve_run("same", workspace.root)
    assert "ambiguous" in info.value.message
    assert "p/a/same" in info.value.message and "p/b/same" in info.value.message
