"""Every public name of each layer's package surface (its ``__all__``), and every public method
and property of the classes among them, has a docstring for mkdocstrings to render."""

from __future__ import annotations

import importlib
import inspect

PACKAGES = (
    "molexp.workflow",
    "molexp.assets",
    "molexp.workspace",
    "molexp.cli",
    "molexp.server",
)


def _missing_docstrings(package: str) -> list[str]:
    module = importlib.import_module(package)
    missing: list[str] = []
    for name in module.__all__:
        obj = getattr(module, name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        if not (obj.__doc__ or "").strip():
            missing.append(f"{package}.{name}")
        if not inspect.isclass(obj):
            continue
        for attr, member in vars(obj).items():
            if attr.startswith("_"):
                continue
            function = member.fget if isinstance(member, property) else member
            if inspect.isfunction(function) and not (function.__doc__ or "").strip():
                missing.append(f"{package}.{name}.{attr}")
    return missing


def test_every_public_name_has_a_docstring() -> None:
    missing = [name for package in PACKAGES for name in _missing_docstrings(package)]
    assert not missing, "public names without a docstring:\n" + "\n".join(missing)
