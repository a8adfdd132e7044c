"""The code of ``docs/quickstart.md``, executed as written: its Python blocks and its CLI commands.

The blocks are taken from the page itself, so an API change that breaks the quick start fails
here. They run in subprocesses inside ``tmp_path`` (the page's ``./lab`` lands there).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "quickstart.md"
_EXECUTABLE = Path(sys.executable).with_name("molexp")
MOLEXP = [str(_EXECUTABLE)] if _EXECUTABLE.is_file() else [sys.executable, "-m", "molexp.cli"]


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", PAGE.read_text(), re.DOTALL)


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MOLEXP_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    completed = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert completed.returncode == 0, f"{command}:\n{completed.stdout}\n{completed.stderr}"
    return completed


def molexp_json(arguments: str, cwd: Path) -> Any:
    completed = run([*MOLEXP, *shlex.split(arguments), "--json"], cwd)
    return json.loads(completed.stdout)


def test_quickstart_python_blocks_print_what_the_page_says(tmp_path: Path) -> None:
    first, tracked, _script = blocks("python")

    (tmp_path / "first.py").write_text(first)
    output = run([sys.executable, "first.py"], tmp_path).stdout.split()
    assert output[0] == "14.0"
    assert re.fullmatch(r"[0-9a-f]{16}", output[1])

    (tmp_path / "tracked.py").write_text(tracked)
    lines = run([sys.executable, "tracked.py"], tmp_path).stdout.splitlines()
    assert lines == ["succeeded", "succeeded", "{'compute': 0.002}"]
    run_json = tmp_path / "lab/projects/demo/experiments/baseline/runs/run-baseline-defaults"
    record = json.loads((run_json / "run.json").read_text())
    assert record["results"] == {"scaled_lr": 0.002}
    assert (run_json / "artifacts/metrics.json").is_file()


def test_quickstart_cli_commands_behave_as_described(tmp_path: Path) -> None:
    *_, script = blocks("python")
    (tmp_path / "train.py").write_text(script)
    (tmp_path / "molexp.toml").write_text(blocks("toml")[0])

    plan = molexp_json("run train.py --profile fast --dry-run", tmp_path)
    assert plan["to_execute"] == 4  # 2 experiments x 2 replicas
    assert not (tmp_path / "lab").exists()

    fast = molexp_json("run train.py --profile fast", tmp_path)
    assert (fast["executed"], fast["skipped"]) == (4, 0)
    again = molexp_json("run train.py --profile fast", tmp_path)
    assert (again["executed"], again["skipped"]) == (0, 4)
    default = molexp_json("run train.py", tmp_path)
    assert default["executed"] == 4
    assert not {o["run_id"] for o in default["runs"]} & {o["run_id"] for o in fast["runs"]}

    rows = molexp_json("query -w lab 'lr < 1e-3' --order-by results.loss", tmp_path)
    assert len(rows) == 4  # two replicas under each of the two profiles
    losses = [row["results"]["loss"] for row in rows]
    assert losses == sorted(losses)
    shown = molexp_json(f"show -w lab {rows[0]['id']}", tmp_path)
    assert shown["id"] == rows[0]["id"]
