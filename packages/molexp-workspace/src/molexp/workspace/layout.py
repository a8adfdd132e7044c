"""Where a workspace keeps its records, for layers that read the files themselves.

The directory and file names of the hierarchy (``workspace.json``,
``projects/<id>/project.json``, ``projects/<id>/experiments/<id>/experiment.json``,
``.../runs/run-<id>/run.json``), the run directory's name for an id, and the kinds of
change-feed lines the workspace appends with the record each names (the server's
broken-record check follows them). Other layers import these from here, never from
private modules.
"""

from molexp.workspace._layout import (
    EXPERIMENT_FILE,
    EXPERIMENTS_DIR,
    PROJECT_CHANGE,
    PROJECT_FILE,
    PROJECTS_DIR,
    RUN_CHANGE,
    RUN_DIR_PREFIX,
    RUN_FILE,
    RUNS_DIR,
    WORKSPACE_FILE,
    run_dir_name,
    run_record_ids,
)

__all__ = [
    "EXPERIMENTS_DIR",
    "EXPERIMENT_FILE",
    "PROJECTS_DIR",
    "PROJECT_CHANGE",
    "PROJECT_FILE",
    "RUNS_DIR",
    "RUN_CHANGE",
    "RUN_DIR_PREFIX",
    "RUN_FILE",
    "WORKSPACE_FILE",
    "run_dir_name",
    "run_record_ids",
]
