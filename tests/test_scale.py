"""Large libraries: documents stream through one at a time and bodies are never kept."""

from __future__ import annotations

import tracemalloc
from datetime import date
from pathlib import Path

from scheduler.config import ContentSettings, PerformanceSettings, RoutingSettings, Settings
from scheduler.usecases.check import validate_files

from .conftest import frontmatter

BODY = ("Patient information paragraph about treatment options and side effects. " * 200) + "\n"


def test_ten_thousand_documents_validate_with_bounded_memory(tmp_path: Path) -> None:
    root = tmp_path / "library"
    statuses = ["active", "draft", "archived", "retired"]
    for i in range(10_000):
        folder = root / f"section-{i % 50:02d}"
        if i < 50:
            folder.mkdir(parents=True)
        text = frontmatter(
            title=f"Page {i}",
            lastReviewed=f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}",
            reviewFrequency=["quarterly", "6 months", "P90D", "annually"][i % 4],
            status=statuses[i % 4],
            lastReviewd="x" if i % 1000 == 0 else None,  # a warning now and then
        )
        (folder / f"page-{i:05d}.md").write_text(text + BODY)
    corpus_bytes = sum(p.stat().st_size for p in root.rglob("*.md"))
    assert corpus_bytes > 128 * 1024 * 1024  # bodies dominate the library

    settings = Settings(  # one process, so that tracemalloc sees all the work
        content=ContentSettings(root=Path("library")),
        performance=PerformanceSettings(workers=1),
        routing=RoutingSettings(default=("team@example.org",)),  # else each is nobody's
    )
    tracemalloc.start()
    result = validate_files(settings, [], tmp_path, date(2026, 12, 31))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    totals = result.totals()
    assert totals["files"] == 10_000
    assert totals["errors"] == 0 and totals["warnings"] == 10
    # The results of 10,000 files are kept; none of their bodies are.
    assert peak < 16 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"
    assert peak < corpus_bytes / 5
