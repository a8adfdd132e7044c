"""MolExp server: a read-mostly HTTP API and web UI over workspace state.

``create_app(workspace_root, token=None, allow_origins=())`` builds the FastAPI app
(API under ``/api/v1``, UI at ``/``); ``serve(workspace_root, host=..., port=...,
token=None)`` runs it with uvicorn.
"""

from molexp.server._app import create_app
from molexp.server._serve import serve, server_url

__all__ = ["create_app", "serve", "server_url"]

from molexp.assets.packaging import publish

publish(globals())
