"""``molexp run``/``execute`` run the user's code with the lab's Python: ``--python``, else
``python`` in molexp.toml, else ``$VIRTUAL_ENV``, else a ``.venv`` beside the script, else their
own. Driven through the real executable, with a lab environment that has a package the CLI's
environment lacks (and a bare one that lacks molexp)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from molexp.cli._launcher import launcher
from molexp.cli._python import ChosenPython, choose_python, environment_of, is_own_environment

_EXECUTABLE = Path(sys.executable).with_name("molexp")
MOLEXP = [str(_EXECUTABLE)] if _EXECUTABLE.is_file() else [sys.executable, "-m", "molexp.cli"]

SCRIPT = """
from pathlib import Path

import labhelper  # only in the lab's environment
from molexp.workspace import Workspace, entry
from molexp.workflow import TaskContext, workflow
from molexp.workflow.bindings import set_workflow

wf = workflow(name="lab")


@wf.task
def scaled(ctx: TaskContext) -> float:
    value = labhelper.SCALE * ctx.params["x"]
    ctx.set_result("value", value)
    return value


spec = wf.build()
ws = Workspace(Path(__file__).parent / "lab")
set_workflow(ws.Project("p").Experiment("e", params={"x": 2.0}, n_replicas=2), spec)
entry(ws)
"""


def make_venv(path: Path, *, with_molexp: bool) -> Path:
    """A virtual environment; with molexp, it sees the CLI's packages (site.addsitedir) and has
    ``labhelper`` of its own."""
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    if with_molexp:
        purelib = sysconfig.get_paths()["purelib"]
        (site / "cli_env.pth").write_text(f"import site; site.addsitedir({purelib!r})\n")
        (site / "labhelper.py").write_text("SCALE = 3.0\n")
    return python


def molexp(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("MOLEXP_") and key != "VIRTUAL_ENV"
    }
    environ.update(env)
    return subprocess.run(
        [*MOLEXP, *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=180
    )


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lab")
    (root / "s.py").write_text(SCRIPT)
    make_venv(root / ".venv", with_molexp=True)
    make_venv(root / "bare", with_molexp=False)
    return root


def test_own_environment_is_recognised_through_symlinks(tmp_path: Path) -> None:
    assert is_own_environment(Path(sys.executable))
    assert choose_python(Path(sys.executable), tmp_path, environ={}) is None
    assert choose_python(None, tmp_path, environ={}) is None
    (tmp_path / "venv").mkdir()
    (tmp_path / "venv" / "pyvenv.cfg").write_text("")
    assert environment_of(tmp_path / "venv" / "bin" / "python") == (tmp_path / "venv").resolve()
    chosen = choose_python(None, tmp_path, environ={"VIRTUAL_ENV": str(tmp_path / "venv")})
    assert chosen == ChosenPython(
        tmp_path / "venv" / "bin" / "python", f"$VIRTUAL_ENV {tmp_path / 'venv'}"
    )
    assert choose_python(None, tmp_path, environ={"MOLEXP_PYTHON_CHOSEN": "x"}) is None


def test_the_cli_environment_alone_cannot_import_the_script(lab: Path) -> None:
    failed = molexp("run", "s.py", "--python", sys.executable, cwd=lab)
    assert failed.returncode == 1
    assert "No module named 'labhelper'" in failed.stderr


def test_a_venv_beside_the_script_runs_it(lab: Path) -> None:
    plan = molexp("run", "s.py", "--dry-run", "--json", cwd=lab)
    assert plan.returncode == 0, plan.stderr
    assert json.loads(plan.stdout)["to_execute"] == 2


def test_run_with_jobs_and_execute_happen_in_the_chosen_environment(lab: Path) -> None:
    report = molexp("run", "s.py", "--jobs", "2", "--json", cwd=lab)
    assert report.returncode == 0, report.stderr
    outcome = json.loads(report.stdout)
    assert outcome["executed"] == 2
    for run in outcome["runs"]:
        record = json.loads((Path(run["run_dir"]) / "run.json").read_text())
        assert record["results"] == {"value": 6.0}
        # The attempt names the interpreter that ran it: the lab's, not the CLI's.
        assert record["execution_history"][-1]["python"] == str(lab / ".venv" / "bin" / "python")
    run_dir = outcome["runs"][0]["run_dir"]
    again = molexp("execute", run_dir, "--json", "--policy", "force", cwd=lab)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["status"] == "succeeded"


@pytest.mark.skipif(not _EXECUTABLE.is_file(), reason="needs the molexp executable")
def test_hints_after_a_rerun_in_the_lab_python_repeat_the_users_launcher(lab: Path) -> None:
    shell = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("MOLEXP_") and key not in ("VIRTUAL_ENV", "UV")
    }
    report = subprocess.run(
        [*MOLEXP, "run", "s.py", "--rerun-failed"],
        cwd=lab,
        env=shell,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert report.returncode == 0, report.stderr
    typed = launcher(environ=shell, argv0=MOLEXP[0], cwd=lab)  # what the user typed
    assert f"inspect: {typed} ls runs -w lab" in report.stdout
    assert "-m molexp.cli" not in report.stdout


def test_an_environment_without_molexp_is_one_line_naming_it_and_the_fix(lab: Path) -> None:
    bare = lab / "bare" / "bin" / "python"
    (lab / "molexp.toml").write_text('python = "bare/bin/python"\n')
    try:
        failed = molexp("run", "s.py", "--dry-run", cwd=lab)
    finally:
        (lab / "molexp.toml").unlink()
    assert failed.returncode == 1
    [line] = failed.stderr.strip().splitlines()
    assert line.startswith("error: the Python chosen to run your code, ")
    assert f"python in {lab / 'molexp.toml'}" in line
    assert f"`{bare} -m pip install molexp`" in line

    failed = molexp("run", "s.py", "--dry-run", cwd=lab, VIRTUAL_ENV=str(lab / "bare"))
    assert failed.returncode == 1 and "($VIRTUAL_ENV " in failed.stderr

    failed = molexp("run", "s.py", "--python", str(lab / "nowhere"), cwd=lab)
    assert failed.returncode == 2 and "no such interpreter" in failed.stderr


def test_the_python_key_resolves_against_the_files_directory(tmp_path: Path) -> None:
    from molexp.cli.profiles import ProfileError, ProfileFile

    (tmp_path / "molexp.toml").write_text('python = "envs/lab/bin/python"\n[defaults]\nx = 1\n')
    loaded = ProfileFile.load(tmp_path / "molexp.toml")
    assert loaded.python == tmp_path / "envs" / "lab" / "bin" / "python"
    assert loaded.resolve().config == {"x": 1}
    (tmp_path / "molexp.toml").write_text("python = 3\n")
    with pytest.raises(ProfileError, match="python must be an interpreter path"):
        ProfileFile.load(tmp_path / "molexp.toml")


def test_run_options_survive_the_round_trip_to_the_chosen_python(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the re-run command line parses back to is exactly the options given."""
    from molexp.cli import _cmd_run, run_cli

    seen: list[_cmd_run.RunOptions] = []
    monkeypatch.setattr(_cmd_run, "run_command", lambda options: seen.append(options) or 0)
    given = [
        "s.py", "--profile", "fast", "--set", "a.b=1", "--set", "c='x y'", "--force",
        "--rerun-failed", "--dry-run", "--json", "--jobs", "3", "-p", "p*", "-e", "a", "-e", "b",
        "--executor", "slurm", "--partition", "gpu", "--time", "1:00:00", "--cpus-per-task", "4",
        "--mem", "4G", "--gpus", "a100:2", "--account", "acc", "--qos", "high",
        "--sbatch=--constraint=avx2", "--preamble", "module load x", "--preamble", "echo hi",
        "--hold", "--heartbeat-interval", "12.5",
    ]  # fmt: skip
    assert run_cli(["run", *given]) == 0
    assert run_cli(["run", *seen[0].to_args()]) == 0
    first, second = seen
    assert second == first
