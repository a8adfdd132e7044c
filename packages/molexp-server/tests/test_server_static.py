"""The built web UI ships inside the package and is served at / without Node.js."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from molexp.server import _app, create_app
from server_helpers import Lab, make_client


async def test_index_and_every_bundle_file_it_references_are_served(
    client: httpx.AsyncClient,
) -> None:
    index = await client.get("/")
    assert index.status_code == 200
    assert index.headers["content-type"].startswith("text/html")
    references = re.findall(r'(?:src|href)="(/_app/[^"]+)"', index.text)
    assert any(ref.endswith(".js") for ref in references)
    assert any(ref.endswith(".css") for ref in references)
    for ref in references:
        asset = await client.get(ref)
        assert asset.status_code == 200, ref
        expected = "javascript" if ref.endswith(".js") else "css"
        assert expected in asset.headers["content-type"]


def test_bundle_is_in_the_package_directory() -> None:
    static = Path(_app.__file__).parent / "static"
    assert (static / "index.html").is_file()
    assert list((static / "_app").glob("index-*.js"))


async def test_missing_build_serves_a_pointer_to_the_api_docs(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_app, "STATIC_DIR", tmp_path / "empty")
    async with make_client(create_app(lab.root)) as http:
        page = await http.get("/")
        assert page.status_code == 200
        assert "/api/v1/docs" in page.text
        assert (await http.get("/api/v1/workspace")).status_code == 200


async def test_api_docs_and_schema_are_served(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/api/v1/openapi.json")).json()
    assert "/api/v1/runs/{run_id}/logs/{name}/stream" in schema["paths"]
    assert "RunDetail" in schema["components"]["schemas"]
    docs = await client.get("/api/v1/docs")
    assert docs.status_code == 200
    assert "openapi.json" in docs.text


async def test_root_docs_and_schema_redirect_to_the_api(client: httpx.AsyncClient) -> None:
    for source, target in (("/docs", "/api/v1/docs"), ("/openapi.json", "/api/v1/openapi.json")):
        response = await client.get(source)
        assert response.status_code == 307
        assert response.headers["location"] == target
    kept = await client.get("/docs", params={"x": "1", "target": "//evil.example"})
    assert kept.headers["location"] == "/api/v1/docs?x=1&target=%2F%2Fevil.example"
    followed = await client.get("/openapi.json", follow_redirects=True)
    assert "RunDetail" in followed.json()["components"]["schemas"]
