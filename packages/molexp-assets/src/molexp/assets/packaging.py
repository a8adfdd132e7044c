"""How the MolExp layers present their public names (shared by the layers above assets).

A layer keeps its code in private modules (``molexp.workspace._run``) and re-exports one public
surface from its package (httpx style); :func:`publish` makes those names say where they live,
so reprs, tracebacks and the API reference show ``molexp.workspace.Run``.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any

__all__ = ["publish", "publish_one"]


def publish_one(value: Any, package: str) -> Any:
    """Set ``value.__module__`` to ``package`` if a private module of it defines ``value``."""
    private = getattr(value, "__module__", "").startswith(f"{package}._")
    if private and (isinstance(value, type) or hasattr(value, "__code__")):
        value.__module__ = package
    return value


def publish(namespace: MutableMapping[str, Any], names: Iterable[str] | None = None) -> None:
    """:func:`publish_one` for every name of a package's ``__all__`` (its namespace given)."""
    package = namespace["__name__"]
    for name in names if names is not None else namespace["__all__"]:
        publish_one(namespace[name], package)
