"""Test data for the server tests: a real workspace filled through molexp.workspace, and clients."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from molexp.workspace import Run, Workspace

# The PNG signature plus an IHDR chunk: enough for a client to sniff an image.
PNG_BYTES = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000")
LOCAL = "http://127.0.0.1"


@dataclass
class Lab:
    """The workspace built for the tests and the runs in it, by role."""

    root: Path
    ws: Workspace
    succeeded: list[Run] = field(default_factory=list)
    failed: Run | None = None
    pending: Run | None = None
    twin_id: str = "twin"

    @property
    def first(self) -> Run:
        return self.succeeded[0]


def build_lab(root: Path) -> Lab:
    """Project qm9 / experiment baseline: 3 succeeded runs, 1 failed, 1 pending, plus a sweep."""
    ws = Workspace(root, name="Test Lab")
    project = ws.Project("QM9", description="quantum chemistry")
    baseline = project.Experiment("baseline", params={"lr": 1e-3, "batch": 32})
    lab = Lab(root=root, ws=ws)
    for index, lr in enumerate([1e-3, 1e-2, 1e-1]):
        run = baseline.Run(
            parameters={"lr": lr, "model": {"depth": index + 2}},
            id=f"ok{index}",
            seed=index,
        )
        with run.start(profile_config={"scale": index}) as ctx:
            ctx.set_result("loss", round(1.0 / (index + 1), 4))
            ctx.set_result("accuracy", 0.5 + index / 10)
            for step in range(5):
                ctx.log_metrics(
                    {"loss": 1.0 / (index + step + 1)}, step=step, timestamp=100.0 + step
                )
            ctx.artifact.save("metrics.json", {"loss": 1.0 / (index + 1)})
            ctx.artifact.save("notes.txt", f"run {index}\n")
            ctx.artifact.save("plot.png", PNG_BYTES)
            log = ctx.log("train")
            for epoch in range(3):
                log.append(f"epoch {epoch} lr={lr}")
            ctx.record_execution_state(
                {
                    "workflow_id": "wf1",
                    "tasks": {
                        "prepare": {
                            "status": "succeeded",
                            "started_at": "2024-01-01T00:00:00+00:00",
                            "finished_at": "2024-01-01T00:00:01+00:00",
                            "duration": 1.0,
                            "error": None,
                        },
                        "train": {
                            "status": "succeeded",
                            "started_at": "2024-01-01T00:00:01+00:00",
                            "finished_at": "2024-01-01T00:00:03+00:00",
                            "duration": 2.0,
                            "error": None,
                        },
                    },
                }
            )
        lab.succeeded.append(run)
    failing = baseline.Run(parameters={"lr": 1.0}, id="boom")
    with pytest.raises(RuntimeError), failing.start() as ctx:
        ctx.log("train").append("about to fail")
        error = RuntimeError("diverged at step 7")
        error.task_name = "train"  # type: ignore[attr-defined]
        raise error
    lab.failed = failing
    lab.pending = baseline.Run(parameters={"lr": 5e-4}, id="waiting")
    sweep = project.Experiment("sweep")
    twin = sweep.Run(parameters={"lr": 3e-3}, id=lab.twin_id)
    with twin.start() as ctx:
        ctx.set_result("loss", 0.9)
    baseline.Run(parameters={"lr": 7e-3}, id=lab.twin_id)
    return lab


def make_client(app: FastAPI, base_url: str = LOCAL, **kwargs: Any) -> httpx.AsyncClient:
    """A client on ``app`` (for tests that need their own base URL, headers or cookies)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url, **kwargs)
