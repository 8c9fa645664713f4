"""How fast is a reminder cycle over a warm library, against the floor and a baseline version?

Runs, in turn and ``--rounds`` times, the walk-and-stat floor (``walk_stat.py``), then
``review-scheduler send`` of a baseline installation (``--baseline``: the ``bin`` folder of
another virtual environment, say one with the previous commit installed), then this one's.
Each is its own process; wall time, CPU time (user and system) and the largest resident set
come from ``wait4``. Medians are printed, and the ratios to the floor measured in the same
rounds. Alternating keeps a shared machine's changing load from favouring one side.

The library must have been seen already: its parse cache warm and today's digests queued
(``bench_check.py`` leaves it so, or run ``check-reviews`` then ``send`` once), so that each
cycle is the next one the same day, which queues nothing. Run it by hand::

    python bench/bench_cycle.py --corpus /tmp/corpus --baseline /tmp/old-venv/bin
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
AS_OF = "2026-11-27"
MIB = 1024 * 1024


def run(command: list[str], cwd: Path) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds and peak resident bytes of one process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{command[0]} failed with exit status {os.waitstatus_to_exitcode(status)}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True, help="a library seen already")
    parser.add_argument("--baseline", type=Path, help="bin folder of the version to compare")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--as-of", default=AS_OF)
    args = parser.parse_args()

    here = Path(sys.executable).parent
    sides = {"walk and stat (the floor)": [sys.executable, str(BENCH / "walk_stat.py"), "docs"]}
    if args.baseline is not None:
        sides["send, baseline"] = [str(args.baseline / "review-scheduler"), "send"]
    sides["send, this version"] = [str(here / "review-scheduler"), "send"]
    for name, command in sides.items():
        if name.startswith("send"):
            command += ["--as-of", args.as_of]

    measured: dict[str, list[tuple[float, float, int]]] = {name: [] for name in sides}
    for index in range(args.rounds):
        for name, command in sides.items():
            measured[name].append(run(command, args.corpus))
        line = ", ".join(
            f"{name.split(',')[-1].strip()} {m[-1][0]:.2f} s" for name, m in measured.items()
        )
        print(f"  round {index + 1}: {line}", flush=True)

    floor = statistics.median(m[0] for m in measured["walk and stat (the floor)"])
    print()
    print(f"median of {args.rounds} rounds, load average now {os.getloadavg()[0]:.1f}")
    print()
    print("| run | wall time | x floor | CPU time | peak memory |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, runs in measured.items():
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        rss = max(r[2] for r in runs)
        print(f"| {name} | {wall:.2f} s | {wall / floor:.1f} | {cpu:.2f} s | {rss / MIB:.0f} MiB |")


if __name__ == "__main__":
    main()
