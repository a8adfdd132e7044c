"""`molexp serve` as a user starts it: a real subprocess answering the API on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from molexp.workspace import Workspace

_EXECUTABLE = shutil.which("molexp")
MOLEXP = [_EXECUTABLE] if _EXECUTABLE else [sys.executable, "-m", "molexp.cli"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get_json(url: str, deadline: float) -> dict[str, object]:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return dict(json.load(response))
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_molexp_serve_answers_on_loopback_by_default(tmp_path: Path) -> None:
    pytest.importorskip("molexp.server")
    ws = Workspace(tmp_path / "lab", name="Lab")
    exp = ws.Project("demo").Experiment("baseline", params={"lr": 0.1})
    with exp.Run(id="r1").start() as ctx:
        ctx.set_result("loss", 0.5)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOLEXP_")}
    process = subprocess.Popen(
        [*MOLEXP, "serve", "-w", str(ws.root), "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}/api/v1"
        overview = _get_json(f"{base}/workspace", time.monotonic() + 30)
        assert overview["name"] == "Lab"
        run = _get_json(f"{base}/runs/r1", time.monotonic() + 5)
        assert run["status"] == "succeeded"
        assert run["results"] == {"loss": 0.5}
    finally:
        process.terminate()
        process.wait(timeout=15)
    assert process.stdout is not None
    assert f"127.0.0.1:{port}" in process.stdout.read()
