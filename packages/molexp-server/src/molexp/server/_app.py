"""The FastAPI application: API, web UI and the access rules around them.

Owns ``create_app``: it loads the workspace (failing loudly when there is none), mounts
the ``/api/v1`` routes with their OpenAPI schema and docs (``/docs`` and ``/openapi.json`` at
the root redirect there), serves the built web UI at ``/`` from the package's ``static/``
directory, and wraps everything in the access
guard (token, Host, Origin) and, only when origins are given, CORS.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from molexp.workspace import Workspace

from ._routes import build_router
from ._security import AccessGuard
from ._service import ServiceError, WorkspaceService

__all__ = ["API_DOCS_PATH", "API_PREFIX", "API_SCHEMA_PATH", "STATIC_DIR", "create_app"]

API_PREFIX = "/api/v1"
API_DOCS_PATH = f"{API_PREFIX}/docs"
API_SCHEMA_PATH = f"{API_PREFIX}/openapi.json"
STATIC_DIR = Path(__file__).parent / "static"
# RFC 6265 cookie-octets: the token travels in a cookie, so it must be one.
_TOKEN_PATTERN = re.compile(r"[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]+")
UI_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
MISSING_UI = """<!doctype html><title>MolExp</title>
<p>The web UI is not built into this installation. The API is at
<a href="/api/v1/docs">/api/v1/docs</a>. See the molexp-server README to build the UI.</p>"""


def _version() -> str:
    try:
        return metadata.version("molexp-server")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def _check_token(token: str | None) -> str | None:
    if token is None:
        return None
    if not isinstance(token, str) or not _TOKEN_PATTERN.fullmatch(token):
        raise ValueError(
            "token must be a non-empty string of printable ASCII without spaces, quotes, "
            "commas, semicolons or backslashes"
        )
    return token


def create_app(
    workspace_root: Path | str | os.PathLike[str],
    *,
    token: str | None = None,
    allow_origins: Sequence[str] = (),
) -> FastAPI:
    """The API and web UI over the workspace at ``workspace_root``.

    ``token``: when given, every request must carry it (bearer header, cookie, or
    ``?token=`` on the first page load). Without it only requests addressed to a
    loopback host name are answered. ``allow_origins``: browser origins allowed to call
    the API cross-origin (CORS is closed when empty). Raises ``FileNotFoundError`` when
    there is no workspace at ``workspace_root``.
    """
    token = _check_token(token)
    if isinstance(allow_origins, str):
        raise TypeError("allow_origins must be a sequence of origins, not a single string")
    workspace = Workspace.load(Path(workspace_root))
    service = WorkspaceService(workspace)
    app = FastAPI(
        title="MolExp",
        version=_version(),
        description=f"Read-mostly API over the MolExp workspace {workspace.name!r}.",
        openapi_url=API_SCHEMA_PATH,
        docs_url=API_DOCS_PATH,
        redoc_url=None,
    )
    app.state.service = service

    @app.exception_handler(ServiceError)
    async def service_error(_request: Request, exc: ServiceError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    app.include_router(build_router(service), prefix=API_PREFIX)
    _redirect_root_docs(app)
    _mount_ui(app)
    app.add_middleware(AccessGuard, token=token, allow_origins=tuple(allow_origins))
    if allow_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(allow_origins),
            allow_credentials=True,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
        )
    return app


def _redirect_root_docs(app: FastAPI) -> None:
    """``/docs`` and ``/openapi.json``, where FastAPI users look first, lead to the API's."""
    for source, target in (("/docs", API_DOCS_PATH), ("/openapi.json", API_SCHEMA_PATH)):
        app.add_api_route(source, _redirect_to(target), methods=["GET"], include_in_schema=False)


def _redirect_to(target: str) -> Callable[[Request], RedirectResponse]:
    """A route that redirects to ``target`` (a fixed path), keeping the query string."""

    def redirect(request: Request) -> RedirectResponse:
        query = request.url.query
        return RedirectResponse(target + (f"?{query}" if query else ""), status_code=307)

    return redirect


def _mount_ui(app: FastAPI) -> None:
    index = STATIC_DIR / "index.html"
    bundle = STATIC_DIR / "_app"
    if bundle.is_dir():
        app.mount("/_app", StaticFiles(directory=bundle), name="ui-bundle")

    @app.get("/", include_in_schema=False, response_model=None)
    def ui() -> FileResponse | HTMLResponse:
        if not index.is_file():
            return HTMLResponse(MISSING_UI, headers=UI_HEADERS)
        return FileResponse(index, media_type="text/html", headers=UI_HEADERS)
