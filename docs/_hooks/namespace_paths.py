"""MkDocs hook: let mkdocstrings read the ``molexp`` namespace spread over the layer packages.

Every layer distribution ships a portion of the ``molexp`` namespace (no ``__init__.py``); the
meta package ships ``molexp/__init__.py``, which calls ``pkgutil.extend_path`` so that the portions
are found wherever each one is installed. griffe (which mkdocstrings uses to read sources
statically) treats such an ``__init__.py`` as a namespace marker only when it is written as
``__path__ = __import__("pkgutil").extend_path(__path__, __name__)``. The meta package writes
``__path__ = extend_path(__path__, __name__)`` after ``from pkgutil import extend_path``, so griffe
would stop at the meta package and report ``molexp.assets`` & co. as not found (in a development
install every distribution is a separate source tree). This hook widens griffe's pattern to accept
that spelling too, before mkdocstrings loads anything.
"""

from __future__ import annotations

import re
from typing import Any

from griffe._internal import finder

_EXTEND_PATH = re.compile(
    r"__path__\s*=\s*(?:__import__\([\"']pkgutil[\"']\)\.|pkgutil\.)?"
    r"extend_path\(__path__, __name__\)"
)


def on_config(config: Any) -> Any:
    if not hasattr(finder, "_re_pkgutil"):
        raise RuntimeError(
            "docs/_hooks/namespace_paths.py: griffe no longer has finder._re_pkgutil; update the "
            "hook for this griffe version (or spell the meta package's extend_path the way "
            "griffe recognises it)"
        )
    finder._re_pkgutil = _EXTEND_PATH
    return config
