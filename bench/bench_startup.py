"""How long does ``check-reviews`` take on a handful of documents, against a bare interpreter?

On a small library the run is almost all start-up: importing what the command needs. This
script writes five seed documents and a config into a temporary folder, runs ``check-reviews``
once to fill the parse cache, then alternates, ``--repeat`` times each, between

* the baseline: ``python -c pass`` with the same interpreter (and its site-packages), and
* ``check-reviews --format text --as-of 2026-11-27`` on the five documents, output to a pipe,

and prints the median wall time of each and their ratio. ``--importtime`` then lists the
modules that cost ``check-reviews`` most to import (``python -X importtime``). Run it by hand::

    python bench/bench_startup.py --repeat 20
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SEED = REPO / "seeds" / "000_6b193bba7092f18d.txt"
CONFIG = """\
[content]
root = "docs"
[routing]
default = ["content-team@example.org"]
"""
TARGET_SECONDS = 0.2
RUN_CHECK = "from scheduler.commands.main import check_reviews_main; check_reviews_main()"


def library(folder: Path, documents: int) -> None:
    (folder / "config").mkdir()
    (folder / "config" / "scheduler.toml").write_text(CONFIG, encoding="utf-8")
    (folder / "docs").mkdir()
    seed = SEED.read_text(encoding="utf-8")
    for n in range(documents):
        (folder / "docs" / f"page-{n}.txt").write_text(seed, encoding="utf-8")


def wall(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"{command} failed ({done.returncode}): {done.stderr.decode()}")
    return elapsed


def import_costs(cwd: Path, args: list[str], top: int) -> list[tuple[int, str]]:
    """The ``top`` packages (scheduler: modules) whose own import time is largest, in
    microseconds: ``-X importtime``'s self times summed by top-level package."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", RUN_CHECK, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    costs: dict[str, int] = {}
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "cumulative" not in line:
            own, _, name = line.removeprefix("import time:").split("|")
            parts = name.strip().split(".")
            package = ".".join(parts[:2]) if parts[0] == "scheduler" else parts[0]
            costs[package] = costs.get(package, 0) + int(own)
    return sorted(((micros, name) for name, micros in costs.items()), reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--documents", type=int, default=5)
    parser.add_argument("--importtime", type=int, default=15, metavar="N")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-startup-") as name:
        folder = Path(name)
        library(folder, options.documents)
        args = ["--format", "text", "--as-of", "2026-11-27"]
        check = [sys.executable, "-c", RUN_CHECK, *args]
        bare = [sys.executable, "-c", "pass"]
        wall(check, folder)  # fills the parse cache, writes bytecode
        baseline, runs = [], []
        for _ in range(options.repeat):
            baseline.append(wall(bare, folder))
            runs.append(wall(check, folder))
        base, ours = statistics.median(baseline), statistics.median(runs)
        print(f"python {sys.version.split()[0]} on {os.cpu_count()} cores, {options.repeat} runs")
        print(f"{'python -c pass (baseline)':<40} {base:7.3f} s")
        print(f"{f'check-reviews, {options.documents} documents':<40} {ours:7.3f} s")
        print(f"ratio: {ours / base:.1f}x the bare interpreter")
        verdict = "under" if ours < TARGET_SECONDS else "OVER"
        print(f"target: under {TARGET_SECONDS} s: {verdict}")
        if options.importtime:
            print("\nlargest imports (own time by package; -X importtime inflates them):")
            for micros, module in import_costs(folder, args, options.importtime):
                print(f"  {micros / 1000:7.1f} ms  {module}")


if __name__ == "__main__":
    main()
