"""A store whose record write fails leaves payload and record as they were before."""

from __future__ import annotations

import errno
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from molexp.assets import (
    ArtifactStore,
    AssetScope,
    Catalog,
    CheckpointStore,
    DataAssetLibrary,
    Producer,
    atomic_write_text,
)
from molexp.assets._payload import replacing

RUN = AssetScope.for_run("lab", "p", "e", "r")
EXPERIMENT = AssetScope.for_experiment("lab", "p", "e")


class DiskFull(OSError):
    def __init__(self) -> None:
        super().__init__(errno.ENOSPC, "No space left on device")


def _fail_registration(monkeypatch: pytest.MonkeyPatch, catalog: Catalog) -> None:
    def register(*args: object, **kwargs: object) -> None:
        raise DiskFull()

    monkeypatch.setattr(catalog, "register", register)


def _hidden(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob(".*") if p.name != ".assets")


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("old text", "new text"),
        ("old text", {"new": "json"}),
        (None, "brand new"),
    ],
)
def test_replacing_restores_a_file_or_removes_a_new_one(
    tmp_path: Path, before: str | None, after: object
) -> None:
    dest = tmp_path / "payload.txt"
    if before is not None:
        dest.write_text(before)
    with pytest.raises(DiskFull), replacing(dest):
        atomic_write_text(dest, json.dumps(after))  # payloads are replaced, never rewritten
        raise DiskFull()
    if before is None:
        assert not dest.exists()
    else:
        assert dest.read_text() == before
    assert list(tmp_path.iterdir()) == ([dest] if before is not None else [])


def test_replacing_restores_a_directory_replaced_by_a_file(tmp_path: Path) -> None:
    dest = tmp_path / "tree"
    dest.mkdir()
    (dest / "a.txt").write_text("a")
    with pytest.raises(DiskFull), replacing(dest):
        assert not dest.exists()  # moved aside while the new payload is built
        dest.write_text("file now")
        raise DiskFull()
    assert (dest / "a.txt").read_text() == "a"
    assert [p.name for p in tmp_path.iterdir()] == ["tree"]


def test_replacing_restores_a_file_replaced_by_a_directory(tmp_path: Path) -> None:
    dest = tmp_path / "payload"
    dest.write_text("file")
    with pytest.raises(DiskFull), replacing(dest):
        dest.unlink()
        dest.mkdir()
        raise DiskFull()
    assert dest.read_text() == "file"
    assert [p.name for p in tmp_path.iterdir()] == ["payload"]


def test_replacing_keeps_the_new_payload_on_success(tmp_path: Path) -> None:
    dest = tmp_path / "payload.txt"
    dest.write_text("old")
    with replacing(dest):
        atomic_write_text(dest, "new")
    assert dest.read_text() == "new"
    assert list(tmp_path.iterdir()) == [dest]


def test_failed_artifact_registration_keeps_the_previous_artifact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = Catalog(tmp_path, "lab")
    store = ArtifactStore(catalog, RUN, tmp_path / "run", Producer(run_id="r"))
    first = store.save("metrics.json", {"loss": 1.0})
    _fail_registration(monkeypatch, catalog)
    with pytest.raises(DiskFull):
        store.save("metrics.json", {"loss": 0.5})
    with pytest.raises(DiskFull):
        store.save("fresh.txt", "never registered")
    monkeypatch.undo()
    assert store.load("metrics.json") == {"loss": 1.0}
    assert store.get("metrics.json") == first
    assert not store.path("fresh.txt").exists()
    assert _hidden(tmp_path / "run") == []


def test_failed_checkpoint_registration_leaves_no_payload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = Catalog(tmp_path, "lab")
    store = CheckpointStore(catalog, RUN, tmp_path / "run", Producer(run_id="r"))
    store.save("epoch", {"epoch": 1})
    _fail_registration(monkeypatch, catalog)
    with pytest.raises(DiskFull):
        store.save("epoch", {"epoch": 2})
    monkeypatch.undo()
    assert [p.name for p in store.directory.iterdir()] == ["000001-epoch"]
    second = store.save("epoch", {"epoch": 2})
    assert (second.sequence, store.load(second)) == (2, {"epoch": 2})


@pytest.mark.parametrize("action", ["copy", "move", "hardlink", "symlink"])
def test_failed_data_import_registration_can_be_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, action: str
) -> None:
    catalog = Catalog(tmp_path / "lab", "lab")
    library = DataAssetLibrary(catalog, EXPERIMENT, tmp_path / "lab" / "exp")
    source = tmp_path / "features.csv"
    source.write_text("x\n1\n")
    _fail_registration(monkeypatch, catalog)
    with pytest.raises(DiskFull):
        library.import_asset("features", source, action=action)
    monkeypatch.undo()
    assert source.read_text() == "x\n1\n"
    assert list(library.directory.iterdir()) == []
    imported = library.import_asset("features", source, action=action)
    assert (tmp_path / "lab" / imported.path).read_text() == "x\n1\n"


def test_failed_data_reimport_keeps_the_previous_asset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = Catalog(tmp_path / "lab", "lab")
    library = DataAssetLibrary(catalog, EXPERIMENT, tmp_path / "lab" / "exp")
    source = tmp_path / "features.csv"
    source.write_text("old\n")
    first = library.import_asset("features", source)
    source.write_text("new\n")
    register: Callable[..., object] = catalog.register
    _fail_registration(monkeypatch, catalog)
    with pytest.raises(DiskFull):
        library.import_asset("features", source, overwrite=True)
    monkeypatch.setattr(catalog, "register", register)
    assert library.get("features") == first
    assert library.path("features").read_text() == "old\n"
    assert _hidden(library.directory) == []


def test_replacing_keeps_a_copy_where_hard_links_are_not_supported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr("os.link", no_links)
    dest = tmp_path / "payload.txt"
    dest.write_text("old")
    with pytest.raises(DiskFull), replacing(dest):
        atomic_write_text(dest, "new")
        raise DiskFull()
    assert dest.read_text() == "old"
    assert list(tmp_path.iterdir()) == [dest]


def test_a_checkpoint_payload_left_by_a_dead_saver_is_not_chained(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path, "lab")
    store = CheckpointStore(catalog, RUN, tmp_path / "run", Producer(run_id="r"))
    first = store.save("epoch", {"epoch": 1})
    (store.directory / "000002-epoch").write_text('{"epoch": 2}')  # killed before registering
    second = store.save("epoch", {"epoch": 2})
    assert (second.sequence, second.parent_id) == (2, first.id)
    assert [c.sequence for c in store.chain()] == [1, 2]
    assert sorted(p.name for p in store.directory.iterdir()) == ["000001-epoch", "000002-epoch"]
