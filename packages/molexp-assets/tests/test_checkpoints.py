"""Checkpoint store: the linear chain, markers, latest and loading."""

from __future__ import annotations

from pathlib import Path

import pytest
from molexp.assets import AssetScope, Catalog, CheckpointAsset, CheckpointStore, Producer


@pytest.fixture
def store(
    catalog: Catalog, run_scope: AssetScope, run_dir: Path, producer: Producer
) -> CheckpointStore:
    return CheckpointStore(catalog, run_scope, run_dir, producer)


def test_checkpoints_form_a_linear_chain_across_names(store: CheckpointStore) -> None:
    first = store.save("epoch", {"epoch": 1})
    marker = store.save("warmup-done")
    second = store.save("epoch", {"epoch": 2}, task_name="train")
    chain = store.chain()
    assert chain == [first, marker, second]
    assert [c.sequence for c in chain] == [1, 2, 3]
    assert [c.parent_id for c in chain] == [None, first.id, marker.id]
    assert len({c.id for c in chain}) == 3
    assert second.producer is not None and second.producer.task_name == "train"


def test_payloads_live_under_the_ckpt_directory(store: CheckpointStore, run_dir: Path) -> None:
    store.save("epoch", {"epoch": 1})
    store.save("done")
    names = sorted(p.name for p in (run_dir / ".ckpt").iterdir() if not p.name.startswith("."))
    assert names == ["000001-epoch", "000002-done"]
    assert (run_dir / ".ckpt" / "000002-done").read_bytes() == b""


def test_latest_and_load(store: CheckpointStore, tmp_path: Path) -> None:
    assert store.latest() is None
    store.save("epoch", {"epoch": 1})
    store.save("epoch", {"epoch": 2})
    marker = store.save("marker")
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"\x01\x02")
    store.save("weights", weights)
    latest_epoch = store.latest("epoch")
    assert latest_epoch is not None and latest_epoch.sequence == 2
    latest = store.latest()
    assert latest is not None and latest.name == "weights"
    assert store.load(latest_epoch) == {"epoch": 2}
    assert store.load("epoch") == {"epoch": 2}
    assert store.load(marker) is None and marker.media_type is None
    assert store.load("weights") == b"\x01\x02"


def test_loading_an_unknown_checkpoint_names_it(store: CheckpointStore) -> None:
    with pytest.raises(KeyError, match="'best'"):
        store.load("best")


def test_chains_are_per_scope(store: CheckpointStore, catalog: Catalog, run_dir: Path) -> None:
    store.save("epoch", {"epoch": 1})
    other_scope = AssetScope.for_run("lab", "qm9", "baseline", "r2")
    other = CheckpointStore(catalog, other_scope, run_dir.parent / "run-r2", None)
    started = other.save("epoch", {"epoch": 1})
    assert started.sequence == 1 and started.parent_id is None
    assert len(store.chain()) == 1


def test_chain_continues_after_a_new_store_and_a_rebuild(
    store: CheckpointStore, catalog: Catalog, run_scope: AssetScope, run_dir: Path
) -> None:
    first = store.save("epoch", {"epoch": 1})
    catalog.rebuild()
    resumed = CheckpointStore(catalog, run_scope, run_dir, None).save("epoch", {"epoch": 2})
    assert (resumed.sequence, resumed.parent_id) == (2, first.id)
    assert isinstance(catalog.get(resumed.id), CheckpointAsset)


@pytest.mark.parametrize("name", ["..", "a/b", "/abs", "nul\x00", "x" * 195])
def test_hostile_checkpoint_names_are_rejected(store: CheckpointStore, name: str) -> None:
    with pytest.raises(ValueError, match="checkpoint"):
        store.save(name, {"x": 1})


def test_unsupported_checkpoint_data_names_type_and_checkpoint(store: CheckpointStore) -> None:
    with pytest.raises(TypeError, match="checkpoint 'epoch'.*float"):
        store.save("epoch", 0.5)
