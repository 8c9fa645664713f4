"""Does a daemon's memory level off? A soak of many reminder cycles on a large library.

Generates (or reuses) the library ``bench_check.py`` uses, starts ``review-scheduler daemon`` on
it as a real process with a cycle every ``--every`` seconds (a fresh state store in a temporary
folder; messages go to the ``.eml`` outbox folder), and after each cycle reads the daemon's
resident set (``VmRSS``) and its proportional set with any worker processes
(``/proc/PID/smaps_rollup``). It prints the figure after every cycle, then the growth per cycle
over the first and the second half of the run, and the final resident set against the one after
the baseline cycle (the first after the cold one). Run it by hand::

    python bench/bench_daemon_soak.py                                 # 100,000 documents, 31 cycles
    python bench/bench_daemon_soak.py --documents 20000 --cycles 15   # a quick look
    python bench/bench_daemon_soak.py --source /tmp/old-version       # a baseline to compare
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import corpus_gen

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
MIB = 1024 * 1024


def rss(pid: int) -> int:
    """The resident set of ``pid``, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def tree_pss(pid: int) -> int:
    """The proportional set sizes of ``pid`` and its children, in bytes."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for each in pids:
        try:
            text = Path(f"/proc/{each}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1]) * 1024
    return total


def config(corpus: Path, every: int) -> str:
    """The corpus's own configuration, with its root made absolute and a schedule added."""
    text = (corpus / "config" / "scheduler.toml").read_text()
    text = text.replace('root = "docs"', f'root = "{corpus / "docs"}"')
    return text + (
        f'\n[mail]\nfrom_address = "reviews@example.org"\n'
        f'[daemon]\nschedule = "*/{every} * * * * *"\ndrain_interval_seconds = 3600\n'
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=100_000, help="library size")
    parser.add_argument("--corpus", type=Path, default=BENCH / "corpus", help="where it is")
    parser.add_argument("--cycles", type=int, default=31, help="cycles to run")
    parser.add_argument("--every", type=int, default=10, help="seconds between cycles (1-59)")
    parser.add_argument(
        "--source",
        type=Path,
        default=REPO,
        help="the review-scheduler source tree to run (another version, as a baseline)",
    )
    args = parser.parse_args()
    corpus = args.corpus.resolve()
    corpus_gen.generate(corpus, args.documents)
    print(
        f"{args.source}: {args.documents} documents, a cycle every {args.every} s, "
        f"{args.cycles} cycles; "
        f"Python {platform.python_version()}, {os.cpu_count()} cores"
    )
    with tempfile.TemporaryDirectory(prefix="soak-") as work:
        folder = Path(work)
        (folder / "config").mkdir()
        (folder / "config" / "scheduler.toml").write_text(config(corpus, args.every))
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEDULER_")}
        env["PYTHONPATH"] = str(args.source.resolve())
        daemon = subprocess.Popen(
            [sys.executable, "-m", "scheduler", "daemon", "--log-format", "json"],
            cwd=folder,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert daemon.stderr is not None
        figures: list[tuple[int, int, float]] = []  # (rss, pss, seconds the cycle took)
        begun = time.monotonic()
        try:
            for line in daemon.stderr:
                event = json.loads(line)
                message = event["message"]
                if message.startswith("cycle begun"):
                    begun = time.monotonic()
                elif message.startswith("cycle ended"):
                    took = time.monotonic() - begun
                    figures.append((rss(daemon.pid), tree_pss(daemon.pid), took))
                    n = len(figures)
                    print(
                        f"cycle {n:3d}: {figures[-1][0] / MIB:7.1f} MiB resident, "
                        f"{figures[-1][1] / MIB:7.1f} MiB with workers, {took:5.1f} s",
                        flush=True,
                    )
                    if n >= args.cycles:
                        break
                elif event["level"] in ("error", "critical"):
                    print(f"daemon: {message} {event.get('error', '')}", file=sys.stderr)
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.communicate(timeout=120)
    report(figures)


def report(figures: list[tuple[int, int, float]]) -> None:
    if len(figures) < 5:
        print("too few cycles to judge")
        return
    sizes = [f[0] for f in figures]
    base = sizes[1]  # the first cycle reads everything cold; the second is the baseline
    half = len(sizes) // 2
    first = (sizes[half] - sizes[1]) / (half - 1) if half > 1 else 0.0
    second = (sizes[-1] - sizes[half]) / (len(sizes) - 1 - half)
    print(
        f"growth per cycle: {first / 1024:+.0f} KiB over cycles 2-{half + 1}, "
        f"{second / 1024:+.0f} KiB over cycles {half + 1}-{len(sizes)}"
    )
    print(
        f"resident: {sizes[0] / MIB:.1f} MiB after the cold cycle, {base / MIB:.1f} MiB after "
        f"the baseline cycle, {max(sizes) / MIB:.1f} MiB at most, {sizes[-1] / MIB:.1f} MiB at "
        f"the end: ratio end / baseline {sizes[-1] / base:.3f}"
    )


if __name__ == "__main__":
    main()
