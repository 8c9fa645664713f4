"""How long does ``check-reviews`` take on a handful of documents, against a bare interpreter?

On a small library the run is almost all start-up: importing what the command needs. This
script writes five seed documents and a config into a temporary folder, runs ``check-reviews``
once to fill the parse cache, then alternates, ``--repeat`` times each, between

* the baseline: ``python -c pass`` with the same interpreter (and its site-packages), and
* ``check-reviews --format text --as-of 2026-11-27`` on the five documents, output to a pipe,

and prints the median wall time of each and their ratio. With ``--cold``, each round also times
a cold run: the state folder removed first (no parse cache, no settings cache, no store), so
that every document is read and the config validated. ``--importtime`` then lists the
modules that cost ``check-reviews`` most to import (``python -X importtime``). Run it by hand::

    python bench/bench_startup.py --repeat 20
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
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
# Every run as a user's would be: with bytecode caches (the first run writes them, even where
# this script runs with PYTHONDONTWRITEBYTECODE set) and no SCHEDULER_ variables, which would
# make the settings import pydantic-settings.
_ENVIRON = {
    k: v
    for k, v in os.environ.items()
    if k != "PYTHONDONTWRITEBYTECODE" and not k.upper().startswith("SCHEDULER_")
}


def library(folder: Path, documents: int) -> None:
    (folder / "config").mkdir()
    (folder / "config" / "scheduler.toml").write_text(CONFIG, encoding="utf-8")
    (folder / "docs").mkdir()
    seed = SEED.read_text(encoding="utf-8")
    for n in range(documents):
        (folder / "docs" / f"page-{n}.txt").write_text(seed, encoding="utf-8")


def timed(command: list[str], cwd: Path, source: str | None = None) -> tuple[float, float]:
    """Wall time and CPU time (user and system) of one run of ``command``; with ``source``, the
    package is imported from that checkout instead."""
    env = dict(_ENVIRON, PYTHONPATH=source) if source else _ENVIRON
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{command} failed ({done.returncode}): {done.stderr.decode()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def import_costs(cwd: Path, args: list[str], top: int) -> list[tuple[int, str]]:
    """The ``top`` packages (scheduler: modules) whose own import time is largest, in
    microseconds: ``-X importtime``'s self times summed by top-level package."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", RUN_CHECK, *args],
        cwd=cwd,
        env=_ENVIRON,
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
    parser.add_argument(
        "--compare",
        metavar="CHECKOUT",
        help="also time check-reviews from another checkout of the repository (an older one)",
    )
    parser.add_argument(
        "--cold",
        action="store_true",
        help="also time runs with no parse cache and no settings cache (the state folder removed)",
    )
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-startup-") as name:
        folder = Path(name)
        library(folder, options.documents)
        # --fail-on never: any other exit status (an import error exits 1 too) is a failed run.
        args = ["--format", "text", "--as-of", "2026-11-27", "--fail-on", "never"]
        check = [sys.executable, "-c", RUN_CHECK, *args]
        bare = [sys.executable, "-c", "pass"]
        timed(check, folder)  # fills the parse cache, writes bytecode, makes the state folder
        timed(check, folder)  # keeps the validated settings
        if options.compare:
            timed(check, folder, options.compare)
        baseline, runs, other, cold = [], [], [], []
        for _ in range(options.repeat):
            baseline.append(timed(bare, folder))
            runs.append(timed(check, folder))
            if options.compare:
                other.append(timed(check, folder, options.compare))
            if options.cold:
                shutil.rmtree(folder / ".review-scheduler")
                cold.append(timed(check, folder))
                timed(check, folder)  # the settings cache again, for the next warm run
        base = [statistics.median(t[i] for t in baseline) for i in (0, 1)]
        ours = [statistics.median(t[i] for t in runs) for i in (0, 1)]
        load = os.getloadavg()[0]
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load {load:.1f}")
        print(f"median of {options.repeat} runs{'':<20} wall s   cpu s")
        print(f"{'python -c pass (baseline)':<40} {base[0]:6.3f}  {base[1]:6.3f}")
        name = f"check-reviews, {options.documents} documents"
        print(f"{name:<40} {ours[0]:6.3f}  {ours[1]:6.3f}")
        if other:
            theirs = [statistics.median(t[i] for t in other) for i in (0, 1)]
            print(f"{'  the same from ' + options.compare:<40} {theirs[0]:6.3f}  {theirs[1]:6.3f}")
        if cold:
            first = [statistics.median(t[i] for t in cold) for i in (0, 1)]
            print(f"{'  the same, cold (no caches)':<40} {first[0]:6.3f}  {first[1]:6.3f}")
        print(f"ratio: {ours[0] / base[0]:.1f}x the bare interpreter's wall time")
        verdict = "under" if ours[0] < TARGET_SECONDS else "OVER"
        print(f"target: wall time under {TARGET_SECONDS} s: {verdict}")
        if options.importtime:
            print("\nlargest imports (own time by package; -X importtime inflates them):")
            for micros, module in import_costs(folder, args, options.importtime):
                print(f"  {micros / 1000:7.1f} ms  {module}")


if __name__ == "__main__":
    main()
