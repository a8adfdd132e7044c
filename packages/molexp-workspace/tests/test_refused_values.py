"""Values a JSON record cannot hold are refused where they enter, and leave no trace."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from molexp.workspace import Experiment, RunContext, RunStatus, Workspace
from workspace_helpers import on_disk


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (lambda exp: exp.Run(parameters={"k": "\ud800"}), r"parameters\['k'\] is '\\ud800'"),
        (lambda exp: exp.Run(parameters={"\udcff": 1}), "parameters has a key '\\\\udcff'"),
        (lambda exp: exp.Run(tags=["a\udcffb"]), "run tags must be"),
        (
            lambda exp: exp.project.Experiment("x", description="\ud800"),
            "experiment 'x' description",
        ),
        (lambda exp: exp.project.Experiment("x", params={"k": "\udfff"}), "experiment 'x' params"),
        (lambda exp: exp.workspace.Project("y", owner="\ud800"), "project 'y' owner"),
        (lambda exp: exp.workspace.runs(where={"id": "\udcff"}), r"where\['id'\] is not valid"),
    ],
)
def test_lone_surrogates_are_refused_before_anything_is_written(
    exp: Experiment, action: object, message: str
) -> None:
    before = _tree(exp.workspace.root)
    with pytest.raises(ValueError, match=message):
        action(exp)  # type: ignore[operator]
    assert _tree(exp.workspace.root) == before


def test_result_keys_and_values_are_refused_at_set_result(exp: Experiment) -> None:
    run = exp.Run()
    with run.start() as ctx:
        with pytest.raises(ValueError, match="result keys must be"):
            ctx.set_result("\ud800", 1)
        with pytest.raises(ValueError, match=r"result 'v' is '\\udcff'"):
            ctx.set_result("v", "\udcff")
    assert on_disk(run).status is RunStatus.succeeded


def test_a_failure_whose_message_is_not_valid_unicode_still_ends_the_run(exp: Experiment) -> None:
    run = exp.Run()
    with pytest.raises(FileNotFoundError), run.start():
        raise FileNotFoundError(2, "No such file", "/data/\udcff.csv")  # undecodable file name
    stored = on_disk(run)
    assert stored.status is RunStatus.failed
    assert stored.error is not None and "\\udcff" in stored.error.message
    trace = run.run_dir / str(stored.error.traceback_path)
    assert "\\udcff" in trace.read_text()


def test_paths_the_filesystem_cannot_take_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="workspace root .* must not contain a NUL"):
        Workspace(tmp_path / "a\x00b")
    with pytest.raises(ValueError, match="run directory .* must not contain a NUL"):
        RunContext.open(tmp_path / "a\x00b")
    with pytest.raises(FileNotFoundError, match="is not a run directory: File name too long"):
        RunContext.open(tmp_path / ("x" * 300))


def test_a_data_dir_fallback_cannot_escape_through_a_symlink(
    exp: Experiment, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, exp.workspace.root / "link")
    with exp.Run().start() as ctx:
        with pytest.raises(ValueError, match="fallback 'link/data' .* inside the workspace"):
            ctx.get_data_dir("absent", fallback="link/data")
        with pytest.raises(ValueError, match="naming a directory below its root"):
            ctx.get_data_dir("absent", fallback=".")
    assert list(outside.iterdir()) == []
