"""P6 for the CLI: start-up cost of ``molexp --help`` and of ``import molexp``.

Each command is run in a fresh subprocess; the figure is the best wall time of several
repetitions, printed next to the same measurement of ``python -c pass`` (the interpreter's own
start-up, measured in this same run) as a ratio. Targets: ``molexp --help`` <= 300 ms and
``python -c "import molexp"`` <= 200 ms.

Run: ``python benchmarks/bench_cli.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

HELP_TARGET_S = 0.300
IMPORT_TARGET_S = 0.200


def molexp_command() -> list[str]:
    """The installed ``molexp`` console script of this interpreter, else ``python -m``."""
    beside = Path(sys.executable).with_name("molexp")
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("molexp")
    return [found] if found else [sys.executable, "-m", "molexp.cli"]


def best_wall_time(command: list[str], repeat: int) -> float:
    """Best wall-clock seconds of ``repeat`` runs of ``command`` (which must succeed)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - started)
    return best


def report(label: str, seconds: float, reference: float, target: float) -> bool:
    verdict = "ok" if seconds <= target else "OVER TARGET"
    print(
        f"{label:<34} {seconds * 1000:7.1f} ms  = {seconds / reference:5.1f}x python -c pass"
        f"  (target <= {target * 1000:.0f} ms: {verdict})"
    )
    return seconds <= target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="repetitions per command (best of)")
    args = parser.parse_args()

    reference = best_wall_time([sys.executable, "-c", "pass"], args.repeat)
    help_time = best_wall_time([*molexp_command(), "--help"], args.repeat)
    import_time = best_wall_time([sys.executable, "-c", "import molexp"], args.repeat)

    print(f"P6 CLI start-up, best of {args.repeat}")
    print(f"{'python -c pass (reference)':<34} {reference * 1000:7.1f} ms  =   1.0x")
    help_ok = report("molexp --help", help_time, reference, HELP_TARGET_S)
    import_ok = report('python -c "import molexp"', import_time, reference, IMPORT_TARGET_S)
    if not (help_ok and import_ok):
        print("note: a figure is over its target (a loaded machine inflates start-up times)")


if __name__ == "__main__":
    main()
