"""Largest-Triangle-Three-Buckets downsampling (Steinarsson, 2013) of a metric series.

Keeps the first and last point and, from each of ``threshold - 2`` equal buckets in between, the
point forming the largest triangle with the point kept before it and the mean of the next bucket:
peaks and dips survive, so a chart of a few thousand points looks like the whole series. The
x coordinate is the point's position in the series (steps may repeat across attempts).

A long series is downsampled once: the kept indices are remembered for the last few series by
their content (length and a hash of every value), so opening a run page again, or another client
asking for the same unchanged series, costs a hash instead of a pass over every point.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

__all__ = ["lttb"]

CACHE_MIN_POINTS = 50_000
"""Series at least this long have their downsampling remembered."""
CACHE_ENTRIES = 32

_cache: OrderedDict[tuple[int, int, int], list[int]] = OrderedDict()
_cache_lock = threading.Lock()


def lttb(values: Sequence[float], threshold: int) -> list[int]:
    """Indices (ascending) of at most ``threshold`` (>= 3) points of ``values`` to draw."""
    if threshold < 3:
        raise ValueError(f"LTTB keeps at least 3 points, got threshold={threshold}")
    count = len(values)
    if count <= threshold:
        return list(range(count))
    if count < CACHE_MIN_POINTS:
        return _lttb(values, threshold)
    key = (threshold, count, hash(tuple(values)))
    with _cache_lock:
        kept = _cache.get(key)
        if kept is not None:
            _cache.move_to_end(key)
            return list(kept)
    kept = _lttb(values, threshold)
    with _cache_lock:
        _cache[key] = kept
        while len(_cache) > CACHE_ENTRIES:
            _cache.popitem(last=False)
    return list(kept)


def _lttb(values: Sequence[float], threshold: int) -> list[int]:
    count = len(values)
    every = (count - 2) / (threshold - 2)
    kept = [0]
    chosen = 0
    for bucket in range(threshold - 2):
        start = int(bucket * every) + 1
        end = int((bucket + 1) * every) + 1
        next_end = min(int((bucket + 2) * every) + 1, count)
        following = values[end:next_end]
        mean_x = (end + next_end - 1) / 2
        mean_y = sum(following) / len(following)
        ax, ay = chosen, values[chosen]
        dx, dy = ax - mean_x, mean_y - ay
        best, best_area = start, -1.0
        for index in range(start, end):
            area = abs(dx * (values[index] - ay) - (ax - index) * dy)
            if area > best_area:
                best, best_area = index, area
        kept.append(best)
        chosen = best
    kept.append(count - 1)
    return kept
