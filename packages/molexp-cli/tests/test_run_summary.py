"""`molexp run` ends by saying where the records went and how to inspect them, in commands that
work pasted from where the user stands: relative paths and the launcher they used."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import write_script
from molexp.cli import run_cli
from molexp.cli._launcher import display_path, launcher


def test_summary_names_the_runs_directory_and_the_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.delenv("UV", raising=False)
    script = write_script(tmp_path)
    assert run_cli(["run", str(script)]) == 0
    out = capsys.readouterr().out
    [run_json, *_] = sorted((tmp_path / "lab").rglob("run.json"))
    runs_dir = run_json.parent.parent
    assert f"records: {runs_dir.relative_to(tmp_path)}\n" in out
    assert "inspect: molexp ls runs -w lab\n" in out
    assert "browse:  molexp serve -w lab\n" in out
    assert str(tmp_path) not in out


def test_under_uv_run_the_hint_says_uv_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.setenv("UV", "/usr/bin/uv")
    assert run_cli(["run", str(write_script(tmp_path))]) == 0
    assert "inspect: uv run molexp ls runs -w lab\n" in capsys.readouterr().out


def test_a_workspace_outside_the_current_directory_is_absolute(tmp_path: Path) -> None:
    (tmp_path / "here").mkdir()
    assert display_path(tmp_path / "lab", tmp_path / "here") == str(tmp_path / "lab")
    assert display_path(tmp_path / "here" / "a b", tmp_path / "here") == "'a b'"
    assert display_path(tmp_path, tmp_path) == "."


def test_a_symlinked_executable_is_shown_as_typed_not_resolved(tmp_path: Path) -> None:
    # pipx puts a symlink on its bin dir pointing into the tool venv; the user typed the link.
    target = tmp_path / "pipx" / "venvs" / "molexp-cli" / "bin" / "molexp"
    target.parent.mkdir(parents=True)
    target.write_text("")
    link = tmp_path / "bin" / "molexp"
    link.parent.mkdir()
    link.symlink_to(target)
    elsewhere = tmp_path / "lab"
    elsewhere.mkdir()
    assert display_path(link, elsewhere, command=True) == str(link)
    assert display_path(link, tmp_path, command=True) == "bin/molexp"


def test_launcher_repeats_how_molexp_was_started(tmp_path: Path) -> None:
    venv_molexp = tmp_path / ".venv" / "bin" / "molexp"
    venv_molexp.parent.mkdir(parents=True)
    venv_molexp.write_text("")
    python = venv_molexp.with_name("python")
    python.write_text("")
    main = tmp_path / "site-packages" / "molexp" / "cli" / "__main__.py"

    def nowhere(name: str) -> str | None:
        return None

    def on_path(name: str) -> str | None:
        return str(venv_molexp.with_name(name))

    common = {"cwd": tmp_path, "executable": str(python)}
    # uv run sets $UV: `molexp` is not on the user's PATH, `uv run molexp` is.
    assert launcher(environ={"UV": "/x/uv"}, argv0=str(venv_molexp), **common) == "uv run molexp"
    # the executable on PATH (an activated venv, pipx): plain `molexp`
    assert launcher(environ={}, argv0=str(venv_molexp), which=on_path, **common) == "molexp"
    # typed by path: repeated by path, relative to where the user stands
    assert (
        launcher(environ={}, argv0=str(venv_molexp), which=nowhere, **common) == ".venv/bin/molexp"
    )
    # python -m molexp.cli
    assert launcher(environ={}, argv0=str(main), which=on_path, **common) == "python -m molexp.cli"
    assert (
        launcher(environ={}, argv0=str(main), which=nowhere, **common)
        == ".venv/bin/python -m molexp.cli"
    )
    # re-run in the lab's Python by a pipx-installed molexp: the user's launcher, not the re-run's
    rerun = {"MOLEXP_LAUNCHER": "molexp", "UV": "/x/uv"}
    assert launcher(environ=rerun, argv0=str(main), which=nowhere, **common) == "molexp"
    # run_cli called from another program (a test runner, a notebook)
    assert launcher(environ={}, argv0="/usr/bin/pytest", which=nowhere, **common) == "molexp"
