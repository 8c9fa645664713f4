"""Rendering digests: the built-in templates against the same templates copied into a user's
folder, which are rendered under the deadline watch (a line trace of their frames).

    python bench/bench_templates.py [--digests 500] [--documents 20]

Prints milliseconds per digest for each and the ratio of the watched rendering to the baseline.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from datetime import date
from pathlib import Path

from scheduler.notify.digest import (
    TEMPLATE_NAMES,
    DigestRenderer,
    builtin_templates,
    digest_context,
)
from scheduler.notify.reminders import Digest, DigestItem
from scheduler.results import DocumentReport
from scheduler.review.state import State


def digest(documents: int) -> Digest:
    items = tuple(
        DigestItem(
            DocumentReport(
                f"docs/page-{i}.md",
                f"Page {i}: what to expect",
                State.OVERDUE if i % 2 else State.DUE_SOON,
                "active",
                date(2026, 1, 1),
                "quarterly",
                date(2026, 4, 1),
                -30 if i % 2 else 10,
                ("ed@example.org",),
                (),
                3,
                f"https://example.org/page-{i}",
            ),
            i % 3 == 0,
            False,
        )
        for i in range(documents)
    )
    return Digest("ed@example.org", date(2026, 5, 1), items)


def per_digest_ms(renderer: DigestRenderer, context: dict[str, object], count: int) -> float:
    renderer.render(context)  # compile outside the timing
    started = time.perf_counter()
    for _ in range(count):
        renderer.render(context)
    return (time.perf_counter() - started) / count * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digests", type=int, default=500)
    parser.add_argument("--documents", type=int, default=20, help="documents per digest")
    args = parser.parse_args()
    context = digest_context(digest(args.documents), escalate_after_days=30, last_reviewed_key="k")
    with tempfile.TemporaryDirectory() as folder:
        for name in TEMPLATE_NAMES:
            shutil.copy(builtin_templates() / name, Path(folder) / name)
        baseline = per_digest_ms(DigestRenderer(), context, args.digests)
        watched = per_digest_ms(DigestRenderer(Path(folder)), context, args.digests)
    print(f"{args.digests} digests of {args.documents} documents each")
    print(f"built-in templates (baseline): {baseline:.2f} ms per digest")
    print(f"user templates, watched:       {watched:.2f} ms per digest")
    print(f"ratio: {watched / baseline:.2f}x the baseline's time")


if __name__ == "__main__":
    main()
