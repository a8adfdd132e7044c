"""``record_variables`` in molexp.toml: the variables (names or patterns) every attempt records
besides the built-in allow-list — set for the attempts of ``molexp run`` and its workers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import write_script
from molexp.cli import run_cli
from molexp.cli.profiles import ProfileError, ProfileFile


def test_the_key_is_a_list_of_names_or_patterns(tmp_path: Path) -> None:
    loaded = ProfileFile.from_mapping({"record_variables": ["XTB_HOME", " MYAPP_* "]})
    assert loaded.record_variables == ("XTB_HOME", "MYAPP_*")
    assert ProfileFile.from_mapping({}).record_variables == ()
    for bad in ("XTB_HOME", ["A,B"], [""], [1], ["A=1"]):
        with pytest.raises(ProfileError, match="record_variables must be a list"):
            ProfileFile.from_mapping({"record_variables": bad}, path=tmp_path / "molexp.toml")


def test_molexp_run_records_the_variables_the_profile_file_allows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MOLEXP_RECORD_VARIABLES", raising=False)
    script = write_script(tmp_path, replicas=1)
    (tmp_path / "molexp.toml").write_text('record_variables = ["XTB_HOME", "MYAPP_*"]\n')
    monkeypatch.setenv("XTB_HOME", "/opt/xtb")
    monkeypatch.setenv("MYAPP_MODE", "fast")
    monkeypatch.setenv("SECRET_TOKEN", "hunter2")
    assert run_cli(["run", str(script), "--json"]) == 0
    [outcome] = json.loads(capsys.readouterr().out)["runs"]
    record = json.loads((Path(outcome["run_dir"]) / "run.json").read_text())
    variables = record["execution_history"][-1]["environment"]["variables"]
    assert variables["XTB_HOME"] == "/opt/xtb" and variables["MYAPP_MODE"] == "fast"
    assert "SECRET_TOKEN" not in variables and "hunter2" not in json.dumps(record)
