"""What an attempt's ``EnvironmentInfo`` holds: the machine (captured once per process), the Slurm
job it runs in and an allow-list of environment variables (read at every start): the built-in
``ALLOWED_VARIABLES`` plus the names or shell-style patterns listed, comma-separated, in
``$MOLEXP_RECORD_VARIABLES`` (which ``molexp`` sets from ``record_variables`` in molexp.toml)."""

from __future__ import annotations

import fnmatch
import functools
import os
import platform
import shutil
import subprocess
from collections.abc import Mapping

from ._records import EnvironmentInfo

__all__ = [
    "ALLOWED_VARIABLES",
    "RECORD_VARIABLES_ENV",
    "SLURM_VARIABLES",
    "capture_environment",
    "recorded_variable_names",
]

RECORD_VARIABLES_ENV = "MOLEXP_RECORD_VARIABLES"

SLURM_VARIABLES = (
    "SLURM_JOB_ID",
    "SLURM_ARRAY_JOB_ID",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_JOB_NODELIST",
    "SLURMD_NODENAME",
    "SLURM_CLUSTER_NAME",
)
ALLOWED_VARIABLES = (
    "CUDA_VISIBLE_DEVICES",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "PYTHONHASHSEED",
    "VIRTUAL_ENV",
    "CONDA_DEFAULT_ENV",
)
"""Variables that change results or say which environment ran; values of others (tokens,
passwords, keys) are never recorded."""


def capture_environment(environ: Mapping[str, str] | None = None) -> EnvironmentInfo:
    """The environment of this process now; the machine part is probed once per process."""
    env = os.environ if environ is None else environ
    implementation, system, cpus, gpus = _machine()
    return EnvironmentInfo(
        implementation=implementation,
        platform=system,
        cpu_count=cpus,
        gpus=list(gpus),
        slurm={name: env[name] for name in SLURM_VARIABLES if env.get(name)},
        variables={name: env[name] for name in recorded_variable_names(env)},
    )


def recorded_variable_names(environ: Mapping[str, str]) -> list[str]:
    """The variables of ``environ`` an attempt records: the built-in allow-list, then those the
    user allowed in ``$MOLEXP_RECORD_VARIABLES`` (names or patterns such as ``MYAPP_*``)."""
    names = [name for name in ALLOWED_VARIABLES if name in environ]
    patterns = [p.strip() for p in environ.get(RECORD_VARIABLES_ENV, "").split(",") if p.strip()]
    for pattern in patterns:
        matched = [name for name in environ if fnmatch.fnmatchcase(name, pattern)]
        names.extend(name for name in sorted(matched) if name not in names)
    return names


@functools.cache
def _machine() -> tuple[str, str, int | None, tuple[str, ...]]:
    try:
        cpus: int | None = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count()
    return platform.python_implementation(), platform.platform(), cpus, _gpus()


def _gpus() -> tuple[str, ...]:
    nvidia_smi = shutil.which("nvidia-smi")
    if nvidia_smi is None:
        return ()
    try:
        listed = subprocess.run(
            [nvidia_smi, "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ()
    if listed.returncode != 0:
        return ()
    return tuple(line.strip() for line in listed.stdout.splitlines() if line.strip())
