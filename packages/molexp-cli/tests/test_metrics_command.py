"""``molexp metrics RUN [NAME]``: a summary per metric, or the points of one; ``--json``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from molexp.cli import run_cli
from molexp.workspace import Workspace


def invoke(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run_cli(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    root = tmp_path / "lab"
    experiment = Workspace(root).Project("p").Experiment("e")
    with experiment.Run(id="r1").start() as ctx:
        for step, loss in enumerate([0.9, 0.4, 0.2]):
            ctx.log_metrics({"loss": loss, "lr": 0.01}, step=step, timestamp=1_700_000_000 + step)
    experiment.Run(id="r2")
    return root


def test_a_summary_per_metric(lab: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = invoke(capsys, "metrics", "r1", "-w", str(lab))
    assert code == 0
    rows = [
        [cell.strip() for cell in line.strip("│┃ ").split("│")]
        for line in out.splitlines()
        if "loss" in line or "lr" in line
    ]
    assert rows == [["loss", "0.2", "0.2", "0.9", "3"], ["lr", "0.01", "0.01", "0.01", "3"]]
    assert out.index("last") < out.index("min") < out.index("max") < out.index("points")


def test_the_summary_as_json(lab: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = invoke(capsys, "metrics", "r1", "-w", str(lab), "--json")
    assert code == 0
    payload = json.loads(out)
    assert payload["run"] == "r1"
    assert payload["metrics"]["loss"] == {
        "last": 0.2,
        "last_step": 2,
        "min": 0.2,
        "max": 0.9,
        "count": 3,
    }


def test_the_points_of_one_metric(lab: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = invoke(capsys, "metrics", "r1", "loss", "-w", str(lab), "--json")
    assert code == 0
    points = json.loads(out)["points"]
    assert [(p["step"], p["value"], p["attempt"]) for p in points] == [
        (0, 0.9, 1),
        (1, 0.4, 1),
        (2, 0.2, 1),
    ]
    assert points[0]["timestamp"] == 1_700_000_000
    code, out, _ = invoke(capsys, "metrics", "r1", "loss", "-w", str(lab))
    assert code == 0
    assert [word for word in out.split() if word in {"step", "value", "time", "attempt"}] == [
        "step",
        "value",
        "time",
        "attempt",
    ]
    assert "2023-11-14" in out and "0.9" in out


def test_a_missing_metric_or_none_at_all(lab: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = invoke(capsys, "metrics", "r1", "acc", "-w", str(lab))
    assert code != 0
    assert "run 'r1' has no metric 'acc' (its metrics: loss, lr)" in err
    code, _, err = invoke(capsys, "metrics", "r1", "a/b", "-w", str(lab))
    assert code != 0 and "metric name 'a/b'" in err
    code, out, _ = invoke(capsys, "metrics", "r2", "-w", str(lab))
    assert code == 0 and "run r2 has no metrics" in out
