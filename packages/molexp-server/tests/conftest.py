"""Shared fixtures: the test workspace (see server_helpers) and an HTTP client on its app."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from molexp.server import create_app
from server_helpers import Lab, build_lab, make_client

# Every test session keeps its per-host index files in a directory of its own, not in ~/.cache.
os.environ.setdefault("MOLEXP_INDEX_DIR", tempfile.mkdtemp(prefix="molexp-test-index-"))


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    return build_lab((tmp_path / "lab").resolve())


@pytest.fixture
def app(lab: Lab) -> FastAPI:
    return create_app(lab.root)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(app) as http:
        yield http
