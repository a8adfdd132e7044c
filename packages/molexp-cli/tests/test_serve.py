"""`molexp serve`: workspace resolution, forwarding to molexp.server, one-line error without it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from molexp.cli import run_cli
from molexp.workspace import Workspace


def test_serve_without_the_server_package_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    Workspace(tmp_path / "lab").materialize()
    monkeypatch.setitem(sys.modules, "molexp.server", None)
    code = run_cli(["serve", "-w", str(tmp_path / "lab")])
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip().splitlines() == [
        "error: molexp serve needs the molexp-server package: pip install 'molexp-cli[server]'"
    ]


def test_serve_forwards_workspace_host_port_and_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = pytest.importorskip("molexp.server")
    Workspace(tmp_path / "lab").materialize()
    calls: list[tuple[Path, dict[str, Any]]] = []
    monkeypatch.setattr(server, "serve", lambda root, **kw: calls.append((Path(root), kw)))
    code = run_cli(
        [
            "serve",
            "-w",
            str(tmp_path / "lab"),
            "--host",
            "0.0.0.0",
            "--port",
            "9999",
            "--token",
            "t",
        ]
    )
    assert code == 0
    assert calls == [
        ((tmp_path / "lab").resolve(), {"host": "0.0.0.0", "port": 9999, "token": "t"})
    ]


def test_serve_defaults_to_loopback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = pytest.importorskip("molexp.server")
    Workspace(tmp_path / "lab").materialize()
    monkeypatch.setenv("MOLEXP_WORKSPACE", str(tmp_path / "lab"))
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(server, "serve", lambda root, **kw: calls.append(kw))
    assert run_cli(["serve"]) == 0
    assert calls == [{"host": "127.0.0.1", "port": 8765, "token": None}]


def test_serve_on_a_missing_workspace_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_cli(["serve", "-w", str(tmp_path / "nowhere")])
    err = capsys.readouterr().err
    assert code != 0
    assert len(err.strip().splitlines()) == 1
