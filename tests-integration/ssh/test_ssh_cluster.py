"""``molexp`` from a laptop to a cluster over SSH, for real: the loopback sshd as the login node,
the local Slurm, a directory as the cluster's filesystem and a venv as the cluster's Python (see
``ssh_helpers``). Every wait has a deadline; the cluster's venv is built once per session."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ssh_helpers import (
    STATE,
    Cluster,
    build_cluster_python,
    make_cluster,
    require_harness,
    run_records,
    slurm_jobs,
    wait_until,
)

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


@pytest.fixture(scope="session")
def cluster_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_harness()
    return build_cluster_python(tmp_path_factory.mktemp("cluster-python"))


@pytest.fixture
def cluster(tmp_path: Path, cluster_python: Path) -> Iterator[Cluster]:
    made = make_cluster(tmp_path, cluster_python, f"p{uuid.uuid4().hex[:6]}")
    yield made
    made.close_connection()
    for job in slurm_jobs(f"molexp-{made.project}-"):
        subprocess.run(["scancel", job], capture_output=True, timeout=30, check=False)


def _statuses(cluster: Cluster) -> dict[str, str]:
    rows = cluster.ok_json("ls", "runs", "-w", cluster.url)
    return {row["id"]: row["status"] for row in rows}


def test_sweep_submitted_run_pulled_and_pulled_again(cluster: Cluster, tmp_path: Path) -> None:
    cluster.write(list(range(1, 11)))
    summary = cluster.ok_json("run", "sweep.py", "--profile", "cluster", timeout=180)
    assert summary["submitted"] == 10, summary
    assert all(r["reason"].startswith("Slurm job ") for r in summary["runs"])
    # the records live on the cluster's filesystem, staged script and all
    assert len(run_records(cluster.workspace, cluster.project)) == 10
    assert not (cluster.laptop / "lab").exists()
    trees = list((cluster.stage / "trees").iterdir())
    assert len(trees) == 1
    staged = {p.name for p in trees[0].iterdir()} - {"__pycache__"}
    assert staged == {"sweep.py", "labmath.py", "molexp.toml", "lab"}

    done = wait_until(
        "the 10 runs to succeed on Slurm",
        lambda: (s := _statuses(cluster)) and all(v == "succeeded" for v in s.values()) and s,
        timeout=180,
    )
    assert len(done) == 10
    assert len(slurm_jobs(f"molexp-{cluster.project}-")) == 10  # one array per experiment

    # submitting again submits nothing, and uploads nothing new
    again = cluster.ok_json("run", "sweep.py", "--profile", "cluster", timeout=180)
    assert (again["submitted"], again["skipped"]) == (0, 10)
    assert len(list((cluster.stage / "trees").iterdir())) == 1

    status = cluster.molexp("status", "-w", cluster.url)
    assert status.returncode == 0, status.stderr
    run_id = next(iter(done))
    logs = cluster.molexp("logs", run_id, "train", "-w", cluster.url)
    assert logs.returncode == 0 and "x=" in logs.stdout, (logs.stdout, logs.stderr)

    mirror = tmp_path / "mirror"
    first = cluster.ok_json(
        "pull", "--profile", "cluster", "-w", mirror, "--artifacts", "value.txt", timeout=180
    )
    assert first["transferred"] > 10 and not first["skipped"], first
    local = cluster.ok_json("ls", "runs", "-w", mirror)
    assert {row["id"]: row["status"] for row in local} == done
    pulled = list(mirror.glob("projects/*/experiments/*/runs/*/artifacts/*"))
    assert {p.name for p in pulled} == {"value.txt"}
    assert len(list(mirror.glob("projects/*/experiments/*/runs/*/logs/train.log"))) == 10

    second = cluster.ok_json(
        "pull", "--profile", "cluster", "-w", mirror, "--artifacts", "value.txt", timeout=180
    )
    assert (second["transferred"], second["bytes"]) == (0, 0), second
    assert second["unchanged"] == first["transferred"] + first["unchanged"]

    _browse(cluster, mirror, run_id)

    # a local edit is never overwritten: skipped with a warning, until it is removed
    edited = pulled[0]
    edited.write_text("my notes")
    third = cluster.molexp("pull", cluster.url, "-w", mirror, "--artifacts", "value.txt", "--json")
    assert third.returncode == 0, third.stderr
    assert "changed here since the last pull; not overwritten" in third.stderr
    assert edited.read_text() == "my notes"
    edited.unlink()
    fourth = cluster.ok_json(
        "pull", "--profile", "cluster", "-w", mirror, "--artifacts", "value.txt"
    )
    assert fourth["transferred"] == 1 and edited.read_text() != "my notes"


def _browse(cluster: Cluster, mirror: Path, run_id: str) -> None:
    """``molexp serve -w MIRROR`` shows the pulled runs and their logs."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = cluster.start("serve", "-w", mirror, "--port", str(port))
    base = f"http://127.0.0.1:{port}/api/v1"

    def get(path: str) -> Any:
        try:
            with urllib.request.urlopen(base + path, timeout=5) as response:
                return json.loads(response.read())
        except (OSError, ValueError):
            return None

    try:
        page = wait_until("molexp serve to answer", lambda: get("/runs?limit=100"), timeout=60)
        assert page["total"] == 10
        log = get(f"/runs/{run_id}/logs/train")
        assert log is not None and "x=" in log["text"], log
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.communicate(timeout=30)


def test_cancel_over_ssh(cluster: Cluster) -> None:
    cluster.write([1, 2], hold=True)
    summary = cluster.ok_json("run", "sweep.py", "--profile", "cluster", timeout=180)
    assert summary["submitted"] == 2, summary
    run_id = summary["runs"][0]["run_id"]
    cancelled = cluster.ok_json("cancel", run_id, "-w", cluster.url)
    assert cancelled["status"] == "cancelled", cancelled
    statuses = _statuses(cluster)
    assert statuses[run_id] == "cancelled"
    assert sorted(statuses.values()) == ["cancelled", "queued"]
    # its array task left the queue; the other run's is still there (held)
    other = next(r for r in summary["runs"] if r["run_id"] != run_id)
    queue = subprocess.run(["squeue", "-h", "-r", "-o", "%i"], capture_output=True, text=True)
    job = other["reason"].removeprefix("Slurm job ").split()[0]
    assert job in queue.stdout.split()
    gone = summary["runs"][0]["reason"].removeprefix("Slurm job ").split()[0]
    wait_until(
        "the cancelled task to leave the queue",
        lambda: (
            gone
            not in subprocess.run(
                ["squeue", "-h", "-r", "-o", "%i"], capture_output=True, text=True
            ).stdout.split()
        ),
        timeout=60,
    )


def test_connection_lost_mid_submit_then_retried(cluster: Cluster) -> None:
    cluster.write([1, 2, 3], import_delay=3)
    first = cluster.start("run", "sweep.py", "--profile", "cluster", "--json")
    calls = cluster.stage / "calls"
    wait_until(
        "the remote run to start",
        lambda: calls.is_dir() and any((c / "pid").is_file() for c in calls.iterdir()),
        timeout=120,
    )
    # the laptop loses the connection while the remote is importing and submitting
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    cluster.close_connection()

    retry = cluster.ok_json("run", "sweep.py", "--profile", "cluster", timeout=180)
    assert retry["submitted"] + retry["skipped"] == 3, retry
    wait_until(
        "the first, detached submission to finish",
        lambda: all((c / "rc").is_file() for c in calls.iterdir()),
        timeout=120,
    )
    records = run_records(cluster.workspace, cluster.project)
    assert len(records) == 3
    # every run was submitted exactly once: one attempt each, one array per experiment
    assert [len(r["execution_history"]) for r in records] == [1, 1, 1]
    assert len(slurm_jobs(f"molexp-{cluster.project}-")) == 3
    third = cluster.ok_json("run", "sweep.py", "--profile", "cluster", timeout=180)
    assert third["submitted"] == 0 and third["skipped"] == 3, third


def test_host_key_mismatch_and_auth_failure_are_one_line(cluster: Cluster, tmp_path: Path) -> None:
    other = tmp_path / "otherkey"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other], check=True)
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{cluster.port} {(other.with_suffix('.pub')).read_text()}")
    cluster.write([1], known_hosts=known)
    mismatch = cluster.molexp("run", "sweep.py", "--profile", "cluster")
    assert mismatch.returncode == 1
    assert mismatch.stdout == ""
    lines = mismatch.stderr.splitlines()
    assert len(lines) == 1, mismatch.stderr
    assert lines[0].startswith("error: ssh to root@127.0.0.1:")
    assert "host key does not match" in lines[0]

    cluster.write([1], known_hosts=STATE / "known_hosts", identity=other)
    denied = cluster.molexp("ls", "runs", "-w", cluster.url)
    assert denied.returncode == 1
    lines = denied.stderr.splitlines()
    assert len(lines) == 1, denied.stderr
    assert "authentication failed" in lines[0]
    assert not run_records(cluster.workspace, cluster.project)
