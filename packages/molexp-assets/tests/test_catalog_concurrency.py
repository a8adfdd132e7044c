"""Several processes registering assets in one workspace at once lose nothing."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from pathlib import Path

from assets_helpers import dumps, scope_dir
from molexp.assets import (
    ArtifactStore,
    AssetScope,
    Catalog,
    CheckpointStore,
    DataAssetLibrary,
    Producer,
)

PROCESSES = 4
SAVES_PER_PROCESS = 15
EXPERIMENT = AssetScope.for_experiment("lab", "p1", "e1")
_fork = multiprocessing.get_context("fork")


def _run_scope(worker: int) -> AssetScope:
    return AssetScope.for_run("lab", "p1", "e1", f"r{worker}")


def _save_artifacts(root: Path, catalog: Catalog, worker: int) -> None:
    scope = _run_scope(worker)
    own = ArtifactStore(catalog, scope, scope_dir(root, scope), Producer(run_id=scope.run_id or ""))
    shared = ArtifactStore(catalog, EXPERIMENT, scope_dir(root, EXPERIMENT), None)
    for index in range(SAVES_PER_PROCESS):
        own.save(f"out-{index}.json", {"worker": worker, "index": index})
        shared.save(f"shared-{index % 3}.txt", f"written by {worker}")


def _run_workers(target: Callable[..., None], *args: object) -> None:
    workers = [_fork.Process(target=target, args=(*args, n)) for n in range(PROCESSES)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [worker.exitcode for worker in workers] == [0] * PROCESSES


def test_concurrent_registration_keeps_every_asset(catalog: Catalog, root: Path) -> None:
    catalog.count()  # the parent's connection exists before the fork; children must not reuse it
    _run_workers(_save_artifacts, root, catalog)

    for worker in range(PROCESSES):
        assert catalog.count(scope=_run_scope(worker)) == SAVES_PER_PROCESS
    shared = catalog.query_assets(scope=EXPERIMENT)
    assert sorted(asset.name for asset in shared) == [
        "shared-0.txt",
        "shared-1.txt",
        "shared-2.txt",
    ]
    for asset in shared:  # each record describes the payload that ended up on disk
        assert (root / asset.path).read_text().startswith("written by ")
    before = dumps(catalog.query_assets())
    report = catalog.rebuild()
    assert report.broken == () and report.indexed == PROCESSES * SAVES_PER_PROCESS + 3
    assert dumps(catalog.query_assets()) == before


def _save_checkpoints(root: Path, catalog: Catalog, worker: int) -> None:
    scope = _run_scope(0)
    store = CheckpointStore(catalog, scope, scope_dir(root, scope), Producer(run_id="r0"))
    for index in range(5):
        store.save(f"w{worker}", {"index": index})


def test_concurrent_checkpoints_form_one_linear_chain(catalog: Catalog, root: Path) -> None:
    _run_workers(_save_checkpoints, root, catalog)
    scope = _run_scope(0)
    chain = CheckpointStore(catalog, scope, scope_dir(root, scope), None).chain()
    assert [c.sequence for c in chain] == list(range(1, PROCESSES * 5 + 1))
    assert chain[0].parent_id is None
    assert all(c.parent_id == prev.id for prev, c in zip(chain, chain[1:], strict=False))


def _use_without_locks(root: Path, asset_id: str, go: float, worker: int) -> None:
    import contextlib
    import time

    from molexp.assets import _catalog

    @contextlib.contextmanager
    def no_lock(path: Path, timeout: float = 0.0) -> Iterator[None]:
        yield

    _catalog.locked = no_lock  # type: ignore[assignment]  # as on hosts sharing no locks
    catalog = Catalog(root, "lab")
    time.sleep(max(0.0, go - time.time()))
    for index in range(5):
        catalog.record_use(asset_id, run_id=f"w{worker}-r{index}")


def test_uses_recorded_at_once_from_many_hosts_are_all_kept(tmp_path: Path) -> None:
    import time

    root = tmp_path / "lab"
    catalog = Catalog(root, "lab")
    shared = AssetScope.for_workspace("lab")
    data = root / "features.csv"
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_text("x\n")
    asset = DataAssetLibrary(catalog, shared, root).import_asset("features", data)
    go = time.time() + 0.3
    workers = [
        _fork.Process(target=_use_without_locks, args=(root, asset.id, go, n))
        for n in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    expected = sorted(f"w{n}-r{i}" for n in range(PROCESSES) for i in range(5))
    lineage = Catalog(root, "lab").lineage(asset.id)
    assert sorted(use.run_id for use in lineage.consumed_by) == expected
    catalog.rebuild()
    assert sorted(use.run_id for use in catalog.lineage(asset.id).consumed_by) == expected
