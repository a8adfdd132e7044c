"""Importing user scripts: module semantics, registries and one-line failure messages."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from cli_helpers import write_script
from molexp.cli._errors import CliUsageError
from molexp.cli._script import ScriptError, load_script
from molexp.workflow import TaskContext, Workflow, workflow
from molexp.workflow.bindings import bound_workflows, set_workflow
from molexp.workspace import Workspace, entry, registered_workspaces


def test_load_collects_registered_workspace_without_running_main(tmp_path: Path) -> None:
    script = write_script(tmp_path)
    loaded = load_script(script)
    assert [ws.root for ws in loaded.workspaces] == [(tmp_path / "lab").resolve()]
    assert loaded.module.__name__ != "__main__"
    assert not (tmp_path / "main-block-ran").exists()
    assert str(tmp_path) in sys.path
    assert len(bound_workflows()) == 1


def test_registries_are_cleared_before_import(tmp_path: Path) -> None:
    stale = Workspace(tmp_path / "stale")
    entry(stale)
    set_workflow(stale.Project("p").Experiment("e"), _stale_workflow())
    load_script(write_script(tmp_path))
    assert stale not in registered_workspaces()
    assert all("stale" not in key[0] for key in bound_workflows())


def _stale_workflow() -> Workflow:
    wf = workflow(name="stale")

    @wf.task
    def only(ctx: TaskContext) -> int:
        return 1

    return wf.build()


def test_script_can_import_its_sibling_modules(tmp_path: Path) -> None:
    (tmp_path / "helpers_for_script.py").write_text("VALUE = 7\n")
    script = tmp_path / "uses_sibling.py"
    script.write_text(
        "from molexp.workspace import Workspace, entry\nfrom helpers_for_script import VALUE\n"
        f"entry(Workspace({str(tmp_path / 'lab')!r}))\n"
    )
    assert load_script(script).module.VALUE == 7


def test_missing_script_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(CliUsageError, match="script not found"):
        load_script(tmp_path / "missing.py")
    with pytest.raises(CliUsageError, match="is not a file"):
        load_script(tmp_path)


def test_raising_script_names_exception_and_line(tmp_path: Path) -> None:
    script = tmp_path / "bad.py"
    script.write_text("x = 1\n\nraise ValueError('bad input\\nsecond line')\n")
    with pytest.raises(ScriptError) as info:
        load_script(script)
    message = info.value.message
    assert f"importing {script.resolve()} failed at line 3" in message
    assert "ValueError: bad input; second line" in message


def test_error_inside_a_function_reports_the_deepest_script_line(tmp_path: Path) -> None:
    script = tmp_path / "nested.py"
    script.write_text("def f():\n    return 1 / 0\n\n\nf()\n")
    with pytest.raises(ScriptError, match="failed at line 2: ZeroDivisionError"):
        load_script(script)


def test_syntax_error_names_line(tmp_path: Path) -> None:
    script = tmp_path / "syntax.py"
    script.write_text("x = 1\ndef broken(:\n")
    with pytest.raises(ScriptError, match="failed at line 2: SyntaxError"):
        load_script(script)


def test_sys_exit_at_import_is_reported(tmp_path: Path) -> None:
    script = tmp_path / "exits.py"
    script.write_text("import sys\nsys.exit(3)\n")
    with pytest.raises(ScriptError, match=r"called sys.exit\(3\)"):
        load_script(script)


def test_script_without_entry_is_rejected(tmp_path: Path) -> None:
    script = tmp_path / "noentry.py"
    script.write_text("x = 1\n")
    with pytest.raises(ScriptError, match=r"registered no workspace: call me.entry\(ws\)"):
        load_script(script)
    assert load_script(script, require_workspace=False).workspaces == []
