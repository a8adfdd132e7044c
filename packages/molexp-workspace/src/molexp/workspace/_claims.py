"""Exclusive transitions of a run record across hosts: one ``O_EXCL`` claim file per epoch.

``run.json`` carries an ``epoch``: how many transitions (create, start, finish, queue,
cancel, reap, ...) it has been through. A process moves a run from epoch ``e`` to
``e + 1`` only after creating ``<run_dir>/.claim-<e + 1>.json`` exclusively
— atomic on NFS, Lustre, GPFS and sshfs, unlike locks — so of any number of concurrent
claimers on any hosts exactly one wins each epoch. The claim holds the winner's host,
pid and the full record it is about to write; a loser (or anybody later) that finds a
claim newer than ``run.json`` rolls it forward by writing that record, so a winner that
died between its claim and its write loses nothing. Only the newest claims are kept.
"""

from __future__ import annotations

import contextlib
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from molexp.assets import VersionedRecord
from molexp.assets.storage import create_exclusive_bytes, on_local_filesystem
from pydantic import ValidationError

from ._records import RunMetadata, utc_now
from ._stale import this_host

__all__ = [
    "CLAIM_PREFIX",
    "Claim",
    "claim_exists",
    "claim_path",
    "prune_claims",
    "read_claim",
    "try_claim",
]

CLAIM_PREFIX = ".claim-"
CLAIM_WAIT_SECONDS = 5.0
"""How long a claim whose content is not readable yet is waited for (its writer is mid-write)."""


class Claim(VersionedRecord):
    """``<run_dir>/.claims/<epoch>.json``: who moved the run to ``epoch``, and to what."""

    epoch: int
    action: str
    host: str
    pid: int
    at: datetime
    record: dict[str, Any]

    def describe(self) -> str:
        return f"process {self.pid} on host {self.host} ({self.action})"


def claim_path(run_dir: Path, epoch: int) -> Path:
    return run_dir / f"{CLAIM_PREFIX}{epoch}.json"


def try_claim(run_dir: Path, action: str, record: RunMetadata) -> bool:
    """Create the claim of ``record.epoch`` holding ``record``; False if somebody has it."""
    path = claim_path(run_dir, record.epoch)
    claim = Claim(
        epoch=record.epoch,
        action=action,
        host=this_host(),
        pid=os.getpid(),
        at=utc_now(),
        record=record.model_dump(mode="json"),
    )
    data = claim.model_dump_json().encode("utf-8")
    if not on_local_filesystem(path):
        # Created with its whole content (a temp file linked into place): no other client
        # ever reads it half written, nor caches its size while it is empty.
        return create_exclusive_bytes(path, data, durable=False)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    except FileExistsError:
        return False
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    return True


def read_claim(run_dir: Path, epoch: int, *, wait: float | None = None) -> Claim | None:
    """The claim of ``epoch``; None if it stayed unreadable for ``wait`` seconds (its claimer
    died while writing it: the epoch is void). ``FileNotFoundError`` if there is none."""
    path = claim_path(run_dir, epoch)
    deadline = time.monotonic() + (CLAIM_WAIT_SECONDS if wait is None else wait)
    delay = 0.005
    while True:
        try:
            return Claim.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            raise
        except (ValidationError, ValueError, OSError):
            if time.monotonic() >= deadline:
                return None
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def claim_exists(run_dir: Path, epoch: int) -> bool:
    return claim_path(run_dir, epoch).exists()


def prune_claims(run_dir: Path, epoch: int) -> None:
    """Drop the claim just before ``epoch`` (the newest stays, for rolling forward)."""
    if epoch > 0:
        with contextlib.suppress(OSError):
            claim_path(run_dir, epoch - 1).unlink()
