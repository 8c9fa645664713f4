"""What respecting .gitignore costs the walk, against the same walk without it.

Generates (or reuses) the benchmark's library, then times discovery alone (listing and stating
every document, as every run does before reading anything) in one process, alternating:

* without .gitignore (the baseline);
* with it, the library outside any git repository;
* with it, the library in a git repository whose .gitignore files hold patterns for files
  (``*.log``, ``draft-*.md``, ...) at the top and in every section folder, so that every file is
  matched against two of them.

Run it by hand::

    python bench/bench_gitignore.py --documents 20000
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import time
from pathlib import Path

import corpus_gen

from scheduler.content.loader import Discovery

BENCH = Path(__file__).resolve().parent
TOP_IGNORE = "node_modules/\n/results/\n*.log\n*.tmp\ndraft-*.md\n!draft-keep.md\n"
SECTION_IGNORE = "build/\n*.bak\n"


def walk(corpus: Path, gitignore: bool) -> tuple[float, int]:
    discovery = Discovery(["**/*.md", "**/*.txt"], [], Path("docs"), corpus, gitignore=gitignore)
    start = time.perf_counter()
    count = sum(1 for _ in discovery.iter_files([Path("docs")]))
    return time.perf_counter() - start, count


def measure(corpus: Path, repeat: int) -> dict[str, float]:
    times: dict[str, list[float]] = {"off": [], "on": []}
    counts = set()
    for _ in range(repeat):
        for mode in ("off", "on"):
            seconds, count = walk(corpus, mode == "on")
            times[mode].append(seconds)
            counts.add(count)
    assert len(counts) == 1, f"the walks found different numbers of documents: {counts}"
    return {mode: statistics.median(values) for mode, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=20_000, help="library size")
    parser.add_argument("--corpus", type=Path, default=BENCH / "corpus", help="where it is")
    parser.add_argument("--repeat", type=int, default=7, help="walks of each kind (median)")
    args = parser.parse_args()
    corpus = args.corpus.resolve()
    corpus_gen.generate(corpus, args.documents)
    print(f"{args.documents:,} documents in {corpus}; median of {args.repeat} walks\n")
    git = corpus / ".git"
    if git.exists():
        shutil.rmtree(git)
    outside = measure(corpus, args.repeat)
    subprocess.run(["git", "init", "-q", str(corpus)], check=True)  # noqa: S607
    (corpus / ".gitignore").write_text(TOP_IGNORE)
    sections = [entry for entry in (corpus / "docs").iterdir() if entry.is_dir()]
    for section in sections:
        (section / ".gitignore").write_text(SECTION_IGNORE)
    try:
        inside = measure(corpus, args.repeat)
    finally:
        shutil.rmtree(git)
        (corpus / ".gitignore").unlink()
        for section in sections:
            (section / ".gitignore").unlink()
    print("| walk | seconds | x without .gitignore |")
    print("| --- | ---: | ---: |")
    for name, result in (("outside a repository", outside), ("in a repository", inside)):
        print(f"| without .gitignore, {name} | {result['off']:.3f} | 1.00 |")
        ratio = result["on"] / result["off"]
        print(f"| with .gitignore, {name} | {result['on']:.3f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
