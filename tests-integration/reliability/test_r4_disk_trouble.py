"""R4: a write that fails midway (a full disk) leaves the previous record intact.

Faults are injected at the system-call boundary the persistence code uses: ``os.write``
(after writing half of the bytes, as a full disk does), ``os.fsync`` of the temp file,
``os.replace`` and ``os.fsync`` of the directory after the rename raise
``OSError(ENOSPC)`` for the one record under test, while everything else proceeds; the
index write failing is covered too. For run.json, experiment.json, asset records (with
their artifact and data payloads) and cache entries the previous version must still be
there byte for byte afterwards - a failure after the rename is rolled back - no temp
file may be left behind, the run index and asset catalog must still agree with the
files, and the same step must succeed once the disk has room again.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from molexp.assets import DataAsset, load_asset_record
from molexp.workflow import Caching, FileCacheStore, TaskSnapshot
from molexp.workflow.cache import CacheStoreError
from molexp.workspace import Experiment, RunStatus, Workspace
from molexp.workspace import _workspace as workspace_module
from molexp.workspace._index import RunIndex
from reliability_helpers import index_snapshot, temp_files, validate_workspace

MODES = ["write", "fsync", "replace", "fsync-dir"]


class Faults:
    """Counts injected failures."""

    def __init__(self) -> None:
        self.raised = 0


def _fd_path(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


def _disk_full() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@contextmanager
def disk_full(monkeypatch: pytest.MonkeyPatch, mode: str, record: Path) -> Iterator[Faults]:
    """Make one system call fail with ENOSPC for ``record`` (see ``failing``).

    ``write`` first writes half of the bytes, like a disk filling up mid-write.
    """
    syscall, hits = failing(mode, record)
    faults = Faults()
    real = getattr(os, syscall)

    def write(fd: int, data: Any) -> int:
        if hits(_fd_path(fd)):
            faults.raised += 1
            real(fd, bytes(data)[: max(1, len(data) // 2)])
            raise _disk_full()
        return int(real(fd, data))

    def fsync(fd: int) -> None:
        if hits(_fd_path(fd)):
            faults.raised += 1
            raise _disk_full()
        real(fd)

    def replace(src: Any, dst: Any, **kwargs: Any) -> None:
        if hits(os.fspath(src)) or hits(os.fspath(dst)):
            faults.raised += 1
            raise _disk_full()
        real(src, dst, **kwargs)

    monkeypatch.setattr(os, syscall, {"write": write, "fsync": fsync, "replace": replace}[syscall])
    try:
        yield faults
    finally:
        monkeypatch.setattr(os, syscall, real)


def failing(mode: str, record: Path) -> tuple[str, Callable[[str], bool]]:
    """The system call to break for ``mode`` and which paths it fails for.

    ``write``/``fsync``/``replace`` hit the temp file (or final name) of ``record``;
    ``fsync-dir`` hits the fsync of its directory after the rename.
    """
    if mode == "fsync-dir":
        directory = str(record.parent)
        return "fsync", lambda path: path == directory
    name = record.name
    return (
        mode,
        lambda path: os.path.basename(path).startswith(f".{name}.") or path.endswith(f"/{name}"),
    )


def _leftovers(root: Path) -> list[Path]:
    return temp_files(root) + sorted(root.rglob(".*.old"))


@pytest.fixture
def exp(tmp_path: Path) -> Experiment:
    return Workspace(tmp_path / "lab").Project("disk").Experiment("full")


def on_disk_status(path: Path) -> str:
    return str(json.loads(path.read_text())["status"])


def _index(exp: Experiment) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return index_snapshot(Workspace(exp.workspace.root))


@pytest.mark.parametrize("mode", MODES)
def test_run_json_survives_a_failed_durable_write(
    exp: Experiment, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    run = exp.Run(parameters={"x": 1})
    before, index_before = run.record_path.read_bytes(), _index(exp)
    with disk_full(monkeypatch, mode, run.record_path) as faults, pytest.raises(OSError):
        run.cancel()
    assert faults.raised >= 1  # a rollback after the rename meets the full disk again
    assert run.record_path.read_bytes() == before
    assert run.status is RunStatus.pending
    assert _index(exp) == index_before
    assert _leftovers(exp.workspace.root) == []
    run.cancel()  # the disk has room again: the same step now works
    assert exp.get_run(run.id).status is RunStatus.cancelled


@pytest.mark.parametrize("mode", ["write", "replace"])
def test_run_json_survives_a_failed_start_and_a_failed_finish(
    exp: Experiment, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    run = exp.Run()
    pending = run.record_path.read_bytes()
    with disk_full(monkeypatch, mode, run.record_path), pytest.raises(OSError):
        run.start().__enter__()
    assert run.record_path.read_bytes() == pending
    assert _leftovers(exp.workspace.root) == []

    context = run.start()
    context.__enter__()
    context.set_result("loss", 0.5)
    running = run.record_path.read_bytes()
    with disk_full(monkeypatch, mode, run.record_path), pytest.raises(OSError):
        context.__exit__(None, None, None)
    assert run.record_path.read_bytes() == running
    assert exp.get_run(run.id).status is RunStatus.running
    assert [r["status"] for r in _index(exp)[0]] == ["running"]
    assert _leftovers(exp.workspace.root) == []


def test_a_failed_index_write_never_fails_or_undoes_the_run_record(
    exp: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The records are the truth: an index that cannot be written is repaired, not obeyed."""
    run = exp.Run()

    def index_fails(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(RunIndex, "apply_writes", index_fails)
    monkeypatch.setattr(workspace_module, "_PENDING_MAX", 1)  # each write flushes its index row
    run.cancel()
    kept = exp.Run(id="kept")
    monkeypatch.undo()
    assert on_disk_status(run.record_path) == "cancelled"
    assert on_disk_status(kept.record_path) == "pending"
    # The next query catches up from the change feed: the index equals a rebuild.
    caught_up = _index(exp)
    Workspace(exp.workspace.root).rebuild_index()
    assert caught_up == _index(exp)
    assert {row["id"]: row["status"] for row in caught_up[0]} == {
        run.id: "cancelled",
        "kept": "pending",
    }
    assert validate_workspace(exp.workspace.root).records["run.json"] == 2


@pytest.mark.parametrize("mode", MODES)
def test_experiment_json_survives_a_failed_save(
    exp: Experiment, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    before = exp.record_path.read_bytes()
    exp.metadata.description = "changed"
    with disk_full(monkeypatch, mode, exp.record_path), pytest.raises(OSError):
        exp.save()
    assert exp.record_path.read_bytes() == before
    assert _leftovers(exp.workspace.root) == []
    exp.save()
    assert exp.reload().description == "changed"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("part", ["payload", "record"])
def test_an_artifact_and_its_record_survive_a_failed_save(
    exp: Experiment, monkeypatch: pytest.MonkeyPatch, mode: str, part: str
) -> None:
    root = exp.workspace.root
    with exp.Run().start() as ctx:
        first = ctx.artifact.save("metrics.json", {"loss": 1.0})
        record = ctx.run.run_dir / ".assets" / f"{first.id}.json"
        payload = root / first.path
        before = (record.read_bytes(), payload.read_bytes())
        catalog_before = _index(exp)[1]
        target = payload if part == "payload" else record
        with disk_full(monkeypatch, mode, target) as faults, pytest.raises(OSError):
            ctx.artifact.save("metrics.json", {"loss": 0.5})
        assert faults.raised >= 1
        assert (record.read_bytes(), payload.read_bytes()) == before
        assert ctx.artifact.load("metrics.json") == {"loss": 1.0}
        assert _index(exp)[1] == catalog_before
        assert _leftovers(root) == []
        ctx.artifact.save("metrics.json", {"loss": 0.5})
    assert ctx.run.assets.get("metrics.json") is not None
    assert validate_workspace(root).json_payloads == 1


def test_a_failed_catalog_write_never_fails_or_undoes_the_artifact(
    exp: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    with exp.Run().start() as ctx:
        ctx.artifact.save("metrics.json", {"loss": 1.0})
        catalog = exp.workspace.catalog

        def index_fails(work: object) -> None:
            raise sqlite3.OperationalError("database or disk is full")

        monkeypatch.setattr(catalog, "_write", index_fails)
        second = ctx.artifact.save("metrics.json", {"loss": 0.5})
        monkeypatch.undo()
        assert ctx.artifact.load("metrics.json") == {"loss": 0.5}
        record = ctx.run.run_dir / ".assets" / f"{second.id}.json"
        assert load_asset_record(record) == second
        # A fresh reader catches up from the change feed.
        fresh = Workspace(exp.workspace.root).catalog.get(second.id)
        assert fresh == second


@pytest.mark.parametrize("mode", MODES)
def test_a_data_asset_survives_a_failed_reimport(
    exp: Experiment, monkeypatch: pytest.MonkeyPatch, mode: str, tmp_path: Path
) -> None:
    source = tmp_path / "features.csv"
    source.write_text("old\n")
    first = exp.data_assets.import_asset("features", source)
    record = exp.experiment_dir / ".assets" / f"{first.id}.json"
    before = record.read_bytes()
    source.write_text("new\n")
    with disk_full(monkeypatch, mode, record), pytest.raises(OSError):
        exp.data_assets.import_asset("features", source, overwrite=True)
    assert record.read_bytes() == before
    assert exp.data_assets.path("features").read_text() == "old\n"
    assert _leftovers(exp.workspace.root) == []
    again = exp.data_assets.import_asset("features", source, overwrite=True)
    assert isinstance(again, DataAsset) and again.created_at == first.created_at
    assert exp.data_assets.path("features").read_text() == "new\n"


def _snapshot() -> TaskSnapshot:
    def train(x: int) -> int:
        return x

    return TaskSnapshot.from_callable(train, task_id="train")


def _payload_write_fails(monkeypatch: pytest.MonkeyPatch) -> Faults:
    faults = Faults()
    real = Path.write_bytes

    def write_bytes(self: Path, data: Any) -> int:
        if self.name == FileCacheStore.PAYLOAD_FILE:
            faults.raised += 1
            real(self, bytes(data)[: len(data) // 2])
            raise _disk_full()
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    return faults


def _rename_into_place_fails(monkeypatch: pytest.MonkeyPatch, entries: Path) -> Faults:
    faults = Faults()
    real = Path.rename

    def rename(self: Path, target: Any) -> Path:
        # The first attempt meets the existing entry; fail the move into the freed slot.
        free = not Path(target).exists()
        if Path(target).parent == entries and self.name.startswith("entry-") and free:
            faults.raised += 1
            raise _disk_full()
        return real(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    return faults


@pytest.mark.parametrize("failing", ["payload write", "rename into place"])
def test_a_cache_entry_survives_a_failed_put(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    store = FileCacheStore(tmp_path / "cache")
    cache = Caching(store=store)
    snapshot = _snapshot()
    key = cache.put(snapshot, {"x": 1}, {"value": "first"})
    entry_dir = store.store_dir / "entries" / key.replace(":", "_")
    before = {p.name: p.read_bytes() for p in entry_dir.iterdir()}
    if failing == "payload write":
        faults = _payload_write_fails(monkeypatch)
    else:
        faults = _rename_into_place_fails(monkeypatch, entry_dir.parent)
    with pytest.raises(CacheStoreError, match="train"):
        cache.put(snapshot, {"x": 1}, {"value": "second"})
    monkeypatch.undo()
    assert faults.raised == 1
    assert {p.name: p.read_bytes() for p in entry_dir.iterdir()} == before
    assert cache.get(snapshot, {"x": 1}) == {"value": "first"}
    assert pickle.loads(before["payload.pkl"]) == {"value": "first"}
    assert list((store.store_dir / ".tmp").iterdir()) == []
    assert sorted(p.name for p in store.store_dir.rglob("*")) == sorted(
        [".tmp", "entries", entry_dir.name, *before]
    )
