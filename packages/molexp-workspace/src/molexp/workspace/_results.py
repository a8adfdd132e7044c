"""Rows returned by ``Workspace.runs()``.

Owns ``RunSummary`` (one run as the index sees it) and ``RunQueryResult`` (a sequence
of them with ``to_records()`` and ``to_pandas()``).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, overload

from ._index import IndexRow
from ._layout import EXPERIMENTS_DIR, PROJECTS_DIR, RUN_DIR_PREFIX, RUNS_DIR
from ._records import RunStatus

__all__ = ["RunQueryResult", "RunSummary"]


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


class RunSummary:
    """One run as recorded in the run index (load the full record with ``ws.find_run``).

    Built straight from an index row; JSON columns and timestamps are decoded when
    first read, so listing many runs stays cheap.
    """

    __slots__ = ("_params", "_results", "_root", "_row", "_tags")

    def __init__(self, root: Path, row: IndexRow) -> None:
        self._root = root
        self._row = row
        self._params: dict[str, Any] | None = None
        self._results: dict[str, Any] | None = None
        self._tags: list[str] | None = None

    def __repr__(self) -> str:
        return (
            f"RunSummary(id={self.id!r}, project={self.project!r}, "
            f"experiment={self.experiment!r}, status={self.status.value!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RunSummary):
            return NotImplemented
        return self._row == other._row and self._root == other._root

    def __hash__(self) -> int:
        return hash((self._root, self._row[0], self._row[1], self._row[2]))

    @property
    def id(self) -> str:
        return str(self._row[2])

    @property
    def project(self) -> str:
        return str(self._row[0])

    @property
    def experiment(self) -> str:
        return str(self._row[1])

    @property
    def status(self) -> RunStatus:
        return RunStatus(self._row[3])

    @property
    def created_at(self) -> datetime:
        return datetime.fromisoformat(self._row[4])

    @property
    def updated_at(self) -> datetime:
        return datetime.fromisoformat(self._row[5])

    @property
    def started_at(self) -> datetime | None:
        return _time(self._row[6])

    @property
    def finished_at(self) -> datetime | None:
        return _time(self._row[7])

    @property
    def params(self) -> dict[str, Any]:
        if self._params is None:
            self._params = json.loads(self._row[8])
        return self._params

    @property
    def results(self) -> dict[str, Any]:
        if self._results is None:
            self._results = json.loads(self._row[9])
        return self._results

    @property
    def profile(self) -> str | None:
        return self._row[10]  # type: ignore[no-any-return]

    @property
    def config_hash(self) -> str | None:
        return self._row[11]  # type: ignore[no-any-return]

    @property
    def workflow_id(self) -> str | None:
        return self._row[12]  # type: ignore[no-any-return]

    @property
    def replica_index(self) -> int | None:
        return self._row[13]  # type: ignore[no-any-return]

    @property
    def seed(self) -> int | None:
        return self._row[14]  # type: ignore[no-any-return]

    @property
    def tags(self) -> list[str]:
        if self._tags is None:
            self._tags = json.loads(self._row[15])
        return self._tags

    @property
    def run_dir(self) -> Path:
        return (
            self._root
            / PROJECTS_DIR
            / self.project
            / EXPERIMENTS_DIR
            / self.experiment
            / RUNS_DIR
            / f"{RUN_DIR_PREFIX}{self.id}"
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
