"""The README's "Try it" demo, run as written: what it claims, and the commands it tells the user
to run afterwards (those in the README and those the demo prints), pasted from the same place.

The command is taken from the README itself, so README and example cannot drift apart: the
number of runs the comment above it announces is the number the demo executes.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
_EXECUTABLE = Path(sys.executable).with_name("molexp")
MOLEXP = [str(_EXECUTABLE)] if _EXECUTABLE.is_file() else [sys.executable, "-m", "molexp.cli"]
NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "eight": 8, "ten": 10}


def environment() -> dict[str, str]:
    """The user's shell: no MOLEXP_* variables, not inside `uv run` (the hints then name the
    executable this test runs, which is on PATH or given by path)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("MOLEXP_") and key != "UV"
    }
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["COLUMNS"] = "400"
    env["PATH"] = f"{_EXECUTABLE.parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run(command: list[str] | str, cwd: Path) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        command,
        cwd=cwd,
        env=environment(),
        shell=isinstance(command, str),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert completed.returncode == 0, f"{command}:\n{completed.stdout}\n{completed.stderr}"
    return completed


def demo_block() -> tuple[str, str]:
    """The README's demo comment and the `molexp ...` part of its command."""
    demo = r"```bash {\.clone}\n(# 1\. The demo.*?)```"
    [block] = re.findall(demo, README.read_text(), re.DOTALL)
    comment, command = block.splitlines()[:2]
    return comment, command.split("uv run --frozen ", 1)[1]


def molexp_args(command: str) -> list[str]:
    """``molexp run examples/demo/demo.py`` -> its arguments, the script made absolute (the
    test runs it from a scratch directory, where ``./lab`` lands, not from the clone)."""
    program, *args = shlex.split(command)
    assert program == "molexp"
    return [str(REPO / arg) if arg.startswith("examples/") else arg for arg in args]


def test_the_readme_demo_does_what_the_readme_says(tmp_path: Path) -> None:
    comment, command = demo_block()
    claim = re.search(
        r"(\w+) molecules, (\w+) replicas each: (\w+) runs, tracked in \./lab", comment
    )
    assert claim is not None, comment
    molecules, replicas, total = (NUMBERS[word] for word in claim.groups())
    assert molecules * replicas == total

    args = molexp_args(command)
    report = json.loads(run([*MOLEXP, *args, "--json"], tmp_path).stdout)
    assert (report["executed"], report["failed"], report["skipped"]) == (total, 0, 0)
    assert len({run["experiment"] for run in report["runs"]}) == molecules
    assert (tmp_path / "lab" / "workspace.json").is_file()

    # "Running the demo a second time executes nothing", and its closing hints work pasted here.
    again = run([*MOLEXP, *args], tmp_path).stdout
    assert f"0 executed, 0 failed, {total} skipped" in again
    hints = re.findall(r"^(inspect|browse):\s+(.+)$", again, re.MULTILINE)
    assert [kind for kind, _ in hints] == ["inspect", "browse"]
    assert str(tmp_path) not in again  # relative paths: where the user stands
    inspect = hints[0][1]
    assert inspect.endswith("ls runs -w lab")
    listed = json.loads(run(f"{inspect} --json", tmp_path).stdout)
    assert len(listed) == total
    assert "serve -w lab" in hints[1][1]

    # The README's own follow-up commands (without the `uv run` launcher this test runs without).
    readme = README.read_text()
    follow_ups = re.findall(r"`uv run (molexp (?:ls|show) [^`]+)`", readme)
    assert follow_ups, "the README names no command to inspect the demo"
    for follow_up in follow_ups:
        line = follow_up.replace("<run-id>", listed[0]["id"])
        run([*MOLEXP, *molexp_args(line)], tmp_path)
