"""me.entry(ws): the process-local registry the CLI discovers workspaces from."""

from __future__ import annotations

from pathlib import Path

import pytest
from molexp.workspace import Workspace, clear_registry, entry, registered_workspaces


def test_entry_registers_once_per_root(tmp_path: Path) -> None:
    lab = Workspace(tmp_path / "lab")
    other = Workspace(tmp_path / "other")
    assert entry(lab) is lab
    assert entry(lab) is lab
    entry(other)
    assert registered_workspaces() == [lab, other]
    again = Workspace(tmp_path / "lab")
    entry(again)
    assert registered_workspaces() == [again, other]
    assert not (tmp_path / "lab").exists()
    clear_registry()
    assert registered_workspaces() == []


def test_entry_requires_a_workspace(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="entry\\(\\) takes a Workspace, got PosixPath"):
        entry(tmp_path)  # type: ignore[arg-type]
