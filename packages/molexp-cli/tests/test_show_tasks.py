"""`molexp show` lists the tasks of the latest attempt and how the cache answered each."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from molexp.cli import run_cli
from molexp.workflow import TaskContext, workflow
from molexp.workspace import ProfileConfig, Workspace


def test_show_names_what_made_a_cached_task_miss(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wf = workflow(name="noted")

    @wf.task(cache=True)
    async def fit(ctx: TaskContext) -> float:
        return float(ctx.config["x"]) * 2

    spec = wf.build()
    experiment = Workspace(tmp_path / "lab").Project("p").Experiment("e")
    for index, x in enumerate((1, 2)):
        run = experiment.Run(id=f"r{index}")
        asyncio.run(spec.execute(run=run, profile_config=ProfileConfig(config={"x": x})))
    capsys.readouterr()
    assert run_cli(["show", "r1", "-w", str(tmp_path / "lab"), "--json"]) == 0
    [task] = json.loads(capsys.readouterr().out)["tasks"]
    assert (task["task"], task["status"]) == ("fit", "succeeded")
    assert task["cache"] == "miss: run: config['x'] changed: 1 -> 2"
    assert run_cli(["show", "r1", "-w", str(tmp_path / "lab")]) == 0
    shown = capsys.readouterr().out
    assert "Tasks of the latest attempt" in shown
    assert "config['x'] changed: 1 -> 2" in shown
    [row] = [line for line in shown.splitlines() if "fit" in line and "succeeded" in line]
    assert f"{task['duration']:.2f}s" in row and "e-" not in row  # seconds as durations show


def test_show_summarises_each_metric_series(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = Workspace(tmp_path / "lab").Project("p").Experiment("e").Run(id="m1")
    with run.start() as ctx:
        for step, loss in enumerate((2.5, 0.5, 1.0)):
            ctx.log_metric("loss", loss, step=step)
    capsys.readouterr()
    assert run_cli(["show", "m1", "-w", str(tmp_path / "lab")]) == 0
    [row] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("metrics ")]
    assert " ".join(row.split()[1:]) == "loss 1 (min 0.5, max 2.5, 3 points)"
