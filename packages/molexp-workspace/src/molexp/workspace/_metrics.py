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
"""

from __future__ import annotations

import math
import numbers
import os
import secrets
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from pathlib import Path

from molexp.assets import make_dirs, validate_name

from ._records import MetricSummary

__all__ = [
    "FLUSH_INTERVAL",
    "MAX_BUFFERED_POINTS",
    "METRICS_DIR",
    "MetricSeries",
    "MetricWriter",
    "attempt_summaries",
    "check_metric_name",
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


def _series_files(directory: Path) -> list[Path]:
    try:
        entries = sorted(directory.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [p for p in entries if p.suffix == SERIES_SUFFIX and not p.name.startswith(".")]


def read_series(
    run_dir: Path, attempts: Sequence[tuple[int, str]], only: str | None = None
) -> dict[str, MetricSeries]:
    """The metric series of a run (only the metric ``only``, if given), by name.

    ``attempts`` are ``(attempt number, execution id)`` in attempt order.
    """
    merged: dict[str, list[tuple[int, float, float, int]]] = {}
    for number, execution_id in attempts:
        directory = run_dir / "execution" / validate_name(execution_id, "execution id")
        points: list[Point] = []
        for path in _series_files(directory / METRICS_DIR):
            points.extend(parse_points(path.read_bytes(), only))
        points.sort(key=itemgetter(1, 3))
        for name, step, value, stamp in points:
            merged.setdefault(name, []).append((step, value, stamp, number))
    found: dict[str, MetricSeries] = {}
    for name, rows in sorted(merged.items()):
        steps, values, stamps, numbers = zip(*rows, strict=True)
        found[name] = MetricSeries(
            name=name,
            steps=list(steps),
            values=list(values),
            timestamps=list(stamps),
            attempts=list(numbers),
        )
    return found


def attempt_summaries(run_dir: Path, execution_id: str) -> dict[str, MetricSummary]:
    """The summaries of the series an attempt wrote, computed from its files (for an attempt
    that died before its summaries reached ``run.json``)."""
    summaries: dict[str, MetricSummary] = {}
    for name, series in read_series(run_dir, [(0, execution_id)]).items():
        names = [name] * len(series)
        points = zip(names, series.steps, series.values, series.timestamps, strict=True)
        summarise(points, summaries)
    return summaries
