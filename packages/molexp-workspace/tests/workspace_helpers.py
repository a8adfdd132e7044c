"""Test helpers: read a run record straight from disk, bypassing every cache."""

from __future__ import annotations

import json
from typing import Any

from molexp.workspace import Run, RunMetadata


def on_disk(run: Run) -> RunMetadata:
    """The run record as currently stored in ``run.json``."""
    return RunMetadata.model_validate_json(run.record_path.read_bytes())


def raw_on_disk(run: Run) -> dict[str, Any]:
    data = json.loads(run.record_path.read_text())
    assert isinstance(data, dict)
    return data
