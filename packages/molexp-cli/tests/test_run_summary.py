"""`molexp run` ends by saying where the records went and how to inspect them."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import write_script
from molexp.cli import run_cli


def test_summary_names_the_runs_directory_and_the_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "400")
    script = write_script(tmp_path)
    assert run_cli(["run", str(script)]) == 0
    out = capsys.readouterr().out
    [run_json, *_] = sorted((tmp_path / "lab").rglob("run.json"))
    runs_dir = run_json.parent.parent
    assert f"records: {runs_dir}" in out
    assert f"inspect: molexp ls runs -w {(tmp_path / 'lab').resolve()}" in out
