"""Running commands as other hosts of a simulated cluster (``../shared/multihost/on-node``).

Each ``on_node`` call is a separate host: its own hostname, pid and mount namespaces, and
the shared directory mounted over sshfs (a network-filesystem client of its own, with no
lock shared with any other node). Tests skip, saying why, where the harness cannot run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
MULTIHOST = REPO.parent / "shared" / "multihost"
ON_NODE = MULTIHOST / "on-node"
NODE_WORK = Path(__file__).with_name("node_work.py")
_EXECUTABLE = shutil.which("molexp")
MOLEXP = [_EXECUTABLE] if _EXECUTABLE else [sys.executable, "-m", "molexp.cli"]


def require_harness() -> None:
    """Skip unless the loopback sshd answers (CI starts it in .ci/run) and we are root."""
    if not ON_NODE.is_file():
        pytest.skip(f"needs {ON_NODE} (the shared multihost harness beside the repository)")
    if os.geteuid() != 0:
        pytest.skip("on-node needs root (unshare of hostname, pid and mount namespaces)")
    check = subprocess.run(
        ["bash", str(MULTIHOST / "start-loopback-sshd"), "--check"], capture_output=True
    )
    if check.returncode != 0:
        pytest.skip("the loopback sshd is not running: run ../shared/multihost/start-loopback-sshd")


def node_command(node: str, shared: Path, timeout: float, *command: str | Path) -> list[str]:
    return ["bash", str(ON_NODE), node, str(shared), str(int(timeout)), *map(str, command)]


def start_on_node(
    node: str, shared: Path, timeout: float, *command: str | Path, cwd: Path | None = None
) -> subprocess.Popen[str]:
    """Start ``command`` as host ``node`` (its output is captured)."""
    return subprocess.Popen(
        node_command(node, shared, timeout, *command),
        cwd=cwd or shared,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def run_on_node(
    node: str, shared: Path, timeout: float, *command: str | Path, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        node_command(node, shared, timeout, *command),
        cwd=cwd or shared,
        capture_output=True,
        text=True,
        timeout=timeout + 30,
        check=False,
    )


def finish(process: subprocess.Popen[str], timeout: float) -> Any:
    """Wait for a node command and return the JSON it printed (fail with its stderr)."""
    stdout, stderr = process.communicate(timeout=timeout)
    assert process.returncode == 0, (process.returncode, stdout[-2000:], stderr[-4000:])
    return json.loads(stdout)


def node_work(node: str, shared: Path, timeout: float, *args: str | Path) -> Any:
    """``node_work.py ARGS`` as host ``node``; its JSON answer."""
    done = run_on_node(node, shared, timeout, sys.executable, NODE_WORK, *args)
    assert done.returncode == 0, (done.returncode, done.stdout[-2000:], done.stderr[-4000:])
    return json.loads(done.stdout)


def start_node_work(
    node: str, shared: Path, timeout: float, *args: str | Path
) -> subprocess.Popen[str]:
    return start_on_node(node, shared, timeout, sys.executable, NODE_WORK, *args)
