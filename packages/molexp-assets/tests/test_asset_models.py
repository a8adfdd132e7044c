"""Asset models: scope validation and containment, deterministic ids, typed parsing."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from molexp.assets import (
    AnyAsset,
    ArtifactAsset,
    Asset,
    AssetKind,
    AssetScope,
    CheckpointAsset,
    DataAsset,
    ErrorTraceAsset,
    ExecutionStateAsset,
    LogAsset,
    RecordError,
    ScopeLevel,
    UnsupportedVersionError,
    asset_id_for,
    parse_asset,
    validate_name,
)
from pydantic import TypeAdapter, ValidationError

RUN = AssetScope.for_run("lab", "p1", "e1", "r1")


def test_scope_factories_set_the_level_and_ids() -> None:
    assert AssetScope.for_workspace("lab").ids == ("lab", None, None, None)
    assert AssetScope.for_project("lab", "p").level is ScopeLevel.PROJECT
    assert AssetScope.for_experiment("lab", "p", "e").ids == ("lab", "p", "e", None)
    assert RUN.level is ScopeLevel.RUN and RUN.depth == 3


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"level": "run", "workspace_id": "w", "project_id": "p"}, "needs experiment_id"),
        ({"level": "project", "workspace_id": "w"}, "needs project_id"),
        ({"level": "workspace", "workspace_id": "w", "run_id": "r"}, "must not set run_id"),
        ({"level": "project", "workspace_id": "w", "project_id": "a/b"}, "project_id"),
        ({"level": "workspace", "workspace_id": ".."}, "workspace_id"),
    ],
)
def test_scope_ids_must_match_the_level(fields: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        AssetScope.model_validate(fields)


def test_scopes_are_frozen_and_hashable() -> None:
    with pytest.raises(ValidationError):
        RUN.run_id = "other"
    assert {RUN, AssetScope.for_run("lab", "p1", "e1", "r1")} == {RUN}


def test_containment_follows_the_hierarchy() -> None:
    workspace = AssetScope.for_workspace("lab")
    project = AssetScope.for_project("lab", "p1")
    experiment = AssetScope.for_experiment("lab", "p1", "e1")
    other_project_run = AssetScope.for_run("lab", "p2", "e1", "r1")
    assert workspace.contains(RUN) and project.contains(RUN) and experiment.contains(RUN)
    assert RUN.contains(RUN)
    assert not RUN.contains(experiment)
    assert not project.contains(other_project_run)
    assert not AssetScope.for_workspace("other").contains(RUN)


_ids = st.sampled_from(["a", "b"])


@st.composite
def scopes(draw: st.DrawFn) -> AssetScope:
    depth = draw(st.integers(0, 3))
    ids = [draw(_ids) for _ in range(4)]
    factories = [
        lambda: AssetScope.for_workspace(ids[0]),
        lambda: AssetScope.for_project(ids[0], ids[1]),
        lambda: AssetScope.for_experiment(ids[0], ids[1], ids[2]),
        lambda: AssetScope.for_run(*ids),
    ]
    return factories[depth]()


@given(scopes(), scopes())
def test_contains_means_being_one_of_the_ancestors(outer: AssetScope, inner: AssetScope) -> None:
    assert outer.contains(inner) == (outer in inner.ancestors())


@given(scopes())
def test_ancestors_walk_outward_to_the_workspace(scope: AssetScope) -> None:
    chain = scope.ancestors()
    assert chain[0] == scope
    assert [s.depth for s in chain] == list(range(scope.depth, -1, -1))
    assert all(outer.contains(scope) for outer in chain)
    assert chain[-1].parent is None


@given(st.text(min_size=1, max_size=40), st.sampled_from(list(AssetKind)))
def test_asset_ids_are_deterministic_16_hex(name: str, kind: AssetKind) -> None:
    first = asset_id_for(RUN, kind, name)
    assert first == asset_id_for(RUN, kind.value, name)
    assert re.fullmatch(r"[0-9a-f]{16}", first)
    assert asset_id_for(RUN, kind, name + "x") != first


@given(st.lists(st.text(min_size=1, max_size=20), min_size=2, max_size=20, unique=True))
def test_asset_ids_differ_by_name(names: list[str]) -> None:
    ids = {asset_id_for(RUN, AssetKind.ARTIFACT, name) for name in names}
    assert len(ids) == len(names)


def test_asset_ids_differ_by_kind_and_scope() -> None:
    ids = {asset_id_for(RUN, kind, "x") for kind in AssetKind}
    ids.add(asset_id_for(AssetScope.for_run("lab", "p1", "e1", "r2"), AssetKind.LOG, "x"))
    ids.add(asset_id_for(AssetScope.for_experiment("lab", "p1", "e1"), AssetKind.LOG, "x"))
    assert len(ids) == len(AssetKind) + 2


def _examples() -> list[Asset]:
    common: dict[str, Any] = {"scope": RUN, "path": "runs/r1/x"}
    return [
        DataAsset(id="d", name="d", source="/data/x", action="copy", **common),
        ArtifactAsset(id="a", name="a", media_type="application/json", **common),
        LogAsset(id="l", name="l", line_count=3, **common),
        CheckpointAsset(id="c", name="c", sequence=2, parent_id="b", **common),
        ErrorTraceAsset(id="e", name="e", execution_id="x", error_type="KeyError", **common),
        ExecutionStateAsset(id="s", name="s", execution_id="x", **common),
    ]


@pytest.mark.parametrize("asset", _examples(), ids=lambda a: a.kind.value)
def test_parse_asset_returns_the_subclass_of_the_kind(asset: Asset) -> None:
    data = asset.model_dump(mode="json")
    parsed = parse_asset(data)
    assert type(parsed) is type(asset)
    assert parsed == asset
    assert TypeAdapter(AnyAsset).validate_python(data) == asset


def test_every_kind_has_a_subclass() -> None:
    assert {asset.kind for asset in _examples()} == set(AssetKind)


def test_unknown_kind_is_a_record_error_on_the_kind_field() -> None:
    data = _examples()[0].model_dump(mode="json") | {"kind": "dataset"}
    with pytest.raises(RecordError, match=r"rec\.json \(field 'kind'\)"):
        parse_asset(data, path="rec.json")


def test_newer_asset_schema_is_unsupported() -> None:
    data = _examples()[1].model_dump(mode="json") | {"version": 99}
    with pytest.raises(UnsupportedVersionError, match="rec.json"):
        parse_asset(data, path="rec.json")


def test_non_object_asset_record_is_rejected() -> None:
    with pytest.raises(RecordError, match="expected a JSON object"):
        parse_asset(["kind", "data"])


def test_new_asset_is_updated_when_created() -> None:
    asset = LogAsset(id="l", name="l", scope=RUN, path="x")
    assert asset.updated_at == asset.created_at
    assert asset.created_at.tzinfo is UTC


def test_timestamps_are_normalised_to_utc() -> None:
    plus_two = datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    asset = LogAsset(id="l", name="l", scope=RUN, path="x", created_at=plus_two)
    assert asset.created_at == plus_two and asset.created_at.utcoffset() == timedelta(0)


def test_naive_timestamps_are_rejected() -> None:
    with pytest.raises(ValidationError, match="timezone-aware"):
        LogAsset(id="l", name="l", scope=RUN, path="x", created_at=datetime(2024, 1, 1))


@pytest.mark.parametrize("path", ["/abs/x", "../x", "a/../../x", "a\\b", ""])
def test_asset_path_must_be_relative_posix(path: str) -> None:
    with pytest.raises(ValidationError, match="path"):
        LogAsset(id="l", name="l", scope=RUN, path=path)


def test_tags_are_deduplicated_and_must_not_be_blank() -> None:
    asset = LogAsset(id="l", name="l", scope=RUN, path="x", tags=["b", "a", "b"])
    assert asset.tags == ["b", "a"]
    with pytest.raises(ValidationError, match="tag"):
        LogAsset(id="l", name="l", scope=RUN, path="x", tags=[" "])


@pytest.mark.parametrize("field", ["id", "name"])
def test_asset_id_and_name_must_be_safe(field: str) -> None:
    fields = {"id": "l", "name": "l", "scope": RUN, "path": "x"} | {field: "../up"}
    with pytest.raises(ValidationError, match=field):
        LogAsset.model_validate(fields)


_json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=10)
_names = st.text(min_size=1, max_size=30).filter(lambda s: _is_valid_name(s))


def _is_valid_name(value: str) -> bool:
    try:
        validate_name(value)
    except ValueError:
        return False
    return True


@given(
    st.sampled_from(_examples()),
    _names,
    st.lists(_names, max_size=4),
    st.dictionaries(st.text(max_size=8), _json_scalars, max_size=4),
)
def test_any_asset_survives_a_json_round_trip(
    template: Asset, name: str, tags: list[str], meta: dict[str, Any]
) -> None:
    asset = template.model_copy(
        update={"name": name, "tags": list(dict.fromkeys(tags)), "meta": meta}
    )
    parsed = parse_asset(json.loads(asset.model_dump_json()))
    assert type(parsed) is type(asset) and parsed == asset


_json_values = st.recursive(
    _json_scalars | st.floats(allow_nan=False),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=10,
)


@given(
    st.dictionaries(
        st.sampled_from(["version", "id", "name", "kind", "scope", "path", "tags", "sequence"]),
        _json_values | st.sampled_from([k.value for k in AssetKind]),
    )
)
def test_parse_asset_fails_only_with_record_errors(data: dict[str, Any]) -> None:
    try:
        parsed = parse_asset(data, path="fuzz.json")
    except RecordError as exc:
        assert "fuzz.json" in str(exc)
    else:
        assert isinstance(parsed, Asset)
