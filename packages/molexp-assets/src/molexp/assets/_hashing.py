"""Content hashing of asset payloads (files and directory trees).

A file hashes to the sha256 of its bytes. A directory hashes to the sha256 of one
line ``<relative posix path>\\0<file sha256>\\n`` per file, sorted by path, so the
result depends only on names and contents, never on creation order or timestamps.
Symbolic links are followed for files; a link to a directory inside a tree is
recorded by its target string instead of being descended into.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PayloadDigest", "digest_payload", "sha256_file"]

_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class PayloadDigest:
    """The content hash and total byte size of a payload."""

    content_hash: str
    size: int


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _tree_entries(root: Path) -> list[tuple[str, str, int]]:
    """``(relative path, hash, size)`` for every file (or dangling/dir link) under ``root``."""
    entries: list[tuple[str, str, int]] = []
    for current, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(current)
        for dirname in list(dirnames):
            link = base / dirname
            if link.is_symlink():
                target = str(link.readlink())
                rel = link.relative_to(root).as_posix()
                entries.append((rel, "link:" + target, 0))
                dirnames.remove(dirname)
        for filename in filenames:
            file_path = base / filename
            rel = file_path.relative_to(root).as_posix()
            if file_path.is_file():
                entries.append((rel, sha256_file(file_path), file_path.stat().st_size))
            else:
                entries.append((rel, "link:" + str(file_path.readlink()), 0))
    entries.sort()
    return entries


def digest_payload(path: Path) -> PayloadDigest:
    """Hash and measure a payload file or directory (following a top-level symlink)."""
    path = Path(path)
    if path.is_dir():
        digest = hashlib.sha256()
        total = 0
        for rel, file_hash, size in _tree_entries(path):
            digest.update(f"{rel}\0{file_hash}\n".encode())
            total += size
        return PayloadDigest(digest.hexdigest(), total)
    if not path.exists():
        raise FileNotFoundError(f"asset payload {path} does not exist")
    return PayloadDigest(sha256_file(path), path.stat().st_size)
