"""`molexp serve`: the molexp-server API and web UI over a workspace, imported on demand."""

from __future__ import annotations

from pathlib import Path

from ._errors import CliError
from ._resolve import resolve_workspace_root

__all__ = ["serve_command"]


def serve_command(*, workspace: Path | None, host: str, port: int, token: str | None) -> None:
    root = resolve_workspace_root(workspace)
    try:
        from molexp.server import serve
    except ImportError:
        raise CliError(
            "molexp serve needs the molexp-server package: pip install 'molexp-cli[server]'"
        ) from None
    serve(root, host=host, port=port, token=token)
