"""Summaries of a scope's runs counted in the index: ``ws.run_status_counts()`` and
``ws.run_field_paths()`` must say exactly what walking every run's record says."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from molexp.workspace import Experiment, Project, RunStatus, Workspace


def walked(value: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    """The oracle: dotted paths of the leaves, walking non-empty mappings only."""
    for key, item in value.items():
        if isinstance(item, Mapping) and item:
            yield from walked(item, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def expected_paths(ws: Workspace, **scope: str) -> dict[str, list[str]]:
    rows = ws.runs(**scope)  # type: ignore[arg-type]
    return {
        "params": sorted({path for row in rows for path in walked(row.params)}),
        "results": sorted({path for row in rows for path in walked(row.results)}),
        "config": sorted({path for row in rows for path in walked(row.config)}),
    }


KEYS = st.sampled_from(["a", "b", "x.y", "with space", 'q"uote', "ü", "[0]", "$"])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=3),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=2), st.dictionaries(KEYS, inner, max_size=3)),
    max_leaves=6,
)
MAPPINGS = st.dictionaries(KEYS, VALUES, max_size=4)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(records=st.lists(st.tuples(MAPPINGS, MAPPINGS), min_size=1, max_size=4))
def test_paths_match_walking_every_record(
    project: Project, records: list[tuple[dict[str, Any], dict[str, Any]]]
) -> None:
    ws = project.workspace
    experiment = project.Experiment(f"e{len(project.list_experiments())}")
    for params, results in records:
        run = experiment.Run(parameters=params)
        with run.start() as ctx:
            for key, value in results.items():
                ctx.set_result(key, value)
    scope = {"project": project.id, "experiment": experiment.id}
    assert ws.run_field_paths(**scope) == expected_paths(ws, **scope)


def test_counts_and_paths_by_scope(ws: Workspace, project: Project, exp: Experiment) -> None:
    other = project.Experiment("other")
    for index in range(5):
        run = (exp if index % 2 else other).Run(
            parameters={"lr": index, "model": {"depth": index, "opts": {}}, "tags": [1, 2]}
        )
        with run.start(profile_config={"scale": {"x": index}}) as ctx:
            ctx.set_result("loss", index)
    exp.Run(parameters={"lr": 9}).save()  # pending
    assert ws.run_status_counts() == {"succeeded": 5, "pending": 1}
    assert ws.run_status_counts(project=project, experiment=exp) == {
        "succeeded": 2,
        "pending": 1,
    }
    assert ws.run_status_counts(experiment="nope") == {}
    counted = Counter(row.status.value for row in ws.runs(experiment=other))
    assert ws.run_status_counts(experiment=other) == dict(counted)
    paths = ws.run_field_paths(project=project.id, experiment=exp.id)
    assert paths == expected_paths(ws, project=project.id, experiment=exp.id)
    assert paths["params"] == ["lr", "model.depth", "model.opts", "tags"]
    assert paths["config"] == ["scale.x"]
    assert ws.run_field_paths() == expected_paths(ws)
    assert RunStatus.pending.value in ws.run_status_counts()


def test_a_workspace_not_yet_on_disk(tmp_path: Any) -> None:
    nowhere = Workspace(tmp_path / "nowhere")
    assert nowhere.run_status_counts() == {}
    assert nowhere.run_field_paths() == {"params": [], "results": [], "config": []}
