"""Shared fixtures for the molexp-assets tests: a workspace root, its catalog and a run scope."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from molexp.assets import AssetScope, Catalog, Producer

# Every test session keeps its per-host index files in a directory of its own, not in ~/.cache.
os.environ.setdefault("MOLEXP_INDEX_DIR", tempfile.mkdtemp(prefix="molexp-test-index-"))


WORKSPACE_ID = "lab"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "lab"
    path.mkdir()
    return path.resolve()


@pytest.fixture
def catalog(root: Path) -> Iterator[Catalog]:
    cat = Catalog(root, WORKSPACE_ID)
    yield cat
    cat.close()


@pytest.fixture
def run_scope() -> AssetScope:
    return AssetScope.for_run(WORKSPACE_ID, "qm9", "baseline", "r1")


@pytest.fixture
def run_dir(root: Path) -> Path:
    return root / "projects" / "qm9" / "experiments" / "baseline" / "runs" / "run-r1"


@pytest.fixture
def producer() -> Producer:
    return Producer(run_id="r1", execution_id="exec1")
