"""Each attempt records where it ran: implementation, platform, CPUs, GPUs (``nvidia-smi``), the
Slurm job ids and an allow-list of environment variables — never other variables' values."""

from __future__ import annotations

import os
import platform
import stat
from pathlib import Path

import pytest
from molexp.workspace import Experiment, Workspace
from molexp.workspace._environment import _gpus, capture_environment


def test_slurm_ids_and_allow_listed_variables_are_kept_and_secrets_are_not() -> None:
    captured = capture_environment(
        {
            "SLURM_JOB_ID": "4242",
            "SLURM_ARRAY_TASK_ID": "3",
            "SLURMD_NODENAME": "node07",
            "OMP_NUM_THREADS": "4",
            "CUDA_VISIBLE_DEVICES": "0,1",
            "AWS_SECRET_ACCESS_KEY": "hunter2",
            "GITHUB_TOKEN": "ghp_x",
        }
    )
    assert captured.slurm == {
        "SLURM_JOB_ID": "4242",
        "SLURM_ARRAY_TASK_ID": "3",
        "SLURMD_NODENAME": "node07",
    }
    assert captured.variables == {"CUDA_VISIBLE_DEVICES": "0,1", "OMP_NUM_THREADS": "4"}
    assert "hunter2" not in captured.model_dump_json() and "ghp_x" not in captured.model_dump_json()
    assert captured.implementation == platform.python_implementation()
    assert captured.platform == platform.platform()
    assert captured.cpu_count is not None and 1 <= captured.cpu_count <= (os.cpu_count() or 1)


def test_variables_the_user_allows_are_recorded_by_name_or_pattern() -> None:
    environ = {
        "MOLEXP_RECORD_VARIABLES": "XTB_HOME, MYAPP_* ,",
        "XTB_HOME": "/opt/xtb",
        "MYAPP_MODE": "fast",
        "MYAPP_SEED": "7",
        "OTHER_APP": "x",
        "GITHUB_TOKEN": "ghp_x",
        "OMP_NUM_THREADS": "2",
    }
    captured = capture_environment(environ)
    assert captured.variables == {
        "OMP_NUM_THREADS": "2",
        "XTB_HOME": "/opt/xtb",
        "MYAPP_MODE": "fast",
        "MYAPP_SEED": "7",
    }
    assert list(captured.variables)[:2] == ["OMP_NUM_THREADS", "XTB_HOME"]  # built-ins first
    assert capture_environment({**environ, "MOLEXP_RECORD_VARIABLES": ""}).variables == {
        "OMP_NUM_THREADS": "2"
    }


def test_gpus_come_from_nvidia_smi_when_it_is_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "nvidia-smi"
    gpu = "NVIDIA A100-SXM4-40GB, 550.54.15"
    fake.write_text(f"#!/bin/sh\necho '{gpu}'\necho '{gpu}'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert _gpus() == (gpu, gpu)
    fake.write_text("#!/bin/sh\nexit 9\n")  # a driver that is not loaded: no GPUs, no error
    assert _gpus() == ()
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert _gpus() == ()


def test_every_attempt_stores_its_environment(
    ws: Workspace, exp: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = exp.Run(id="r")
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    with run.start():
        pass
    monkeypatch.delenv("SLURM_JOB_ID")
    with run.start():
        pass
    reread = Workspace(ws.root).Project(exp.project.name).Experiment(exp.name).Run(id="r")
    first, second = (record.environment for record in reread.metadata.execution_history)
    assert first is not None and second is not None
    assert first.slurm == {"SLURM_JOB_ID": "77"} and second.slurm == {}
    assert first.platform == second.platform == platform.platform()
