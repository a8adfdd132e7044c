"""A server under load: speed and reliability of ``molexp serve`` together.

A workspace of ``--runs`` runs (default 10,000; built once through the workspace API and cached
in the temp directory, then copied for each round) is served by a real ``molexp serve``
subprocess on 127.0.0.1 while:

* 2 writer processes keep writing: each creates complete runs (full ``run.start()`` lifecycle)
  and appends numbered lines ``seq <n> t <unix time>`` to the logs of its live runs;
* ``--clients`` concurrent API clients (default 32) cycle through the experiment's run list
  (a page of 100 at a random offset), a selective query, the run detail of a random run and an
  artifact download, each on a keep-alive connection of its own, written and parsed by hand so
  the load generator (on the same machine) costs little CPU beside the server;
* ``--tails`` SSE log tails (default 16), one per live run, follow those logs until the run ends.

Reported: p50/p99 latency per endpoint, requests/s, errors; per tail the lines received, lines
dropped (a sequence number never seen) or duplicated (seen twice) and the delivery delay (time
received minus the time written in the line; the processes share the host's clock); the server's
RSS after warm-up and at the end. Targets: p99 <= 250 ms for list/query/detail, 0 errors, 0
dropped or duplicated lines, every line delivered <= 1 s after it was written, RSS flat within
20%. The reference each latency ratio uses: the same request sent alone to the idle server
(before the load starts, median of 20).

``tests-integration/server/test_server_load.py`` runs the same harness (``run_load``) smaller
and shorter and asserts the reliability checks.

Usage: ``python benchmarks/bench_server_load.py [--runs 10000] [--seconds 60] [--clients 32]
[--tails 16]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import httpx

PROJECT = "bench"
EXPERIMENT = "sweep"
ARTIFACT_EVERY = 50  # one run in 50 has an artifact to download
ARTIFACT_NAME = "result.json"
LOG_NAME = "train"
WRITERS = 2
ENDPOINTS = ("list", "query", "detail", "artifact")
# Selective: depth is index % 5 and lr cycles over 50 values: 1 run in 50 matches.
QUERY = "lr == 0.0001 and depth == 0"


def lr_of(index: int) -> float:
    return round(1e-4 * (1 + index % 50), 6)


def _fill(root: Path, runs: int) -> None:
    from molexp.workspace import Workspace

    experiment = (
        Workspace(root, name="bench-load")
        .Project(PROJECT)
        .Experiment(EXPERIMENT, params={"batch": 32})
    )
    for index in range(runs):
        run = experiment.Run(parameters={"lr": lr_of(index), "depth": index % 5})
        with run.start() as ctx:
            ctx.set_result("loss", 1.0 / (1 + index % 50))
            if index % ARTIFACT_EVERY == 0:
                ctx.artifact.save(ARTIFACT_NAME, {"index": index, "loss": 1.0 / (1 + index % 50)})


def build_workspace(root: Path, runs: int, *, cache: Path | None = None) -> float:
    """Fill ``root`` with ``runs`` runs (copied from ``cache`` when it holds them); seconds."""
    started = time.perf_counter()
    if cache is not None and (cache / "done").is_file():
        shutil.copytree(cache / "lab", root, symlinks=True)
        return time.perf_counter() - started
    _fill(root, runs)
    if cache is not None:
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir(parents=True)
        shutil.copytree(root, cache / "lab", symlinks=True)
        (cache / "done").write_text(str(runs))
    return time.perf_counter() - started


# -- the writer processes ---------------------------------------------------------------------


def writer_main(root: Path, writer: int, live: int, go: Path, seconds: float, rate: float) -> None:
    """One writer: start ``live`` runs with a log each, report their ids, wait for ``go``, then
    for ``seconds`` append a numbered line to every live log ``rate`` times a second and create
    one complete run per round; finally end the live runs (their tails then end)."""
    from molexp.workspace import Workspace

    ws = Workspace.load(root)
    experiment = ws.project(PROJECT).experiment(EXPERIMENT)
    contexts = []
    logs = []
    for number in range(live):
        run = experiment.Run(parameters={"lr": 1.0, "depth": 100 + writer, "live": number})
        ctx = run.start()
        ctx.__enter__()
        log = ctx.log(LOG_NAME)
        log.append("header")
        contexts.append(ctx)
        logs.append(log)
    ready = go.parent / f"writer-{writer}.json"
    ids = [ctx.run.id for ctx in contexts]
    ready.with_suffix(".tmp").write_text(json.dumps(ids))
    ready.with_suffix(".tmp").rename(ready)
    while not go.exists():
        time.sleep(0.01)
    period = 1.0 / rate
    sequence = 0
    created = 0
    started = time.monotonic()
    next_round = started
    while time.monotonic() - started < seconds:
        for log in logs:
            log.append(f"seq {sequence} t {time.time():.6f}")
        sequence += 1
        run = experiment.Run(parameters={"lr": 2.0, "depth": 200 + writer, "n": created})
        with run.start() as ctx:
            ctx.set_result("loss", 0.5)
        created += 1
        next_round += period
        delay = next_round - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    for log in logs:
        log.append(f"done {sequence}")
    for ctx in contexts:
        ctx.__exit__(None, None, None)
    (go.parent / f"writer-{writer}.done").write_text(
        json.dumps({"lines": sequence, "runs": created})
    )


# -- the server -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process ``pid`` (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _molexp_command() -> list[str]:
    found = shutil.which("molexp", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "molexp.cli"]


@contextmanager
def serving(root: Path, env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``molexp serve -w root`` on a free port; yields (base URL, process)."""
    port = free_port()
    command = [*_molexp_command(), "serve", "-w", str(root), "--port", str(port)]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                stderr = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"molexp serve exited early: {stderr}")
            try:
                httpx.get(f"{base}/api/v1/workspace", timeout=60).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise TimeoutError("molexp serve did not start") from None
                time.sleep(0.2)
        yield base, process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- the load ---------------------------------------------------------------------------------


@dataclass
class TailResult:
    run_id: str
    received: list[int] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)
    done: int | None = None  # the writer's line count, from its last line
    end_reason: str | None = None
    error: str | None = None

    @property
    def dropped(self) -> int:
        if self.done is None:
            return -1
        return len(set(range(self.done)) - set(self.received))

    @property
    def duplicated(self) -> int:
        return len(self.received) - len(set(self.received))


@dataclass
class LoadReport:
    seconds: float
    latencies: dict[str, list[float]]
    reference: dict[str, float]
    errors: list[str]
    tails: list[TailResult]
    rss_idle: int
    rss_samples: list[tuple[float, int]]
    """(seconds into the load, RSS) once a second."""
    rss_end: int
    writer_lines: int
    writer_runs: int
    server_cpu: float
    """CPU seconds the server used during the load."""

    @property
    def rss_start(self) -> int:
        """RSS once the load has run for a quarter of its time (at most 10 s): the thread pool
        and each of its threads' SQLite connections exist by then (they grow once, under the
        first concurrent requests); growth after that is what a leak would show."""
        settle = min(10.0, self.seconds / 4)
        after = [rss for at, rss in self.rss_samples if at >= settle]
        return after[0] if after else self.rss_end

    @property
    def rss_growth(self) -> float:
        return self.rss_end / self.rss_start

    @property
    def requests(self) -> int:
        return sum(len(samples) for samples in self.latencies.values())

    def percentile(self, endpoint: str, fraction: float) -> float:
        samples = sorted(self.latencies[endpoint])
        if not samples:
            return float("nan")
        return samples[min(len(samples) - 1, int(fraction * len(samples)))]

    @property
    def max_delay(self) -> float:
        return max((max(t.delays) for t in self.tails if t.delays), default=float("nan"))

    @property
    def dropped(self) -> int:
        return sum(tail.dropped for tail in self.tails)

    @property
    def duplicated(self) -> int:
        return sum(tail.duplicated for tail in self.tails)

    def print(self) -> None:
        print(
            f"{self.requests} requests in {self.seconds:.1f} s = "
            f"{self.requests / self.seconds:.1f} requests/s, {len(self.errors)} errors"
        )
        for error in self.errors[:10]:
            print(f"  error: {error}")
        print(
            f"{'endpoint':<10} {'count':>6} {'p50 ms':>8} {'p99 ms':>8} {'alone ms':>9} p99/alone"
        )
        for endpoint in ENDPOINTS:
            p50 = self.percentile(endpoint, 0.5) * 1000
            p99 = self.percentile(endpoint, 0.99) * 1000
            alone = self.reference[endpoint] * 1000
            print(
                f"{endpoint:<10} {len(self.latencies[endpoint]):>6} {p50:>8.1f} {p99:>8.1f}"
                f" {alone:>9.1f} {p99 / alone:>8.1f}x"
            )
        delays = sorted(d for tail in self.tails for d in tail.delays)
        lines = sum(len(tail.received) for tail in self.tails)
        p50 = delays[len(delays) // 2] * 1000 if delays else float("nan")
        print(
            f"SSE: {len(self.tails)} tails, {lines} lines received (writers wrote "
            f"{self.writer_lines} per log), {self.dropped} dropped, {self.duplicated} duplicated, "
            f"delay p50 {p50:.0f} ms, max {self.max_delay * 1000:.0f} ms"
        )
        for tail in self.tails:
            if tail.error or tail.end_reason != "terminal":
                print(f"  tail {tail.run_id}: end {tail.end_reason!r}, error {tail.error!r}")
        print(f"writers created {self.writer_runs} runs meanwhile")
        print(
            f"server CPU: {self.server_cpu:.1f} s in {self.seconds:.1f} s "
            f"({self.server_cpu / self.seconds:.0%} of one core), "
            f"{self.server_cpu / max(1, self.requests) * 1000:.1f} ms per request"
        )
        peak = max((rss for _, rss in self.rss_samples), default=self.rss_end)
        print(
            f"server RSS: {self.rss_idle / 2**20:.1f} MiB idle after warm-up, "
            f"{self.rss_start / 2**20:.1f} MiB once loaded, {self.rss_end / 2**20:.1f} MiB at "
            f"the end ({self.rss_growth:.2f}x the loaded figure; peak {peak / 2**20:.1f} MiB)"
        )


async def _tail(client: httpx.AsyncClient, base: str, run_id: str, limit: float) -> TailResult:
    result = TailResult(run_id)
    url = f"{base}/api/v1/runs/{run_id}/logs/{LOG_NAME}/stream"
    event = ""
    try:
        async with client.stream("GET", url, params={"max_seconds": limit}) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "log":
                    now = time.time()
                    for text in json.loads(line[6:])["text"].splitlines():
                        parts = text.split()
                        if parts and parts[0] == "seq":
                            result.received.append(int(parts[1]))
                            result.delays.append(now - float(parts[3]))
                        elif parts and parts[0] == "done":
                            result.done = int(parts[1])
                elif line.startswith("data: ") and event == "end":
                    result.end_reason = json.loads(line[6:])["reason"]
                    break
    except (httpx.HTTPError, ValueError, KeyError, IndexError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    return result


class _Connection:
    """One API client's keep-alive HTTP/1.1 connection, written and parsed by hand.

    The load generator shares the 2-core machine with the server: with httpx clients its
    process used as much CPU as the server (71 % against 66 % of a core, about 4 ms per
    request), so the latencies measured the clients' own queueing as much as the server's.
    Through these connections it uses about 7 %, 0.25 ms per request, the log tails
    included (they still use httpx: they read a stream).
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, target: str) -> tuple[int, bytes]:
        """``GET target`` (a path with its query); the status and the body."""
        try:
            return await asyncio.wait_for(self._get(target), timeout=60)
        except BaseException:
            self.close()  # a half-read answer would poison the next request on this connection
            raise

    async def _get(self, target: str) -> tuple[int, bytes]:
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(
            f"GET {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode()
        )
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" not in headers:  # every answer these clients ask for has one
            raise ValueError(f"an answer without a Content-Length: {head[0]}")
        body = await self.reader.readexactly(int(headers["content-length"]))
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class _Clients:
    def __init__(self, base: str, run_ids: list[str], artifact_ids: list[str]) -> None:
        url = httpx.URL(base)
        self.host = url.host
        self.port = url.port or 80
        self.run_ids = run_ids
        self.artifact_ids = artifact_ids
        self.random = random.Random(0)
        self.latencies: dict[str, list[float]] = {endpoint: [] for endpoint in ENDPOINTS}
        self.errors: list[str] = []

    def connection(self) -> _Connection:
        return _Connection(self.host, self.port)

    def request(self, endpoint: str) -> str:
        """The path and query of one request to ``endpoint``."""
        experiment = f"/api/v1/projects/{PROJECT}/experiments/{EXPERIMENT}"
        pick = self.random.choice
        if endpoint == "list":
            offset = self.random.randrange(0, max(1, len(self.run_ids) - 100))
            query = {"limit": 100, "offset": offset, "order_by": "-created_at"}
            return f"{experiment}/runs?{urlencode(query)}"
        if endpoint == "query":
            return f"{experiment}/runs?{urlencode({'where': QUERY, 'limit': 100})}"
        if endpoint == "detail":
            return f"/api/v1/runs/{pick(self.run_ids)}"
        return f"/api/v1/runs/{pick(self.artifact_ids)}/artifacts/{ARTIFACT_NAME}"

    async def one(self, connection: _Connection, endpoint: str) -> float:
        target = self.request(endpoint)
        started = time.perf_counter()
        try:
            status, body = await connection.get(target)
            elapsed = time.perf_counter() - started
            if status != 200:
                self.errors.append(f"{endpoint} {status}: {body[:200]!r}")
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            elapsed = time.perf_counter() - started
            self.errors.append(f"{endpoint} {type(exc).__name__}: {exc}")
        return elapsed

    async def loop(self, number: int, stop: float) -> None:
        connection = self.connection()
        turn = number
        try:
            while time.monotonic() < stop:
                endpoint = ENDPOINTS[turn % len(ENDPOINTS)]
                turn += 1
                self.latencies[endpoint].append(await self.one(connection, endpoint))
        finally:
            connection.close()


@dataclass
class _Driven:
    load: _Clients
    tails: list[TailResult]
    reference: dict[str, float]
    rss_idle: int
    rss_samples: list[tuple[float, int]]
    cpu: float
    elapsed: float


async def _drive(
    base: str,
    run_ids: list[str],
    artifact_ids: list[str],
    live_ids: list[str],
    *,
    clients: int,
    seconds: float,
    go: Path,
    pid: int,
) -> _Driven:
    limits = httpx.Limits(max_connections=len(live_ids) + 4)  # the log tails' connections
    timeout = httpx.Timeout(60.0)
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
        load = _Clients(base, run_ids, artifact_ids)
        reference = {}
        alone = load.connection()
        for endpoint in ENDPOINTS:  # warm-up, then each request alone on the idle server
            await load.one(alone, endpoint)
            reference[endpoint] = statistics.median(
                [await load.one(alone, endpoint) for _ in range(20)]
            )
        alone.close()
        load.latencies = {endpoint: [] for endpoint in ENDPOINTS}
        rss_idle = rss_bytes(pid)
        rss_samples: list[tuple[float, int]] = []
        # The tails outlast the writers: they end with the live runs (an "end" event).
        tails = [
            asyncio.create_task(_tail(client, base, run_id, seconds + 120)) for run_id in live_ids
        ]
        await asyncio.sleep(1.0)  # every tail connected and past the header line
        go.write_text("go")
        cpu_before = cpu_seconds(pid)
        started = time.monotonic()
        stop = started + seconds

        async def sample_rss() -> None:
            while time.monotonic() < stop:
                await asyncio.sleep(1.0)
                rss_samples.append((time.monotonic() - started, rss_bytes(pid)))

        await asyncio.gather(sample_rss(), *(load.loop(number, stop) for number in range(clients)))
        elapsed = time.monotonic() - started
        cpu = cpu_seconds(pid) - cpu_before
        results = list(await asyncio.gather(*tails))
    return _Driven(load, results, reference, rss_idle, rss_samples, cpu, elapsed)


def run_load(
    root: Path,
    *,
    clients: int,
    tails: int,
    seconds: float,
    rate: float = 10.0,
    index_dir: Path,
) -> LoadReport:
    """Serve ``root`` and put it under load; the workspace must hold experiment bench/sweep."""
    from molexp.workspace import Workspace

    ws = Workspace.load(root)
    rows = ws.runs(project=PROJECT, experiment=EXPERIMENT)
    run_ids = [row.id for row in rows]
    artifact_ids = [row.id for row in rows if (row.run_dir / "artifacts" / ARTIFACT_NAME).is_file()]
    if not artifact_ids:
        raise RuntimeError("the workspace has no run with an artifact")
    env = {**os.environ, "MOLEXP_INDEX_DIR": str(index_dir)}
    control = Path(tempfile.mkdtemp(prefix="bench-load-control-"))
    go = control / "go"
    writers = []
    with serving(root, env) as (base, server):
        try:
            per_writer = (tails + WRITERS - 1) // WRITERS
            for writer in range(WRITERS):
                live = min(per_writer, tails - writer * per_writer)
                command = [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--writer",
                    json.dumps([str(root), writer, live, str(go), seconds, rate]),
                ]
                writers.append(subprocess.Popen(command, env=env))
            live_ids: list[str] = []
            for writer in range(WRITERS):
                ready = control / f"writer-{writer}.json"
                deadline = time.monotonic() + 120
                while not ready.exists():
                    if writers[writer].poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"writer {writer} did not start")
                    time.sleep(0.05)
                live_ids.extend(json.loads(ready.read_text()))
            driven = asyncio.run(
                _drive(
                    base,
                    run_ids,
                    artifact_ids,
                    live_ids,
                    clients=clients,
                    seconds=seconds,
                    go=go,
                    pid=server.pid,
                )
            )
            for process in writers:
                if process.wait(timeout=120) != 0:
                    raise RuntimeError(f"a writer failed with exit status {process.returncode}")
            rss_end = rss_bytes(server.pid)
        finally:
            for process in writers:
                if process.poll() is None:
                    process.kill()
                    process.wait()
    done = [json.loads((control / f"writer-{w}.done").read_text()) for w in range(WRITERS)]
    shutil.rmtree(control, ignore_errors=True)
    return LoadReport(
        seconds=driven.elapsed,
        latencies=driven.load.latencies,
        reference=driven.reference,
        errors=driven.load.errors
        + [f"tail {t.run_id}: {t.error}" for t in driven.tails if t.error],
        tails=driven.tails,
        rss_idle=driven.rss_idle,
        rss_samples=driven.rss_samples,
        rss_end=rss_end,
        writer_lines=min(item["lines"] for item in done),
        writer_runs=sum(item["runs"] for item in done),
        server_cpu=driven.cpu,
    )


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--writer":
        root, writer, live, go, seconds, rate = json.loads(sys.argv[2])
        writer_main(Path(root), writer, live, Path(go), seconds, rate)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--tails", type=int, default=16)
    parser.add_argument("--rate", type=float, default=10.0, help="log lines/s per live run")
    parser.add_argument("--no-cache", action="store_true")
    args = parser.parse_args()

    cache = None if args.no_cache else Path(tempfile.gettempdir()) / f"bench-load-{args.runs}"
    with tempfile.TemporaryDirectory(prefix="bench-server-load-") as tmp:
        root = Path(tmp) / "lab"
        index_dir = Path(tmp) / "index"
        os.environ["MOLEXP_INDEX_DIR"] = str(index_dir)
        built = build_workspace(root, args.runs, cache=cache)
        print(f"workspace with {args.runs} runs ready in {built:.1f} s")
        report = run_load(
            root,
            clients=args.clients,
            tails=args.tails,
            seconds=args.seconds,
            rate=args.rate,
            index_dir=index_dir,
        )
        report.print()
        with suppress(Exception):
            print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
