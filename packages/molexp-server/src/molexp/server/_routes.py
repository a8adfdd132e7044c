"""The ``/api/v1`` routes: thin HTTP adapters over ``WorkspaceService``.

Owns the URL layout, query-parameter validation and bounds, documented error
responses, artifact downloads (with headers that stop a served file from running
script in the UI's origin) and the Server-Sent Events log stream.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response, StreamingResponse

from ._schemas import (
    ApiError,
    ArtifactInfo,
    AssetDetail,
    AssetInfo,
    AttemptDetail,
    CompareTable,
    ExperimentInfo,
    LogChunk,
    LogInfo,
    MetricInfo,
    MetricSeriesInfo,
    ProjectInfo,
    ProjectTable,
    RunDetail,
    RunPage,
    WorkspaceInfo,
)
from ._service import RunRef, WorkspaceService
from ._sse import LogStreamSettings, stream_log

__all__ = ["build_router"]

MAX_PAGE = 10_000
DEFAULT_PAGE = 100
DEFAULT_LOG_BYTES = 1024 * 1024
MAX_LOG_BYTES = 8 * 1024 * 1024
MIN_LOG_BYTES = 1024
DEFAULT_STREAM_SECONDS = 300.0
MAX_STREAM_SECONDS = 3600.0
DEFAULT_METRIC_POINTS = 2000
MAX_METRIC_POINTS = 100_000
MAX_PROJECT_RUNS = 20_000

ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ApiError, "description": "Malformed input (names the value concerned)."},
    404: {"model": ApiError, "description": "No such project, experiment, run, file or asset."},
    409: {"model": ApiError, "description": "Ambiguous run id, or the record is broken."},
}
# A served artifact is untrusted content: never let it run script in the UI's origin.
ARTIFACT_HEADERS = {
    "Content-Security-Policy": (
        "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}

Where = Annotated[
    str | None,
    Query(
        description='Run query, e.g. `lr < 1e-3 and status == "failed"` (see the workspace docs).'
    ),
]
Status = Annotated[
    str | None, Query(description="Comma-separated statuses to keep, e.g. `running,failed`.")
]
OrderBy = Annotated[
    str | None,
    Query(description="A field to sort by, `-field` for descending (e.g. `-results.loss`)."),
]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size.")]
Offset = Annotated[int, Query(ge=0, description="Rows to skip.")]
AttemptQuery = Annotated[
    int | None,
    Query(ge=1, description="An attempt of the run (1 is the first; default: the latest)."),
]
ProjectId = Annotated[str, PathParam(description="Project id.")]
ExperimentId = Annotated[str, PathParam(description="Experiment id.")]


def run_ref(
    run_id: Annotated[str, PathParam(description="Run id.")],
    project: Annotated[
        str | None, Query(description="Project id, when the run id exists in several experiments.")
    ] = None,
    experiment: Annotated[
        str | None,
        Query(description="Experiment id, when the run id exists in several experiments."),
    ] = None,
) -> RunRef:
    return RunRef(run_id, project, experiment)


RunParam = Annotated[RunRef, Depends(run_ref)]


def _json(content: bytes) -> Response:
    """A response of JSON the service already wrote (its route's ``response_model`` documents
    it; the framework neither validates nor serializes it again)."""
    return Response(content=content, media_type="application/json")


def _statuses(status: str | None) -> list[str]:
    return [part.strip() for part in (status or "").split(",") if part.strip()]


def build_router(service: WorkspaceService) -> APIRouter:
    """All API routes bound to ``service``."""
    router = APIRouter(responses=ERRORS)

    @router.get("/workspace", response_model=WorkspaceInfo, tags=["workspace"])
    def get_workspace() -> WorkspaceInfo:
        """Identity, counts by status, and every broken record of the workspace."""
        return service.workspace_info()

    @router.get("/projects", response_model=list[ProjectInfo], tags=["workspace"])
    def get_projects() -> list[ProjectInfo]:
        return service.projects()

    @router.get("/projects/{project_id}/runs", response_model=ProjectTable, tags=["runs"])
    def get_project_runs(
        project_id: ProjectId,
        limit: Annotated[
            int, Query(ge=1, le=MAX_PROJECT_RUNS, description="Most runs to return.")
        ] = MAX_PROJECT_RUNS,
    ) -> ProjectTable:
        """Every run of the project across its experiments (params, config and profile,
        results, the last value of each metric) with the keys of those columns: the data of the
        project page's table, sweep plot and parallel coordinates."""
        return service.project_table(project_id, limit)

    @router.get(
        "/projects/{project_id}/experiments",
        response_model=list[ExperimentInfo],
        tags=["workspace"],
    )
    def get_experiments(project_id: ProjectId) -> list[ExperimentInfo]:
        return service.experiments(project_id)

    @router.get(
        "/projects/{project_id}/experiments/{experiment_id}",
        response_model=ExperimentInfo,
        tags=["workspace"],
    )
    def get_experiment(project_id: ProjectId, experiment_id: ExperimentId) -> ExperimentInfo:
        return service.experiment(project_id, experiment_id)

    @router.get(
        "/projects/{project_id}/experiments/{experiment_id}/runs",
        response_model=RunPage,
        tags=["runs"],
    )
    def get_experiment_runs(
        project_id: ProjectId,
        experiment_id: ExperimentId,
        where: Where = None,
        status: Status = None,
        order_by: OrderBy = None,
        limit: Limit = DEFAULT_PAGE,
        offset: Offset = 0,
    ) -> Response:
        """One page of the experiment's runs, filtered and sorted through the run index."""
        return _json(
            service.run_page(
                where=where,
                statuses=_statuses(status),
                order_by=order_by,
                limit=limit,
                offset=offset,
                project_id=project_id,
                experiment_id=experiment_id,
            )
        )

    @router.get(
        "/projects/{project_id}/experiments/{experiment_id}/compare",
        response_model=CompareTable,
        tags=["runs"],
    )
    def get_compare(
        project_id: ProjectId,
        experiment_id: ExperimentId,
        runs: Annotated[str, Query(description="Comma-separated run ids (two or more).")],
    ) -> CompareTable:
        """Parameters and results of the given runs side by side."""
        run_ids = [part.strip() for part in runs.split(",") if part.strip()]
        return service.compare(project_id, experiment_id, run_ids)

    @router.get("/compare", response_model=CompareTable, tags=["runs"])
    def get_compare_runs(
        runs: Annotated[
            str,
            Query(
                description="Comma-separated runs (two or more), each `project/experiment/run_id` "
                "or a run id that names one run."
            ),
        ],
    ) -> CompareTable:
        """Runs of any experiments and projects side by side, as the experiment's compare."""
        return service.compare_runs(runs.split(","))

    @router.get("/runs", response_model=RunPage, tags=["runs"])
    def get_runs(
        where: Where = None,
        status: Status = None,
        order_by: OrderBy = None,
        limit: Limit = DEFAULT_PAGE,
        offset: Offset = 0,
    ) -> Response:
        """Runs of the whole workspace."""
        return _json(
            service.run_page(
                where=where,
                statuses=_statuses(status),
                order_by=order_by,
                limit=limit,
                offset=offset,
            )
        )

    @router.get("/runs/{run_id}", response_model=RunDetail, tags=["runs"])
    def get_run(ref: RunParam) -> RunDetail:
        """Everything about one run: record, attempts with timings and errors, task states."""
        return service.run_detail(ref)

    @router.post("/runs/{run_id}/cancel", response_model=RunDetail, tags=["runs"])
    def post_cancel(ref: RunParam) -> RunDetail:
        """Cancel a pending, queued or running run (409 for any other status)."""
        return service.cancel(ref)

    @router.get("/runs/{run_id}/attempts/{number}", response_model=AttemptDetail, tags=["runs"])
    def get_attempt(
        ref: RunParam,
        number: Annotated[int, PathParam(ge=1, description="Attempt number (1 is the first).")],
        against: Annotated[
            int | None,
            Query(ge=1, description="Attempt to compare with (default: the one before)."),
        ] = None,
    ) -> AttemptDetail:
        """One attempt: its record, results and artifacts as they stood, its own logs and task
        states, and what changed from the attempt before (results by value, artifacts by hash)."""
        return service.attempt_detail(ref, number, against)

    @router.get("/runs/{run_id}/metrics", response_model=list[MetricInfo], tags=["metrics"])
    def get_metrics(ref: RunParam) -> list[MetricInfo]:
        """Last value, min, max and point count of each of the run's metric series."""
        return service.metrics(ref)

    @router.get("/runs/{run_id}/metrics/{name}", response_model=MetricSeriesInfo, tags=["metrics"])
    def get_metric(
        ref: RunParam,
        name: Annotated[str, PathParam(description="Metric name.")],
        points: Annotated[
            int,
            Query(
                ge=3,
                le=MAX_METRIC_POINTS,
                description="Most points to return: longer series are downsampled (LTTB).",
            ),
        ] = DEFAULT_METRIC_POINTS,
    ) -> MetricSeriesInfo:
        """The points of a metric series across attempts, downsampled server-side to ``points``
        by Largest-Triangle-Three-Buckets (peaks and dips are kept)."""
        return service.metric_series(ref, name, points)

    @router.get("/runs/{run_id}/logs", response_model=list[LogInfo], tags=["logs"])
    def get_logs(ref: RunParam, attempt: AttemptQuery = None) -> list[LogInfo]:
        """The logs of the run's latest attempt (or of ``attempt``)."""
        return service.logs(ref, attempt)

    @router.get("/runs/{run_id}/logs/{name}", response_model=LogChunk, tags=["logs"])
    def get_log(
        ref: RunParam,
        name: Annotated[str, PathParam(description="Log name (without `.log`).")],
        since: Annotated[int, Query(ge=0, description="Byte offset to read from.")] = 0,
        max_bytes: Annotated[
            int, Query(ge=MIN_LOG_BYTES, le=MAX_LOG_BYTES, description="Most bytes to return.")
        ] = DEFAULT_LOG_BYTES,
        attempt: AttemptQuery = None,
    ) -> LogChunk:
        """Log text from a byte offset; pass ``next_offset`` back as ``since`` to read on."""
        return service.read_log(ref, name, since, max_bytes, attempt)

    @router.get(
        "/runs/{run_id}/logs/{name}/stream",
        response_class=StreamingResponse,
        tags=["logs"],
        responses={200: {"content": {"text/event-stream": {}}, "description": "SSE stream."}},
    )
    async def get_log_stream(
        request: Request,
        ref: RunParam,
        name: Annotated[str, PathParam(description="Log name (without `.log`).")],
        since: Annotated[int, Query(ge=0, description="Byte offset to start after.")] = 0,
        max_seconds: Annotated[
            float, Query(gt=0, le=MAX_STREAM_SECONDS, description="Longest time to keep streaming.")
        ] = DEFAULT_STREAM_SECONDS,
        last_event_id: Annotated[str | None, Header(include_in_schema=False)] = None,
        attempt: AttemptQuery = None,
    ) -> StreamingResponse:
        """Live tail: `log` events with new lines, then one `end` event (run over, or timeout)."""
        path: Path = await run_in_threadpool(service.log_path, ref, name, attempt)
        if last_event_id is not None and last_event_id.isdigit():
            since = int(last_event_id)  # a reconnecting EventSource resumes where it stopped
        # Asked without the service's lock: a tail never waits behind other requests.
        probe = await run_in_threadpool(service.terminal_probe, ref)

        async def is_terminal() -> bool:
            return await run_in_threadpool(probe)

        events = stream_log(
            path,
            since,
            is_terminal=is_terminal,
            is_disconnected=request.is_disconnected,
            settings=LogStreamSettings(max_seconds=max_seconds),
        )
        return StreamingResponse(
            events,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @router.get("/runs/{run_id}/artifacts", response_model=list[ArtifactInfo], tags=["artifacts"])
    def get_artifacts(ref: RunParam, attempt: AttemptQuery = None) -> list[ArtifactInfo]:
        """The run's current artifacts (the latest of each name), or those ``attempt`` showed."""
        return service.artifacts(ref, attempt)

    @router.get(
        "/runs/{run_id}/artifacts/{name:path}",
        response_class=FileResponse,
        tags=["artifacts"],
        responses={200: {"content": {"application/octet-stream": {}}, "description": "The file."}},
    )
    def get_artifact(
        ref: RunParam,
        name: Annotated[str, PathParam(description="Artifact path relative to `artifacts/`.")],
        attempt: AttemptQuery = None,
    ) -> FileResponse:
        """Download one artifact file with its media type (``attempt``: as that attempt saw it)."""
        path, media_type = service.artifact(ref, name, attempt)
        return FileResponse(
            path,
            media_type=media_type,
            filename=Path(name).name,
            content_disposition_type="inline",
            headers=ARTIFACT_HEADERS,
        )

    @router.get("/assets", response_model=list[AssetInfo], tags=["assets"])
    def get_assets(
        kind: Annotated[
            str | None, Query(description="Asset kind, e.g. `artifact`, `data`.")
        ] = None,
        scope: Annotated[
            str,
            Query(description="Scope path: empty (workspace), `p`, `p/e` or `p/e/run_id`."),
        ] = "",
        exact: Annotated[
            bool, Query(description="Only assets of exactly this scope, not those beneath it.")
        ] = False,
        name: Annotated[str | None, Query(description="Asset name.")] = None,
        tag: Annotated[str | None, Query(description="Asset tag.")] = None,
    ) -> list[AssetInfo]:
        """Assets of the catalog within (or exactly at) a scope."""
        return service.assets(kind=kind, scope=scope, exact=exact, name=name, tag=tag)

    @router.get("/assets/{asset_id}", response_model=AssetDetail, tags=["assets"])
    def get_asset(asset_id: Annotated[str, PathParam(description="Asset id.")]) -> AssetDetail:
        """One asset with its lineage: producer, its declared inputs, and recorded uses."""
        return service.asset_detail(asset_id)

    return router
