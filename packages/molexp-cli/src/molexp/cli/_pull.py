"""``molexp pull``'s bookkeeping: which remote files to fetch, and what earlier pulls wrote.

The pull state (``<local workspace>/.molexp/pull/<source>.json``) records, per path, the sha256,
size and mtime of the file as the last pull wrote it. Against the remote manifest each path is:

- fetched when it is missing locally, or when the local file is still what a pull wrote and the
  remote one differs;
- up to date when the local file has the remote digest (recorded in the state);
- skipped, with a warning, when the local file differs both from the remote one and from what a
  pull wrote (changed here since, or never written by a pull): local data is never overwritten.

Files are written to a temporary name beside their target, checked against the digest the remote
computed while sending, and renamed into place; the state is saved as files arrive, so an
interrupted pull resumes where it stopped (a file renamed but not yet recorded is found up to
date the next time).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._agent import file_sha256, safe_relpath

__all__ = ["PullPlan", "PullState", "plan_pull", "state_path"]

STATE_DIR = Path(".molexp") / "pull"


def state_path(local_root: Path, source: str) -> Path:
    key = hashlib.sha256(source.encode()).hexdigest()[:16]
    return local_root / STATE_DIR / f"{key}.json"


@dataclass
class PullState:
    """What earlier pulls from one source wrote: ``path -> {sha256, size, mtime_ns}``."""

    source: str
    files: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, source: str) -> PullState:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(source)
        except (OSError, ValueError):
            return cls(source)  # a damaged state only costs digests: nothing is overwritten
        files = data.get("files") if isinstance(data, dict) else None
        return cls(source, dict(files) if isinstance(files, dict) else {})

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temp.write_text(
            json.dumps({"source": self.source, "files": self.files}, sort_keys=True),
            encoding="utf-8",
        )
        temp.replace(path)

    def record(self, rel: str, local: Path, sha256: str) -> None:
        info = local.stat()
        self.files[rel] = {"sha256": sha256, "size": info.st_size, "mtime_ns": info.st_mtime_ns}

    def known_digest(self, rel: str, local: Path) -> str | None:
        """The recorded digest when ``local`` is unchanged since recorded (size and mtime)."""
        entry = self.files.get(rel)
        if entry is None:
            return None
        try:
            info = local.stat()
        except OSError:
            return None
        if info.st_size == entry.get("size") and info.st_mtime_ns == entry.get("mtime_ns"):
            return str(entry.get("sha256"))
        return None


@dataclass
class PullPlan:
    fetch: list[Mapping[str, Any]] = field(default_factory=list)
    unchanged: list[tuple[str, str]] = field(default_factory=list)
    """``(path, sha256)`` of local files already equal to the remote ones."""
    conflicts: list[tuple[str, str]] = field(default_factory=list)
    """``(path, why)`` of local files left alone."""


def plan_pull(
    manifest: Iterable[Mapping[str, Any]], state: PullState, local_root: Path
) -> PullPlan:
    """Decide, per manifest entry, whether to fetch it, leave it, or skip it (see module doc)."""
    plan = PullPlan()
    for entry in manifest:
        rel = str(entry["path"])
        safe_relpath(rel)
        remote_sha = str(entry["sha256"])
        local = local_root / rel
        if not os.path.lexists(local):
            plan.fetch.append(entry)
            continue
        if local.is_symlink() or not local.is_file():
            plan.conflicts.append((rel, "is not a regular file here"))
            continue
        recorded = state.files.get(rel, {}).get("sha256")
        local_sha = state.known_digest(rel, local) or file_sha256(local)
        if local_sha == remote_sha:
            plan.unchanged.append((rel, local_sha))
        elif recorded is not None and local_sha == recorded:
            plan.fetch.append(entry)
        elif recorded is not None:
            plan.conflicts.append((rel, "changed here since the last pull"))
        else:
            plan.conflicts.append((rel, "exists here and was not written by a pull"))
    return plan
