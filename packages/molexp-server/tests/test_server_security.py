"""Security model: no file outside the workspace, token, Host and Origin checks, closed CORS."""

from __future__ import annotations

import os
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from fastapi import FastAPI
from molexp.server import create_app
from molexp.server._security import cookie_name
from server_helpers import Lab, make_client

API = "/api/v1"
TOKEN = "s3cret-Token_42"


async def raw_get(
    app: FastAPI, raw_path: bytes, headers: Sequence[tuple[bytes, bytes]] = ()
) -> tuple[int, bytes]:
    """Send a request whose path bytes reach the app untouched (clients normalise `..`)."""
    path, _, query = raw_path.partition(b"?")
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": unquote(path.decode("ascii")),  # what uvicorn does
        "raw_path": path,
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), *headers],
        "server": ("127.0.0.1", 8765),
        "client": ("127.0.0.1", 50000),
    }
    status = 0
    body = b""
    sent = False

    async def receive() -> MutableMapping[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status, body
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            body += message.get("body", b"")

    await app(scope, receive, send)
    return status, body


# -- files never leave the workspace ------------------------------------------------


@pytest.mark.parametrize(
    "raw_path",
    [
        b"/api/v1/runs/ok0/artifacts/../run.json",
        b"/api/v1/runs/ok0/artifacts/../../../../../../../../../../../../etc/passwd",
        b"/api/v1/runs/ok0/artifacts/%2e%2e/run.json",
        b"/api/v1/runs/ok0/artifacts/%2E%2E%2Frun.json",
        b"/api/v1/runs/ok0/artifacts/..%2F..%2F..%2F..%2F..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        b"/api/v1/runs/ok0/artifacts/..%5Crun.json",
        b"/api/v1/runs/ok0/artifacts//etc/passwd",
        b"/api/v1/runs/ok0/artifacts/%2Fetc%2Fpasswd",
        b"/api/v1/runs/ok0/artifacts/notes.txt%00.png",
        b"/api/v1/runs/ok0/artifacts/./notes.txt",
        b"/api/v1/runs/ok0/logs/%2e%2e",
        b"/api/v1/runs/ok0/logs/%2e%2e%2frun",
        b"/api/v1/runs/ok0/logs/..%2Frun/stream",
        b"/api/v1/runs/%2e%2e/artifacts/run.json",
        b"/api/v1/runs/%2e%2e/logs",
        b"/api/v1/projects/%2e%2e/experiments",
        b"/api/v1/projects/qm9/experiments/%2e%2e/runs",
        b"/api/v1/assets?scope=..%2F..",
        b"/api/v1/assets/%2e%2e",
        b"/_app/%2e%2e/%2e%2e/_app.py",
        b"/_app/../../_app.py",
    ],
)
async def test_traversal_attempts_are_refused(app: FastAPI, raw_path: bytes) -> None:
    status, body = await raw_get(app, raw_path)
    assert status in {400, 404}, (raw_path, status, body[:200])
    assert b'"id"' not in body  # no run record leaked
    assert b"root:" not in body  # no /etc/passwd


async def test_absolute_artifact_path_names_the_problem(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{API}/runs/ok0/artifacts/%2Fetc%2Fpasswd")
    assert response.status_code == 400
    assert "/etc/passwd" in response.json()["detail"]


async def test_symlinks_escaping_the_workspace_are_not_served_or_listed(
    client: httpx.AsyncClient, lab: Lab, tmp_path: Path
) -> None:
    secret_dir = tmp_path / "outside"
    secret_dir.mkdir()
    (secret_dir / "secret.txt").write_text("top secret")
    artifacts = lab.first.run_dir / "artifacts"
    os.symlink(secret_dir / "secret.txt", artifacts / "leak.txt")
    os.symlink(secret_dir, artifacts / "leakdir")
    os.symlink(secret_dir / "secret.txt", lab.first.run_dir / "logs" / "leak.log")
    for url in (
        f"{API}/runs/ok0/artifacts/leak.txt",
        f"{API}/runs/ok0/artifacts/leakdir/secret.txt",
        f"{API}/runs/ok0/logs/leak",
        f"{API}/runs/ok0/logs/leak/stream",
    ):
        response = await client.get(url)
        assert response.status_code == 404, url
        assert "top secret" not in response.text
        assert str(secret_dir) not in response.text
    names = [a["name"] for a in (await client.get(f"{API}/runs/ok0/artifacts")).json()]
    assert "leak.txt" not in names and not any(name.startswith("leakdir") for name in names)
    logs = [log["name"] for log in (await client.get(f"{API}/runs/ok0/logs")).json()]
    assert logs == ["train"]


async def test_symlink_inside_the_workspace_is_served(client: httpx.AsyncClient, lab: Lab) -> None:
    artifacts = lab.first.run_dir / "artifacts"
    os.symlink(artifacts / "notes.txt", artifacts / "alias.txt")
    response = await client.get(f"{API}/runs/ok0/artifacts/alias.txt")
    assert response.status_code == 200
    assert response.text == "run 0\n"


async def test_served_artifacts_cannot_run_script_in_the_ui_origin(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(f"{API}/runs/ok0/artifacts/notes.txt")
    assert response.headers["content-security-policy"].startswith("sandbox")
    assert response.headers["x-content-type-options"] == "nosniff"


# -- token ----------------------------------------------------------------------------


@pytest.fixture
def token_app(lab: Lab) -> FastAPI:
    return create_app(lab.root, token=TOKEN)


async def test_token_is_required_everywhere(token_app: FastAPI) -> None:
    async with make_client(token_app) as http:
        for url in (f"{API}/workspace", f"{API}/runs/ok0", f"{API}/openapi.json", "/"):
            response = await http.get(url)
            assert response.status_code == 401, url
            assert response.headers["www-authenticate"] == "Bearer"
            assert "token" in response.json()["detail"]
        cancel = await http.post(f"{API}/runs/waiting/cancel")
        assert cancel.status_code == 401
        wrong = await http.get(f"{API}/workspace", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401


async def test_bearer_header_authenticates(token_app: FastAPI) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with make_client(token_app, headers=headers) as http:
        assert (await http.get(f"{API}/workspace")).status_code == 200
        assert (await http.post(f"{API}/runs/waiting/cancel")).status_code == 200


async def test_first_page_load_with_token_sets_cookie_and_strips_it(token_app: FastAPI) -> None:
    async with make_client(token_app) as http:
        first = await http.get("/", params={"token": TOKEN, "x": "1"})
        assert first.status_code == 303
        assert first.headers["location"] == "/?x=1"
        cookie = first.headers["set-cookie"]
        # No port in the test transport: the cookie is the port-less one.
        assert cookie.startswith(f"{cookie_name(None)}={TOKEN};")
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        # The client kept the cookie: later requests need no token.
        page = await http.get("/")
        assert page.status_code == 200
        assert '<div id="root">' in page.text
        assert (await http.get(f"{API}/workspace")).status_code == 200


async def test_wrong_query_token_is_refused(token_app: FastAPI) -> None:
    async with make_client(token_app) as http:
        response = await http.get("/", params={"token": "guess"})
        assert response.status_code == 401
        assert "set-cookie" not in response.headers


async def test_query_token_on_api_answers_without_redirect(token_app: FastAPI) -> None:
    async with make_client(token_app) as http:
        response = await http.get(f"{API}/workspace", params={"token": TOKEN})
        assert response.status_code == 200
        assert response.json()["name"] == "Test Lab"


async def test_redirect_never_leaves_the_server(token_app: FastAPI) -> None:
    status, _ = await raw_get(token_app, f"//evil.example/?token={TOKEN}".encode())
    assert status == 303
    # Drive the same request through httpx to read the Location header.
    async with make_client(token_app) as http:
        response = await http.get(f"http://127.0.0.1//evil.example/?token={TOKEN}")
        assert response.headers["location"].startswith("/evil.example")
        assert not response.headers["location"].startswith("//")


@pytest.mark.parametrize("bad", ["", "has space", "semi;colon", 'quo"te', "back\\slash", "é"])
def test_unusable_tokens_are_rejected(lab: Lab, bad: str) -> None:
    with pytest.raises(ValueError, match="token"):
        create_app(lab.root, token=bad)


# -- Host, Origin, CORS -------------------------------------------------------------------


@pytest.mark.parametrize(
    "base", ["http://127.0.0.1", "http://localhost:8765", "http://[::1]:8765", "http://127.0.0.2"]
)
async def test_loopback_hosts_are_served_without_token(app: FastAPI, base: str) -> None:
    async with make_client(app, base_url=base) as http:
        assert (await http.get(f"{API}/workspace")).status_code == 200


@pytest.mark.parametrize(
    "base", ["http://evil.example", "http://192.168.1.5:8765", "http://[fe80::1]"]
)
async def test_other_hosts_are_refused_without_token(app: FastAPI, base: str) -> None:
    async with make_client(app, base_url=base) as http:
        response = await http.get(f"{API}/workspace")
        assert response.status_code == 403
        assert "Host" in response.json()["detail"]


async def test_token_server_answers_any_host(token_app: FastAPI) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with make_client(token_app, base_url="http://lab.example:8765", headers=headers) as http:
        assert (await http.get(f"{API}/workspace")).status_code == 200


async def test_cross_origin_post_is_refused(client: httpx.AsyncClient, lab: Lab) -> None:
    response = await client.post(
        f"{API}/runs/waiting/cancel", headers={"Origin": "http://evil.example"}
    )
    assert response.status_code == 403
    assert "evil.example" in response.json()["detail"]
    assert lab.ws.find_run("waiting").status.value == "pending"
    same = await client.post(f"{API}/runs/waiting/cancel", headers={"Origin": "http://127.0.0.1"})
    assert same.status_code == 200


async def test_cors_is_closed_by_default(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{API}/workspace", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in response.headers
    preflight = await client.options(
        f"{API}/runs/waiting/cancel",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers


async def test_cors_opens_only_to_allowed_origins(lab: Lab) -> None:
    app = create_app(lab.root, allow_origins=["http://dashboard.example"])
    async with make_client(app) as http:
        allowed = await http.get(f"{API}/workspace", headers={"Origin": "http://dashboard.example"})
        assert allowed.headers["access-control-allow-origin"] == "http://dashboard.example"
        other = await http.get(f"{API}/workspace", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        post = await http.post(
            f"{API}/runs/waiting/cancel", headers={"Origin": "http://dashboard.example"}
        )
        assert post.status_code == 200


def test_allow_origins_must_be_a_sequence_of_origins(lab: Lab) -> None:
    with pytest.raises(TypeError, match="allow_origins"):
        create_app(lab.root, allow_origins="http://one.example")


async def test_ui_page_has_a_content_security_policy(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"


def test_the_token_cookie_is_per_port() -> None:
    assert cookie_name(8765) == "molexp_token_8765"
    assert cookie_name(8766) != cookie_name(8765)
    assert cookie_name(None) == "molexp_token"
