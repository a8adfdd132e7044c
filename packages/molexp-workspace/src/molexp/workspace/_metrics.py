"""Metric series: append-only files of ``(name, step, value, time)`` points, one per writer.

Layout: ``<run_dir>/execution/<execution_id>/metrics/<token>.bin``. Every writer (the run's
owner, each task on a worker or in a Slurm job) appends to a file of its own, created with
``O_EXCL``, so no two processes or hosts ever append to one file (no locks: safe on NFS). A
:class:`MetricWriter` buffers points and appends a batch with one ``write`` and one ``fsync``: a
crash loses at most the batch being buffered, never points of an earlier batch.

The file is a sequence of 32-byte little-endian records. The first is the header: ``MXMETRIC``,
the format version (uint32, 1) and the record size (uint32, 32), zero-padded. Each later record
is ``(index: uint32, kind: 4 bytes, payload: 24 bytes)``; ``kind`` is ``MX`` + a kind letter +
NUL, so a zero-filled or garbage record is never taken for data:

* ``MXp\0`` a point of the metric numbered ``index``: ``step: int64, value: float64,
  time: float64`` (Unix seconds);
* ``MXn\0`` / ``MXN\0`` the UTF-8 name of metric ``index``, 24 bytes a record, NUL-padded, over
  ``n`` records then a last ``N`` one. A writer defines a name in the batch that first uses it,
  before its points, and numbers names from 0 in its file.

Reading keeps whole records only: a torn last record (a write cut by a crash) is ignored, and a
record that is damaged (unknown kind, a point of an undefined metric, a non-finite number) is
skipped on its own. A file whose header is not this format's is skipped whole (and logged).
Decoding is column-wise and C-level (``memoryview.cast`` and strided copies into ``array``), so
a million points decode in tens of milliseconds.

Files of earlier versions, ``<token>.tsv`` (one ``name<TAB>step<TAB>value<TAB>unix time<LF>``
line per point), are still read: complete lines only, lines that do not parse skipped, decoded
column by column (one ``split`` and one C-level ``int``/``float`` map per column, falling back to
the line-by-line parser for a file with a damaged line).

Readers merge every writer's file of every attempt. On a network filesystem another host may
list a writer's new file only after its directory cache expires (up to a minute on NFS).

The decoded columns are kept in a small per-process cache keyed by the file's identity, size and
modification time. The files are append-only, so a file that grew is decoded from where the cached
part ended; an unchanged series is not decoded again (``MAX_CACHED_POINTS`` bounds the cache).
"""

from __future__ import annotations

import logging
import math
import numbers
import os
import re
import secrets
import struct
import sys
import threading
import time
from array import array
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import compress, islice, repeat
from operator import eq, itemgetter, lt
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
    "decode_records",
    "encode_points",
    "encode_records",
    "parse_points",
    "read_series",
    "summarise",
]

_log = logging.getLogger(__name__)

METRICS_DIR = "metrics"
SERIES_SUFFIX = ".bin"
LEGACY_SUFFIX = ".tsv"
"""Series files of earlier versions (text lines), still read."""
FORMAT_VERSION = 1
RECORD_SIZE = 32
HEADER = struct.pack("<8sII16x", b"MXMETRIC", FORMAT_VERSION, RECORD_SIZE)
_POINT = struct.Struct("<I4sqdd")
_NAME = struct.Struct("<I4s24s")
_KIND_POINT, _KIND_NAME, _KIND_NAME_LAST = b"MXp\0", b"MXn\0", b"MXN\0"
_NAME_CHUNK = 24
_STEP_MIN, _STEP_MAX = -(2**63), 2**63 - 1
_SWAP = sys.byteorder != "little"
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
    if type(step) is not int:
        if isinstance(step, bool) or not isinstance(step, numbers.Integral):
            raise TypeError(
                f"metric {name!r}: the step must be an integer, got {type(step).__name__}: {step!r}"
            )
        step = int(step)
    if not _STEP_MIN <= step <= _STEP_MAX:
        raise ValueError(f"metric {name!r}: the step must fit in 64 bits, got {step}")
    return step


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
    """The lines of ``points`` as stored in a series file of earlier versions (``.tsv``)."""
    return "".join([f"{n}\t{s}\t{v!r}\t{t!r}\n" for n, s, v, t in points]).encode("utf-8")


def encode_records(points: Iterable[Point], names: dict[str, int], *, header: bool) -> bytes:
    """The records of ``points`` as appended to a ``.bin`` series file, after the file's header
    when ``header``; ``names`` (name -> index, the names the file defines) gains the names first
    used here, whose definitions precede the points."""
    pack_point = _POINT.pack
    parts = [HEADER] if header else []
    records = []
    for name, step, value, stamp in points:
        index = names.get(name)
        if index is None:
            index = names[name] = len(names)
            raw = name.encode("utf-8")
            chunks = [raw[i : i + _NAME_CHUNK] for i in range(0, len(raw), _NAME_CHUNK)]
            parts.extend(_NAME.pack(index, _KIND_NAME, chunk) for chunk in chunks[:-1])
            parts.append(_NAME.pack(index, _KIND_NAME_LAST, chunks[-1]))
        records.append(pack_point(index, _KIND_POINT, step, value, stamp))
    return b"".join(parts) + b"".join(records) if parts else b"".join(records)


def parse_points(data: bytes, only: str | None = None) -> Iterator[Point]:
    """The points of a ``.tsv`` series file's bytes (of metric ``only``, if given).

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
        self._defined: dict[str, int] = {}
        """The metric names the open file defines, by their index in it."""
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
            self._defined = {}
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
        fd = self._open()
        defined = dict(self._defined)
        try:
            data = encode_records(self._buffer, self._defined, header=self._size == 0)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except BaseException:
            self._defined = defined  # the names this batch defined are cut off with it
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
    if all(map(lt, steps, islice(steps, 1, None))):
        return True
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


@dataclass(slots=True)
class _BinaryState:
    """What decoding a ``.bin`` file needs to go on where it stopped: the names defined so far
    (by index), the parts of a name whose last record is still to come; ``valid`` False for a
    file whose header is not this format's (``problem`` says how)."""

    names: dict[int, str] = field(default_factory=dict)
    pending: dict[int, bytes] = field(default_factory=dict)
    valid: bool = True
    problem: str = ""

    def copy(self) -> _BinaryState:
        return _BinaryState(dict(self.names), dict(self.pending), self.valid, self.problem)


_KINDS = bytes(i if i in b"pnN" else ord("?") for i in range(256))
"""A translation table keeping the kind letters and making every other byte ``?``."""
_RUNS = re.compile(rb"p+|[^p]")


def _record_kinds(body: memoryview, count: int) -> bytes:
    """One letter per record: ``p``, ``n``, ``N``, or ``?`` for a record of no known kind."""
    if body.cast("I")[1 :: RECORD_SIZE // 4].tobytes() == _KIND_POINT * count:
        return b"p" * count  # points only: one strided copy and one comparison
    kinds = body[6::RECORD_SIZE].tobytes()
    if (
        body[4::RECORD_SIZE].tobytes().count(b"M") == count
        and body[5::RECORD_SIZE].tobytes().count(b"X") == count
        and body[7::RECORD_SIZE].tobytes().count(0) == count
    ):
        return kinds.translate(_KINDS)
    marks = {_KIND_POINT: b"p", _KIND_NAME: b"n", _KIND_NAME_LAST: b"N"}
    return b"".join(
        marks.get(body[i + 4 : i + 8].tobytes(), b"?")
        for i in range(0, count * RECORD_SIZE, RECORD_SIZE)
    )


def _finite_mask(body: memoryview, offset: int) -> list[bool] | None:
    """Which records' float64 at ``offset`` are finite; None when all are (the usual case, told
    from the exponent's high byte alone)."""
    tops = body[offset + 7 :: RECORD_SIZE].tobytes()
    if not tops.count(0x7F) and not tops.count(0xFF):
        return None
    view = body[offset:]
    return [
        math.isfinite(struct.unpack_from("<d", view, i)[0])
        for i in range(0, len(view) - 7, RECORD_SIZE)
    ]


def _point_run(body: memoryview, state: _BinaryState) -> dict[str, _Columns]:
    """The points of consecutive point records, by metric (records of an undefined metric or
    with a non-finite number skipped)."""
    count = len(body) // RECORD_SIZE
    words = body.cast("q")
    doubles = body.cast("d")
    steps = array("q", words[1::4].tobytes())
    values = array("d", doubles[2::4].tobytes())
    stamps = array("d", doubles[3::4].tobytes())
    raw_index = body.cast("I")[0::8].tobytes()
    if _SWAP:
        steps.byteswap()
        values.byteswap()
        stamps.byteswap()
    keep: list[bool] | None = None
    for offset in (16, 24):
        finite = _finite_mask(body, offset)
        if finite is not None:
            keep = finite if keep is None else list(map(min, keep, finite))
    if raw_index == raw_index[:4] * count:
        name = state.names.get(int.from_bytes(raw_index[:4], "little"))
        if name is None:
            return {}
        if keep is not None:
            steps = array("q", compress(steps, keep))
            values = array("d", compress(values, keep))
            stamps = array("d", compress(stamps, keep))
        if not steps:
            return {}
        return {name: _Columns(steps, values, stamps, _is_ordered(steps, stamps))}
    indexes = array("I", raw_index)
    if _SWAP:
        indexes.byteswap()
    found: dict[str, _Columns] = {}
    for index in sorted(set(indexes)):
        name = state.names.get(index)
        if name is None:
            continue
        mask = list(map(eq, indexes, repeat(index)))
        if keep is not None:
            mask = list(map(min, mask, keep))
        kept_steps = list(compress(steps, mask))
        if kept_steps:
            more = _columns(kept_steps, list(compress(values, mask)), list(compress(stamps, mask)))
            known = found.get(name)
            found[name] = more if known is None else _extend(known, more)
    return found


def _define(record: memoryview, last: bool, state: _BinaryState) -> None:
    index = int.from_bytes(record[:4], "little")
    chunk = state.pending.pop(index, b"") + record[8:].tobytes()
    if not last:
        if len(chunk) <= 256:  # a name is at most 200 bytes: longer is damage
            state.pending[index] = chunk
        return
    try:
        state.names[index] = check_metric_name(chunk.rstrip(b"\0").decode("utf-8"))
    except ValueError:
        return


def decode_records(
    data: bytes, state: _BinaryState | None = None
) -> tuple[dict[str, _Columns], int, _BinaryState | None]:
    """The points of a ``.bin`` series file's whole records, by metric, as columns in file order;
    the bytes decoded and the state to go on from there. ``data`` is the file from its start
    (``state`` None) or from where an earlier call stopped (its ``state``). Never raises on
    damaged data: a torn last record is left for later, damaged records are skipped."""
    start = 0
    if state is None:
        if len(data) < len(HEADER) and HEADER.startswith(data[:8]):
            return {}, 0, None  # a header torn or not written yet
        if data[:16] != HEADER[:16]:
            if data[:8] == HEADER[:8]:  # then at least a header long
                version, size = struct.unpack("<II", data[8:16])
                problem = (
                    f"a metric series file of an unknown version ({version}, {size}-byte records)"
                )
            else:
                problem = f"not a metric series file (it starts {data[:8]!r})"
            return {}, len(data), _BinaryState(valid=False, problem=problem)
        state, start = _BinaryState(), len(HEADER)
    if not state.valid:
        return {}, len(data), state
    count = (len(data) - start) // RECORD_SIZE
    body = memoryview(data)[start : start + count * RECORD_SIZE]
    found: dict[str, _Columns] = {}
    for run in _RUNS.finditer(_record_kinds(body, count)):
        first, end = run.start() * RECORD_SIZE, run.end() * RECORD_SIZE
        kind = run.group()
        if kind[:1] == b"p":
            for name, more in _point_run(body[first:end], state).items():
                known = found.get(name)
                found[name] = more if known is None else _extend(known, more)
        elif kind in (b"n", b"N"):
            _define(body[first:end], kind == b"N", state)
    return found, start + count * RECORD_SIZE, state


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
    """Bytes decoded: up to the end of the last whole record (of a ``.tsv`` file: up to and
    including the last complete line's newline)."""
    series: dict[str, _Columns] = field(default_factory=dict)
    state: _BinaryState | None = None
    """Where decoding a ``.bin`` file stopped (None: its header is still to be read)."""

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
                    state = None if cached.state is None else cached.state.copy()
                else:
                    start, series, state = 0, {}, None
                data = handle.read()
        except (FileNotFoundError, NotADirectoryError):
            return {}
        if path.suffix == LEGACY_SUFFIX:
            end = data.rfind(b"\n") + 1
            decoded = decode_columns(data[:end])
        else:
            was_valid = state is None or state.valid
            decoded, end, state = decode_records(data, state)
            if was_valid and state is not None and not state.valid:
                _log.warning("%s is skipped: %s", path, state.problem)
        for name, more in decoded.items():
            known = series.get(name)
            series[name] = more if known is None else _extend(known, more)
        entry = _CachedFile(identity, info.st_size, info.st_mtime_ns, start + end, series, state)
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
    suffixes = (SERIES_SUFFIX, LEGACY_SUFFIX)
    return [p for p in entries if p.suffix in suffixes and not p.name.startswith(".")]


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
            into = merged.get(name)
            if into is None:  # the lists of the first attempt, not copied again
                merged[name] = (
                    _as_list(found.steps),
                    _as_list(found.values),
                    _as_list(found.stamps),
                    [number] * len(found),
                )
                continue
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
