"""Several processes registering assets in one workspace at once lose nothing."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from pathlib import Path

from assets_helpers import dumps, scope_dir
from molexp.assets import (
    ArtifactStore,
    AssetScope,
    Catalog,
    CheckpointStore,
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
