"""Executing a workflow under a tracked run, whatever runtime drives the tasks.

Owns :func:`validate_run_arguments`, :func:`execute_with_lifecycle` (opening the run, the workflow
snapshot, resume, recording the execution state, failing the run around a runtime's ``drive``),
:func:`merged_config` and :func:`resolve_cache`. The contract a ``drive`` honours is in
docs/architecture.md, "Executing under a run".
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from molexp.workflow.errors import WorkflowFailed
from molexp.workflow.runtime import ExecutionOptions, WorkflowResult, WorkflowStatus

if TYPE_CHECKING:
    from molexp.workflow._resume import ResumePlan
    from molexp.workflow.protocols import RunContextProtocol, RunProtocol
    from molexp.workflow.spec import Workflow

__all__ = [
    "Drive",
    "execute_with_lifecycle",
    "first_exception",
    "merged_config",
    "resolve_cache",
    "validate_run_arguments",
    "workflow_payload",
]

_logger = logging.getLogger("molexp.workflow")

Drive: TypeAlias = (
    "Callable[[RunContextProtocol | None, ResumePlan | None], Awaitable[WorkflowResult]]"
)
"""What a runtime supplies: execute the tasks under this run context and resume plan."""

_SNAPSHOT_VERSION = 1  # WorkflowSnapshotRef.SCHEMA_VERSION, without importing it on every run

_process_cache: Any = None


def validate_run_arguments(
    spec: Workflow,
    run: RunProtocol | None,
    run_context: RunContextProtocol | None,
    profile_config: Any,
    kwargs: Mapping[str, Any],
) -> ExecutionOptions:
    """Check the run arguments and return the validated options (raises before anything runs)."""
    if run is not None and run_context is not None:
        raise ValueError(
            f"workflow {spec.name!r}: pass either run= (to open the run) or run_context= "
            "(an already open run context), not both"
        )
    if run is not None and not (
        callable(getattr(run, "start", None)) and callable(getattr(run, "set_workflow", None))
    ):
        raise TypeError(
            f"workflow {spec.name!r}: run= must be a Run with start() and set_workflow(), "
            f"got {type(run).__name__}"
        )
    if profile_config is not None and run is None:
        raise ValueError(
            f"workflow {spec.name!r}: profile_config= is only used when opening a run; "
            "pass run= as well"
        )
    options = ExecutionOptions.from_kwargs(spec.name, kwargs)
    if options.snapshot is not None and run is None:
        raise ValueError(
            f"workflow {spec.name!r}: snapshot= is stored on the run being opened; "
            "pass run= as well"
        )
    return options


def merged_config(
    run_context: RunContextProtocol | None, options: ExecutionOptions
) -> dict[str, Any]:
    """``ctx.config`` of every task: the run's profile config overlaid with ``config=``."""
    config: dict[str, Any] = {}
    if run_context is not None:
        config.update(run_context.config)
    if options.config:
        config.update(options.config)
    return config


def resolve_cache(
    options: ExecutionOptions, run_context: RunContextProtocol | None, spec: Workflow
) -> Any:
    """The ``Caching`` of ``cache=True`` tasks: ``cache=``, else the run's workspace cache
    (``<workspace root>/.subsystems/workflow.cache/``), else one in-memory cache per process.

    A cache that keeps fewer entries than the workflow has ``cache=True`` tasks would evict
    the execution's own results: that is warned about once per cache and workflow.
    """
    global _process_cache
    if options.cache is not None:
        cache = options.cache
    else:
        from molexp.workflow.cache import Caching, MemoryCacheStore, WorkspaceCacheStore

        if run_context is not None:
            cache = Caching(store=WorkspaceCacheStore(run_context.workspace))
        else:
            if _process_cache is None:
                _process_cache = Caching(store=MemoryCacheStore())
            cache = _process_cache
    _warn_if_too_small(cache, spec)
    return cache


_warned_small: set[tuple[int, str]] = set()


def _warn_if_too_small(cache: Any, spec: Workflow) -> None:
    limit = getattr(cache, "max_entries", None)
    cached = sum(1 for registration in spec._tasks if registration.cache)
    key = (id(cache), spec.workflow_id)
    if isinstance(limit, int) and cached > limit and key not in _warned_small:
        _warned_small.add(key)
        warnings.warn(
            f"workflow {spec.name!r} has {cached} cache=True tasks but its cache keeps at most "
            f"{limit} entries: one execution would evict its own results; pass "
            f"Caching(..., max_entries={2 * cached}) or more",
            RuntimeWarning,
            stacklevel=2,
        )


def first_exception(result: WorkflowResult) -> BaseException | None:
    """The exception of the first failed task (the cause of ``WorkflowFailed``)."""
    if not result.failed:
        return None
    return result.errors[result.failed[0]].exception


def workflow_payload(
    spec: Workflow, run: RunProtocol, snapshot: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """The workflow snapshot to store on ``run``, or None when it already holds exactly that."""
    identity = {"workflow_id": spec.workflow_id, "workflow_name": spec.name, "name": spec.name}
    for key, value in (snapshot or {}).items():
        if key in identity and value != identity[key]:
            raise ValueError(
                f"workflow {spec.name!r}: snapshot[{key!r}] is {value!r}, but the workflow "
                f"being executed has {key} {identity[key]!r}"
            )
    stored = getattr(getattr(run, "metadata", None), "workflow_snapshot", None)
    current = dict(stored) if isinstance(stored, Mapping) else {}
    payload = {**current, **(snapshot or {}), **identity}
    payload.setdefault("version", _SNAPSHOT_VERSION)
    return None if payload == current else payload


async def execute_with_lifecycle(
    spec: Workflow,
    options: ExecutionOptions,
    *,
    run: RunProtocol | None,
    run_context: RunContextProtocol | None,
    profile_config: Any,
    drive: Drive,
) -> WorkflowResult:
    """Execute ``spec`` through ``drive`` with the run lifecycle described in the module docs."""
    if run is None:
        if run_context is None:
            result = await drive(None, None)
        else:
            result = await _attempt(spec, options, run_context, drive)
        if result.status is WorkflowStatus.FAILED and options.raise_on_failure:
            raise WorkflowFailed(result) from first_exception(result)
        return result
    payload = workflow_payload(spec, run, options.snapshot)
    # A run that stores the workflow snapshot in the write starting the attempt (the workspace's
    # Run, see RunProtocol) gets it there: one run.json write (and index update) fewer.
    joined = payload is not None and getattr(type(run), "START_RECORDS_WORKFLOW", False) is True
    failure: WorkflowFailed | None = None
    try:
        with (
            cast(Any, run).start(profile_config=profile_config, workflow=payload)
            if joined
            else run.start(profile_config=profile_config)
        ) as opened:
            if payload is not None and not joined:
                run.set_workflow(payload)
            result = await _attempt(spec, options, opened, drive)
            if result.status is WorkflowStatus.FAILED:
                failure = WorkflowFailed(result)
                raise failure from first_exception(result)
            if result.status is WorkflowStatus.CANCELLED:
                opened.mark_failed(f"workflow {spec.name!r} was cancelled")
    except WorkflowFailed as exc:
        if exc is failure and not options.raise_on_failure:
            return exc.result
        raise
    return result


def _open_plan(
    spec: Workflow, options: ExecutionOptions, run_context: RunContextProtocol
) -> ResumePlan | None:
    from molexp.workflow._resume import ResumePlan

    try:
        return ResumePlan.open(
            spec,
            run_dir=run_context.run_dir,
            execution_id=run_context.execution_id,
            execution_dir=run_context.execution_dir,
            run_config=merged_config(run_context, options),
            inputs=options.inputs,
            resume=options.resume,
            # A workspace run context holds back results for a moment: they must reach
            # run.json before the journal marks their task done (it will not run again).
            before_frame=getattr(run_context, "flush_results", None),
        )
    except Exception:  # persistence is best effort: it must never fail the run
        _logger.warning(
            "workflow %r: task outputs of this attempt will not be persisted",
            spec.name,
            exc_info=True,
        )
        return None


async def _attempt(
    spec: Workflow, options: ExecutionOptions, run_context: RunContextProtocol, drive: Drive
) -> WorkflowResult:
    plan = _open_plan(spec, options, run_context)
    try:
        result = await drive(run_context, plan)
    finally:
        if plan is not None:
            plan.close()
    if plan is not None:
        result.persistence = plan.persistence()
        result.code_hashes, result.sources, result.distributions = plan.code_record()
        if plan.resumed_outputs:
            result.resumed_from = plan.previous_execution_id
    run_context.record_execution_state(result.to_state())
    return result
