"""Profiles and ``--set`` overrides: recorded apart, shown together, queryable from the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import write_script
from molexp.cli import run_cli
from molexp.cli.profiles import ProfileFile, flat_overrides

PROFILES = """
[defaults]
scale = 1.0

[profiles.fast]
n_strains = 5
[profiles.fast.model]
depth = 1
"""


def invoke(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run_cli(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def lab(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Path:
    """One experiment run three ways: ``fast``, ``fast --set n_strains=7``, ``default``."""
    monkeypatch.chdir(tmp_path)
    script = write_script(tmp_path, replicas=1)
    (tmp_path / "molexp.toml").write_text(PROFILES)
    for args in (
        ["--profile", "fast"],
        ["--profile", "fast", "--set", "n_strains=7", "--set", "slurm.time=30"],
        [],
    ):
        code, _, err = invoke(capsys, "run", str(script), "--json", *args)
        assert code == 0, err
    monkeypatch.setenv("MOLEXP_WORKSPACE", str(tmp_path / "lab"))
    return script


def test_resolve_records_the_task_config_overrides_apart(tmp_path: Path) -> None:
    (tmp_path / "molexp.toml").write_text(PROFILES)
    profiles = ProfileFile.load(tmp_path / "molexp.toml")
    resolved = profiles.resolve(
        "fast", ["n_strains=7", "model.depth=3", "slurm.time=30", "executor=local", "n_strains=8"]
    )
    assert resolved.name == "fast"
    assert resolved.config == {"scale": 1.0, "n_strains": 8, "model": {"depth": 3}}
    # execution keys are not task config, so they are not recorded as config overrides
    assert resolved.overrides == {"n_strains": 8, "model.depth": 3}
    assert profiles.resolve("fast").overrides == {}
    assert flat_overrides(["a.b=1", "a=2", "c.d.e=x"]) == {"a": 2, "c.d.e": "x"}


def test_query_and_listings_tell_the_configurations_apart(
    lab: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = json.loads(invoke(capsys, "ls", "runs", "--json")[1])
    assert len(rows) == 3  # three configurations, three runs
    by_label = {row["profile_label"]: row for row in rows}
    assert set(by_label) == {"fast", "fast + n_strains=7", "default"}
    seven = by_label["fast + n_strains=7"]
    assert (seven["profile"], seven["overrides"]) == ("fast", {"n_strains": 7})
    assert seven["config"] == {"scale": 1.0, "n_strains": 7, "model": {"depth": 1}}

    code, out, _ = invoke(capsys, "query", "config.n_strains == 7", "--json")
    assert code == 0
    assert [row["id"] for row in json.loads(out)] == [seven["id"]]
    found = json.loads(invoke(capsys, "query", "profile == 'fast'", "--json")[1])
    assert sorted(row["id"] for row in found) == sorted([seven["id"], by_label["fast"]["id"]])
    code, _, err = invoke(capsys, "query", "config.n_strain == 7")
    assert code == 2
    assert "unknown field 'config.n_strain'" in err and "'config.n_strains'" in err

    code, out, _ = invoke(capsys, "ls", "runs")
    assert code == 0
    assert "fast + n_strains=7" in out
    assert '"n_strains": 7' in out  # the config column

    code, out, _ = invoke(capsys, "show", seven["id"])
    assert code == 0
    assert "fast + n_strains=7" in out
    shown = json.loads(invoke(capsys, "show", seven["id"], "--json")[1])
    assert shown["profile"]["overrides"] == {"n_strains": 7}


def test_subprocess_executions_record_the_overrides_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    script = write_script(tmp_path, replicas=2)
    (tmp_path / "molexp.toml").write_text(PROFILES)
    code, _, err = invoke(
        capsys, "run", str(script), "--profile", "fast", "--set", "n_strains=8", "--jobs", "2"
    )
    assert code == 0, err
    rows = json.loads(invoke(capsys, "ls", "runs", "--json", "-w", str(tmp_path / "lab"))[1])
    assert [row["profile_label"] for row in rows] == ["fast + n_strains=8"] * 2
