"""Benchmarks for molexp.assets: saving artifacts, appending log lines, catalog queries, rebuild.

Every figure is printed as a ratio against a reference measured in the same run:

* artifact save       vs one bare ``atomic_write_json`` of the same payload (fsync floor);
* log append          vs ``os.write`` of the same line on an ``O_APPEND`` descriptor;
* find / query        vs scanning every JSON record file (what you would do without an index);
* rebuild             vs only reading and ``json.loads``-ing every record file.

Usage: ``python benchmarks/bench_assets.py [--assets 10000] [--saves 300] [--lines 100000]``
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from molexp.assets import (
    ArtifactAsset,
    ArtifactStore,
    AssetKind,
    AssetScope,
    Catalog,
    LogHandle,
    Producer,
    asset_id_for,
    atomic_write_json,
)

WORKSPACE_ID = "bench"


def timed(action: Callable[[], object], repeat: int = 1) -> float:
    """Best wall time of ``repeat`` runs of ``action``, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - start)
    return best


def report(label: str, measured: float, reference: float, unit_count: int, unit: str) -> None:
    per_unit = measured / unit_count * 1e6
    ratio = measured / reference
    print(f"{label:<44} {per_unit:10.1f} us/{unit:<8} ratio vs reference {ratio:9.3g}x")


def bench_artifact_saves(root: Path, saves: int) -> None:
    catalog = Catalog(root, WORKSPACE_ID)
    scope = AssetScope.for_run(WORKSPACE_ID, "p", "e", "r-save")
    store = ArtifactStore(catalog, scope, root / "save-run", Producer(run_id="r-save"))
    payload = {"loss": 0.125, "epoch": 3, "history": list(range(20))}
    reference_dir = root / "reference-writes"

    def reference() -> None:
        for index in range(saves):
            atomic_write_json(reference_dir / f"{index}.json", payload)

    def measured() -> None:
        for index in range(saves):
            store.save(f"metrics-{index}.json", payload)

    ref = timed(reference)
    got = timed(measured)
    report("artifact save (payload + record + index)", got, ref, saves, "save")
    catalog.close()


def bench_log_appends(root: Path, lines: int) -> None:
    catalog = Catalog(root, WORKSPACE_ID)
    scope = AssetScope.for_run(WORKSPACE_ID, "p", "e", "r-log")
    line = "epoch=12 step=3400 loss=0.03125 lr=0.0001"
    reference_path = root / "reference.log"

    def reference() -> None:
        fd = os.open(reference_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            data = (line + "\n").encode()
            for _ in range(lines):
                os.write(fd, data)
        finally:
            os.close(fd)

    def measured() -> None:
        with LogHandle(catalog, scope, root / "log-run", "train", None) as log:
            for _ in range(lines):
                log.append(line)

    ref = timed(reference)
    got = timed(measured)
    report("log append (incl. first-append register)", got, ref, lines, "line")
    catalog.close()


def populate_records(root: Path, count: int) -> list[AssetScope]:
    """Write ``count`` artifact records spread over 10 projects x 10 experiments x N runs."""
    scopes: list[AssetScope] = []
    per_run = 10
    for index in range(count // per_run):
        project, experiment, run = f"p{index % 10}", f"e{index // 10 % 10}", f"r{index}"
        scope = AssetScope.for_run(WORKSPACE_ID, project, experiment, run)
        scopes.append(scope)
        record_dir = root / "projects" / project / experiment / run / ".assets"
        for number in range(per_run):
            name = f"out-{number}.json"
            asset = ArtifactAsset(
                id=asset_id_for(scope, AssetKind.ARTIFACT, name),
                name=name,
                scope=scope,
                path=f"projects/{project}/{experiment}/{run}/artifacts/{name}",
                producer=Producer(run_id=run),
                tags=["even"] if number % 2 == 0 else [],
                media_type="application/json",
            )
            atomic_write_json(record_dir / f"{asset.id}.json", asset, durable=False)
    return scopes


def scan_records(root: Path) -> list[dict[str, Any]]:
    return [json.loads(path.read_bytes()) for path in root.glob("projects/**/.assets/*.json")]


def bench_catalog(root: Path, count: int) -> None:
    scopes = populate_records(root, count)
    catalog = Catalog(root, WORKSPACE_ID)

    ref_read = timed(lambda: scan_records(root))
    rebuilt = timed(catalog.rebuild)
    report(f"rebuild index from {count} records", rebuilt, ref_read, count, "record")

    target = scopes[len(scopes) // 2]
    lookup = target.ancestors()
    repeats = 200

    def scan_find() -> object:
        for record in scan_records(root):
            if record["name"] == "out-3.json" and record["scope"] == target.model_dump(mode="json"):
                return record
        return None

    def indexed_find() -> None:
        for _ in range(repeats):
            catalog.find("out-3.json", lookup)

    ref_scan = timed(scan_find)
    got_find = timed(indexed_find) / repeats
    report("find(name, run->workspace scopes)", got_find, ref_scan, 1, "lookup")

    experiment = AssetScope.for_experiment(WORKSPACE_ID, target.project_id or "", "e0")

    def scan_within() -> list[dict[str, Any]]:
        return [
            r
            for r in scan_records(root)
            if r["scope"]["project_id"] == experiment.project_id
            and r["scope"]["experiment_id"] == "e0"
            and "even" in r["tags"]
        ]

    expected = len(scan_within())
    found = catalog.query_assets(within=experiment, tag="even", kind="artifact")
    assert len(found) == expected, (len(found), expected)
    got_query = timed(
        lambda: catalog.query_assets(within=experiment, tag="even", kind="artifact"), repeat=5
    )
    report(f"query within+tag+kind ({expected} hits)", got_query, timed(scan_within), 1, "query")
    catalog.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--assets", type=int, default=10_000, help="records for query/rebuild")
    parser.add_argument("--saves", type=int, default=300, help="artifact saves")
    parser.add_argument("--lines", type=int, default=100_000, help="log lines")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-assets-") as tmp:
        root = Path(tmp).resolve()
        print(f"molexp.assets benchmark in {root}")
        for area in ("saves", "logs", "catalog"):
            (root / area).mkdir()
        bench_artifact_saves(root / "saves", args.saves)
        bench_log_appends(root / "logs", args.lines)
        bench_catalog(root / "catalog", args.assets)


if __name__ == "__main__":
    main()
