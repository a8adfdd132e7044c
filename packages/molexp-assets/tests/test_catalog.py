"""Catalog: registration, queries, lookup order, views, deletion and lineage."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

import pytest
from assets_helpers import register, scope_dir
from molexp.assets import (
    Asset,
    AssetKind,
    AssetScope,
    AssetView,
    Catalog,
    LogAsset,
)

WS = AssetScope.for_workspace("lab")
PROJECT = AssetScope.for_project("lab", "p1")
OTHER_PROJECT = AssetScope.for_project("lab", "p2")
EXPERIMENT = AssetScope.for_experiment("lab", "p1", "e1")
RUN = AssetScope.for_run("lab", "p1", "e1", "r1")
RUN2 = AssetScope.for_run("lab", "p1", "e1", "r2")
ALL_SCOPES = [WS, PROJECT, OTHER_PROJECT, EXPERIMENT, RUN, RUN2]


@pytest.fixture
def populated(catalog: Catalog) -> list[Asset]:
    """A small catalog with assets of several kinds, tags and producers in every scope."""
    assets = []
    for index, scope in enumerate(ALL_SCOPES):
        for kind in (AssetKind.DATA, AssetKind.ARTIFACT, AssetKind.LOG):
            assets.append(
                register(
                    catalog,
                    scope,
                    f"shared-{kind.value}",
                    kind,
                    tags=["even"] if index % 2 == 0 else ["odd", "x"],
                    producer_run=scope.run_id,
                )
            )
        assets.append(register(catalog, scope, f"only-{index}", AssetKind.CHECKPOINT))
    return assets


def test_catalog_is_lazy(root: Path) -> None:
    catalog = Catalog(root, "lab")
    assert list(root.iterdir()) == []
    assert not catalog.db_path.exists()


def test_the_index_lives_outside_the_workspace_per_user_and_host(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOLEXP_INDEX_DIR", str(tmp_path / "idx"))
    monkeypatch.setattr(socket, "gethostname", lambda: "node/7")
    catalog = Catalog(root, "lab")
    assert catalog.db_path.parent == tmp_path / "idx"
    assert catalog.db_path.name.startswith("lab-")
    assert catalog.db_path.name.endswith("-node_7.sqlite")
    register(catalog, RUN, "x")
    assert catalog.db_path.is_file()
    assert not (root / ".molexp" / "index.sqlite").exists()
    # Another host gets a file of its own.
    monkeypatch.setattr(socket, "gethostname", lambda: "node8")
    other = Catalog(root, "lab")
    assert other.db_path != catalog.db_path
    assert [asset.name for asset in other.query_assets()] == ["x"]


def test_register_writes_the_record_file_and_indexes_it(catalog: Catalog, root: Path) -> None:
    asset = register(catalog, RUN, "metrics.json")
    record = scope_dir(root, RUN) / ".assets" / f"{asset.id}.json"
    assert record.is_file()
    assert catalog.get(asset.id) == asset
    assert catalog.get("0" * 16) is None


def test_reregistering_keeps_created_at_and_uses(catalog: Catalog) -> None:
    first = register(catalog, RUN, "metrics.json", tags=["a"])
    catalog.record_use(first.id, run_id="r9")
    second = register(catalog, RUN, "metrics.json", tags=["b"])
    assert second.id == first.id
    assert second.created_at == first.created_at
    assert second.updated_at > first.updated_at
    assert [use.run_id for use in second.uses] == ["r9"]
    assert catalog.query_assets(tag="a") == []
    assert catalog.query_assets(tag="b") == [second]


def test_register_rejects_another_workspace(catalog: Catalog, root: Path) -> None:
    foreign = AssetScope.for_workspace("elsewhere")
    with pytest.raises(ValueError, match="'elsewhere'"):
        register(catalog, foreign, "x")


def test_register_rejects_record_dirs_outside_the_root(
    catalog: Catalog, tmp_path: Path, root: Path
) -> None:
    asset = LogAsset(id="abc", name="abc", scope=RUN, path="logs/abc.log")
    with pytest.raises(ValueError, match="outside the workspace root"):
        catalog.register(asset, tmp_path / "elsewhere")


def _ids(assets: list[Asset]) -> set[str]:
    return {asset.id for asset in assets}


@pytest.mark.parametrize("kind", [AssetKind.LOG, "log", "checkpoint"])
def test_query_by_kind(catalog: Catalog, populated: list[Asset], kind: str) -> None:
    expected = {a.id for a in populated if a.kind == kind}
    assert expected and _ids(catalog.query_assets(kind=kind)) == expected


def test_query_by_unknown_kind_names_it(catalog: Catalog, populated: list[Asset]) -> None:
    with pytest.raises(ValueError, match="'dataset'.*artifact"):
        catalog.query_assets(kind="dataset")


def test_query_by_exact_scope_and_within(catalog: Catalog, populated: list[Asset]) -> None:
    for scope in ALL_SCOPES:
        exact = {a.id for a in populated if a.scope == scope}
        beneath = {a.id for a in populated if scope.contains(a.scope)}
        assert _ids(catalog.query_assets(scope=scope)) == exact
        assert _ids(catalog.query_assets(within=scope)) == beneath
        assert catalog.count(within=scope) == len(beneath)
    assert len(catalog.query_assets(within=EXPERIMENT)) == 12


def test_query_by_name_tag_and_producer(catalog: Catalog, populated: list[Asset]) -> None:
    assert _ids(catalog.query_assets(name="shared-log")) == {
        a.id for a in populated if a.name == "shared-log"
    }
    assert _ids(catalog.query_assets(tag="odd")) == {a.id for a in populated if "odd" in a.tags}
    assert _ids(catalog.query_assets(producer_run="r2")) == {
        a.id for a in populated if a.producer and a.producer.run_id == "r2"
    }


def test_query_filters_combine(catalog: Catalog, populated: list[Asset]) -> None:
    found = catalog.query_assets(kind="data", tag="even", within=PROJECT)
    expected = {
        a.id
        for a in populated
        if a.kind == AssetKind.DATA and "even" in a.tags and PROJECT.contains(a.scope)
    }
    assert expected and _ids(found) == expected


def test_query_results_are_oldest_first(catalog: Catalog, populated: list[Asset]) -> None:
    found = catalog.query_assets()
    assert [a.id for a in found] == [
        a.id for a in sorted(populated, key=lambda a: (a.created_at, a.id))
    ]


def test_find_walks_the_scopes_in_the_given_order(catalog: Catalog) -> None:
    in_project = register(catalog, PROJECT, "dataset", AssetKind.DATA)
    in_run = register(catalog, RUN, "dataset", AssetKind.ARTIFACT)
    outward = RUN.ancestors()
    assert catalog.find("dataset", outward) == in_run
    assert catalog.find("dataset", outward, kind="data") == in_project
    assert catalog.find("dataset", list(reversed(outward))) == in_project
    assert catalog.find("dataset", [RUN2, WS]) is None
    assert catalog.find("missing", outward) is None


def test_find_prefers_the_most_recently_updated_in_one_scope(catalog: Catalog) -> None:
    register(catalog, RUN, "state", AssetKind.LOG)
    newer = register(catalog, RUN, "state", AssetKind.ARTIFACT)
    assert catalog.find("state", [RUN]) == newer


def test_asset_view_lists_its_scope_and_beneath(catalog: Catalog, populated: list[Asset]) -> None:
    view = AssetView(catalog, EXPERIMENT)
    expected = [a.id for a in catalog.query_assets(within=EXPERIMENT)]
    assert [a.id for a in view.list()] == expected
    assert [a.id for a in view] == expected
    assert len(view) == len(expected)
    assert {a.kind for a in view.list(kind="log")} == {AssetKind.LOG}


def test_asset_view_get_prefers_the_closest_scope(catalog: Catalog, populated: list[Asset]) -> None:
    view = AssetView(catalog, EXPERIMENT)
    found = view.get("shared-log")
    assert found is not None and found.scope == EXPERIMENT
    run_only = view.get("only-4")
    assert run_only is not None and run_only.scope == RUN
    assert view.get("only-0") is None  # lives at workspace scope, above the view


def test_asset_view_rejects_another_workspace(catalog: Catalog) -> None:
    with pytest.raises(ValueError, match="'other'"):
        AssetView(catalog, AssetScope.for_workspace("other"))


def test_delete_removes_record_and_row(catalog: Catalog, root: Path) -> None:
    asset = register(catalog, RUN, "gone")
    record = scope_dir(root, RUN) / ".assets" / f"{asset.id}.json"
    catalog.delete(asset.id)
    assert catalog.get(asset.id) is None and not record.exists()
    catalog.rebuild()
    assert catalog.get(asset.id) is None
    with pytest.raises(KeyError, match=asset.id):
        catalog.delete(asset.id)


def test_delete_within_forgets_a_whole_project(catalog: Catalog, populated: list[Asset]) -> None:
    doomed = {a.id for a in populated if PROJECT.contains(a.scope)}
    assert catalog.delete_within(PROJECT) == len(doomed)
    remaining = _ids(catalog.query_assets())
    assert remaining == _ids(populated) - doomed
    catalog.rebuild()
    assert _ids(catalog.query_assets()) == remaining


def test_record_use_builds_lineage_once_per_consumer(catalog: Catalog) -> None:
    asset = register(catalog, EXPERIMENT, "features", AssetKind.DATA, producer_run="r1")
    first = catalog.record_use(asset.id, run_id="r2", execution_id="x", task_name="train")
    again = catalog.record_use(asset.id, run_id="r2", execution_id="x", task_name="train")
    catalog.record_use(asset.id, run_id="r3")
    assert again == first
    lineage = catalog.lineage(asset.id)
    assert lineage.produced_by is not None and lineage.produced_by.run_id == "r1"
    assert [(u.run_id, u.task_name) for u in lineage.consumed_by] == [("r2", "train"), ("r3", None)]


def test_lineage_of_unknown_asset_names_it(catalog: Catalog) -> None:
    with pytest.raises(KeyError, match="feedface"):
        catalog.lineage("feedface")
    with pytest.raises(KeyError, match="feedface"):
        catalog.record_use("feedface", run_id="r1")


def test_lineage_survives_rebuild_and_a_lost_index(catalog: Catalog, root: Path) -> None:
    asset = register(catalog, EXPERIMENT, "features", AssetKind.DATA, producer_run="r1")
    catalog.record_use(asset.id, run_id="r2", task_name="fit")
    before = catalog.lineage(asset.id)
    catalog.rebuild()
    assert catalog.lineage(asset.id) == before
    catalog.close()
    catalog.db_path.unlink()
    assert Catalog(root, "lab").lineage(asset.id) == before


def test_connect_gives_a_wal_connection_to_the_host_index(catalog: Catalog) -> None:
    register(catalog, RUN, "x")
    conn = catalog.connect()
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30000
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        with conn:
            conn.execute("CREATE TABLE runs (id TEXT PRIMARY KEY)")
            conn.execute("INSERT INTO runs VALUES ('r1')")
    finally:
        conn.close()
    # A rebuild starts a fresh file: other layers' tables are refilled by their owners.
    catalog.rebuild()
    check = sqlite3.connect(catalog.db_path)
    try:
        tables = {row[0] for row in check.execute("SELECT name FROM sqlite_master")}
        assert "runs" not in tables
        assert "assets" in tables
    finally:
        check.close()


def test_catalog_reopens_after_close(catalog: Catalog) -> None:
    asset = register(catalog, RUN, "x")
    catalog.close()
    assert catalog.get(asset.id) == asset
    with catalog as same:
        assert same.count() == 1
