"""Error traces and execution-state snapshots of one execution attempt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from molexp.assets import (
    AssetScope,
    Catalog,
    ErrorTraceAsset,
    ExecutionStateAsset,
    Producer,
    write_error_trace,
    write_execution_state,
)


def test_error_trace_is_written_and_registered(
    catalog: Catalog, run_scope: AssetScope, run_dir: Path
) -> None:
    producer = Producer(run_id="r1", task_name="train")
    asset = write_error_trace(
        catalog,
        run_scope,
        run_dir,
        execution_id="exec7",
        error_type="ValueError",
        text="Traceback ...\nValueError: bad lr\n",
        producer=producer,
    )
    path = run_dir / "execution" / "exec7" / "error.txt"
    assert path.read_text() == "Traceback ...\nValueError: bad lr\n"
    assert asset.path == path.relative_to(catalog.root).as_posix()
    assert (asset.execution_id, asset.error_type, asset.name) == (
        "exec7",
        "ValueError",
        "error-exec7",
    )
    assert asset.producer == producer.model_copy(update={"execution_id": "exec7"})
    assert isinstance(catalog.get(asset.id), ErrorTraceAsset)
    assert catalog.query_assets(kind="error_trace", producer_run="r1") == [asset]


def test_execution_state_is_json_and_updates_in_place(
    catalog: Catalog, run_scope: AssetScope, run_dir: Path, producer: Producer
) -> None:
    first = write_execution_state(
        catalog, run_scope, run_dir, execution_id="exec1", state={"done": ["a"]}, producer=producer
    )
    second = write_execution_state(
        catalog, run_scope, run_dir, execution_id="exec1", state={"done": ["a", "b"]}, producer=None
    )
    path = run_dir / "execution" / "exec1" / "state.json"
    assert json.loads(path.read_text()) == {"done": ["a", "b"]}
    assert second.id == first.id and second.created_at == first.created_at
    assert isinstance(catalog.get(first.id), ExecutionStateAsset)
    assert catalog.count(kind="execution_state") == 1


def test_unserializable_state_names_the_execution(
    catalog: Catalog, run_scope: AssetScope, run_dir: Path
) -> None:
    with pytest.raises(TypeError, match="execution 'exec1'"):
        write_execution_state(
            catalog, run_scope, run_dir, execution_id="exec1", state={"x": object()}, producer=None
        )


def test_hostile_execution_ids_are_rejected(
    catalog: Catalog, run_scope: AssetScope, run_dir: Path
) -> None:
    with pytest.raises(ValueError, match="execution_id"):
        write_error_trace(
            catalog,
            run_scope,
            run_dir,
            execution_id="../../escape",
            error_type="E",
            text="",
            producer=None,
        )
