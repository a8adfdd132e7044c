"""Rows returned by ``Workspace.runs()``.

Owns ``RunSummary`` (one run as the index sees it) and ``RunQueryResult`` (a sequence
of them with ``to_records()`` and ``to_pandas()``).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, overload

from ._index import IndexRow
from ._records import RunStatus

__all__ = ["RunQueryResult", "RunSummary"]


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


@dataclass(frozen=True, slots=True)
class RunSummary:
    """One run as recorded in the run index (load the full record with ``ws.find_run``)."""

    id: str
    project: str
    experiment: str
    status: RunStatus
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    params: dict[str, Any]
    results: dict[str, Any]
    profile: str | None
    config_hash: str | None
    workflow_id: str | None
    replica_index: int | None
    seed: int | None
    tags: list[str]
    run_dir: Path

    @classmethod
    def from_row(cls, root: Path, row: IndexRow) -> RunSummary:
        (
            _workspace_id,
            project_id,
            experiment_id,
            run_id,
            status,
            created_at,
            updated_at,
            started_at,
            finished_at,
            params,
            results,
            profile_name,
            config_hash,
            workflow_id,
            replica_index,
            seed,
            tags,
            run_dir,
        ) = row
        return cls(
            id=run_id,
            project=project_id,
            experiment=experiment_id,
            status=RunStatus(status),
            created_at=datetime.fromisoformat(created_at),
            updated_at=datetime.fromisoformat(updated_at),
            started_at=_time(started_at),
            finished_at=_time(finished_at),
            params=json.loads(params),
            results=json.loads(results),
            profile=profile_name,
            config_hash=config_hash,
            workflow_id=workflow_id,
            replica_index=replica_index,
            seed=seed,
            tags=json.loads(tags),
            run_dir=root / run_dir,
        )

    def to_record(self) -> dict[str, Any]:
        """A flat dict: run fields plus ``params.<path>`` / ``results.<path>`` columns."""
        record: dict[str, Any] = {
            "id": self.id,
            "project": self.project,
            "experiment": self.experiment,
            "status": self.status.value,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "profile": self.profile,
            "config_hash": self.config_hash,
            "workflow_id": self.workflow_id,
            "replica_index": self.replica_index,
            "seed": self.seed,
            "tags": list(self.tags),
            "run_dir": str(self.run_dir),
        }
        _flatten("params", self.params, record)
        _flatten("results", self.results, record)
        return record


def _flatten(prefix: str, value: Mapping[str, Any], into: dict[str, Any]) -> None:
    for key, item in value.items():
        name = f"{prefix}.{key}"
        if isinstance(item, Mapping) and item:
            _flatten(name, item, into)
        else:
            into[name] = item


class RunQueryResult(Sequence[RunSummary]):
    """The runs matched by a query, in query order."""

    def __init__(self, rows: Sequence[RunSummary]) -> None:
        self._rows = list(rows)

    @overload
    def __getitem__(self, index: int) -> RunSummary: ...
    @overload
    def __getitem__(self, index: slice) -> RunQueryResult: ...
    def __getitem__(self, index: int | slice) -> RunSummary | RunQueryResult:
        if isinstance(index, slice):
            return RunQueryResult(self._rows[index])
        return self._rows[index]

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[RunSummary]:
        return iter(self._rows)

    def __repr__(self) -> str:
        return f"<RunQueryResult: {len(self._rows)} runs>"

    @property
    def ids(self) -> list[str]:
        return [row.id for row in self._rows]

    def to_records(self) -> list[dict[str, Any]]:
        """One flat dict per run (see ``RunSummary.to_record``)."""
        return [row.to_record() for row in self._rows]

    def to_pandas(self) -> Any:
        """A ``pandas.DataFrame`` with one row per run and one column per flat record key."""
        try:
            pandas = importlib.import_module("pandas")
        except ImportError:
            raise ImportError(
                "RunQueryResult.to_pandas() needs pandas; install the `pandas` extra: "
                "pip install 'molexp-workspace[pandas]'"
            ) from None
        return pandas.DataFrame.from_records(self.to_records())
