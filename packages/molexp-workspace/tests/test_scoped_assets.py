"""Assets through the hierarchy: data-asset libraries, scoped views, lookup order, data dirs."""

from __future__ import annotations

from pathlib import Path

import pytest
from molexp.assets import DataAsset
from molexp.workspace import Workspace


@pytest.fixture
def payload(tmp_path: Path) -> Path:
    source = tmp_path / "src" / "qm9.csv"
    source.parent.mkdir()
    source.write_text("smiles\nC\n")
    return source


def test_data_assets_import_at_every_scope(ws: Workspace, payload: Path) -> None:
    project = ws.Project("QM9")
    exp = project.Experiment("baseline")
    other = project.Experiment("other")
    at_ws = ws.data_assets.import_asset("qm9", payload)
    at_project = project.data_assets.import_asset("features", payload)
    at_exp = exp.data_assets.import_asset("cache", payload, action="copy")
    assert at_ws.path == f"data_assets/{at_ws.id}/payload/qm9.csv"
    assert at_project.path.startswith("projects/qm9/data_assets/")
    assert at_exp.path.startswith("projects/qm9/experiments/baseline/data_assets/")
    assert all((ws.root / a.path).read_text() == "smiles\nC\n" for a in (at_ws, at_project, at_exp))
    assert {a.name for a in ws.assets.list()} == {"qm9", "features", "cache"}
    assert {a.name for a in project.assets.list()} == {"features", "cache"}
    assert [a.name for a in exp.assets.list()] == ["cache"]
    assert other.assets.list() == []
    assert isinstance(ws.assets.get("qm9"), DataAsset)


def test_run_output_promoted_into_the_experiment_library(ws: Workspace, tmp_path: Path) -> None:
    exp = ws.Project("QM9").Experiment("baseline")
    produced = tmp_path / "features.parquet"
    with exp.Run().start() as ctx:
        produced.write_bytes(b"\x00parquet")
        ctx.run.experiment.data_assets.import_asset("feature-cache", produced, action="move")
        assert ctx.data_assets.get("feature-cache") is not None
    assert not produced.exists()
    with exp.Run().start() as later:
        found = later.find_asset("feature-cache")
        assert found is not None
        assert (ws.root / found.path).read_bytes() == b"\x00parquet"


def test_find_asset_searches_run_then_experiment_then_project_then_workspace(
    ws: Workspace, payload: Path
) -> None:
    project = ws.Project("QM9")
    exp = project.Experiment("baseline")
    sibling = project.Experiment("sibling")
    elsewhere = ws.Project("other").Experiment("x")
    ws.data_assets.import_asset("dataset", payload, meta={"level": "workspace"})
    project.data_assets.import_asset("dataset", payload, meta={"level": "project"})
    exp.data_assets.import_asset("dataset", payload, meta={"level": "experiment"})
    with exp.Run().start() as ctx:
        ctx.artifact.save("dataset", "produced by this run")
        found = ctx.find_asset("dataset")
        assert found is not None
        assert found.kind == "artifact"
        found_data = ctx.find_asset("dataset", kind="data")
        assert found_data is not None
        assert found_data.meta == {"level": "experiment"}
    with exp.Run().start() as ctx:
        found = ctx.find_asset("dataset")
        assert found is not None
        assert found.meta == {"level": "experiment"}
    with sibling.Run().start() as ctx:
        found = ctx.find_asset("dataset")
        assert found is not None
        assert found.meta == {"level": "project"}
    with elsewhere.Run().start() as ctx:
        found = ctx.find_asset("dataset")
        assert found is not None
        assert found.meta == {"level": "workspace"}
        assert ctx.find_asset("missing") is None


def test_find_asset_records_use_of_assets_produced_elsewhere(ws: Workspace, payload: Path) -> None:
    exp = ws.Project("QM9").Experiment("baseline")
    dataset = ws.data_assets.import_asset("qm9", payload)
    run = exp.Run()
    with run.start() as ctx:
        ctx.find_asset("qm9")
        own = ctx.artifact.save("out.json", {"x": 1})
        ctx.find_asset("out.json")
    uses = ws.catalog.lineage(dataset.id).consumed_by
    assert [(u.run_id, u.execution_id) for u in uses] == [(run.id, ctx.execution_id)]
    assert ws.catalog.lineage(own.id).consumed_by == []


def test_get_data_dir(ws: Workspace, payload: Path) -> None:
    exp = ws.Project("QM9").Experiment("baseline")
    asset = exp.project.data_assets.import_asset("qm9", payload)
    with exp.Run().start() as ctx:
        assert ctx.get_data_dir("qm9") == ws.root / asset.path
        scratch = ctx.get_data_dir("not-imported", fallback="scratch/qm9")
        assert scratch == ws.root / "scratch" / "qm9"
        assert scratch.is_dir()
        with pytest.raises(FileNotFoundError, match="'nowhere'.*no fallback"):
            ctx.get_data_dir("nowhere")
        with pytest.raises(ValueError, match="relative path inside the workspace"):
            ctx.get_data_dir("nowhere", fallback="../escape")
        with pytest.raises(ValueError, match="relative path inside the workspace"):
            ctx.get_data_dir("nowhere", fallback="/tmp/absolute")
