"""Data-asset library: the four import actions, files and directories, and bad input."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from molexp.assets import (
    IMPORT_ACTIONS,
    AssetScope,
    Catalog,
    DataAsset,
    DataAssetLibrary,
    asset_id_for,
)
from molexp.assets._hashing import digest_payload

PROJECT = AssetScope.for_project("lab", "p1")


@pytest.fixture
def library(catalog: Catalog, root: Path) -> DataAssetLibrary:
    return DataAssetLibrary(catalog, PROJECT, root / "projects" / "p1")


def _make_source(tmp_path: Path, shape: str) -> Path:
    if shape == "file":
        source = tmp_path / "incoming" / "features.parquet"
        source.parent.mkdir()
        source.write_bytes(b"PAR1" + bytes(range(50)))
        return source
    source = tmp_path / "incoming" / "qm9"
    (source / "split").mkdir(parents=True)
    (source / "train.csv").write_text("smiles\nCCO\n")
    (source / "split" / "test.csv").write_text("smiles\nC\n")
    return source


def _tree(path: Path) -> dict[str, bytes]:
    if path.is_file():
        return {"": path.read_bytes()}
    return {
        p.relative_to(path).as_posix(): p.read_bytes()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("shape", ["file", "dir"])
@pytest.mark.parametrize("action", IMPORT_ACTIONS)
def test_import_action_places_the_payload(
    library: DataAssetLibrary, root: Path, tmp_path: Path, action: str, shape: str
) -> None:
    source = _make_source(tmp_path, shape)
    expected_content = _tree(source)
    expected_digest = digest_payload(source)

    asset = library.import_asset("dataset", source, action=action, meta={"origin": "test"})

    payload = library.path("dataset")
    asset_id = asset_id_for(PROJECT, "data", "dataset")
    assert payload == root / "projects/p1/data_assets" / asset_id / "payload" / source.name
    assert asset.path == payload.relative_to(root).as_posix()
    assert _tree(payload) == expected_content
    assert (asset.content_hash, asset.size) == (expected_digest.content_hash, expected_digest.size)
    assert (asset.source, asset.action, asset.meta) == (str(source), action, {"origin": "test"})
    assert (root / "projects/p1/.assets" / f"{asset_id}.json").is_file()
    assert library.get("dataset") == asset
    assert library.list() == [asset]

    if action == "move":
        assert not source.exists()
    else:
        assert _tree(source) == expected_content
    if action == "symlink":
        assert payload.is_symlink() and payload.resolve() == source.resolve()
    else:
        assert not payload.is_symlink()
    if action == "hardlink":
        first = sorted(p for p in source.rglob("*") if p.is_file())[0] if shape == "dir" else source
        twin = payload / first.relative_to(source) if shape == "dir" else payload
        assert os.path.samefile(first, twin)
    if action == "copy":
        for file in (
            [payload] if shape == "file" else [p for p in payload.rglob("*") if p.is_file()]
        ):
            assert file.stat().st_nlink == 1


def test_unknown_action_names_the_value(library: DataAssetLibrary, tmp_path: Path) -> None:
    source = _make_source(tmp_path, "file")
    with pytest.raises(ValueError, match="'teleport'.*copy, move, symlink, hardlink"):
        library.import_asset("x", source, action="teleport")


def test_missing_source_names_the_path(library: DataAssetLibrary, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere.csv"):
        library.import_asset("x", tmp_path / "nowhere.csv")


@pytest.mark.parametrize("name", ["..", "/abs", "a/b", "nul\x00", "x" * 300, "."])
def test_hostile_asset_names_are_rejected(
    library: DataAssetLibrary, tmp_path: Path, root: Path, name: str
) -> None:
    source = _make_source(tmp_path, "file")
    with pytest.raises(ValueError, match="data asset name"):
        library.import_asset(name, source)
    assert not (root / "projects").exists()


def test_existing_name_needs_overwrite(library: DataAssetLibrary, tmp_path: Path) -> None:
    source = _make_source(tmp_path, "file")
    first = library.import_asset("dataset", source)
    with pytest.raises(ValueError, match="'dataset' already exists.*overwrite=True"):
        library.import_asset("dataset", source)
    source.write_bytes(b"new content")
    second = library.import_asset("dataset", source, overwrite=True)
    assert second.id == first.id and second.created_at == first.created_at
    assert library.path("dataset").read_bytes() == b"new content"
    assert second.content_hash != first.content_hash


def test_overwrite_can_change_file_to_directory(library: DataAssetLibrary, tmp_path: Path) -> None:
    file_source = _make_source(tmp_path, "file")
    library.import_asset("dataset", file_source)
    dir_source = tmp_path / "tree"
    dir_source.mkdir()
    (dir_source / "a.txt").write_text("a")
    library.import_asset("dataset", dir_source, overwrite=True)
    payload_dir = library.path("dataset").parent
    assert [p.name for p in payload_dir.iterdir()] == ["tree"]


def test_path_of_missing_asset_names_asset_and_scope(library: DataAssetLibrary) -> None:
    with pytest.raises(KeyError, match=r"'absent'.*project lab/p1"):
        library.path("absent")


def test_remove_deletes_payload_and_record(
    library: DataAssetLibrary, catalog: Catalog, tmp_path: Path
) -> None:
    source = _make_source(tmp_path, "dir")
    asset = library.import_asset("dataset", source, action="symlink")
    asset_dir = library.path("dataset").parent.parent
    library.remove("dataset")
    assert not asset_dir.exists()
    assert source.is_dir()  # removing a symlinked asset never touches the original
    assert library.get("dataset") is None
    catalog.rebuild()
    assert catalog.get(asset.id) is None
    with pytest.raises(KeyError, match="dataset"):
        library.remove("dataset")


def test_failed_move_puts_the_source_back(
    library: DataAssetLibrary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, root: Path
) -> None:
    source = _make_source(tmp_path, "dir")
    content = _tree(source)

    def fail(staged: Path, dest: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("molexp.assets._data.install_path", fail)
    with pytest.raises(OSError, match="No space"):
        library.import_asset("dataset", source, action="move")
    assert _tree(source) == content
    assert library.get("dataset") is None
    data_dir = root / "projects/p1/data_assets"
    assert [p for p in data_dir.iterdir() if not p.name.endswith(".lock")] == []


def test_imported_assets_are_typed_data_assets(
    library: DataAssetLibrary, catalog: Catalog, tmp_path: Path
) -> None:
    asset = library.import_asset("dataset", _make_source(tmp_path, "file"), tags=["raw"])
    found = catalog.query_assets(tag="raw")
    assert found == [asset] and isinstance(found[0], DataAsset)


def test_hardlink_across_filesystems_says_what_to_do(
    library: DataAssetLibrary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _make_source(tmp_path, "file")

    def cross_device(src: object, dst: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    with pytest.raises(OSError, match="different filesystems; use action='copy'"):
        library.import_asset("dataset", source, action="hardlink")
    assert source.exists() and library.get("dataset") is None
