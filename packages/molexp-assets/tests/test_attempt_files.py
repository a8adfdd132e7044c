"""Per-attempt stores: each attempt's artifacts and logs in its own files and records, the
current view as hard links, recovery of a save a killed writer left half done."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from molexp.assets import (
    ArtifactAsset,
    ArtifactStore,
    AssetKind,
    AssetScope,
    Catalog,
    LogAsset,
    LogHandle,
    Producer,
)
from molexp.assets._hashing import digest_payload
from molexp.assets.storage import preserve, show_in_view


def _store(catalog: Catalog, scope: AssetScope, run_dir: Path, execution: str) -> ArtifactStore:
    producer = Producer(run_id="r1", execution_id=execution)
    return ArtifactStore(catalog, scope, run_dir, producer, per_attempt=True)


def test_each_attempt_keeps_its_own_artifact_file_and_record(
    catalog: Catalog, run_scope: AssetScope, run_dir: Path
) -> None:
    first = _store(catalog, run_scope, run_dir, "e1").save("fit.json", {"eos": "murnaghan"})
    second = _store(catalog, run_scope, run_dir, "e2").save("fit.json", {"eos": "birch"})

    assert first.id != second.id
    assert first.path.endswith("run-r1/execution/e1/artifacts/fit.json")
    assert second.path.endswith("run-r1/execution/e2/artifacts/fit.json")
    assert b"murnaghan" in (catalog.root / first.path).read_bytes()
    assert b"birch" in (catalog.root / second.path).read_bytes()
    # The current view shows the latest attempt's bytes, as a hard link (no copy).
    view = run_dir / "artifacts" / "fit.json"
    assert view.samefile(catalog.root / second.path)
    assert os.stat(view).st_nlink == 2
    records = catalog.query_assets(kind=AssetKind.ARTIFACT, scope=run_scope)
    assert {asset.id for asset in records} == {first.id, second.id}
    stored = catalog.get(first.id)
    assert isinstance(stored, ArtifactAsset) and stored.producer is not None
    assert stored.producer.execution_id == "e1"
    # get/list/load answer with the latest attempt's artifact.
    store = _store(catalog, run_scope, run_dir, "e3")
    assert [asset.id for asset in store.list()] == [second.id]
    assert store.load("fit.json") == {"eos": "birch"}


def test_a_per_attempt_store_needs_an_execution(
    catalog: Catalog, run_scope: AssetScope, run_dir: Path
) -> None:
    with pytest.raises(ValueError, match="needs a producer naming its execution"):
        ArtifactStore(catalog, run_scope, run_dir, Producer(run_id="r1"), per_attempt=True)


def test_path_of_a_per_attempt_store_is_the_attempts_own_file(
    catalog: Catalog, run_scope: AssetScope, run_dir: Path
) -> None:
    old = _store(catalog, run_scope, run_dir, "e1")
    old.save("table.csv", "a,b\n1,2\n")
    new = _store(catalog, run_scope, run_dir, "e2")
    assert new.path("table.csv") == run_dir / "execution" / "e2" / "artifacts" / "table.csv"
    new.path("table.csv").write_text("a,b\n3,4\n")  # a tool writing in place: its dir exists
    new.save("table.csv", new.path("table.csv"))
    assert old.path("table.csv").read_text() == "a,b\n1,2\n"
    assert (run_dir / "artifacts" / "table.csv").read_text() == "a,b\n3,4\n"


def test_directory_artifacts_are_viewed_as_a_tree_of_links(
    catalog: Catalog, run_scope: AssetScope, run_dir: Path, tmp_path: Path
) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "x.txt").write_text("one")
    _store(catalog, run_scope, run_dir, "e1").save("out", tree)
    (tree / "sub" / "x.txt").write_text("two")
    _store(catalog, run_scope, run_dir, "e2").save("out", tree)
    assert (run_dir / "execution" / "e1" / "artifacts" / "out" / "sub" / "x.txt").read_text() == (
        "one"
    )
    view = run_dir / "artifacts" / "out" / "sub" / "x.txt"
    assert view.read_text() == "two"
    assert view.samefile(run_dir / "execution" / "e2" / "artifacts" / "out" / "sub" / "x.txt")


def test_each_attempt_logs_to_its_own_file_shown_in_the_view(
    catalog: Catalog, run_scope: AssetScope, run_dir: Path
) -> None:
    handles = []
    for execution in ("e1", "e2"):
        producer = Producer(run_id="r1", execution_id=execution)
        handle = LogHandle(catalog, run_scope, run_dir, "train", producer, per_attempt=True)
        handle.append(f"line of {execution}")
        handle.close()
        handles.append(handle)
    first, second = handles
    assert first.path == run_dir / "execution" / "e1" / "logs" / "train.log"
    assert first.read() == "line of e1\n"
    assert second.read() == "line of e2\n"
    assert first.asset_id != second.asset_id
    assert (run_dir / "logs" / "train.log").read_text() == "line of e2\n"
    # Appends through the handle show in the view at once (one file, two names).
    second.append("more")
    assert (run_dir / "logs" / "train.log").read_text() == "line of e2\nmore\n"
    second.close()
    for handle, lines in ((first, 1), (second, 2)):
        asset = catalog.get(handle.asset_id)
        assert isinstance(asset, LogAsset) and asset.line_count == lines


def test_a_log_of_the_old_layout_is_never_replaced_by_a_view_link(
    catalog: Catalog, run_scope: AssetScope, run_dir: Path
) -> None:
    legacy = run_dir / "logs" / "train.log"
    legacy.parent.mkdir(parents=True)
    legacy.write_text("old line\n")
    producer = Producer(run_id="r1", execution_id="e2")
    with LogHandle(catalog, run_scope, run_dir, "train", producer, per_attempt=True) as handle:
        handle.append("new line")
    assert legacy.read_text() == "old line\n"
    assert handle.read() == "new line\n"


def test_log_recover_recounts_a_record_that_lags_behind_its_file(
    catalog: Catalog, run_scope: AssetScope, run_dir: Path
) -> None:
    producer = Producer(run_id="r1", execution_id="e1", task_name="fit")
    handle = LogHandle(catalog, run_scope, run_dir, "train", producer, per_attempt=True)
    handle.append("one")  # registered on the first append
    handle.append("two")  # a killed writer never refreshed after this one
    stale = catalog.get(handle.asset_id)
    assert isinstance(stale, LogAsset) and stale.line_count == 1
    fresh = LogHandle(
        catalog,
        run_scope,
        run_dir,
        "train",
        Producer(run_id="r1", execution_id="e1"),
        per_attempt=True,
    ).recover()
    assert fresh is not None and fresh.line_count == 2
    assert fresh.producer is not None and fresh.producer.task_name == "fit"


def _aside(path: Path) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.old")


@pytest.mark.parametrize(
    ("moment", "kept"),
    [("before-replace", 1), ("after-replace", 1), ("after-register", 2)],
)
def test_recover_settles_a_save_killed_midway(
    catalog: Catalog, run_scope: AssetScope, run_dir: Path, moment: str, kept: int
) -> None:
    store = _store(catalog, run_scope, run_dir, "e1")
    store.save("m.json", {"step": 1})
    dest = store.path("m.json")
    # What `replacing` leaves when the writer of {"step": 2} is SIGKILLed at `moment`:
    if moment == "before-replace":
        os.link(dest, _aside(dest))
    elif moment == "after-replace":
        os.link(dest, _aside(dest))
        dest.unlink()
        dest.write_text('{"step": 2}')
    else:
        store.save("m.json", {"step": 2})
        _aside(dest).write_text('{"step": 1}')
    (dest.parent / ".m.json.0123456789ab.tmp").write_text("partial")

    store.recover()
    record = catalog.get(store.asset_id("m.json"))
    assert isinstance(record, ArtifactAsset)
    digest = digest_payload(dest)
    assert (digest.content_hash, digest.size) == (record.content_hash, record.size)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["m.json"]
    assert store.load("m.json") == {"step": kept}


def test_recover_puts_back_a_directory_moved_aside(
    catalog: Catalog, run_scope: AssetScope, run_dir: Path, tmp_path: Path
) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.txt").write_text("a")
    store = _store(catalog, run_scope, run_dir, "e1")
    store.save("out", tree)
    dest = store.path("out")
    dest.rename(_aside(dest))  # killed after moving the old tree aside
    assert store.recover() == ["out"]
    assert (dest / "a.txt").read_text() == "a"


def test_preserve_and_show_in_view(tmp_path: Path) -> None:
    source = tmp_path / "a.txt"
    source.write_text("bytes")
    target = tmp_path / "keep" / "a.txt"
    assert preserve(source, target) is True
    assert preserve(source, target) is False  # exists: left alone
    assert target.samefile(source)
    view = tmp_path / "view" / "a.txt"
    view.parent.mkdir()
    view.write_text("older")
    show_in_view(source, view)
    assert view.samefile(source)


def test_a_refused_save_leaves_no_attempt_directory_behind(
    catalog: Catalog, run_scope: AssetScope, run_dir: Path
) -> None:
    run_dir.mkdir(parents=True)
    store = _store(catalog, run_scope, run_dir, "e1")
    with pytest.raises(ValueError, match="lone surrogate"):
        store.save("text.txt", "\ud800")
    assert list(run_dir.iterdir()) == []
