"""Shared fixtures for the molexp-workspace tests: a workspace, a project and an experiment."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from molexp.workspace import Experiment, Project, Workspace, clear_registry

# Every test session keeps its per-host index files in a directory of its own, not in ~/.cache.
os.environ.setdefault("MOLEXP_INDEX_DIR", tempfile.mkdtemp(prefix="molexp-test-index-"))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return (tmp_path / "lab").resolve()


@pytest.fixture
def ws(root: Path) -> Workspace:
    return Workspace(root, name="Lab")


@pytest.fixture
def project(ws: Workspace) -> Project:
    return ws.Project("QM9")


@pytest.fixture
def exp(project: Project) -> Experiment:
    return project.Experiment("baseline", params={"lr": 1e-3})


@pytest.fixture(autouse=True)
def _empty_registry() -> Iterator[None]:
    clear_registry()
    yield
    clear_registry()
