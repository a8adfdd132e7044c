"""GridSpace and UniformSpace: deterministic generators of parameter dictionaries."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from molexp.workspace import GridSpace, ParamSpace, UniformSpace


def test_grid_is_the_cartesian_product_in_a_fixed_order() -> None:
    grid = GridSpace({"lr": [1e-3, 1e-4], "batch": [32, 64]})
    assert len(grid) == 4
    assert list(grid) == [
        {"lr": 1e-3, "batch": 32},
        {"lr": 1e-3, "batch": 64},
        {"lr": 1e-4, "batch": 32},
        {"lr": 1e-4, "batch": 64},
    ]
    assert grid.to_list() == list(grid)
    first = next(iter(grid))
    first["lr"] = 0
    assert next(iter(grid))["lr"] == 1e-3
    assert isinstance(grid, ParamSpace)
    assert grid.values == {"lr": [1e-3, 1e-4], "batch": [32, 64]}


@given(
    st.dictionaries(
        st.text(min_size=1, max_size=3),
        st.lists(st.integers(), min_size=1, max_size=3, unique=True),
        max_size=4,
    )
)
def test_grid_yields_every_combination_once(values: dict[str, list[int]]) -> None:
    grid = GridSpace(values)
    points = list(grid)
    assert len(points) == len(grid)
    for point in points:
        assert list(point) == list(values)
        assert all(point[key] in options for key, options in values.items())
    assert len({tuple(point.values()) for point in points}) == len(points)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"lr": []}, "'lr' has an empty list"),
        ({"lr": 0.1}, "values for 'lr' must be a list"),
        ({"lr": "abc"}, "values for 'lr' must be a list"),
        ({"": [1]}, "non-empty strings"),
    ],
)
def test_grid_rejects_bad_values(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GridSpace(values)  # type: ignore[arg-type]


def test_uniform_is_reproducible_for_a_seed() -> None:
    space = UniformSpace({"lr": [1e-3, 5e-4, 1e-4], "dropout": (0.0, 0.5)}, n_samples=10, seed=42)
    points = list(space)
    assert len(points) == len(space) == 10
    assert list(space) == points
    assert list(UniformSpace({"lr": [1e-3, 5e-4, 1e-4], "dropout": (0.0, 0.5)}, 10, 42)) == points
    assert list(UniformSpace({"lr": [1e-3, 5e-4, 1e-4], "dropout": (0.0, 0.5)}, 10, 43)) != points
    for point in points:
        assert point["lr"] in (1e-3, 5e-4, 1e-4)
        assert 0.0 <= point["dropout"] <= 0.5
    assert (space.seed, space.n_samples) == (42, 10)


def test_uniform_without_seed_is_stable_per_object() -> None:
    space = UniformSpace({"x": (0, 1)}, n_samples=5)
    assert list(space) == list(space)
    assert isinstance(space.seed, int)


@pytest.mark.parametrize(
    ("distributions", "n_samples", "message"),
    [
        ({"x": (1, 0)}, 1, "finite low <= high"),
        ({"x": (0, 1, 2)}, 1, "pair of numbers"),
        ({"x": ("a", "b")}, 1, "pair of numbers"),
        ({"x": []}, 1, "no choices"),
        ({"x": 3}, 1, "list of choices or a \\(low, high\\) tuple"),
        ({"x": [1]}, -1, "n_samples must be an integer >= 0"),
    ],
)
def test_uniform_rejects_bad_input(
    distributions: dict[str, object], n_samples: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        UniformSpace(distributions, n_samples=n_samples, seed=0)  # type: ignore[arg-type]


def test_param_space_is_abstract() -> None:
    with pytest.raises(TypeError):
        ParamSpace()  # type: ignore[abstract]
