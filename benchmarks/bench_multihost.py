"""Benchmark of one workspace shared by several hosts over a network filesystem.

Uses ``../shared/multihost/on-node`` (each call a separate host: own hostname, pid and
mount namespaces, the share mounted over sshfs, no lock shared with other nodes; start the
server with ``../shared/multihost/start-loopback-sshd``). Two figures, each against a
reference measured in the same run:

- throughput: runs per second (full lifecycle, a result and a 10-line log each) written by
  3 nodes at once, as a ratio to 1 node alone on the same share;
- catch-up latency: how long after a run's final write a query on a long-lived login
  node first lists it succeeded, against the same measurement for a writer on the login
  node itself (same client, no cache in between).

Usage: ``python benchmarks/bench_multihost.py [--runs 30]`` (as root).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ON_NODE = ROOT.parent / "shared" / "multihost" / "on-node"
NODES = ("node-a", "node-b", "node-c")

WORKER = textwrap.dedent(
    """
    import json, socket, sys, time
    from molexp.workspace import Workspace

    root, experiment_id = sys.argv[1], sys.argv[2]
    runs, pause = int(sys.argv[3]), float(sys.argv[4])
    experiment = Workspace(root).Project("bench").Experiment(experiment_id)
    written = {}
    start = time.time()
    for index in range(runs):
        run = experiment.Run(id=f"{socket.gethostname()}-{experiment_id}-{index}")
        with run.start() as ctx:
            log = ctx.log("train")
            for line in range(10):
                log.append(f"step {line}")
            ctx.set_result("value", index)
        written[run.id] = time.time()
        time.sleep(pause)
    print(json.dumps({"seconds": time.time() - start, "written": written}))
    """
)

WATCHER = textwrap.dedent(
    """
    import json, sys, time
    from molexp.workspace import Workspace

    root, experiment = sys.argv[1], sys.argv[2]
    expected, timeout = int(sys.argv[3]), float(sys.argv[4])
    ws = Workspace(root)
    seen = {}
    deadline = time.monotonic() + timeout
    while len(seen) < expected and time.monotonic() < deadline:
        now = time.time()
        for row in ws.runs("status == 'succeeded'", experiment=experiment):
            seen.setdefault(row.id, now)
        time.sleep(0.02)
    print(json.dumps(seen))
    """
)


def on_node(node: str, share: Path, *command: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["bash", str(ON_NODE), node, str(share), "600", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def result(process: subprocess.Popen[str]) -> object:
    stdout, stderr = process.communicate(timeout=900)
    if process.returncode != 0:
        raise SystemExit(f"node command failed ({process.returncode}): {stderr[-3000:]}")
    return json.loads(stdout)


def throughput(share: Path, scripts: Path, nodes: tuple[str, ...], runs: int, tag: str) -> float:
    workers = [
        on_node(
            node,
            share,
            sys.executable,
            str(scripts / "worker.py"),
            str(share / "lab"),
            tag,
            str(runs),
            "0",
        )
        for node in nodes
    ]
    reports = [result(worker) for worker in workers]
    slowest = max(float(report["seconds"]) for report in reports)  # type: ignore[index]
    return len(nodes) * runs / slowest


def start(node: str | None, share: Path, *command: str) -> subprocess.Popen[str]:
    """``command`` on a simulated host, or on this machine itself (``node`` None, no sshfs)."""
    if node is not None:
        return on_node(node, share, *command)
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def latency(
    share: Path, scripts: Path, writer: str | None, watcher: str | None, runs: int, tag: str
) -> list[float]:
    """Seconds from each run's final write (on ``writer``) to ``watcher``'s query listing it."""
    lab = str(share / "lab")
    watching = start(
        watcher, share, sys.executable, str(scripts / "watcher.py"), lab, tag, str(runs), "120"
    )
    time.sleep(3.0)  # the watcher is up and polling
    writing = start(
        writer, share, sys.executable, str(scripts / "worker.py"), lab, tag, str(runs), "0.3"
    )
    written = result(writing)["written"]  # type: ignore[index]
    seen = result(watching)
    return [float(seen[run_id]) - float(at) for run_id, at in written.items() if run_id in seen]  # type: ignore[index,operator]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="runs per node")
    args = parser.parse_args()
    if not ON_NODE.is_file() or os.geteuid() != 0:
        raise SystemExit(f"needs root and {ON_NODE} (with start-loopback-sshd running)")
    with tempfile.TemporaryDirectory(prefix="bench-multihost-") as tmp:
        share = Path(tmp) / "share"
        scripts = Path(tmp) / "scripts"
        share.mkdir()
        scripts.mkdir()
        (scripts / "worker.py").write_text(WORKER)
        (scripts / "watcher.py").write_text(WATCHER)
        from molexp.workspace import Workspace

        Workspace(share / "lab").materialize()
        one = throughput(share, scripts, NODES[:1], args.runs, "one")
        three = throughput(share, scripts, NODES, args.runs, "three")
        print(f"runs/s, 1 node alone        {one:8.1f}")
        print(
            f"runs/s, 3 nodes at once     {three:8.1f}   ratio {three / one:5.2f}x"
            " (the nodes share this machine's cores and one sshd)"
        )
        local = latency(share, scripts, None, None, 10, "local")
        remote = latency(share, scripts, "node-b", "login", 10, "remote")
        for name, values in (
            ("one host, local disk (ref)", local),
            ("node-b -> login, sshfs", remote),
        ):
            print(
                f"catch-up latency, {name:22s} median {statistics.median(values) * 1000:7.1f} ms"
                f"   max {max(values) * 1000:7.1f} ms   ({len(values)} runs)"
            )
        print(
            f"catch-up latency ratio (across hosts / one host, medians): "
            f"{statistics.median(remote) / max(statistics.median(local), 1e-3):.1f}x"
        )


if __name__ == "__main__":
    main()
