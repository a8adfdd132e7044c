"""Metric series: append-only files of ``(name, step, value, time)`` points, one per writer.

Layout: ``<run_dir>/execution/<execution_id>/metrics/<token>.tsv``. Every writer (the run's
owner, each task on a worker or in a Slurm job) appends to a file of its own, created with
``O_EXCL``, so no two processes or hosts ever append to one file. A line is
``name<TAB>step<TAB>value<TAB>unix time<LF>``. A :class:`MetricWriter` buffers points and appends
a batch with one ``write`` and one ``fsync``: a crash loses at most the batch being buffered,
never points of an earlier batch. Reading keeps complete lines only: a last line without its
newline (a write torn by a crash) and lines that do not parse are skipped.

Readers merge every writer's file of every attempt. On a network filesystem another host may
list a writer's new file only after its directory cache expires (up to a minute on NFS).

Reading is fast for long series: a file's complete lines are decoded column by column (one
``split`` and one C-level ``int``/``float`` map per column, falling back to the line-by-line
parser for a file with a damaged line), and the decoded columns are kept in a small per-process
cache keyed by the file's identity, size and modification time. The files are append-only, so
a file that grew is decoded from where the cached part ended; an unchanged series is not parsed
again (``MAX_CACHED_POINTS`` bounds the cache).
"""

from __future__ import annotations

import math
import numbers
import os
import secrets
import threading
import time
from array import array
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import repeat
from operator import itemgetter
from pathlib import Path
from typing import Any

from molexp.assets import make_dirs, validate_name

from ._records import MetricSummary

__all__ = [
    "FLUSH_INTERVAL",
    "MAX_BUFFERED_POINTS",
    "MAX_CACHED_POINTS",
    "METRICS_DIR",
    "MetricSeries",
    "MetricWriter",
    "attempt_summaries",
    "check_metric_name",
    "clear_series_cache",
    "decode_columns",
    "encode_points",
    "parse_points",
    "read_series",
    "summarise",
]

METRICS_DIR = "metrics"
SERIES_SUFFIX = ".tsv"
FLUSH_INTERVAL = 1.0
"""Seconds after which ``MetricWriter.log`` flushes the points it buffers."""
MAX_BUFFERED_POINTS = 10_000
"""Points after which ``MetricWriter.log`` flushes, however recent the last flush."""
MAX_CACHED_POINTS = 4_000_000
"""Decoded points the per-process series cache keeps (about 24 bytes each), least recently
read files dropped first."""

Point = tuple[str, int, float, float]


def check_metric_name(name: object) -> str:
    """``name`` if it can name a metric (one path component: no separators, ``..``, empty)."""
    return validate_name(name, "metric name")


def _value(name: str, value: object) -> float:
    if type(value) is not float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(
                f"metric {name!r}: the value must be a real number, "
                f"got {type(value).__name__}: {value!r}"
            )
        value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"metric {name!r}: the value must be finite, got {value!r}")
    return value


def _step(name: str, step: object) -> int:
    if type(step) is int:
        return step
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise TypeError(
            f"metric {name!r}: the step must be an integer, got {type(step).__name__}: {step!r}"
        )
    return int(step)


def _timestamp(name: str, timestamp: object) -> float:
    if timestamp is None:
        return time.time()
    if isinstance(timestamp, datetime):
        if timestamp.tzinfo is None:
            raise ValueError(
                f"metric {name!r}: the timestamp {timestamp.isoformat()} has no time zone"
            )
        return timestamp.timestamp()
    if isinstance(timestamp, bool) or not isinstance(timestamp, numbers.Real):
        raise TypeError(
            f"metric {name!r}: the timestamp must be Unix seconds or an aware datetime, "
            f"got {type(timestamp).__name__}: {timestamp!r}"
        )
    seconds = float(timestamp)
    if not math.isfinite(seconds):
        raise ValueError(f"metric {name!r}: the timestamp must be finite, got {seconds!r}")
    return seconds


def encode_points(points: Iterable[Point]) -> bytes:
    """The lines of ``points`` as stored in a series file."""
    return "".join([f"{n}\t{s}\t{v!r}\t{t!r}\n" for n, s, v, t in points]).encode("utf-8")


def parse_points(data: bytes, only: str | None = None) -> Iterator[Point]:
    """The points of a series file's bytes (of metric ``only``, if given).

    Only complete lines count: a torn last line and lines that do not parse are skipped.
    """
    end = data.rfind(b"\n")
    if end < 0:
        return
    prefix = None if only is None else only.encode("utf-8") + b"\t"
    names: dict[bytes, str] = {}
    isfinite = math.isfinite
    for raw in data[:end].split(b"\n"):
        if prefix is not None and not raw.startswith(prefix):
            continue
        fields = raw.split(b"\t")
        if len(fields) != 4:
            continue
        try:
            step, value, stamp = int(fields[1]), float(fields[2]), float(fields[3])
            name = names.get(fields[0])
            if name is None:
                name = names[fields[0]] = check_metric_name(fields[0].decode("utf-8"))
        except ValueError:
            continue
        if isfinite(value) and isfinite(stamp):
            yield name, step, value, stamp


def summarise(points: Iterable[Point], into: dict[str, MetricSummary]) -> None:
    """Merge ``points`` (in logging order) into the per-name summaries ``into``."""
    batch: dict[str, list[float]] = {}
    for name, step, value, _stamp in points:
        found = batch.get(name)
        if found is None:
            batch[name] = [value, step, value, value, 1]
            continue
        if step >= found[1]:
            found[0], found[1] = value, step
        found[2] = min(found[2], value)
        found[3] = max(found[3], value)
        found[4] += 1
    for name, (last, last_step, low, high, count) in batch.items():
        summary = MetricSummary(
            last=last, last_step=int(last_step), min=low, max=high, count=int(count)
        )
        known = into.get(name)
        into[name] = summary if known is None else known.merged(summary)


class MetricWriter:
    """Buffers metric points and appends them to this writer's own series file (thread-safe).

    ``directory`` is an attempt's ``metrics/`` directory; the file is created on the first
    flush. ``log`` flushes by itself every ``FLUSH_INTERVAL`` seconds or
    ``MAX_BUFFERED_POINTS`` points; ``log_many`` and ``flush`` flush at once.
    """

    def __init__(self, directory: Path) -> None:
        self._directory = Path(directory)
        self._fd: int | None = None
        self._size = 0
        self._buffer: list[Point] = []
        self._next_step: dict[str, int] = {}
        self._names: set[str] = set()
        self._summaries: dict[str, MetricSummary] = {}
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()

    def __repr__(self) -> str:
        return f"MetricWriter({str(self._directory)!r}, {len(self._buffer)} buffered)"

    def _point(
        self, name: str, value: object, step: object, timestamp: float | datetime | None
    ) -> Point:
        if type(name) is not str or name not in self._names:
            self._names.add(check_metric_name(name))
        number = _value(name, value)
        index = self._next_step.get(name, 0) if step is None else _step(name, step)
        self._next_step[name] = index + 1
        return name, index, number, _timestamp(name, timestamp)

    def log(
        self,
        name: str,
        value: float,
        step: int | None = None,
        timestamp: float | datetime | None = None,
    ) -> bool:
        """Buffer one point (``step`` None: one more than this writer's last step of ``name``,
        else 0); True when this call flushed the buffer."""
        with self._lock:
            self._buffer.append(self._point(name, value, step, timestamp))
            if (
                len(self._buffer) < MAX_BUFFERED_POINTS
                and time.monotonic() - self._last_flush < FLUSH_INTERVAL
            ):
                return False
            self._flush()
        return True

    def log_many(
        self,
        values: Mapping[str, float],
        step: int | None = None,
        timestamp: float | datetime | None = None,
    ) -> None:
        """Log one point per ``name -> value`` and flush them with what is buffered, as one
        batch; nothing is buffered when a value is refused."""
        if not isinstance(values, Mapping):
            raise TypeError(f"log_metrics takes a mapping name -> value, got {values!r}")
        with self._lock:
            steps = dict(self._next_step)
            try:
                points = [self._point(n, v, step, timestamp) for n, v in values.items()]
            except BaseException:
                self._next_step = steps
                raise
            self._buffer.extend(points)
            self._flush()

    def flush(self) -> None:
        """Append the buffered points to the file and fsync it (nothing buffered: no write)."""
        with self._lock:
            self._flush()

    def _open(self) -> int:
        if self._fd is None:
            make_dirs(self._directory)
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
            path = self._directory / f"{secrets.token_hex(6)}{SERIES_SUFFIX}"
            self._fd = os.open(path, flags, 0o666)
            self._size = 0
            directory = os.open(self._directory, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        return self._fd

    def _flush(self) -> None:
        self._last_flush = time.monotonic()
        if not self._buffer:
            return
        data = encode_points(self._buffer)
        fd = self._open()
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except BaseException:
            self._undo(fd)
            raise
        self._size += len(data)
        summarise(self._buffer, self._summaries)
        self._buffer = []

    def _undo(self, fd: int) -> None:
        """Cut a failed batch off the file (it stays buffered, for the next flush). A file that
        cannot be cut is closed as it is and the next flush starts a new one: a torn tail is
        ignored on read, but a batch written whole before its ``fsync`` failed is read twice."""
        try:
            os.ftruncate(fd, self._size)
        except OSError:
            os.close(fd)
            self._fd = None

    def summaries(self) -> dict[str, MetricSummary]:
        """The summaries of every point this writer has flushed, by metric name."""
        with self._lock:
            return dict(self._summaries)

    def close(self) -> None:
        """Flush, then close the file (a later ``log`` starts a new one)."""
        with self._lock:
            self._flush()
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


@dataclass(frozen=True, slots=True)
class MetricSeries:
    """One metric of a run across its attempts, ordered by attempt, then step, then time.

    ``timestamps`` are Unix times (seconds); ``attempts`` the attempt number of each point.
    """

    name: str
    steps: list[int]
    values: list[float]
    timestamps: list[float]
    attempts: list[int]

    def __len__(self) -> int:
        return len(self.steps)

    def to_records(self) -> list[dict[str, float | int]]:
        """One dict per point: ``step``, ``value``, ``timestamp``, ``attempt``."""
        columns = zip(self.steps, self.values, self.timestamps, self.attempts, strict=True)
        return [{"step": s, "value": v, "timestamp": t, "attempt": a} for s, v, t, a in columns]


Column = array | list  # type: ignore[type-arg]
"""Steps (``array('q')``), values and timestamps (``array('d')``); a plain list in the rare file
whose steps do not fit 64 bits."""


@dataclass(slots=True)
class _Columns:
    """The points of one metric in one file, in file order; ``ordered`` when sorted by
    (step, time), as a single writer logging increasing steps leaves them."""

    steps: Column
    values: Column
    stamps: Column
    ordered: bool

    def __len__(self) -> int:
        return len(self.steps)


def _column(kind: str, items: list[int] | list[float]) -> Column:
    try:
        return array(kind, items)
    except OverflowError:
        return list(items)


def _is_ordered(steps: Sequence[int], stamps: Sequence[float]) -> bool:
    """Whether the points are sorted by (step, time): checked in C for the usual case of
    increasing steps, pairwise only when steps repeat."""
    listed = list(steps)
    if listed != sorted(listed):
        return False
    if len(set(listed)) == len(listed):
        return True
    return all(
        (a, x) <= (b, y) for a, b, x, y in zip(listed, listed[1:], stamps, stamps[1:], strict=False)
    )


def _fast_columns(body: bytes) -> dict[str, _Columns] | None:
    """Column-wise decoding of complete lines (``body`` without its last newline); ``None`` when
    any line would not parse (then the line-by-line parser decides which lines to keep)."""
    count = body.count(b"\n") + 1
    if body.count(b"\t") != 3 * count:
        return None
    lines = body.split(b"\n")
    if list(map(bytes.count, lines, repeat(b"\t", count))).count(3) != count:
        return None  # lines of too few and too many fields in one file
    fields = body.replace(b"\n", b"\t").split(b"\t")
    try:
        steps = list(map(int, fields[1::4]))
        values = list(map(float, fields[2::4]))
        stamps = list(map(float, fields[3::4]))
    except ValueError:
        return None
    isfinite = math.isfinite
    if not all(map(isfinite, values)) or not all(map(isfinite, stamps)):
        return None
    raw_names = fields[0::4]
    unique = set(raw_names)
    names: dict[bytes, str] = {}
    try:
        for raw in unique:
            names[raw] = check_metric_name(raw.decode("utf-8"))
    except ValueError:
        return None
    if len(unique) == 1:
        name = names[raw_names[0]]
        return {name: _columns(steps, values, stamps)}
    grouped: dict[str, tuple[list[int], list[float], list[float]]] = {}
    for raw, step, value, stamp in zip(raw_names, steps, values, stamps, strict=True):
        found = grouped.get(names[raw])
        if found is None:
            found = grouped[names[raw]] = ([], [], [])
        found[0].append(step)
        found[1].append(value)
        found[2].append(stamp)
    return {name: _columns(*cols) for name, cols in grouped.items()}


def _columns(steps: list[int], values: list[float], stamps: list[float]) -> _Columns:
    return _Columns(
        steps=_column("q", steps),
        values=_column("d", values),
        stamps=_column("d", stamps),
        ordered=_is_ordered(steps, stamps),
    )


def decode_columns(data: bytes) -> dict[str, _Columns]:
    """The points of a series file's complete lines, by metric, as columns in file order: the
    same points as :func:`parse_points` (a torn last line and lines that do not parse skipped)."""
    end = data.rfind(b"\n")
    if end < 0:
        return {}
    fast = _fast_columns(data[:end])
    if fast is not None:
        return fast
    grouped: dict[str, tuple[list[int], list[float], list[float]]] = {}
    for name, step, value, stamp in parse_points(data):
        found = grouped.get(name)
        if found is None:
            found = grouped[name] = ([], [], [])
        found[0].append(step)
        found[1].append(value)
        found[2].append(stamp)
    return {name: _columns(*cols) for name, cols in grouped.items()}


def _extend(known: _Columns, more: _Columns) -> _Columns:
    """``known`` followed by ``more`` (the points a file gained since it was cached)."""
    joined_ordered = known.ordered and more.ordered
    if joined_ordered and len(known) and len(more):
        joined_ordered = (known.steps[-1], known.stamps[-1]) <= (more.steps[0], more.stamps[0])

    def join(a: Column, b: Column, kind: str) -> Column:
        if isinstance(a, array) and isinstance(b, array):
            return a + b
        return _column(kind, [*a, *b])

    return _Columns(
        steps=join(known.steps, more.steps, "q"),
        values=join(known.values, more.values, "d"),
        stamps=join(known.stamps, more.stamps, "d"),
        ordered=joined_ordered,
    )


@dataclass(slots=True)
class _CachedFile:
    identity: tuple[int, int]
    size: int
    mtime_ns: int
    decoded_to: int
    """Bytes decoded: up to and including the last complete line's newline."""
    series: dict[str, _Columns] = field(default_factory=dict)

    @property
    def points(self) -> int:
        return sum(len(columns) for columns in self.series.values())


class _SeriesCache:
    """Decoded series files by path, least recently read dropped beyond ``MAX_CACHED_POINTS``."""

    def __init__(self) -> None:
        self._files: OrderedDict[str, _CachedFile] = OrderedDict()
        self._points = 0
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._files.clear()
            self._points = 0

    def read(self, path: Path) -> dict[str, _Columns]:
        """The decoded series of ``path`` (empty if it vanished)."""
        key = str(path)
        try:
            with path.open("rb") as handle:
                info = os.fstat(handle.fileno())
                identity = (info.st_dev, info.st_ino)
                with self._lock:
                    cached = self._files.get(key)
                if (
                    cached is not None
                    and cached.identity == identity
                    and cached.size == info.st_size
                    and cached.mtime_ns == info.st_mtime_ns
                ):
                    self._touch(key)
                    return cached.series
                if (
                    cached is not None
                    and cached.identity == identity
                    and cached.size < info.st_size
                ):
                    handle.seek(cached.decoded_to)  # append-only: decode what was added
                    start, series = cached.decoded_to, dict(cached.series)
                else:
                    start, series = 0, {}
                data = handle.read()
        except (FileNotFoundError, NotADirectoryError):
            return {}
        end = data.rfind(b"\n") + 1
        for name, more in decode_columns(data[:end]).items():
            known = series.get(name)
            series[name] = more if known is None else _extend(known, more)
        entry = _CachedFile(identity, info.st_size, info.st_mtime_ns, start + end, series)
        self._store(key, entry)
        return series

    def _touch(self, key: str) -> None:
        with self._lock:
            if key in self._files:
                self._files.move_to_end(key)

    def _store(self, key: str, entry: _CachedFile) -> None:
        points = entry.points
        with self._lock:
            old = self._files.pop(key, None)
            if old is not None:
                self._points -= old.points
            if points > MAX_CACHED_POINTS:
                return
            self._files[key] = entry
            self._points += points
            while self._points > MAX_CACHED_POINTS and self._files:
                _, dropped = self._files.popitem(last=False)
                self._points -= dropped.points


_CACHE = _SeriesCache()


def clear_series_cache() -> None:
    """Forget every decoded series file (the next read decodes them again)."""
    _CACHE.clear()


def _series_files(directory: Path) -> list[Path]:
    try:
        entries = sorted(directory.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [p for p in entries if p.suffix == SERIES_SUFFIX and not p.name.startswith(".")]


def _as_list(column: Column) -> list[Any]:
    return column.tolist() if isinstance(column, array) else list(column)


def _attempt_series(files: list[dict[str, _Columns]], name: str) -> _Columns | None:
    """One attempt's points of ``name`` from every writer's file, sorted by (step, time)."""
    parts = [decoded[name] for decoded in files if name in decoded]
    if not parts:
        return None
    if len(parts) == 1 and parts[0].ordered:
        return parts[0]
    rows = sorted(
        (
            (step, stamp, value)
            for part in parts
            for step, value, stamp in zip(part.steps, part.values, part.stamps, strict=True)
        ),
        key=itemgetter(0, 1),
    )
    return _Columns(
        steps=[row[0] for row in rows],
        values=[row[2] for row in rows],
        stamps=[row[1] for row in rows],
        ordered=True,
    )


def read_series(
    run_dir: Path, attempts: Sequence[tuple[int, str]], only: str | None = None
) -> dict[str, MetricSeries]:
    """The metric series of a run (only the metric ``only``, if given), by name.

    ``attempts`` are ``(attempt number, execution id)`` in attempt order.
    """
    merged: dict[str, tuple[list[int], list[float], list[float], list[int]]] = {}
    for number, execution_id in attempts:
        directory = run_dir / "execution" / validate_name(execution_id, "execution id")
        files = [_CACHE.read(path) for path in _series_files(directory / METRICS_DIR)]
        names = {only} if only is not None else {name for decoded in files for name in decoded}
        for name in sorted(names):
            found = _attempt_series(files, name)
            if found is None:
                continue
            into = merged.setdefault(name, ([], [], [], []))
            into[0].extend(_as_list(found.steps))
            into[1].extend(_as_list(found.values))
            into[2].extend(_as_list(found.stamps))
            into[3].extend([number] * len(found))
    return {
        name: MetricSeries(
            name=name, steps=steps, values=values, timestamps=stamps, attempts=numbers
        )
        for name, (steps, values, stamps, numbers) in sorted(merged.items())
    }


def attempt_summaries(run_dir: Path, execution_id: str) -> dict[str, MetricSummary]:
    """The summaries of the series an attempt wrote, computed from its files (for an attempt
    that died before its summaries reached ``run.json``)."""
    summaries: dict[str, MetricSummary] = {}
    for name, series in read_series(run_dir, [(0, execution_id)]).items():
        names = [name] * len(series)
        points = zip(names, series.steps, series.values, series.timestamps, strict=True)
        summarise(points, summaries)
    return summaries
