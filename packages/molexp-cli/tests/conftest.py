"""Shared fixtures: registry isolation and small helpers for scripts and workspace trees."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator

import pytest
from molexp.workflow.bindings import clear_bindings
from molexp.workspace import clear_registry

# Every test session keeps its per-host index files in a directory of its own, not in ~/.cache.
os.environ.setdefault("MOLEXP_INDEX_DIR", tempfile.mkdtemp(prefix="molexp-test-index-"))


@pytest.fixture(autouse=True)
def _isolated_registries(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts and ends with empty entry/binding registries and no MOLEXP_* env."""
    monkeypatch.delenv("MOLEXP_WORKSPACE", raising=False)
    monkeypatch.delenv("MOLEXP_DEBUG", raising=False)
    saved_path = list(sys.path)
    clear_registry()
    clear_bindings()
    yield
    clear_registry()
    clear_bindings()
    sys.path[:] = saved_path
