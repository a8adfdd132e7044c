"""The package imports fast and lazily: no pydantic, pydantic-graph or asyncio at import time."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import molexp.workflow as workflow_package


def test_import_does_not_load_heavy_dependencies() -> None:
    script = textwrap.dedent(
        """
        import sys
        import molexp.workflow
        heavy = [m for m in ("pydantic", "pydantic_graph", "asyncio", "anyio") if m in sys.modules]
        print(",".join(heavy))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_public_surface() -> None:
    for name in workflow_package.__all__:
        assert getattr(workflow_package, name) is not None, name
    assert "workflow" in dir(workflow_package)
    assert not hasattr(workflow_package, "definitely_not_exported")
