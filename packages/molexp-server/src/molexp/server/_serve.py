"""Running the server: ``serve()`` starts uvicorn on the app for one workspace.

Owns the rule that a server reachable from other machines always has a token:
binding any address other than loopback without one generates a token
(``secrets.token_urlsafe``) and prints it inside the URL to open.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import TextIO

import uvicorn

from ._app import API_DOCS_PATH, create_app
from ._security import is_loopback_host

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "serve", "server_url"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
TOKEN_BYTES = 32


def server_url(host: str, port: int, token: str | None, path: str = "/") -> str:
    """The URL of ``path`` to open in a browser (it carries the token when there is one)."""
    shown = "127.0.0.1" if host in {"0.0.0.0", ""} else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}{path}" + (f"?token={token}" if token else "")


def serve(
    workspace_root: Path | str | os.PathLike[str],
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    token: str | None = None,
    out: TextIO | None = None,
) -> None:
    """Serve the API and web UI of ``workspace_root`` until interrupted.

    Any ``host`` other than a loopback address requires a token; when none is given
    one is generated. The URL to open (with the token) and that of the interactive API
    documentation are printed to ``out`` (default: standard output) before the server starts.
    """
    stream = out if out is not None else sys.stdout
    generated = False
    if token is None and not is_loopback_host(host):
        token = secrets.token_urlsafe(TOKEN_BYTES)
        generated = True
    app = create_app(workspace_root, token=token)
    if generated:
        print(f"{host} is not a loopback address: generated an access token.", file=stream)
        print(f"Token: {token}", file=stream)
    print(
        f"MolExp is serving {Path(workspace_root)} at {server_url(host, port, token)}", file=stream
    )
    print(f"API docs: {server_url(host, port, token, API_DOCS_PATH)}", file=stream)
    stream.flush()
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
