"""A file cache shared by a lab: entries follow the umask; hits on others' entries work."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from molexp.workflow.cache import Caching, FileCacheStore
from molexp.workflow.snapshot import TaskSnapshot

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")


def featurize(ctx: Any) -> Any:
    return ctx


SNAPSHOT = TaskSnapshot.from_callable(featurize, task_id="featurize", config={"lr": 0.1})


@pytest.fixture(params=[0o002, 0o022], ids=["umask0002", "umask0022"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def test_entries_follow_the_umask_not_mkdtemp(umask: int, tmp_path: Path) -> None:
    store = FileCacheStore(tmp_path / "cache")
    key = Caching(store=store).put(SNAPSHOT, 1, "v")
    entry = store.store_dir / "entries" / key.replace(":", "_")
    assert stat.S_IMODE(entry.stat().st_mode) == 0o777 & ~umask
    assert [path.name for path in entry.iterdir()] == ["payload.pkl"]
    assert stat.S_IMODE((entry / "payload.pkl").stat().st_mode) == 0o666 & ~umask


def test_a_hit_on_another_users_entry_is_still_a_hit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a file's owner may set explicit times: touching falls back to "now", then gives up."""
    store = FileCacheStore(tmp_path / "cache")
    cache = Caching(store=store)
    cache.put(SNAPSHOT, 1, "v")
    calls: list[dict[str, Any]] = []

    def not_the_owner(path: Any, *args: Any, **kwargs: Any) -> None:
        calls.append(kwargs)
        raise PermissionError(1, "Operation not permitted", str(path))

    monkeypatch.setattr(os, "utime", not_the_owner)
    assert cache.get(SNAPSHOT, 1) == "v"
    assert calls == [{"ns": calls[0]["ns"]}, {}]
