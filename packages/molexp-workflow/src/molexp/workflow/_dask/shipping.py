"""Code shipping: the user's first-party modules travel with each task, pickled by value.

A script run by ``molexp run`` is loaded under a synthetic module name, and the modules beside
it (``helpers.py``, a local package) are importable only from the submitting machine's
``sys.path``; Dask workers (other processes, other hosts) cannot import them by name. Before a
task is pickled, :func:`ship_first_party_modules` registers every loaded *first-party* module
(decided by file location, as for the cache's code hash: see ``molexp.workflow._origins``) with
``cloudpickle.register_pickle_by_value``, so the functions, classes and module globals a task
body reaches are pickled by value and need no import on the worker. Standard-library, MolExp
and third-party modules stay pickled by reference: the cluster's environment provides them.

Each module is classified once per process (new modules are checked as they appear).
"""

from __future__ import annotations

import sys
import threading
from types import ModuleType

from molexp.workflow._origins import _framework_dirs, _install_roots, _is_under, module_origin

__all__ = ["ship_first_party_modules"]

_lock = threading.Lock()
_seen: dict[str, int] = {}
"""Module name -> id of the module object already checked."""


def _installed_roots() -> tuple[str, ...]:
    sites, stdlib = _install_roots()
    return (*sites, *stdlib, *_framework_dirs())


def _shippable(name: str, module: ModuleType, installed: tuple[str, ...] | None = None) -> bool:
    filename = getattr(module, "__file__", None)
    if name == "__main__" or not isinstance(filename, str) or not filename:
        return False  # cloudpickle pickles __main__ and file-less modules by value already
    if _is_under(filename, installed if installed is not None else _installed_roots()):
        return False  # installed code: skip the (slower) distribution lookup
    return module_origin(name).kind == "first_party"


def ship_first_party_modules() -> tuple[str, ...]:
    """Register loaded first-party modules to be pickled by value; the names newly registered."""
    import cloudpickle  # a dependency of dask.distributed

    registered: list[str] = []
    installed = _installed_roots()
    with _lock:
        for name, module in list(sys.modules.items()):
            if not isinstance(module, ModuleType) or _seen.get(name) == id(module):
                continue
            _seen[name] = id(module)
            if _shippable(name, module, installed):
                cloudpickle.register_pickle_by_value(module)
                registered.append(name)
    return tuple(registered)
