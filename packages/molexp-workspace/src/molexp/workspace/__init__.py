"""MolExp workspace layer: the persistent Workspace -> Project -> Experiment -> Run hierarchy.

Records live as JSON files under the workspace root (``workspace.json``,
``projects/<id>/project.json``, ``.../experiments/<id>/experiment.json``,
``.../runs/run-<id>/run.json``); runs are also indexed, per user and host, in an
SQLite cache outside the workspace for queries (``ws.runs(where="lr < 1e-3")``).
``run.start()`` gives the ``RunContext`` that executes one attempt and records its outcome, results,
artifacts, logs, checkpoints and errors. This package never imports the workflow
layer.
"""

from molexp.assets import BrokenRecord
from molexp.workspace._attempts import ArtifactChange, Attempt, AttemptDiff, ResultChange
from molexp.workspace._compare import (
    FactRow,
    attempt_state,
    code_diffs,
    compare_facts,
    latest_state,
    run_facts,
    task_code_hashes,
)
from molexp.workspace._context import RunContext
from molexp.workspace._environment import RECORD_VARIABLES_ENV
from molexp.workspace._errors import (
    AmbiguousRunIdError,
    BrokenRecordWarning,
    QuerySyntaxError,
    RunStateError,
    StaleRecordError,
    UnknownFieldError,
    WorkspaceError,
)
from molexp.workspace._experiment import Experiment
from molexp.workspace._hashing import ProfileConfig, config_hash, derive_run_id
from molexp.workspace._metrics import MetricSeries, MetricWriter, clear_series_cache
from molexp.workspace._params import GridSpace, ParamSpace, UniformSpace
from molexp.workspace._project import Project
from molexp.workspace._records import (
    EnvironmentInfo,
    ErrorInfo,
    ExecutionRecord,
    ExperimentMetadata,
    MetricSummary,
    OwnerInfo,
    ProfileInfo,
    ProjectMetadata,
    RunMetadata,
    RunStatus,
    WorkspaceMetadata,
)
from molexp.workspace._registry import clear_registry, entry, registered_workspaces
from molexp.workspace._results import RunQueryResult, RunSummary
from molexp.workspace._run import Run
from molexp.workspace._stale import (
    find_stale_runs,
    owner_is_alive,
    pid_alive,
    reap_stale_runs,
    stale_reason,
)
from molexp.workspace._workspace import IndexRebuildReport, Workspace

__all__ = [
    "RECORD_VARIABLES_ENV",
    "AmbiguousRunIdError",
    "ArtifactChange",
    "Attempt",
    "AttemptDiff",
    "BrokenRecord",
    "BrokenRecordWarning",
    "EnvironmentInfo",
    "ErrorInfo",
    "ExecutionRecord",
    "Experiment",
    "ExperimentMetadata",
    "FactRow",
    "GridSpace",
    "IndexRebuildReport",
    "MetricSeries",
    "MetricSummary",
    "MetricWriter",
    "OwnerInfo",
    "ParamSpace",
    "ProfileConfig",
    "ProfileInfo",
    "Project",
    "ProjectMetadata",
    "QuerySyntaxError",
    "ResultChange",
    "Run",
    "RunContext",
    "RunMetadata",
    "RunQueryResult",
    "RunStateError",
    "RunStatus",
    "RunSummary",
    "StaleRecordError",
    "UniformSpace",
    "UnknownFieldError",
    "Workspace",
    "WorkspaceError",
    "WorkspaceMetadata",
    "attempt_state",
    "clear_registry",
    "clear_series_cache",
    "code_diffs",
    "compare_facts",
    "config_hash",
    "derive_run_id",
    "entry",
    "find_stale_runs",
    "latest_state",
    "owner_is_alive",
    "pid_alive",
    "reap_stale_runs",
    "registered_workspaces",
    "run_facts",
    "stale_reason",
    "task_code_hashes",
]

from molexp.assets.packaging import publish

publish(globals())
