"""serve(): loopback needs no token; any other address always gets one, printed in the URL."""

from __future__ import annotations

import io
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from molexp.server import serve, server_url
from server_helpers import Lab, make_client


class FakeUvicorn:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def run(self, app: FastAPI, **kwargs: Any) -> None:
        self.calls.append({"app": app, **kwargs})


@pytest.fixture
def fake_uvicorn(monkeypatch: pytest.MonkeyPatch) -> FakeUvicorn:
    fake = FakeUvicorn()
    monkeypatch.setattr(uvicorn, "run", fake.run)
    return fake


async def test_loopback_serves_without_a_token(lab: Lab, fake_uvicorn: FakeUvicorn) -> None:
    out = io.StringIO()
    serve(lab.root, port=9999, out=out)
    [call] = fake_uvicorn.calls
    assert (call["host"], call["port"]) == ("127.0.0.1", 9999)
    ui, docs = out.getvalue().strip().splitlines()[-2:]
    assert ui.endswith("at http://127.0.0.1:9999/")
    assert docs == "API docs: http://127.0.0.1:9999/api/v1/docs"
    assert "token" not in out.getvalue().lower()
    async with make_client(call["app"]) as http:
        assert (await http.get("/api/v1/workspace")).status_code == 200


async def test_non_loopback_host_generates_and_prints_a_token(
    lab: Lab, fake_uvicorn: FakeUvicorn
) -> None:
    out = io.StringIO()
    serve(lab.root, host="0.0.0.0", port=8000, out=out)
    [call] = fake_uvicorn.calls
    printed = out.getvalue()
    token = printed.split("Token: ", 1)[1].split()[0]
    assert len(token) >= 32
    assert f"?token={token}" in printed
    async with make_client(call["app"], base_url="http://10.0.0.7:8000") as http:
        assert (await http.get("/api/v1/workspace")).status_code == 401
        authorized = await http.get(
            "/api/v1/workspace", headers={"Authorization": f"Bearer {token}"}
        )
        assert authorized.status_code == 200


def test_each_server_gets_a_fresh_token(lab: Lab, fake_uvicorn: FakeUvicorn) -> None:
    outs = [io.StringIO(), io.StringIO()]
    for out in outs:
        serve(lab.root, host="192.168.0.2", out=out)
    tokens = {out.getvalue().split("Token: ", 1)[1].split()[0] for out in outs}
    assert len(tokens) == 2


async def test_given_token_is_used_on_loopback_too(lab: Lab, fake_uvicorn: FakeUvicorn) -> None:
    out = io.StringIO()
    serve(lab.root, token="mine-123", out=out)
    assert "?token=mine-123" in out.getvalue()
    assert "API docs: http://127.0.0.1:8765/api/v1/docs?token=mine-123" in out.getvalue()
    assert "generated" not in out.getvalue()
    async with make_client(fake_uvicorn.calls[0]["app"]) as http:
        assert (await http.get("/api/v1/workspace")).status_code == 401


def test_missing_workspace_fails_before_serving(tmp_path: Any, fake_uvicorn: FakeUvicorn) -> None:
    with pytest.raises(FileNotFoundError, match="workspace.json"):
        serve(tmp_path / "nothing-here", out=io.StringIO())
    assert fake_uvicorn.calls == []


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "http://127.0.0.1:1/"),
        ("::1", "http://[::1]:1/"),
        ("0.0.0.0", "http://127.0.0.1:1/?token=t"),
        ("lab.example", "http://lab.example:1/?token=t"),
    ],
)
def test_server_url(host: str, expected: str) -> None:
    token = None if expected.endswith("/") else "t"
    assert server_url(host, 1, token) == expected
