"""A run's profile config and ``--set`` overrides: recorded, indexed, queryable, listed."""

from __future__ import annotations

import json
import sqlite3

import pytest
from molexp.workspace import (
    Experiment,
    ProfileConfig,
    UnknownFieldError,
    Workspace,
)
from molexp.workspace._records import profile_label
from workspace_helpers import on_disk, raw_on_disk

FAST = {"n_strains": 5, "model": {"depth": 1}}


def _run(exp: Experiment, run_id: str, profile: ProfileConfig) -> None:
    with exp.Run(id=run_id).start(profile_config=profile) as ctx:
        ctx.set_result("energy", -1.0)


@pytest.fixture
def sweep(exp: Experiment) -> Workspace:
    """Three runs of one experiment that differ only by profile or ``--set`` values."""
    _run(exp, "fast", ProfileConfig(name="fast", config=FAST))
    _run(
        exp,
        "fast-7",
        ProfileConfig(name="fast", config={**FAST, "n_strains": 7}, overrides={"n_strains": 7}),
    )
    _run(exp, "accurate", ProfileConfig(name="accurate", config={"n_strains": 9}))
    return exp.workspace


def test_overrides_are_recorded_apart_from_the_profile(exp: Experiment) -> None:
    run = exp.Run(id="r")
    profile = ProfileConfig(
        name="fast",
        config={"n_strains": 7, "model": {"depth": 3}},
        overrides={"n_strains": 7, "model.depth": 3},
    )
    with run.start(profile_config=profile) as ctx:
        assert ctx.profile.overrides == {"n_strains": 7, "model.depth": 3}
    stored = on_disk(run)
    assert stored.profile is not None
    assert stored.profile.name == "fast"
    assert stored.profile.overrides == {"n_strains": 7, "model.depth": 3}
    assert stored.profile.label == "fast + n_strains=7, model.depth=3"
    # the hash is the config's alone: overrides are already part of the config
    assert stored.profile.config_hash == ProfileConfig(config=profile.config).config_hash


def test_labels() -> None:
    assert profile_label(None) is None
    assert profile_label("fast") == "fast"
    assert profile_label("fast", {}) == "fast"
    assert profile_label("fast", {"tag": "cu", "on": True, "x": 0.5}) == (
        "fast + tag=cu, on=true, x=0.5"
    )
    # a string that --set would read as another type is quoted
    assert profile_label("p", {"tag": "42", "empty": "", "word": "true"}) == (
        'p + tag="42", empty="", word="true"'
    )


def test_a_record_without_overrides_still_loads(exp: Experiment) -> None:
    run = exp.Run(id="old")
    with run.start(profile_config=ProfileConfig(name="fast", config=FAST)):
        pass
    data = raw_on_disk(run)
    del data["profile"]["overrides"]  # as written before overrides were recorded
    run.record_path.write_text(json.dumps(data))
    stored = on_disk(run)
    assert stored.profile is not None
    assert (stored.profile.name, stored.profile.config) == ("fast", FAST)
    assert stored.profile.overrides == {}
    assert stored.profile.label == "fast"
    exp.workspace.rebuild_index()
    (row,) = exp.workspace.runs()
    assert (row.profile, row.profile_label, row.overrides) == ("fast", "fast", {})


def test_config_is_queryable(sweep: Workspace) -> None:
    assert sweep.runs("config.n_strains == 7").ids == ["fast-7"]
    assert sweep.runs("config.n_strains >= 7").ids == ["fast-7", "accurate"]
    assert sweep.runs("config.model.depth == 1").ids == ["fast", "fast-7"]
    assert sweep.runs("profile == 'fast'").ids == ["fast", "fast-7"]
    assert sweep.runs("profile == 'fast' and config.n_strains != 7").ids == ["fast"]
    assert sweep.runs({"config.n_strains": [5, 9]}).ids == ["fast", "accurate"]
    assert sweep.runs("not exists(config.model)").ids == ["accurate"]
    assert sweep.runs(order_by="-config.n_strains").ids == ["accurate", "fast-7", "fast"]


def test_unknown_config_fields_are_errors_naming_the_closest(sweep: Workspace) -> None:
    with pytest.raises(UnknownFieldError) as caught:
        sweep.runs("config.n_strain == 7")
    assert caught.value.suggestions[0] == "config.n_strains"
    assert "config.n_strains" in caught.value.known
    # a bare name is a parameter; the config key of that name is suggested
    with pytest.raises(UnknownFieldError) as caught:
        sweep.runs("n_strains == 7")
    assert "config.n_strains" in caught.value.suggestions
    with pytest.raises(UnknownFieldError):
        sweep.runs(order_by="config.nope")
    assert sweep.runs("not exists(config.nope)").ids == ["fast", "fast-7", "accurate"]
    with pytest.raises(ValueError, match="'config' needs a key"):
        sweep.runs("config == 1")


def test_summaries_and_records_carry_config_and_overrides(sweep: Workspace) -> None:
    rows = {row.id: row for row in sweep.runs()}
    assert rows["fast-7"].config == {"n_strains": 7, "model": {"depth": 1}}
    assert rows["fast-7"].overrides == {"n_strains": 7}
    assert rows["fast-7"].profile_label == "fast + n_strains=7"
    assert rows["fast"].profile_label == "fast"
    records = {record["id"]: record for record in sweep.runs().to_records()}
    assert records["fast-7"]["config.n_strains"] == 7
    assert records["fast-7"]["config.model.depth"] == 1
    assert records["fast-7"]["profile_label"] == "fast + n_strains=7"
    assert records["accurate"]["config.n_strains"] == 9
    assert "config.model.depth" not in records["accurate"]


def test_to_pandas_has_config_columns(sweep: Workspace) -> None:
    pandas = pytest.importorskip("pandas")
    frame = sweep.runs().to_pandas()
    assert isinstance(frame, pandas.DataFrame)
    assert list(frame["config.n_strains"]) == [5, 7, 9]
    assert list(frame["profile_label"]) == ["fast", "fast + n_strains=7", "accurate"]


def test_an_index_file_of_the_previous_version_is_refilled(sweep: Workspace) -> None:
    """A host's index written before config was indexed has no config column: it is refilled."""
    assert len(sweep.runs()) == 3  # the host's index has its runs table
    path = sweep.catalog.db_path
    with sqlite3.connect(path) as connection:
        connection.execute("DROP TABLE runs")
        connection.execute(
            "CREATE TABLE runs (workspace_id, project_id, experiment_id, id, status, "
            "created_at, updated_at, started_at, finished_at, params, results, profile_name, "
            "config_hash, workflow_id, replica_index, seed, tags, "
            "PRIMARY KEY (project_id, experiment_id, id))"
        )
        connection.execute("UPDATE workspace_index_versions SET version = 2")
    assert Workspace(sweep.root).runs("config.n_strains == 7").ids == ["fast-7"]


def test_keys_with_underscores_are_known_fields(exp: Experiment) -> None:
    """SQLite may quote such keys in ``json_tree`` (``$."n_atoms"``); they are known too."""
    with exp.Run(parameters={"n_atoms": 4}).start({"max_steps": 3}) as ctx:
        ctx.set_result("min_energy", -1.0)
    with pytest.raises(UnknownFieldError) as caught:
        exp.workspace.runs("n_atom == 4")
    assert caught.value.suggestions[0] == "n_atoms"
    with pytest.raises(UnknownFieldError) as caught:
        exp.workspace.runs("results.min_energi < 0")
    assert caught.value.suggestions[0] == "results.min_energy"
    with pytest.raises(UnknownFieldError) as caught:
        exp.workspace.runs("config.max_step == 3")
    assert caught.value.suggestions[0] == "config.max_steps"
