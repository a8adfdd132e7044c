"""``molexp diff RUN_A RUN_B``: the facts that differ between two runs — across experiments and
projects — and only those (``--all`` lists the same ones too); ``--json`` for machines."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from molexp.cli import run_cli
from molexp.workspace import ProfileConfig, Workspace


def invoke(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run_cli(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "lab"
    ws = Workspace(root)
    a = ws.Project("eos").Experiment("cu", params={"a0": 3.6, "eos": "birch"}).Run(id="ra")
    b = ws.Project("bulk").Experiment("al", params={"a0": 4.05, "eos": "birch"}).Run(id="rb")
    fast = ProfileConfig(name="fast", config={"model": {"depth": 2}, "steps": 10})
    deep = ProfileConfig(
        name="fast", config={"model": {"depth": 3}, "steps": 10}, overrides={"model.depth": 3}
    )
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    with a.start(profile_config=fast) as ctx:
        ctx.set_result("b0", 140.1)
        ctx.set_result("v0", 11.8)
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    with b.start(profile_config=deep) as ctx:
        ctx.set_result("b0", 76.2)
    monkeypatch.setenv("MOLEXP_WORKSPACE", str(root))
    return root


def test_diff_lists_what_differs_across_projects(
    lab: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = invoke(capsys, "diff", "ra", "rb", "--json")
    assert code == 0
    payload = json.loads(out)
    assert (payload["a"], payload["b"]) == ("ra", "rb")
    rows = {row["field"]: (row["a"], row["b"], row["change"]) for row in payload["differences"]}
    assert rows == {
        "experiment": ("eos/cu", "bulk/al", "changed"),
        "params.a0": (3.6, 4.05, "changed"),
        "overrides.model.depth": (None, 3, "added"),
        "config.model.depth": (2, 3, "changed"),
        "config_hash": rows["config_hash"][:2] + ("changed",),
        "results.b0": (140.1, 76.2, "changed"),
        "results.v0": (11.8, None, "removed"),
        "environment.variables.OMP_NUM_THREADS": ("1", "4", "changed"),
    }
    assert rows["config_hash"][0] != rows["config_hash"][1]
    # the same facts are left out: the eos parameter, the profile name, the steps, the platform
    assert not {"params.eos", "profile", "config.steps", "environment.platform"} & set(rows)


def test_diff_all_and_the_table(lab: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = invoke(capsys, "diff", "ra", "rb", "--all", "--json")
    every = {row["field"]: row["change"] for row in json.loads(out)["differences"]}
    assert code == 0 and every["params.eos"] == every["profile"] == "same"
    code, out, _ = invoke(capsys, "diff", "ra", "rb")
    assert code == 0 and "a: ra  b: rb" in out
    assert "results.v0" in out and "(absent)" in out and "params.eos" not in out
    code, out, _ = invoke(capsys, "diff", "ra", "ra")
    assert (code, out.strip()) == (0, "runs ra and ra do not differ")
    code, _, err = invoke(capsys, "diff", "ra", "nope")
    assert code != 0 and "nope" in err


SCRIPT = """
from molexp.workflow import TaskContext, workflow
from molexp.workspace import Workspace, entry

wf = workflow(name="fit")


@wf.task
def fit(ctx: TaskContext) -> float:
    return {value}


spec = wf.build()
ws = Workspace("lab")
spec.bind_to(ws.Project("p").Experiment("e"))
entry(ws)
"""


def _git(directory: Path, *args: str) -> None:
    identity = ["-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run(["git", *identity, *args], cwd=directory, check=True, capture_output=True)


def test_diff_shows_the_task_code_and_git_state_that_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    script = tmp_path / "s.py"
    script.write_text(SCRIPT.format(value="1.0"))
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "s.py")
    _git(tmp_path, "commit", "-q", "-m", "first")
    code, out, _ = invoke(capsys, "run", "s.py", "--json")
    assert code == 0
    [first] = json.loads(out)["runs"]
    script.write_text(SCRIPT.format(value="2.0"))  # edited, not committed
    code, out, _ = invoke(capsys, "run", "s.py", "--set", "tag=edited", "--json")
    [second] = json.loads(out)["runs"]
    monkeypatch.setenv("MOLEXP_WORKSPACE", str(tmp_path / "lab"))

    code, out, _ = invoke(capsys, "diff", first["run_id"], second["run_id"], "--json")
    payload = json.loads(out)
    rows = {row["field"]: (row["a"], row["b"]) for row in payload["differences"]}
    assert rows["git.dirty"] == (False, True)
    assert "git.commit" not in rows  # the same commit
    assert rows["code.fit"][0] != rows["code.fit"][1]
    diff = payload["code_diffs"]["fit"]
    assert "-    return 1.0" in diff and "+    return 2.0" in diff
    assert not any(field.startswith("distributions.") for field in rows)  # the same versions

    code, out, _ = invoke(capsys, "diff", first["run_id"], second["run_id"])
    assert code == 0 and f"--- a/fit ({first['run_id']})" in out and "+    return 2.0" in out
    code, out, _ = invoke(capsys, "diff", first["run_id"], second["run_id"], "--all", "--json")
    facts = {row["field"]: row for row in json.loads(out)["differences"]}
    assert "git.commit" in facts and "code.fit" in facts
    commit = facts["git.commit"]["a"]

    def shown_git(run_id: str) -> list[str]:  # the git row of `molexp show`
        code, out, _ = invoke(capsys, "show", run_id)
        [row] = [line for line in out.splitlines() if line.startswith("git ")]
        return row.split()[1:]

    assert shown_git(first["run_id"]) == [commit[:12]]
    assert shown_git(second["run_id"]) == [commit[:12], "(uncommitted", "changes)"]


def test_a_script_in_no_commit_is_recorded_dirty_a_committed_one_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    monkeypatch.setenv("MOLEXP_WORKSPACE", str(tmp_path / "lab"))
    (tmp_path / "s.py").write_text(SCRIPT.format(value="1.0"))
    (tmp_path / "README").write_text("a repository with a commit that lacks the script\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "README")
    _git(tmp_path, "commit", "-q", "-m", "first")

    def recorded_git(*options: str) -> dict[str, object]:
        code, out, _ = invoke(capsys, "run", "s.py", *options, "--json")
        assert code == 0
        [run] = json.loads(out)["runs"]
        code, out, _ = invoke(capsys, "show", run["run_id"], "--json")
        assert code == 0
        git = json.loads(out)["workflow_snapshot"]["git"]
        assert isinstance(git, dict)
        return git

    assert recorded_git()["dirty"] is True  # the commit does not hold the script at all
    _git(tmp_path, "add", "s.py")
    _git(tmp_path, "commit", "-q", "-m", "the script")
    assert recorded_git("--set", "tag=committed") == {
        "commit": subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True
        ).stdout.strip(),
        "dirty": False,  # the workspace the runs wrote (untracked) does not count
    }
