"""Error traces and execution-state snapshots of one execution attempt."""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime
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


def test_execution_state_bytes_hash_and_json_values(
    catalog: Catalog, run_scope: AssetScope, run_dir: Path
) -> None:
    # Encoded by pydantic-core (not json.dumps) and hashed from the bytes written, not read back:
    # the text parses to the same values, non-finite floats are written as json.dumps writes
    # them, values pydantic writes as JSON (tuples, datetimes) are accepted.
    state = {
        "tasks": {"a": {"duration": 5.2e-06, "started_at": "2026-12-05T17:21:32.841073+00:00"}},
        "nan": float("nan"),
        "inf": [float("inf"), float("-inf")],
        "text": 'é \u2028 "q" \\',
        "pair": (1, 2),
        "when": datetime(2026, 12, 5, 17, 0, tzinfo=UTC),
    }
    asset = write_execution_state(
        catalog, run_scope, run_dir, execution_id="exec1", state=state, producer=None
    )
    raw = (run_dir / "execution" / "exec1" / "state.json").read_bytes()
    assert raw.endswith(b"\n") and b"\n" not in raw[:-1]
    assert asset.content_hash == hashlib.sha256(raw).hexdigest() and asset.size == len(raw)
    decoded = json.loads(raw)
    assert decoded["tasks"] == state["tasks"]
    assert math.isnan(decoded["nan"]) and decoded["inf"] == [math.inf, -math.inf]
    assert decoded["text"] == state["text"] and decoded["pair"] == [1, 2]
    assert decoded["when"] == "2026-12-05T17:00:00Z"


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
