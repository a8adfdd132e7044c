"""Rows returned by ``Workspace.runs()``.

Owns ``RunSummary`` (one run as the index sees it) and ``RunQueryResult`` (a sequence
of them with ``to_records()`` and ``to_pandas()``).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, overload

from ._index import IndexRow
from ._layout import EXPERIMENTS_DIR, PROJECTS_DIR, RUN_DIR_PREFIX, RUNS_DIR
from ._records import MetricSummary, OwnerInfo, RunStatus, profile_label
from ._stale import DEFAULT_HEARTBEAT_TIMEOUT, owner_stale_reason

__all__ = ["RunQueryResult", "RunSummary"]


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


class RunSummary:
    """One run as recorded in the run index (load the full record with ``ws.find_run``).

    Built straight from an index row; JSON columns and timestamps are decoded when
    first read, so listing many runs stays cheap.
    """

    __slots__ = (
        "_config",
        "_metrics",
        "_overrides",
        "_params",
        "_results",
        "_root",
        "_row",
        "_tags",
    )

    def __init__(self, root: Path, row: IndexRow) -> None:
        self._root = root
        self._row = row
        self._params: dict[str, Any] | None = None
        self._results: dict[str, Any] | None = None
        self._tags: list[str] | None = None
        self._config: dict[str, Any] | None = None
        self._overrides: dict[str, Any] | None = None
        self._metrics: dict[str, MetricSummary] | None = None

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
        """The run's id."""
        return str(self._row[2])

    @property
    def project(self) -> str:
        """Id of the run's project."""
        return str(self._row[0])

    @property
    def experiment(self) -> str:
        """Id of the run's experiment."""
        return str(self._row[1])

    @property
    def status(self) -> RunStatus:
        """The run's status."""
        return RunStatus(self._row[3])

    @property
    def created_at(self) -> datetime:
        """When the run was created."""
        return datetime.fromisoformat(self._row[4])

    @property
    def updated_at(self) -> datetime:
        """When the run's record was last written."""
        return datetime.fromisoformat(self._row[5])

    @property
    def started_at(self) -> datetime | None:
        """When the run started, None if it has not."""
        return _time(self._row[6])

    @property
    def finished_at(self) -> datetime | None:
        """When the run finished, None if it has not."""
        return _time(self._row[7])

    @property
    def params(self) -> dict[str, Any]:
        """The run's parameters."""
        if self._params is None:
            self._params = json.loads(self._row[8])
        return self._params

    @property
    def results(self) -> dict[str, Any]:
        """The run's results."""
        if self._results is None:
            self._results = json.loads(self._row[9])
        return self._results

    @property
    def metrics(self) -> dict[str, MetricSummary]:
        """Last value, min, max and count of each of the run's metric series."""
        if self._metrics is None:
            raw = {} if self._row[19] is None else json.loads(self._row[19])
            self._metrics = {name: MetricSummary(**data) for name, data in raw.items()}
        return self._metrics

    @property
    def profile(self) -> str | None:
        """Name of the profile the run used, if any."""
        return self._row[10]  # type: ignore[no-any-return]

    @property
    def config_hash(self) -> str | None:
        """Hash of the profile's merged config, if any."""
        return self._row[11]  # type: ignore[no-any-return]

    @property
    def workflow_id(self) -> str | None:
        """Id of the workflow the run executed, if recorded."""
        return self._row[12]  # type: ignore[no-any-return]

    @property
    def replica_index(self) -> int | None:
        """The run's replica index, if it is a replica."""
        return self._row[13]  # type: ignore[no-any-return]

    @property
    def seed(self) -> int | None:
        """The run's seed, if any."""
        return self._row[14]  # type: ignore[no-any-return]

    @property
    def tags(self) -> list[str]:
        """The run's tags."""
        if self._tags is None:
            raw = self._row[15]
            self._tags = [] if raw is None else json.loads(raw)
        return self._tags

    @property
    def config(self) -> dict[str, Any]:
        """The profile config recorded on the run (``--set`` overrides included)."""
        if self._config is None:
            raw = self._row[16]
            self._config = {} if raw is None else json.loads(raw)
        return self._config

    @property
    def overrides(self) -> dict[str, Any]:
        """The ``--set`` values (dotted key -> value) merged on top of the profile."""
        if self._overrides is None:
            raw = self._row[17]
            self._overrides = {} if raw is None else json.loads(raw)
        return self._overrides

    @property
    def profile_label(self) -> str | None:
        """The profile name with its overrides, e.g. ``fast + n_strains=7``."""
        return profile_label(self.profile, self.overrides)

    @property
    def owner(self) -> OwnerInfo | None:
        """The process executing the run (host, pid, heartbeat), while it runs."""
        raw = self._row[18]
        return None if raw is None else OwnerInfo.model_validate_json(raw)

    def stale_reason(
        self,
        *,
        heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT,
        now: datetime | None = None,
    ) -> str | None:
        """Why this ``running`` run's owner is gone, or None (as ``stale_reason``).

        The recorded status stays ``running``: staleness is derived, ``molexp reap`` settles it.
        """
        if self._row[3] != RunStatus.running.value:  # the common case, without parsing a field
            return None
        return owner_stale_reason(
            self.status,
            self.owner,
            self.started_at or self.updated_at,
            heartbeat_timeout=heartbeat_timeout,
            now=now,
        )

    @property
    def stale(self) -> bool:
        """Whether the run is ``running`` while its owner is gone (default heartbeat timeout)."""
        return self.stale_reason() is not None

    @property
    def run_dir(self) -> Path:
        """The run's directory (derived from its ids; not checked to exist)."""
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
        """A flat dict: run fields plus ``params.<path>``, ``results.<path>`` and
        ``config.<path>`` columns, and ``metrics.<name>`` (the last value) with
        ``metrics.<name>.min`` and ``.max`` (``stale`` is derived, see ``stale_reason``)."""
        record: dict[str, Any] = {
            "id": self.id,
            "project": self.project,
            "experiment": self.experiment,
            "status": self.status.value,
            "stale": self.stale,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "profile": self.profile,
            "profile_label": self.profile_label,
            "config_hash": self.config_hash,
            "workflow_id": self.workflow_id,
            "replica_index": self.replica_index,
            "seed": self.seed,
            "tags": list(self.tags),
            "run_dir": str(self.run_dir),
        }
        _flatten("params", self.params, record)
        _flatten("results", self.results, record)
        _flatten("config", self.config, record)
        for name, summary in self.metrics.items():
            record[f"metrics.{name}"] = summary.last
            record[f"metrics.{name}.min"] = summary.min
            record[f"metrics.{name}.max"] = summary.max
        return record


def _flatten(prefix: str, value: Mapping[str, Any], into: dict[str, Any]) -> None:
    for key, item in value.items():
        name = f"{prefix}.{key}"
        if isinstance(item, Mapping) and item:
            _flatten(name, item, into)
        else:
            into[name] = item


def _keys(mappings: Iterable[Mapping[str, Any]], limit: int = 12) -> list[str]:
    """The keys of ``mappings`` in first-seen order (at most ``limit``: a table stays readable)."""
    keys: dict[str, None] = {}
    for mapping in mappings:
        keys.update(dict.fromkeys(mapping))
    return list(keys)[:limit]


class RunQueryResult(Sequence[RunSummary]):
    """The runs matched by a query, in query order.

    Made from the index rows as they were read; each ``RunSummary`` is made the first time its
    position is read, so a long listing costs its rows, not an object per run."""

    def __init__(self, rows: Sequence[RunSummary]) -> None:
        self._summaries: list[RunSummary | None] = list(rows)
        self._index_rows: Sequence[IndexRow] = ()
        self._root = Path()

    @classmethod
    def from_index_rows(cls, root: Path, rows: Sequence[IndexRow]) -> RunQueryResult:
        """The runs of ``rows`` (as ``Workspace.runs`` selects them) of the workspace at
        ``root``."""
        result = cls(())
        result._summaries = [None] * len(rows)
        result._index_rows, result._root = rows, root
        return result

    def _summary(self, position: int) -> RunSummary:
        summary = self._summaries[position]
        if summary is None:
            summary = RunSummary(self._root, self._index_rows[position])
            self._summaries[position] = summary
        return summary

    @overload
    def __getitem__(self, index: int) -> RunSummary: ...
    @overload
    def __getitem__(self, index: slice) -> RunQueryResult: ...
    def __getitem__(self, index: int | slice) -> RunSummary | RunQueryResult:
        positions = range(len(self._summaries))
        if isinstance(index, slice):
            return RunQueryResult([self._summary(position) for position in positions[index]])
        return self._summary(positions[index])

    def __len__(self) -> int:
        return len(self._summaries)

    def __iter__(self) -> Iterator[RunSummary]:
        return (self._summary(position) for position in range(len(self._summaries)))

    def __repr__(self) -> str:
        from ._html import grid_text

        title = f"<RunQueryResult: {len(self)} runs>"
        if not self:
            return title
        rows = [
            (row.id, f"{row.project}/{row.experiment}", row.status, row.params, row.results)
            for row in self
        ]
        return f"{title}\n" + grid_text(["id", "experiment", "status", "params", "results"], rows)

    def _repr_html_(self) -> str:
        """The runs as one table: id, experiment, status, profile, one column per parameter
        and per result (``params.x``, ``results.y``: the query language's names), finished."""
        from ._html import grid_html

        params = _keys(row.params for row in self)
        results = _keys(row.results for row in self)
        headers = [
            "id",
            "experiment",
            "status",
            "profile",
            *(f"params.{key}" for key in params),
            *(f"results.{key}" for key in results),
            "finished",
        ]
        rows = [
            (
                row.id,
                f"{row.project}/{row.experiment}",
                f"{row.status.value} (stale)" if row.stale else row.status,
                row.profile_label,
                *(row.params.get(key) for key in params),
                *(row.results.get(key) for key in results),
                row.finished_at,
            )
            for row in self
        ]
        return grid_html(headers, rows, caption=f"{len(self)} runs")

    @property
    def ids(self) -> list[str]:
        """The ids of the matched runs, in query order."""
        return [row.id for row in self]

    def to_records(self) -> list[dict[str, Any]]:
        """One flat dict per run (see ``RunSummary.to_record``)."""
        return [row.to_record() for row in self]

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
