"""Profile files, extends chains, --set coercion and deep merge (molexp.cli.profiles)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from molexp.cli.profiles import (
    DEFAULT_PROFILE,
    OverrideError,
    ProfileError,
    ProfileFile,
    UnknownProfileError,
    apply_overrides,
    coerce_value,
    deep_merge,
    find_profile_file,
    parse_override,
    parse_overrides,
    resolve_profile,
)
from molexp.workspace import ProfileConfig, config_hash

PROFILE_TEXT = """
[defaults]
scale = 1.0
[defaults.model]
depth = 2
width = 64

[profiles.fast]
scale = 0.5
[profiles.fast.model]
depth = 1

[profiles.gpu]
extends = "fast"
device = "cuda"
[profiles.gpu.model]
width = 128
"""


def write(tmp_path: Path, text: str, name: str = "molexp.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_then_chain_root_first(tmp_path: Path) -> None:
    profiles = ProfileFile.load(write(tmp_path, PROFILE_TEXT))
    assert profiles.names == ["default", "fast", "gpu"]
    assert profiles.chain("gpu") == ["fast", "gpu"]
    assert profiles.merged("gpu") == {
        "scale": 0.5,
        "model": {"depth": 1, "width": 128},
        "device": "cuda",
    }
    assert profiles.merged(DEFAULT_PROFILE) == {"scale": 1.0, "model": {"depth": 2, "width": 64}}


def test_explicit_default_profile_is_merged_over_defaults(tmp_path: Path) -> None:
    text = "[defaults]\na = 1\nb = 1\n[profiles.default]\nb = 2\n"
    profiles = ProfileFile.load(write(tmp_path, text))
    assert profiles.names == ["default"]
    assert profiles.merged() == {"a": 1, "b": 2}


def test_resolve_returns_profile_config_with_overrides(tmp_path: Path) -> None:
    profiles = ProfileFile.load(write(tmp_path, PROFILE_TEXT))
    resolved = profiles.resolve("gpu", ["model.depth=7", "tag=x"])
    assert isinstance(resolved, ProfileConfig)
    assert resolved.name == "gpu"
    assert resolved.config["model"] == {"depth": 7, "width": 128}
    assert resolved.config["tag"] == "x"
    assert resolved.config_hash == config_hash(resolved.config)


def test_config_hash_ignores_key_order_and_profile_name(tmp_path: Path) -> None:
    first = ProfileFile.load(write(tmp_path, "[profiles.a]\nx = 1\ny = 2\n", "a.toml"))
    second = ProfileFile.load(write(tmp_path, "[profiles.b]\ny = 2\nx = 1\n", "b.toml"))
    assert first.resolve("a").config_hash == second.resolve("b").config_hash
    assert first.resolve("a").config_hash != first.resolve("a", ["x=3"]).config_hash


def test_unknown_profile_lists_available_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, PROFILE_TEXT)
    with pytest.raises(UnknownProfileError) as info:
        ProfileFile.load(path).resolve("tpu")
    message = str(info.value)
    assert "'tpu'" in message and str(path) in message
    assert "default, fast, gpu" in message


def test_unknown_profile_without_file_says_so() -> None:
    with pytest.raises(UnknownProfileError, match="no profile file was found"):
        ProfileFile(path=None).resolve("fast")


def test_extends_cycle_names_the_chain(tmp_path: Path) -> None:
    text = '[profiles.a]\nextends = "b"\n[profiles.b]\nextends = "c"\n[profiles.c]\nextends = "a"\n'
    path = write(tmp_path, text)
    with pytest.raises(ProfileError) as info:
        ProfileFile.load(path)
    assert "cycle a -> b -> c -> a" in str(info.value)
    assert str(path) in str(info.value)


def test_self_extension_is_a_cycle(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="cycle a -> a"):
        ProfileFile.load(write(tmp_path, '[profiles.a]\nextends = "a"\n'))


def test_extends_unknown_parent_names_chain_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[profiles.a]\nextends = "b"\n[profiles.b]\nextends = "zzz"\n')
    with pytest.raises(ProfileError) as info:
        ProfileFile.load(path)
    message = str(info.value)
    assert "'zzz'" in message and "a -> b -> zzz" in message and str(path) in message


def test_malformed_toml_is_one_line_with_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "[defaults]\nscale = 1.0\nbroken line\n")
    with pytest.raises(ProfileError) as info:
        ProfileFile.load(path)
    message = str(info.value)
    assert "\n" not in message
    assert f"malformed profile file {path}: line 3, column" in message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[profile.x]\na = 1\n", "unknown top-level key 'profile'"),
        ("defaults = 3\n", "'defaults' must be a table"),
        ("[profiles]\nx = 1\n", "profiles.x must be a table"),
        ("[profiles.x]\nextends = 3\n", "profiles.x.extends must be a profile name"),
        ("[defaults]\nextends = 'x'\n", "cannot use 'extends'"),
        ("[defaults]\nwhen = 1979-05-27\n", "defaults.when is a TOML date"),
        ("[defaults]\nx = nan\n", "defaults.x is nan"),
    ],
)
def test_invalid_structure_is_rejected(tmp_path: Path, text: str, fragment: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ProfileError) as info:
        ProfileFile.load(path)
    assert fragment in str(info.value)
    assert str(path) in str(info.value)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="does not exist"):
        ProfileFile.load(tmp_path / "nope.toml")


def test_find_profile_file_first_directory_wins(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    write(second, "[defaults]\nx = 2\n")
    assert find_profile_file([None, first, second]) == second / "molexp.toml"
    write(first, "[defaults]\nx = 1\n")
    assert find_profile_file([first, second]) == first / "molexp.toml"
    assert find_profile_file([tmp_path]) is None


def test_resolve_profile_explicit_file_beats_search(tmp_path: Path) -> None:
    write(tmp_path, "[defaults]\nx = 1\n")
    other = write(tmp_path, "[defaults]\nx = 2\n", "other.toml")
    assert resolve_profile(search_dirs=[tmp_path]).config == {"x": 1}
    assert resolve_profile(search_dirs=[tmp_path], config_file=other).config == {"x": 2}


def test_resolve_profile_without_file_is_empty_default(tmp_path: Path) -> None:
    resolved = resolve_profile(search_dirs=[tmp_path], overrides=["a.b=true"])
    assert resolved.name == "default"
    assert resolved.config == {"a": {"b": True}}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("false", False),
        ("True", "True"),
        ("42", 42),
        ("-3", -3),
        ("1e-3", 1e-3),
        ("0.5", 0.5),
        ("inf", "inf"),
        ("nan", "nan"),
        ('"42"', "42"),
        ("'true'", "true"),
        ("hello", "hello"),
        ("", ""),
        ('"', '"'),
    ],
)
def test_coerce_value(text: str, expected: object) -> None:
    value = coerce_value(text)
    assert value == expected
    assert type(value) is type(expected)


def test_parse_override_splits_on_first_equals() -> None:
    assert parse_override("a.b=x=y") == (("a", "b"), "x=y")
    assert parse_override(" lr = 0.1 ") == (("lr",), 0.1)


@pytest.mark.parametrize("text", ["novalue", "=1", "a..b=1", ".a=1", "a.=1"])
def test_parse_override_rejects_bad_keys(text: str) -> None:
    with pytest.raises(OverrideError) as info:
        parse_override(text)
    assert repr(text) in str(info.value)


def test_parse_overrides_nests_and_later_wins() -> None:
    tree = parse_overrides(["a.b=1", "a.c=2", "a.b=3", "x=1", "x.y=2"])
    assert tree == {"a": {"b": 3, "c": 2}, "x": {"y": 2}}


def test_apply_overrides_replaces_scalar_with_table() -> None:
    assert apply_overrides({"a": 1, "k": {"z": 0}}, ["a.b=2", "k.y=1"]) == {
        "a": {"b": 2},
        "k": {"z": 0, "y": 1},
    }


# -- property tests ----------------------------------------------------------------------------

keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=6)
scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz-_/", min_size=1, max_size=10),
)
tables = st.recursive(
    st.dictionaries(keys, scalars, max_size=4),
    lambda children: st.dictionaries(keys, st.one_of(scalars, children), max_size=4),
    max_leaves=12,
)


def _render(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


@given(path=st.lists(keys, min_size=1, max_size=4), value=scalars)
def test_set_round_trip(path: list[str], value: object) -> None:
    parsed_path, parsed = parse_override(f"{'.'.join(path)}={_render(value)}")
    assert parsed_path == tuple(path)
    if isinstance(value, str):
        # A bare string that looks like a bool or number is typed; quoted it stays a string.
        assert parse_override(f"{'.'.join(path)}='{value}'")[1] == value
    elif isinstance(value, float):
        assert isinstance(parsed, float) and math.isclose(parsed, value, rel_tol=0, abs_tol=0)
    else:
        assert parsed == value and type(parsed) is type(value)


@given(base=tables, override=tables)
def test_deep_merge_properties(base: dict[str, object], override: dict[str, object]) -> None:
    merged = deep_merge(base, override)
    assert set(merged) == set(base) | set(override)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            assert merged[key] == deep_merge(base[key], value)  # type: ignore[arg-type]
        else:
            assert merged[key] == value
    for key in set(base) - set(override):
        assert merged[key] == base[key]
    assert deep_merge(merged, override) == merged
    assert deep_merge(base, {}) == base
    assert deep_merge({}, override) == override


@given(base=tables, override=tables)
def test_deep_merge_never_mutates_or_aliases(
    base: dict[str, object], override: dict[str, object]
) -> None:
    before = (repr(base), repr(override))
    merged = deep_merge(base, override)
    for value in merged.values():
        if isinstance(value, dict):
            value["__mutated__"] = 1
    assert (repr(base), repr(override)) == before


@given(tables)
def test_override_tree_of_flattened_table_rebuilds_it(table: dict[str, object]) -> None:
    items: list[str] = []

    def flatten(prefix: list[str], node: dict[str, object]) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                flatten([*prefix, key], value)
            elif isinstance(value, str):
                items.append(f"{'.'.join([*prefix, key])}='{value}'")
            else:
                items.append(f"{'.'.join([*prefix, key])}={_render(value)}")

    flatten([], table)
    rebuilt = parse_overrides(items)

    def without_empty_tables(node: dict[str, object]) -> dict[str, object]:
        result: dict[str, object] = {}
        for key, value in node.items():
            if isinstance(value, dict):
                inner = without_empty_tables(value)
                if inner:
                    result[key] = inner
            else:
                result[key] = value
        return result

    assert rebuilt == without_empty_tables(table)
