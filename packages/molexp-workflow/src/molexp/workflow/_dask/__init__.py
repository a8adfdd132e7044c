"""Private Dask runtime of the workflow layer (public names are re-exported by molexp.workflow).

``runtime`` holds ``DaskRuntime`` and ``runtime_from_config``; ``plan`` turns a workflow into
index-addressed tasks; ``execution`` drives one execution on a Dask client; ``worker`` is what
runs inside the Dask workers. Importing this package does not import ``distributed``.
"""

from molexp.workflow._dask.runtime import DaskRuntime, runtime_from_config

__all__ = ["DaskRuntime", "runtime_from_config"]
