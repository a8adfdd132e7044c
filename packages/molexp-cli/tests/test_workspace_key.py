"""``workspace = "lab"`` in ``molexp.toml``: commands run beside it (or below it) find the
workspace without ``-w``; ``-w``, ``$MOLEXP_WORKSPACE`` and a nearer ``workspace.json`` win."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import write_script
from molexp.cli import run_cli
from molexp.cli._errors import CliError
from molexp.cli._resolve import resolve_workspace_root
from molexp.cli.profiles import ProfileError, ProfileFile
from molexp.workspace import Workspace


def test_the_key_resolves_against_the_files_directory(tmp_path: Path) -> None:
    (tmp_path / "molexp.toml").write_text('workspace = "data/lab"\n[defaults]\nx = 1\n')
    loaded = ProfileFile.load(tmp_path / "molexp.toml")
    assert loaded.workspace == tmp_path / "data" / "lab"
    assert loaded.resolve().config == {"x": 1}  # not part of any profile's config
    assert ProfileFile.from_mapping({}).workspace is None


@pytest.mark.parametrize("value", ["1", '""', "[]"])
def test_a_workspace_key_that_is_not_a_path_is_rejected(tmp_path: Path, value: str) -> None:
    (tmp_path / "molexp.toml").write_text(f"workspace = {value}\n")
    with pytest.raises(ProfileError, match="workspace must be a directory path"):
        ProfileFile.load(tmp_path / "molexp.toml")


def test_lookup_order(tmp_path: Path) -> None:
    lab = Workspace(tmp_path / "lab").materialize().root
    (tmp_path / "molexp.toml").write_text('workspace = "lab"\n')
    nested = tmp_path / "analysis" / "notebooks"
    nested.mkdir(parents=True)
    # the key, from the file's directory and from below it
    assert resolve_workspace_root(None, cwd=tmp_path, environ={}) == lab
    assert resolve_workspace_root(None, cwd=nested, environ={}) == lab
    # -w and $MOLEXP_WORKSPACE come first
    other = Workspace(tmp_path / "other").materialize().root
    assert resolve_workspace_root(other, cwd=tmp_path, environ={}) == other
    env = {"MOLEXP_WORKSPACE": str(other)}
    assert resolve_workspace_root(None, cwd=tmp_path, environ=env) == other
    # a nearer workspace.json wins over a farther molexp.toml
    inner = Workspace(nested / "scratch").materialize().root
    assert resolve_workspace_root(None, cwd=inner / "projects", environ={}) == inner


def test_a_named_workspace_that_does_not_exist_says_so(tmp_path: Path) -> None:
    (tmp_path / "molexp.toml").write_text('workspace = "lab"\n')
    with pytest.raises(CliError) as info:
        resolve_workspace_root(None, cwd=tmp_path, environ={})
    message = info.value.message
    assert (
        str(tmp_path / "molexp.toml") in message
        and f"names workspace {tmp_path / 'lab'}" in message
    )
    assert "workspace.json is missing" in message


def test_no_workspace_mentions_the_key(tmp_path: Path) -> None:
    with pytest.raises(CliError, match='workspace = "DIR"'):
        resolve_workspace_root(None, cwd=tmp_path, environ={})


def test_ls_after_run_finds_the_scripts_workspace_without_w(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MOLEXP_WORKSPACE", raising=False)
    script = write_script(tmp_path)  # its workspace is ./lab
    assert run_cli(["run", str(script), "--json"]) == 0
    capsys.readouterr()
    assert run_cli(["ls", "runs", "--json"]) == 1
    assert "no workspace found" in capsys.readouterr().err

    (tmp_path / "molexp.toml").write_text('workspace = "lab"\n')
    assert run_cli(["ls", "runs", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 2 and {row["status"] for row in rows} == {"succeeded"}
    assert run_cli(["show", rows[0]["id"], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == rows[0]["id"]

    assert run_cli(["profiles", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["workspace"] == str(tmp_path / "lab")
