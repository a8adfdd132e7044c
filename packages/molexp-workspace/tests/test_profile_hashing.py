"""Config hashes, profiles and deterministic run ids."""

from __future__ import annotations

import random
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from molexp.workspace import ProfileConfig, config_hash, derive_run_id
from molexp.workspace._hashing import canonical_json

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)
configs = st.dictionaries(st.text(max_size=6), json_values, max_size=5)


def shuffled(value: Any, rng: random.Random) -> Any:
    """The same data with every mapping's keys inserted in a random order."""
    if isinstance(value, dict):
        keys = list(value)
        rng.shuffle(keys)
        return {key: shuffled(value[key], rng) for key in keys}
    if isinstance(value, list):
        return [shuffled(item, rng) for item in value]
    return value


@given(configs, st.randoms())
def test_config_hash_ignores_key_order(config: dict[str, Any], rng: random.Random) -> None:
    digest = config_hash(config)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert config_hash(shuffled(config, rng)) == digest


@given(configs, configs)
def test_config_hash_separates_different_configs(
    first: dict[str, Any], second: dict[str, Any]
) -> None:
    same_data = canonical_json(first) == canonical_json(second)
    assert (config_hash(first) == config_hash(second)) == same_data


def test_config_hash_examples() -> None:
    assert config_hash({"a": 1, "b": {"c": [1, 2]}}) == config_hash({"b": {"c": [1, 2]}, "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})
    assert config_hash({"a": [1, 2]}) != config_hash({"a": [2, 1]})
    assert config_hash({"a": (1, 2)}) == config_hash({"a": [1, 2]})
    with pytest.raises(TypeError, match=r"config\['when'\] is a set"):
        config_hash({"when": {1}})
    with pytest.raises(ValueError, match="NaN"):
        config_hash({"x": float("nan")})


def test_profile_hash_ignores_the_profile_name() -> None:
    gpu = ProfileConfig(name="gpu", config={"nodes": 2})
    cluster = ProfileConfig(name="cluster", config={"nodes": 2})
    assert gpu.config_hash == cluster.config_hash == config_hash({"nodes": 2})
    assert ProfileConfig().name == "default"
    assert ProfileConfig().config == {}


@given(configs, st.integers(0, 100), st.none() | st.text(max_size=5), st.randoms())
def test_derive_run_id_is_deterministic_and_order_free(
    parameters: dict[str, Any], replica: int, profile: str | None, rng: random.Random
) -> None:
    run_id = derive_run_id(parameters, replica, profile, "h" * 64)
    assert re.fullmatch(r"[0-9a-f]{16}", run_id)
    assert derive_run_id(shuffled(parameters, rng), replica, profile, "h" * 64) == run_id
    assert derive_run_id(parameters, replica + 1, profile, "h" * 64) != run_id


def test_derive_run_id_depends_on_every_input() -> None:
    base = derive_run_id({"lr": 1e-3}, 0, "default", "abc")
    variants = {
        derive_run_id({"lr": 1e-4}, 0, "default", "abc"),
        derive_run_id({"lr": 1e-3}, 1, "default", "abc"),
        derive_run_id({"lr": 1e-3}, 0, "gpu", "abc"),
        derive_run_id({"lr": 1e-3}, 0, "default", "abd"),
        derive_run_id({"lr": 1e-3}),
    }
    assert base not in variants
    assert len(variants) == 5
    assert derive_run_id({"lr": 1e-3}, 0, "default", "abc") == base
    with pytest.raises(TypeError, match=r"parameters\['f'\]"):
        derive_run_id({"f": object()})
