"""Shared checks of the reliability suite: whole-workspace validation, tree digests, the CLI.

``validate_workspace`` reads every record of a workspace the way a later reader would
(each one must parse as its pydantic model, JSON payloads must decode), ``tree_digest``
fingerprints a directory tree, ``index_snapshot`` captures what the run index and the
asset catalog answer, and ``molexp`` runs the real executable in a subprocess.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from molexp.assets import Catalog, load_asset_record, locked
from molexp.assets._io import load_record
from molexp.workspace import (
    ExperimentMetadata,
    ProjectMetadata,
    RunMetadata,
    Workspace,
    WorkspaceMetadata,
)

_EXECUTABLE = shutil.which("molexp")
MOLEXP = [_EXECUTABLE] if _EXECUTABLE else [sys.executable, "-m", "molexp.cli"]
INDEX_DIR = ".molexp"
# Payloads and subsystem stores: their files are data, not hierarchy records.
NOT_RECORD_DIRS = frozenset(
    {INDEX_DIR, ".subsystems", ".ckpt", "artifacts", "logs", "data_assets", "execution"}
)
RECORD_MODELS: dict[str, Any] = {
    "workspace.json": WorkspaceMetadata,
    "project.json": ProjectMetadata,
    "experiment.json": ExperimentMetadata,
    "run.json": RunMetadata,
}


def molexp(
    *args: str | Path,
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run the ``molexp`` executable; ``MOLEXP_*`` variables of this process are dropped."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MOLEXP_")}
    environment.update(env or {})
    return subprocess.run(
        [*MOLEXP, *map(str, args)],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def molexp_popen(
    *args: str | Path, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """Start ``molexp`` without waiting (its output is captured)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MOLEXP_")}
    environment.update(env or {})
    return subprocess.Popen(
        [*MOLEXP, *map(str, args)],
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def assert_one_line_error(completed: subprocess.CompletedProcess[str]) -> str:
    """A CLI failure: non-zero exit, exactly one ``error: ...`` line, no traceback."""
    assert completed.returncode != 0, completed
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, completed.stderr
    assert lines[0].startswith("error: "), completed.stderr
    assert "Traceback" not in completed.stderr
    return lines[0]


def tree_digest(root: Path, *, skip_index: bool = True) -> str:
    """sha256 over every path, file mode and file content under ``root``.

    The SQLite index directory is left out by default: it is a rebuildable cache whose
    WAL files change when it is merely read; compare ``index_snapshot`` for it instead.
    """
    digest = hashlib.sha256()
    for current, dirnames, filenames in os.walk(root):
        dirnames.sort()
        here = Path(current)
        if skip_index and here == root and INDEX_DIR in dirnames:
            dirnames.remove(INDEX_DIR)
        for name in sorted([*dirnames, *filenames]):
            path = here / name
            stat = path.lstat()
            digest.update(f"{path.relative_to(root)}\0{stat.st_mode}\0".encode())
            if path.is_symlink():
                digest.update(os.readlink(path).encode())
            elif path.is_file():
                digest.update(path.read_bytes())
    return digest.hexdigest()


def temp_files(root: Path) -> list[Path]:
    """Hidden ``.*.tmp`` files or directories (atomic-write and staging leftovers)."""
    return sorted(p for p in root.rglob(".*.tmp"))


def lock_files(root: Path) -> list[Path]:
    """``*.lock`` files anywhere under ``root``."""
    return sorted(p for p in root.rglob("*.lock"))


def assert_no_lock_held(root: Path) -> int:
    """Take (and release) the record lock of every directory at once; returns how many."""
    count = 0
    for current, _dirnames, _filenames in os.walk(root):
        with locked(Path(current) / "probe.json", timeout=0):
            count += 1
    return count


@dataclass
class WorkspaceCheck:
    """What ``validate_workspace`` read: records per file name, asset records, payloads."""

    records: Counter[str] = field(default_factory=Counter)
    assets: int = 0
    json_payloads: int = 0
    runs: dict[str, RunMetadata] = field(default_factory=dict)


def validate_workspace(root: Path) -> WorkspaceCheck:
    """Read every record under ``root`` as a later reader would; any failure raises.

    Hierarchy records must parse as their model, every ``.assets/*.json`` as an asset,
    and every JSON payload the asset records point at must decode.
    """
    check = WorkspaceCheck()
    for current, dirnames, filenames in os.walk(root):
        dirnames[:] = [name for name in dirnames if name not in NOT_RECORD_DIRS]
        here = Path(current)
        for name in filenames:
            path = here / name
            if name.startswith("."):
                continue
            model = RECORD_MODELS.get(name)
            if model is not None:
                record = load_record(path, model)
                check.records[name] += 1
                if isinstance(record, RunMetadata):
                    check.runs[str(here)] = record
            elif here.name == ".assets" and name.endswith(".json"):
                asset = load_asset_record(path)
                check.assets += 1
                payload = root / asset.path
                if getattr(asset, "media_type", None) == "application/json":
                    json.loads(payload.read_bytes())
                    check.json_payloads += 1
    return check


def index_snapshot(ws: Workspace) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What the run index and the asset catalog answer: every run and every asset."""
    runs = sorted(ws.runs().to_records(), key=lambda r: (r["project"], r["experiment"], r["id"]))
    assets = sorted(
        (asset.model_dump(mode="json") for asset in ws.catalog.query_assets()),
        key=lambda a: a["id"],
    )
    return runs, assets


def fresh_catalog_snapshot(root: Path, workspace_id: str) -> list[dict[str, Any]]:
    """Every asset as a new catalog (own connection) sees it."""
    with Catalog(root, workspace_id) as catalog:
        return sorted(
            (asset.model_dump(mode="json") for asset in catalog.query_assets()),
            key=lambda a: a["id"],
        )
