"""Artifact store: serialization rules, atomic replacement, update-in-place ids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from molexp.assets import ArtifactAsset, ArtifactStore, AssetScope, Catalog, Producer
from molexp.assets._hashing import digest_payload
from molexp.assets._payload import (
    BINARY_MEDIA_TYPE,
    DIRECTORY_MEDIA_TYPE,
    JSON_MEDIA_TYPE,
    TEXT_MEDIA_TYPE,
)
from pydantic import BaseModel


class Metrics(BaseModel):
    loss: float
    epochs: int


@pytest.fixture
def store(
    catalog: Catalog, run_scope: AssetScope, run_dir: Path, producer: Producer
) -> ArtifactStore:
    return ArtifactStore(catalog, run_scope, run_dir, producer)


def test_dict_and_list_are_saved_as_json(store: ArtifactStore) -> None:
    asset = store.save("metrics.json", {"loss": 0.5, "names": ["é"]})
    assert asset.media_type == JSON_MEDIA_TYPE
    assert json.loads(store.path("metrics.json").read_text("utf-8")) == {
        "loss": 0.5,
        "names": ["é"],
    }
    assert store.load("metrics.json") == {"loss": 0.5, "names": ["é"]}
    store.save("history", [1, 2, 3])
    assert store.load("history") == [1, 2, 3]


def test_pydantic_models_are_saved_as_json(store: ArtifactStore) -> None:
    asset = store.save("metrics", Metrics(loss=0.25, epochs=3))
    assert asset.media_type == JSON_MEDIA_TYPE
    assert Metrics.model_validate(store.load("metrics")) == Metrics(loss=0.25, epochs=3)


@pytest.mark.parametrize("data", [b"\x00\x01binary", bytearray(b"\xffbytes")])
def test_bytes_are_saved_verbatim(store: ArtifactStore, data: bytes) -> None:
    asset = store.save("blob.bin", data)
    assert asset.media_type == BINARY_MEDIA_TYPE
    assert store.path("blob.bin").read_bytes() == bytes(data)
    assert store.load("blob.bin") == bytes(data)


def test_str_is_saved_as_text_even_with_a_json_name(store: ArtifactStore) -> None:
    asset = store.save("notes.json", "not json at all")
    assert asset.media_type == TEXT_MEDIA_TYPE
    assert store.load("notes.json") == "not json at all"


def test_path_copies_a_file_with_a_guessed_media_type(store: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "table.csv"
    source.write_text("a,b\n1,2\n")
    asset = store.save("table.csv", source)
    assert asset.media_type == "text/csv"
    assert store.load("table.csv") == "a,b\n1,2\n"
    assert source.exists()
    source.write_text("changed")
    assert store.path("table.csv").read_text() == "a,b\n1,2\n"


def test_path_copies_a_directory_tree(store: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "model"
    (source / "weights").mkdir(parents=True)
    (source / "weights" / "w.bin").write_bytes(b"w")
    (source / "config.json").write_text("{}")
    asset = store.save("model", source)
    assert asset.media_type == DIRECTORY_MEDIA_TYPE
    assert asset.content_hash == digest_payload(source).content_hash
    loaded = store.load("model")
    assert isinstance(loaded, Path) and (loaded / "weights" / "w.bin").read_bytes() == b"w"


def test_missing_source_path_is_named(store: ArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"artifact 'x'.*absent\.txt"):
        store.save("x", tmp_path / "absent.txt")


def test_file_written_in_place_is_registered_without_copying(store: ArtifactStore) -> None:
    target = store.path("model.pt")  # its directory exists: a tool can write there at once
    target.write_bytes(b"torch")
    asset = store.save("model.pt", target)
    assert asset.size == 5 and target.read_bytes() == b"torch"


@pytest.mark.parametrize("value", [42, 1.5, None, True, {1, 2}, (1, 2), object()])
def test_unsupported_types_name_the_type_and_artifact(store: ArtifactStore, value: object) -> None:
    with pytest.raises(TypeError, match=rf"artifact 'weird'.*{type(value).__name__}"):
        store.save("weird", value)
    assert store.get("weird") is None and not store.path("weird").exists()


def test_unserializable_json_content_is_a_type_error(store: ArtifactStore) -> None:
    with pytest.raises(TypeError, match="artifact 'bad.json' cannot be serialized as JSON"):
        store.save("bad.json", {"when": object()})


@pytest.mark.parametrize("name", ["..", "/etc/passwd", "a/b", "nul\x00", "x" * 300, ".", ""])
def test_hostile_artifact_names_are_rejected(store: ArtifactStore, name: str) -> None:
    with pytest.raises(ValueError, match="artifact name"):
        store.save(name, {"x": 1})


def test_saving_again_updates_the_same_asset(store: ArtifactStore, catalog: Catalog) -> None:
    first = store.save("metrics.json", {"loss": 1.0})
    second = store.save("metrics.json", {"loss": 0.5}, task_name="eval")
    assert second.id == first.id
    assert second.created_at == first.created_at and second.updated_at > first.updated_at
    assert second.content_hash != first.content_hash
    assert second.producer is not None and second.producer.task_name == "eval"
    assert second.producer.execution_id == "exec1"
    assert catalog.count() == 1
    assert store.load("metrics.json") == {"loss": 0.5}


def test_a_directory_artifact_can_become_a_file_and_back(
    store: ArtifactStore, tmp_path: Path
) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a").write_text("a")
    store.save("out", tree)
    store.save("out", "now text")
    assert store.path("out").read_text() == "now text"
    store.save("out", tree)
    assert (store.path("out") / "a").read_text() == "a"
    assert [p.name for p in store.directory.iterdir() if not p.name.startswith(".")] == ["out"]


def test_failed_serialization_keeps_the_previous_artifact(
    store: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.save("metrics.json", {"loss": 1.0})

    def no_space(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.replace", no_space)
    with pytest.raises(OSError, match="No space"):
        store.save("metrics.json", {"loss": 2.0})
    monkeypatch.undo()
    assert store.load("metrics.json") == {"loss": 1.0}
    asset = store.get("metrics.json")
    assert (
        asset is not None
        and asset.content_hash == digest_payload(store.path("metrics.json")).content_hash
    )


def test_list_and_get_cover_this_scope(
    store: ArtifactStore, catalog: Catalog, run_dir: Path
) -> None:
    a = store.save("a.txt", "a")
    b = store.save("b.txt", "b")
    other_scope = AssetScope.for_run("lab", "qm9", "baseline", "r2")
    ArtifactStore(catalog, other_scope, run_dir.parent / "run-r2", None).save("a.txt", "other")
    assert store.list() == [a, b]
    assert store.get("b.txt") == b
    assert isinstance(store.get("a.txt"), ArtifactAsset)
    assert store.get("c.txt") is None
    with pytest.raises(KeyError, match="'c.txt'"):
        store.load("c.txt")


def test_task_name_without_producer_is_refused(
    catalog: Catalog, run_scope: AssetScope, run_dir: Path
) -> None:
    store = ArtifactStore(catalog, run_scope, run_dir, None)
    with pytest.raises(ValueError, match="task_name='fit' needs a producer"):
        store.save("x.txt", "x", task_name="fit")


def test_store_rejects_a_scope_of_another_workspace(catalog: Catalog, run_dir: Path) -> None:
    with pytest.raises(ValueError, match="'other'"):
        ArtifactStore(catalog, AssetScope.for_workspace("other"), run_dir, None)
