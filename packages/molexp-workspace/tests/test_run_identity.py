"""Deterministic run ids are unique within a workspace, and legacy ids are still found."""

from __future__ import annotations

from molexp.workspace import Experiment, Workspace, derive_run_id

PARAMS = {"lr": 1e-3, "seed": 0}


def test_the_experiment_is_part_of_the_id() -> None:
    legacy = derive_run_id(PARAMS, 0, "default", "h")
    ids = {
        derive_run_id(PARAMS, 0, "default", "h", project_id=project, experiment_id=experiment)
        for project in ("qm9", "other")
        for experiment in ("baseline", "wide")
    }
    assert len(ids) == 4
    assert legacy not in ids
    assert derive_run_id(
        dict(reversed(PARAMS.items())), 0, "default", "h", project_id="qm9", experiment_id="wide"
    ) == derive_run_id(PARAMS, 0, "default", "h", project_id="qm9", experiment_id="wide")
    # the legacy scheme is unchanged: ids of existing workspaces stay derivable
    assert legacy == derive_run_id(PARAMS, 0, "default", "h", project_id=None)


def test_identical_parameters_give_distinct_ids_across_experiments(ws: Workspace) -> None:
    experiments = [
        ws.Project("QM9").Experiment("baseline", params={"lr": 1e-3}),
        ws.Project("QM9").Experiment("wide", params={"lr": 1e-3}),
        ws.Project("other").Experiment("baseline", params={"lr": 1e-3}),
    ]
    ids = [exp.deterministic_run_id(exp.params, 0, "default", "h") for exp in experiments]
    assert len(set(ids)) == 3
    for exp, run_id in zip(experiments, ids, strict=True):
        exp.Run(id=run_id)
    for exp, run_id in zip(experiments, ids, strict=True):
        found = ws.find_run(run_id)  # never ambiguous
        assert (found.project.id, found.experiment.id) == (exp.project.id, exp.id)
        assert exp.deterministic_run_id(exp.params, 0, "default", "h") == run_id


def test_a_run_under_its_legacy_id_is_found_again(exp: Experiment) -> None:
    new = exp.deterministic_run_id(PARAMS, 1, "fast", "h")
    legacy = derive_run_id(PARAMS, 1, "fast", "h")
    assert new == derive_run_id(
        PARAMS, 1, "fast", "h", project_id=exp.project.id, experiment_id=exp.id
    )
    exp.Run(parameters=PARAMS, id=legacy)  # written by an older MolExp
    assert exp.deterministic_run_id(PARAMS, 1, "fast", "h") == legacy
    # other inputs are not confused with it
    assert exp.deterministic_run_id(PARAMS, 0, "fast", "h") != legacy
    # once a run under the new id exists, the new id wins
    exp.Run(parameters=PARAMS, id=new)
    assert exp.deterministic_run_id(PARAMS, 1, "fast", "h") == new
