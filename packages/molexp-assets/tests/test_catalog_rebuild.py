"""Catalog rebuild: the index is a cache of the JSON record files and can always be rebuilt."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from assets_helpers import dumps, register, scope_dir
from molexp.assets import (
    ArtifactStore,
    AssetKind,
    AssetScope,
    Catalog,
    CheckpointStore,
    DataAssetLibrary,
    LogHandle,
    Producer,
)

WS = AssetScope.for_workspace("lab")
PROJECT = AssetScope.for_project("lab", "p1")
EXPERIMENT = AssetScope.for_experiment("lab", "p1", "e1")
RUN = AssetScope.for_run("lab", "p1", "e1", "r1")


def _populate(catalog: Catalog, root: Path, tmp_path: Path) -> None:
    source = tmp_path / "raw.csv"
    source.write_text("a,b\n1,2\n")
    DataAssetLibrary(catalog, WS, root).import_asset("raw", source, tags=["input"])
    producer = Producer(run_id="r1", execution_id="x1")
    run_dir = scope_dir(root, RUN)
    artifacts = ArtifactStore(catalog, RUN, run_dir, producer)
    artifacts.save("metrics.json", {"loss": 0.1}, tags=["metrics"])
    artifacts.save("notes.txt", "fine", task_name="report")
    with LogHandle(catalog, RUN, run_dir, "train", producer) as log:
        log.append("epoch 1")
    checkpoints = CheckpointStore(catalog, RUN, run_dir, producer)
    checkpoints.save("epoch", {"n": 1})
    checkpoints.save("epoch", {"n": 2})
    register(catalog, EXPERIMENT, "summary", AssetKind.ARTIFACT, tags=["metrics"])
    register(catalog, PROJECT, "vocab", AssetKind.DATA)
    raw = catalog.find("raw", [WS])
    assert raw is not None
    catalog.record_use(raw.id, run_id="r1", task_name="load")


def _snapshot(catalog: Catalog) -> dict[str, Any]:
    queries: dict[str, Any] = {
        "all": catalog.query_assets(),
        "artifacts": catalog.query_assets(kind="artifact"),
        "by_run": catalog.query_assets(producer_run="r1"),
        "run_scope": catalog.query_assets(scope=RUN),
        "in_project": catalog.query_assets(within=PROJECT),
        "tag": catalog.query_assets(tag="metrics"),
        "name": catalog.query_assets(name="epoch"),
    }
    snapshot: dict[str, Any] = {key: dumps(value) for key, value in queries.items()}
    found = catalog.find("raw", RUN.ancestors())
    snapshot["find"] = found.model_dump(mode="json") if found else None
    return snapshot


@pytest.fixture
def populated(catalog: Catalog, root: Path, tmp_path: Path) -> dict[str, Any]:
    _populate(catalog, root, tmp_path)
    return _snapshot(catalog)


def test_rebuild_gives_the_same_query_results(catalog: Catalog, populated: dict[str, Any]) -> None:
    report = catalog.rebuild()
    assert report.broken == ()
    assert report.indexed == report.scanned == len(populated["all"])
    assert _snapshot(catalog) == populated


def test_deleted_index_is_rebuilt_automatically(
    catalog: Catalog, root: Path, populated: dict[str, Any]
) -> None:
    catalog.db_path.unlink()
    # the same catalog notices the file is gone; a fresh catalog does too
    assert _snapshot(catalog) == populated
    catalog.close()
    shutil.rmtree(root / ".molexp")
    fresh = Catalog(root, "lab")
    try:
        assert _snapshot(fresh) == populated
    finally:
        fresh.close()


def test_a_catalog_follows_an_index_file_replaced_by_another_process(
    catalog: Catalog, root: Path, populated: dict[str, Any]
) -> None:
    """Deleted and recreated behind the catalog's back: writes go to the new file."""
    assert catalog.count() == len(populated["all"])
    for suffix in ("", "-wal", "-shm"):
        Path(f"{catalog.db_path}{suffix}").unlink(missing_ok=True)
    other = Catalog(root, "lab")  # e.g. another process: recreates and rebuilds the file
    try:
        assert other.count() == len(populated["all"])
        added = register(catalog, RUN, "late.json")
        assert other.get(added.id) == added
        assert catalog.count() == other.count() == len(populated["all"]) + 1
    finally:
        other.close()


def test_explicit_rebuild_after_deleting_the_index(
    catalog: Catalog, root: Path, populated: dict[str, Any]
) -> None:
    catalog.close()
    catalog.db_path.unlink()
    fresh = Catalog(root, "lab")
    try:
        report = fresh.rebuild()
        assert report.indexed == len(populated["all"])
        assert _snapshot(fresh) == populated
    finally:
        fresh.close()


def _record_dir(root: Path, scope: AssetScope) -> Path:
    return scope_dir(root, scope) / ".assets"


def test_broken_records_are_reported_with_their_file(
    catalog: Catalog, root: Path, populated: dict[str, Any]
) -> None:
    records = _record_dir(root, RUN)
    good = sorted(records.glob("*.json"))
    corrupt = records / "0000000000000001.json"
    corrupt.write_text("{ truncated")
    future = records / "0000000000000002.json"
    future.write_text(json.dumps(json.loads(good[0].read_text()) | {"version": 99}))
    renamed = records / "0000000000000003.json"
    shutil.copy(good[1], renamed)  # its id no longer matches the file name
    foreign_data = json.loads(good[2].read_text())
    foreign_data["scope"]["workspace_id"] = "elsewhere"
    foreign = _record_dir(root, EXPERIMENT) / f"{foreign_data['id']}.json"
    foreign.write_text(json.dumps(foreign_data))

    report = catalog.rebuild()

    reasons = {item.path.name: item.error for item in report.broken}
    assert set(reasons) == {corrupt.name, future.name, renamed.name, foreign.name}
    assert "not valid JSON" in reasons[corrupt.name]
    assert "newer" in reasons[future.name]
    assert "does not match the file name" in reasons[renamed.name]
    assert "'elsewhere'" in reasons[foreign.name]
    assert all(str(item.path) in item.error for item in report.broken)
    assert report.scanned == len(populated["all"]) + 4
    assert _snapshot(catalog) == populated


def test_duplicate_ids_are_reported(
    catalog: Catalog, root: Path, populated: dict[str, Any]
) -> None:
    original = next(_record_dir(root, RUN).glob("*.json"))
    copy_dir = root / "copied" / ".assets"
    copy_dir.mkdir(parents=True)
    shutil.copy(original, copy_dir / original.name)
    report = catalog.rebuild()
    assert len(report.broken) == 1
    assert "duplicate asset id" in report.broken[0].error
    assert _snapshot(catalog) == populated


def test_rebuild_skips_hidden_files_index_dir_and_payload_trees(
    catalog: Catalog, root: Path, populated: dict[str, Any], tmp_path: Path
) -> None:
    records = _record_dir(root, RUN)
    (records / ".half-written.json.tmp").write_text("{")
    (records / ".hidden.json").write_text("{")
    (root / ".molexp" / ".assets").mkdir()
    (root / ".molexp" / ".assets" / "x.json").write_text("{")
    (root / ".git" / ".assets").mkdir(parents=True)
    (root / ".git" / ".assets" / "y.json").write_text("{")
    # an imported tree that happens to contain another workspace's records
    foreign = tmp_path / "other-lab"
    (foreign / ".assets").mkdir(parents=True)
    (foreign / ".assets" / "z.json").write_text("{")
    DataAssetLibrary(catalog, WS, root).import_asset("other-lab", foreign)
    artifacts = ArtifactStore(catalog, RUN, scope_dir(root, RUN), Producer(run_id="r1"))
    artifacts.save("copied-lab", foreign)
    expected = _snapshot(catalog)

    report = catalog.rebuild()

    assert report.broken == ()
    assert _snapshot(catalog) == expected


def test_records_are_indexed_when_another_layer_created_the_index_first(
    catalog: Catalog, root: Path, populated: dict[str, Any]
) -> None:
    catalog.close()
    shutil.rmtree(root / ".molexp")
    other_layer = Catalog(root, "lab").connect()
    with other_layer:
        other_layer.execute("CREATE TABLE runs (id TEXT PRIMARY KEY)")
    other_layer.close()
    fresh = Catalog(root, "lab")
    try:
        assert _snapshot(fresh) == populated
    finally:
        fresh.close()


def test_reindex_scope_repairs_one_scope_after_a_dead_writer(
    catalog: Catalog, root: Path, populated: dict[str, Any]
) -> None:
    """A writer killed between a record file and its index row (or a file and its row's
    deletion) leaves the index behind; reindexing the scope brings it back in step."""
    records = _record_dir(root, RUN)
    unindexed = register(catalog, RUN, "late.json")
    catalog._write(lambda conn: conn.execute("DELETE FROM assets WHERE id = ?", (unindexed.id,)))
    vanished = next(a for a in catalog.query_assets(scope=RUN) if a.id != unindexed.id)
    (records / f"{vanished.id}.json").unlink()
    (records / "not-json.json").write_text("{")
    untouched = catalog.query_assets(scope=WS)
    report = catalog.reindex_scope(RUN, records)
    assert [Path(b.path).name for b in report.broken] == ["not-json.json"]
    ids = {a.id for a in catalog.query_assets(scope=RUN)}
    assert unindexed.id in ids and vanished.id not in ids
    assert report.indexed == len(ids)
    assert catalog.query_assets(scope=WS) == untouched
