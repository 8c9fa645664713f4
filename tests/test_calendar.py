"""Calendar feeds: they parse with icalendar, their dates are the JSON report's, and their UIDs
stay the same from run to run, so that importing a feed again updates its events."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from icalendar import Calendar

from scheduler.render.calendar import event_uid, feed_name

from .conftest import frontmatter, write_doc
from .test_dashboard import AS_OF, HOSTILE, make_library


def events(path: Path) -> dict[str, Any]:
    calendar = Calendar.from_ical(path.read_bytes())
    return {str(event["UID"]): event for event in calendar.walk("VEVENT")}


@pytest.fixture
def library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    make_library(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_one_all_day_event_per_scheduled_review_on_the_reports_dates(
    library: Path, run: Any
) -> None:
    assert run("calendar", "--as-of", AS_OF, "--out", "all.ics").code == 0
    report = json.loads(run("check", "--format", "json", "--as-of", AS_OF).out)
    scheduled = [d for d in report["documents"] if d["state"] in ("overdue", "due_soon", "ok")]
    found = events(library / "all.ics")
    assert len(found) == len(scheduled) == 6  # not the invalid or the draft one
    for doc in scheduled:
        event = found[event_uid(doc["path"])]
        start = event.decoded("DTSTART")
        assert type(start) is date and start.isoformat() == doc["due"]
        assert event.decoded("DTEND") == start + timedelta(days=1)
        description = str(event["DESCRIPTION"])
        assert f"Path: {doc['path']}" in description
        assert "URL: https://example.org/page" in description
        assert f"Edit: https://git.example.org/docs/edit/main/{doc['path']}" in description
        title = doc["title"]
        expected = f"Overdue review: {title}" if doc["state"] == "overdue" else f"Review: {title}"
        assert str(event["SUMMARY"]) == expected
    assert any(HOSTILE in str(e["SUMMARY"]) for e in found.values())


def test_uids_are_stable_across_runs_and_reviews(library: Path, run: Any) -> None:
    assert run("calendar", "--as-of", AS_OF, "--out", "first.ics").code == 0
    assert run("calendar", "--as-of", AS_OF, "--out", "second.ics").code == 0
    assert (library / "first.ics").read_bytes() == (library / "second.ics").read_bytes()
    # the overdue page is reviewed: the same event, moved to the next due date
    write_doc(
        library / "docs" / "a" / "overdue-old.md",
        frontmatter(lastReviewed="2026-11-26", owner="ana@example.org"),
    )
    assert run("calendar", "--as-of", AS_OF, "--out", "third.ics").code == 0
    before, after = events(library / "first.ics"), events(library / "third.ics")
    assert set(before) == set(after)
    uid = event_uid("docs/a/overdue-old.md")
    assert before[uid].decoded("DTSTART") == date(2025, 9, 1)
    assert after[uid].decoded("DTSTART") == date(2027, 2, 26)
    assert str(after[uid]["SUMMARY"]) == "Review: Example page"
    assert int(after[uid]["SEQUENCE"]) > int(before[uid]["SEQUENCE"])  # an update


def test_one_editors_feed_on_standard_output(library: Path, run: Any) -> None:
    result = run("calendar", "--as-of", AS_OF, "--editor", "ANA@example.org")
    assert result.code == 0
    calendar = Calendar.from_ical(result.out)
    paths = sorted(str(e["DESCRIPTION"]).split("\n")[0] for e in calendar.walk("VEVENT"))
    assert paths == [
        "Path: docs/a/due-soon.md",
        "Path: docs/a/overdue-old.md",
        "Path: docs/a/overdue.md",
    ]
    assert str(calendar["X-WR-CALNAME"]) == "Reviews for ANA@example.org"


def test_the_dashboards_feeds_are_each_editors(library: Path, run: Any) -> None:
    assert run("dashboard", "--as-of", AS_OF, "--out", "site").code == 0
    assert (
        run("calendar", "--as-of", AS_OF, "--editor", "ana@example.org", "--out", "ana.ics").code
        == 0
    )
    feed = library / "site" / "calendars" / feed_name("ana@example.org")
    assert events(feed).keys() == events(library / "ana.ics").keys()
    assert 'href="calendars/ana@example.org.ics"' in (library / "site" / "index.html").read_text()
    # an editor without documents any more loses their feed at the next run
    for name in ("overdue-old", "overdue", "due-soon"):
        (library / "docs" / "a" / f"{name}.md").unlink()
    assert run("dashboard", "--as-of", AS_OF, "--out", "site").code == 0
    assert not feed.exists()


def test_feed_names_are_plain_file_names() -> None:
    assert feed_name("Ana@Example.org") == "Ana@Example.org.ics"
    odd = feed_name("../../etc/passwd")
    assert odd.startswith("editor-") and "/" not in odd and odd.endswith(".ics")


def test_an_output_that_cannot_be_written_is_a_usage_error(library: Path, run: Any) -> None:
    (library / "taken").write_text("a file, not a folder")
    result = run("dashboard", "--as-of", AS_OF, "--out", "taken/site")
    assert result.code == 2
    assert "cannot write the dashboard to taken/site: Not a directory" in result.err
    result = run("calendar", "--as-of", AS_OF, "--out", "missing/feed.ics")
    assert result.code == 2
    assert "cannot write missing/feed.ics: No such file or directory" in result.err
