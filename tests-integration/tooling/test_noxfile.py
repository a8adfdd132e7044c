"""The ``docs`` nox session: builds into a temporary directory it removes, and quietly."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def load_noxfile() -> ModuleType:
    spec = importlib.util.spec_from_file_location("molexp_noxfile", REPO / "noxfile.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeSession:
    def __init__(self) -> None:
        self.calls: list[tuple[tuple[str, ...], dict[str, str]]] = []
        self.site_existed: list[bool] = []

    def run(self, *args: str, env: dict[str, str] | None = None, **_: Any) -> None:
        self.calls.append((args, dict(env or {})))
        site = Path(args[args.index("--site-dir") + 1])
        self.site_existed.append(site.is_dir())


def test_docs_session_leaves_no_site_directory_and_silences_mkdocs_2_notice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    noxfile = load_noxfile()
    monkeypatch.setattr(noxfile, "_sync", lambda *args, **kwargs: None)
    session = FakeSession()
    noxfile.docs(session)
    [(args, env)] = session.calls
    assert args[:3] == ("mkdocs", "build", "--strict")
    assert env["NO_MKDOCS_2_WARNING"] == "1"
    assert session.site_existed == [True]  # a temporary directory while mkdocs builds...
    assert not Path(args[args.index("--site-dir") + 1]).exists()  # ...removed afterwards
