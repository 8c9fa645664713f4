"""JSON reports from entries the parse cache keeps written out: the same bytes as reports built
document by document, whatever the day, the marks in the review log or damage to the store.
Real SQLite files in tmp_path; runs are dated after the files changed, so that entries hold."""

from __future__ import annotations

import sqlite3
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest

import scheduler.usecases.check as check_module
from scheduler.config import Settings, load_settings
from scheduler.content.cache import RACY_NS
from scheduler.content.snapshot import SUFFIX
from scheduler.render import RenderOptions
from scheduler.render.check import CHECK_FORMATS, JsonEntries
from scheduler.results import CheckResult, Evidence, Snoozed, State
from scheduler.usecases.check import Selection, check, parse_cache

from .test_cache import STORE, library, reads

__all__ = ["library", "reads"]


def without_snapshot(library: Path) -> None:
    """Remove the report snapshot, so that a run looks its documents up in the parse cache."""
    (library / STORE).with_name(Path(STORE).name + SUFFIX).unlink()


def report(result: CheckResult) -> str:
    return CHECK_FORMATS.render("json", result, RenderOptions())


@pytest.fixture
def settings(library: Path) -> Settings:
    return load_settings(library / "config" / "scheduler.toml")


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the documents whose report was built from their facts."""
    paths: list[str] = []
    real = check_module.build_report

    def counting(doc: Any, *args: Any) -> Any:
        paths.append(doc.path)
        return real(doc, *args)

    monkeypatch.setattr(check_module, "build_report", counting)
    return paths


def encoded_run(
    settings: Settings, library: Path, today: date, stamp: int, **options: Any
) -> CheckResult:
    with parse_cache(settings, library, stamp) as cache:
        return check(settings, [], library, today, cache=cache, encoder=JsonEntries(), **options)


@pytest.mark.parametrize(
    "today", [date(2026, 5, 1), date(2026, 4, 10), date(2026, 12, 31), date(2024, 1, 1)]
)
def test_kept_entries_give_the_report_built_document_by_document(
    library: Path,
    settings: Settings,
    reads: dict[str, int],
    built: list[str],
    today: date,
) -> None:
    later = time.time_ns() + 10 * RACY_NS
    cold = encoded_run(settings, library, date(2026, 5, 1), later)
    assert cold.documents == [] and cold.encoded is not None
    reads["parsed"] = reads["digested"] = 0
    built.clear()
    warm = encoded_run(settings, library, today, later + RACY_NS)
    rebuilt = sorted(built)
    assert reads == {"parsed": 0, "digested": 0}
    expected = check(settings, [], library, today)  # without a cache, report by report
    assert report(warm) == report(expected)
    assert warm.counts() == expected.counts()
    assert warm.states == [doc.state for doc in expected.documents]
    # Only a document whose review falls between the day its entry was kept on and ``today``
    # needs its report built again: its error about a review after today (docs/future.md,
    # reviewed on 2026-12-01, kept with that error) has ended, or begun.
    kept_on = date(2026, 5, 1)
    between = {
        doc.path
        for doc in expected.documents
        if doc.last_reviewed and min(kept_on, today) < doc.last_reviewed <= max(kept_on, today)
    }
    assert rebuilt == sorted(between)
    assert len(rebuilt) < len(expected.documents)


def test_a_state_filter_selects_from_kept_entries(
    library: Path,
    settings: Settings,
) -> None:
    later = time.time_ns() + 10 * RACY_NS
    encoded_run(settings, library, date(2026, 5, 1), later)
    chosen = Selection(frozenset({State.INVALID, State.EXEMPT}))
    warm = encoded_run(settings, library, date(2026, 5, 1), later + RACY_NS, selection=chosen)
    expected = check(settings, [], library, date(2026, 5, 1), chosen)
    assert report(warm) == report(expected)
    assert set(warm.states) == {State.INVALID, State.EXEMPT}


def test_snoozed_and_rubber_stamped_documents_are_marked(
    library: Path,
    settings: Settings,
    built: list[str],
) -> None:
    later = time.time_ns() + 10 * RACY_NS
    encoded_run(settings, library, date(2026, 5, 1), later)
    evidence = Evidence(
        snoozes={"docs/good.md": Snoozed(date(2026, 6, 1), "on leave")},
        rubber_stamped={"docs/warn.md": date(2026, 1, 15)},
    )
    built.clear()
    warm = encoded_run(settings, library, date(2026, 5, 1), later + RACY_NS, evidence=evidence)
    rebuilt = sorted(built)
    expected = check(settings, [], library, date(2026, 5, 1), evidence=evidence)
    assert report(warm) == report(expected)
    assert warm.counts()["snoozed"] == warm.counts()["rubber_stamped"] == 1
    assert rebuilt == ["docs/good.md", "docs/warn.md"]


# What damage does to the parts kept after a facts record (the stored text after its newline).
DAMAGE = {
    "an edited title": lambda kept: kept.replace("Example page", "Exemplar page"),
    "a part missing": lambda kept: kept.rpartition("\x1f")[0],
    "an unknown kind": lambda kept: kept.replace("\x1f", "\x1fx", 1),
    "not a number": lambda kept: kept.replace("\x1fD\x1f", "\x1fD\x1fx", 1),
    "no checksum": lambda kept: kept.partition("\x1f")[2],
}


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_damaged_parts_are_not_used_and_are_kept_again(
    library: Path,
    settings: Settings,
    reads: dict[str, int],
    kind: str,
) -> None:
    later = time.time_ns() + 10 * RACY_NS
    encoded_run(settings, library, date(2026, 5, 1), later)
    with sqlite3.connect(library / STORE) as db:
        (text,) = db.execute(
            "SELECT facts FROM parse_cache WHERE name = ?", (b"good.md",)
        ).fetchone()
        record, _, kept = text.partition("\n")
        assert "Example page" in kept  # the entry's title is written out after the record
        assert DAMAGE[kind](kept) != kept
        db.execute(
            "UPDATE parse_cache SET facts = ? WHERE name = ?",
            (record + "\n" + DAMAGE[kind](kept), b"good.md"),
        )
    without_snapshot(library)  # which would answer for every document
    reads["parsed"] = reads["digested"] = 0
    damaged = encoded_run(settings, library, date(2026, 5, 1), later + RACY_NS)
    assert reads == {"parsed": 0, "digested": 0}  # the record still answers
    expected = check(settings, [], library, date(2026, 5, 1))
    assert report(damaged) == report(expected)
    with sqlite3.connect(library / STORE) as db:
        (repaired,) = db.execute(
            "SELECT facts FROM parse_cache WHERE name = ?", (b"good.md",)
        ).fetchone()
    assert repaired == text  # kept again as it was first written


def test_other_formats_leave_the_record_alone_and_json_keeps_its_parts_later(
    library: Path,
    settings: Settings,
    built: list[str],
) -> None:
    later = time.time_ns() + 10 * RACY_NS
    with parse_cache(settings, library, later) as cache:
        check(settings, [], library, date(2026, 5, 1), cache=cache)  # a text report, say
    with sqlite3.connect(library / STORE) as db:
        texts = [text for (text,) in db.execute("SELECT facts FROM parse_cache")]
    assert texts and not any("\n" in text for text in texts)
    encoded_run(settings, library, date(2026, 5, 1), later + RACY_NS)  # keeps the parts
    built.clear()
    warm = encoded_run(settings, library, date(2026, 5, 1), later + 2 * RACY_NS)
    assert built == []
    assert report(warm) == report(check(settings, [], library, date(2026, 5, 1)))


def test_entries_kept_by_a_version_that_wrote_them_otherwise_are_not_used(
    library: Path,
    settings: Settings,
    reads: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A new version writing entries differently finds the old ones' checksums wrong, even
    with the same version number: they are written again from the cached facts."""
    later = time.time_ns() + 10 * RACY_NS
    encoded_run(settings, library, date(2026, 5, 1), later)
    real = JsonEntries.parts

    def renamed(doc: Any) -> tuple[str, str, str]:
        head, middle, tail = real(doc)
        return head.replace('"title"', '"headline"'), middle, tail

    monkeypatch.setattr(JsonEntries, "parts", staticmethod(renamed))
    reads["parsed"] = reads["digested"] = 0
    warm = encoded_run(settings, library, date(2026, 5, 1), later + RACY_NS)
    assert reads == {"parsed": 0, "digested": 0}
    assert report(warm).count('"headline"') == len(warm.states) > 0
    assert '"title"' not in report(warm)
