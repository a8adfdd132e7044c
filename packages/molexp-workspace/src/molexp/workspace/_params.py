"""Parameter spaces: deterministic generators of parameter dictionaries.

Owns ``ParamSpace`` (the iterable base), ``GridSpace`` (cartesian product) and
``UniformSpace`` (seeded random sampling). They only produce dictionaries; user code
decides which experiments or runs to create from them.
"""

from __future__ import annotations

import itertools
import math
import random
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

__all__ = ["GridSpace", "ParamSpace", "UniformSpace"]


class ParamSpace(ABC):
    """An iterable, sized collection of parameter dictionaries.

    Every iteration yields fresh dictionaries in the same order, so a space can be
    iterated several times and gives the same points each time.
    """

    @abstractmethod
    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Yield each point of the space as a new dictionary."""

    @abstractmethod
    def __len__(self) -> int:
        """Number of points the space yields."""

    def to_list(self) -> list[dict[str, Any]]:
        """All points, in iteration order."""
        return list(self)


def _check_key(key: object, space: str) -> str:
    if not isinstance(key, str) or not key:
        raise ValueError(f"{space}: parameter names must be non-empty strings, got {key!r}")
    return key


class GridSpace(ParamSpace):
    """Cartesian product of per-parameter value lists.

    Order is deterministic: keys vary in insertion order with the LAST key changing
    fastest, e.g. ``GridSpace({"lr": [1, 2], "batch": [32, 64]})`` yields
    ``{lr: 1, batch: 32}, {lr: 1, batch: 64}, {lr: 2, batch: 32}, {lr: 2, batch: 64}``.
    """

    def __init__(self, values: Mapping[str, Sequence[Any]]) -> None:
        self._values: dict[str, list[Any]] = {}
        for key, options in values.items():
            _check_key(key, "GridSpace")
            if isinstance(options, str | bytes) or not isinstance(options, Sequence):
                raise ValueError(
                    f"GridSpace: values for {key!r} must be a list of options, got {options!r}"
                )
            if len(options) == 0:
                raise ValueError(f"GridSpace: parameter {key!r} has an empty list of values")
            self._values[key] = list(options)

    @property
    def values(self) -> dict[str, list[Any]]:
        """A copy of the per-parameter value lists."""
        return {key: list(options) for key, options in self._values.items()}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        keys = list(self._values)
        for combination in itertools.product(*(self._values[key] for key in keys)):
            yield dict(zip(keys, combination, strict=True))

    def __len__(self) -> int:
        return math.prod(len(options) for options in self._values.values())

    def __repr__(self) -> str:
        return f"GridSpace({self._values!r})"


class UniformSpace(ParamSpace):
    """``n_samples`` random points, reproducible for a given ``seed``.

    Each parameter is either a list of choices (picked uniformly) or a ``(low, high)``
    tuple (a float drawn uniformly from ``[low, high]``). Per sample, parameters are
    drawn in insertion order from one ``random.Random(seed)``; iterating again restarts
    the generator, so the same object always yields the same points. With
    ``seed=None`` a seed is drawn once at construction (see ``.seed``).
    """

    def __init__(
        self,
        distributions: Mapping[str, Sequence[Any] | tuple[float, float]],
        n_samples: int,
        seed: int | None = None,
    ) -> None:
        if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 0:
            raise ValueError(f"UniformSpace: n_samples must be an integer >= 0, got {n_samples!r}")
        self._choices: dict[str, list[Any]] = {}
        self._ranges: dict[str, tuple[float, float]] = {}
        self._order: list[str] = []
        for key, spec in distributions.items():
            _check_key(key, "UniformSpace")
            self._order.append(key)
            if isinstance(spec, tuple):
                self._ranges[key] = self._check_range(key, spec)
            elif isinstance(spec, Sequence) and not isinstance(spec, str | bytes):
                if len(spec) == 0:
                    raise ValueError(f"UniformSpace: parameter {key!r} has no choices")
                self._choices[key] = list(spec)
            else:
                raise ValueError(
                    f"UniformSpace: {key!r} must be a list of choices or a (low, high) tuple, "
                    f"got {spec!r}"
                )
        self._n_samples = n_samples
        self._seed = seed if seed is not None else random.SystemRandom().randrange(2**32)

    @staticmethod
    def _check_range(key: str, spec: tuple[Any, ...]) -> tuple[float, float]:
        if len(spec) != 2 or not all(
            isinstance(bound, int | float) and not isinstance(bound, bool) for bound in spec
        ):
            raise ValueError(
                f"UniformSpace: range for {key!r} must be a (low, high) pair of numbers, "
                f"got {spec!r}"
            )
        low, high = float(spec[0]), float(spec[1])
        if not (math.isfinite(low) and math.isfinite(high)) or low > high:
            raise ValueError(
                f"UniformSpace: range for {key!r} needs finite low <= high, got {spec!r}"
            )
        return low, high

    @property
    def seed(self) -> int:
        """The seed every iteration restarts from."""
        return self._seed

    @property
    def n_samples(self) -> int:
        """How many points the space yields."""
        return self._n_samples

    def __iter__(self) -> Iterator[dict[str, Any]]:
        rng = random.Random(self._seed)
        for _ in range(self._n_samples):
            point: dict[str, Any] = {}
            for key in self._order:
                if key in self._ranges:
                    low, high = self._ranges[key]
                    point[key] = rng.uniform(low, high)
                else:
                    point[key] = rng.choice(self._choices[key])
            yield point

    def __len__(self) -> int:
        return self._n_samples

    def __repr__(self) -> str:
        return f"UniformSpace(n_samples={self._n_samples}, seed={self._seed})"
