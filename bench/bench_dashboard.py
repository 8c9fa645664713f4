"""How long does the dashboard of a large library take to write, and how large is it?

Generates (or reuses) a library of N documents (bench/corpus_gen.py, with a one-line body: only
the frontmatter is read), then runs, each as its own process, ``--repeat`` times:

* ``check-reviews --format json`` with a warm parse cache (the baseline: the report alone);
* ``review-scheduler dashboard --out site`` with a warm parse cache;

and prints the median wall times and the size of the site it wrote. Run it by hand::

    python bench/bench_dashboard.py                     # 10,000 documents
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import corpus_gen

BENCH = Path(__file__).resolve().parent
AS_OF = "2026-11-27"
MB = 1_000_000
TARGETS = {"seconds": 5.0, "mb": 10.0}


def timed(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=10_000, help="library size")
    parser.add_argument("--corpus", type=Path, default=BENCH / "corpus-dashboard")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each (median)")
    args = parser.parse_args()
    corpus = corpus_gen.generate(args.corpus.resolve(), args.documents, body="Body.\n")
    bindir = Path(sys.executable).parent
    check = [str(bindir / "check-reviews"), "--format", "json", "--as-of", AS_OF]
    check += ["--fail-on", "never"]
    dashboard = [str(bindir / "review-scheduler"), "dashboard", "--out", "site", "--as-of", AS_OF]
    subprocess.run(check, cwd=corpus, check=True, stdout=subprocess.DEVNULL)  # warm the cache
    report = statistics.median(timed(check, corpus) for _ in range(args.repeat))
    site = statistics.median(timed(dashboard, corpus) for _ in range(args.repeat))
    index = (corpus / "site" / "index.html").stat().st_size
    total = sum(p.stat().st_size for p in (corpus / "site").rglob("*") if p.is_file())
    feeds = len(list((corpus / "site" / "calendars").glob("*.ics")))
    print(f"{args.documents:,} documents, median of {args.repeat} runs, warm parse cache")
    print()
    print("| run | wall time | output |")
    print("| --- | ---: | ---: |")
    print(f"| check-reviews --format json (baseline) | {report:.2f} s | |")
    print(
        f"| review-scheduler dashboard | {site:.2f} s | index.html {index / MB:.1f} MB, "
        f"site {total / MB:.1f} MB with {feeds} feeds |"
    )
    ok = site <= TARGETS["seconds"] and index / MB <= TARGETS["mb"]
    print()
    print(
        f"targets (at most {TARGETS['seconds']:.0f} s, index.html under 10 MB): "
        f"{'met' if ok else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
