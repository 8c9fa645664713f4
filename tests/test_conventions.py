"""Other frontmatter conventions: nested keys, timestamps, a next-review date, default
frequencies, and what mark-reviewed does with pages scheduled by a date."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic_core import PydanticCustomError

from scheduler.config import FieldNames, MetadataRules, ReviewSettings, load_settings, validated
from scheduler.content.cadence import Cadence
from scheduler.content.facts import establish
from scheduler.content.fields import calendar_date, day_in_zone, timestamp
from scheduler.content.loader import SourceFile, load_document
from scheduler.content.metadata import ParsingRules, ValidatedDocument, validate
from scheduler.content.schedule import due_of
from scheduler.errors import ConfigError

from .conftest import frontmatter, write_doc

TODAY = "2026-11-27"
LONDON = ZoneInfo("Europe/London")


def check(
    tmp_path: Path,
    text: str,
    *,
    names: FieldNames | None = None,
    rules: MetadataRules | None = None,
    review: ReviewSettings | None = None,
    rel: str = "doc.md",
) -> ValidatedDocument:
    path = tmp_path / "doc.md"
    path.write_text(text, encoding="utf-8")
    stat = path.stat()
    loaded = load_document(SourceFile(str(path), rel, rel, stat.st_size, stat.st_mtime_ns), 1 << 20)
    return validate(
        loaded, rules or MetadataRules(), names or FieldNames(), review or ReviewSettings()
    )


def described(doc: ValidatedDocument) -> list[str]:
    return [f"{p.line}: {p.code}: {p.describe()}" for p in doc.problems]


# --------------------------------------------------------------------------- nested keys

DOCUSAURUS = """---
title: Install
last_update:
  date: 2026-03-01
  author: Sam
review_every: 6 months
---
"""
DOCUSAURUS_NAMES = FieldNames(last_reviewed="last_update.date", review_frequency="review_every")
FEW = MetadataRules(
    required=("title", "last_reviewed", "review_frequency"), recommended=(), statuses=("active",)
)


def test_a_dotted_field_reads_a_nested_key_with_its_own_line(tmp_path: Path) -> None:
    doc = check(tmp_path, DOCUSAURUS, names=DOCUSAURUS_NAMES, rules=FEW)
    assert doc.problems == ()  # the parent key last_update is not an unknown key
    assert doc.metadata is not None
    assert doc.metadata.last_reviewed == date(2026, 3, 1)
    assert doc.lines["last_reviewed"] == 4
    facts = establish(doc, DOCUSAURUS_NAMES)
    assert (facts.due, facts.last_reviewed_line) == (date(2026, 9, 1), 4)


def test_a_bad_nested_value_is_reported_on_the_nested_line(tmp_path: Path) -> None:
    text = DOCUSAURUS.replace("date: 2026-03-01", "date: 'last spring'")
    doc = check(tmp_path, text, names=DOCUSAURUS_NAMES, rules=FEW)
    assert described(doc) == [
        "4: RS211: last_update.date: 'last spring' is not a date in the form YYYY-MM-DD "
        "(use YYYY-MM-DD)"
    ]


def test_a_missing_nested_key_is_missing_and_other_keys_still_unknown(tmp_path: Path) -> None:
    text = DOCUSAURUS.replace("  date: 2026-03-01\n", "").replace("title", "tilte")
    doc = check(tmp_path, text, names=DOCUSAURUS_NAMES, rules=FEW)
    codes = [(p.code, p.field) for p in doc.problems]
    assert ("RS201", "last_update.date") in codes
    assert ("RS204", "tilte") in codes
    assert all(p.field != "last_update" for p in doc.problems)


def test_a_key_written_with_dots_is_read_as_it_is(tmp_path: Path) -> None:
    text = DOCUSAURUS.replace(
        "last_update:\n  date: 2026-03-01\n  author: Sam\n", "last_update.date: 2026-04-01\n"
    )
    doc = check(tmp_path, text, names=DOCUSAURUS_NAMES, rules=FEW)
    assert doc.metadata is not None and doc.metadata.last_reviewed == date(2026, 4, 1)


@pytest.mark.parametrize("key", ["last_update.", ".date", "a..b", " "])
def test_a_dotted_key_with_an_empty_part_is_a_config_error(tmp_path: Path, key: str) -> None:
    config = write_doc(tmp_path / "c.toml", f'[fields]\nlast_reviewed = "{key}"\n')
    with pytest.raises(ConfigError, match=r"\[fields\].*not a key"):
        load_settings(config)


# --------------------------------------------------------------------------- timestamps


@pytest.mark.parametrize(
    ("written", "zone", "expected"),
    [
        # Hugo's lastmod: the instant's date in the team's zone.
        ("2025-06-01T10:00:00+02:00", UTC, date(2025, 6, 1)),
        ("2025-06-01T00:30:00+02:00", UTC, date(2025, 5, 31)),  # 22:30 UTC the day before
        ("2025-06-01T23:30:00-02:00", LONDON, date(2025, 6, 2)),  # 02:30 BST next day
        ("2025-06-01T22:59:59Z", LONDON, date(2025, 6, 1)),  # 23:59:59 BST
        ("2025-06-01T23:00:00Z", LONDON, date(2025, 6, 2)),  # midnight BST
        ("2025-12-31T23:59:59Z", LONDON, date(2025, 12, 31)),  # GMT in winter
        ("2026-01-01T00:00:00+01:00", LONDON, date(2025, 12, 31)),
        # Naive timestamps are wall-clock times in the team's zone: their own date.
        ("2025-06-01 23:59", LONDON, date(2025, 6, 1)),
        ("2025-06-01T00:00:00", ZoneInfo("Pacific/Kiritimati"), date(2025, 6, 1)),
        # Jekyll's last_modified_at, with a space and a four-digit offset.
        ("2016-03-22 14:00:00 -0500", UTC, date(2016, 3, 22)),
        ("2016-03-22 20:00:00 -0500", UTC, date(2016, 3, 23)),
        ("2016-03-22 20:00:00.123 -05:00", UTC, date(2016, 3, 23)),
        ("2025-06-01", LONDON, date(2025, 6, 1)),
    ],
)
def test_a_timestamp_is_the_date_it_falls_on_in_the_zone(
    written: str, zone: Any, expected: date
) -> None:
    assert calendar_date(written, ParsingRules((), (), zone)) == expected


def test_yaml_timestamps_are_taken_in_the_zone() -> None:
    rules = ParsingRules((), (), ZoneInfo("America/New_York"))
    aware = datetime(2025, 6, 1, 2, 0, tzinfo=UTC)  # 22:00 the day before in New York
    assert calendar_date(aware, rules) == date(2025, 5, 31)
    assert calendar_date(datetime(2025, 6, 1, 2, 0), rules) == date(2025, 6, 1)
    assert day_in_zone(datetime(2025, 6, 1, 23, 0, tzinfo=timezone(timedelta(hours=-3))), UTC) == (
        date(2025, 6, 2)
    )


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("2025-06-01T25:00:00Z", "not a real time of day"),
        ("2025-06-01T10:00:00+24:00", "impossible UTC offset"),
        ("2025-06-01T10", "not a date (YYYY-MM-DD) or a timestamp"),
        ("2025-02-30T10:00:00Z", "not a real date"),
        ("2025-06-01T10:00:00 UTC", "not a date (YYYY-MM-DD) or a timestamp"),
    ],
)
def test_a_broken_timestamp_says_what_is_wrong(written: str, message: str) -> None:
    with pytest.raises(PydanticCustomError, match=re.escape(message)):
        timestamp(written) if len(written) > 10 else calendar_date(written)


def test_timestamps_in_frontmatter_use_the_review_timezone(tmp_path: Path) -> None:
    text = frontmatter(lastReviewed="2025-06-01T23:30:00Z") + ""
    london = ReviewSettings(timezone="Europe/London")
    assert check(tmp_path, text).metadata.last_reviewed == date(2025, 6, 1)  # type: ignore[union-attr]
    doc = check(tmp_path, text, review=london)
    assert doc.problems == ()
    assert doc.metadata is not None and doc.metadata.last_reviewed == date(2025, 6, 2)


def test_a_timestamp_date_follows_the_timezone_setting_through_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Any
) -> None:
    write_doc(tmp_path / "docs" / "a.md", frontmatter(lastReviewed="2026-01-01T23:30:00-05:00"))
    config = tmp_path / "review.toml"
    monkeypatch.chdir(tmp_path)

    def last_reviewed(zone: str) -> str:
        config.write_text(
            f'[content]\nroot = "docs"\n[review]\ntimezone = "{zone}"\n'
            '[routing]\ndefault = ["team@example.org"]\n'
            '[store]\nurl = "sqlite:///state.sqlite3"\n'
        )
        result = run(
            "--config", str(config), "--as-of", TODAY, "--format", "json", prog="check-reviews"
        )
        assert result.code in (0, 1), result.err
        return str(json.loads(result.out)["documents"][0]["last_reviewed"])

    assert last_reviewed("America/New_York") == "2026-01-01"
    assert last_reviewed("Europe/Paris") == "2026-01-02"  # the cache does not answer for it
    assert last_reviewed("America/New_York") == "2026-01-01"


# --------------------------------------------------------------------------- next-review date


def test_due_of_takes_the_earlier_date() -> None:
    quarterly = Cadence(months=3)
    assert due_of(date(2026, 1, 15), quarterly, None) == (
        date(2026, 4, 15),
        date(2026, 4, 15),
        False,
    )
    assert due_of(None, None, date(2026, 9, 1)) == (date(2026, 9, 1), None, False)
    assert due_of(date(2026, 1, 15), quarterly, date(2026, 9, 1)).due == date(2026, 4, 15)
    assert due_of(date(2026, 1, 15), quarterly, date(2026, 3, 1)) == (
        date(2026, 3, 1),
        date(2026, 4, 15),
        True,
    )
    assert due_of(date(2026, 1, 15), quarterly, date(2026, 4, 15)).disagrees is False
    assert due_of(date(2026, 1, 15), None, date(2026, 3, 1)).due == date(2026, 3, 1)


def test_a_page_with_only_a_next_review_date_is_scheduled(tmp_path: Path) -> None:
    text = frontmatter(lastReviewed=None, reviewFrequency=None, reviewBy="2026-09-01")
    doc = check(tmp_path, text)
    assert doc.problems == ()
    facts = establish(doc, FieldNames())
    assert (facts.due, facts.last_reviewed, facts.last_reviewed_line) == (
        date(2026, 9, 1),
        None,
        8,
    )


def test_a_page_with_neither_schedule_misses_both_fields(tmp_path: Path) -> None:
    doc = check(tmp_path, frontmatter(lastReviewed=None, reviewFrequency=None))
    assert [(p.code, p.field) for p in doc.problems] == [
        ("RS201", "lastReviewed"),
        ("RS201", "reviewFrequency"),
    ]


def test_both_schedules_disagreeing_warn_and_the_earlier_counts(tmp_path: Path) -> None:
    doc = check(tmp_path, frontmatter(reviewBy="2026-03-01"))  # quarterly from 2026-01-15
    facts = establish(doc, FieldNames())
    assert facts.due == date(2026, 3, 1)
    assert [f"{p.line}: {p.code}: {p.severity}" for p in facts.problems] == ["10: RS207: warning"]
    assert "2026-04-15" in facts.problems[0].message
    agreeing = check(tmp_path, frontmatter(reviewBy="2026-04-15"))
    assert establish(agreeing, FieldNames()).problems == ()


def test_the_disagreement_warning_can_be_switched_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Any
) -> None:
    write_doc(
        tmp_path / "docs" / "a.md", frontmatter(lastReviewed="2026-11-01", reviewBy="2026-12-01")
    )
    config = write_doc(
        tmp_path / "c.toml",
        '[content]\nroot = "docs"\n[routing]\ndefault = ["team@example.org"]\n'
        '[store]\nurl = "sqlite:///state.sqlite3"\n',
    )
    monkeypatch.chdir(tmp_path)
    result = run("validate", "--config", str(config), "--as-of", TODAY)
    assert "warning: reviewBy: the next review is set for 2026-12-01" in result.out
    config.write_text(config.read_text() + '[metadata]\nignore = ["due-dates-disagree"]\n')
    result = run("validate", "--config", str(config), "--as-of", TODAY)
    assert (result.code, "0 warnings" in result.out) == (0, True), result.out


# --------------------------------------------------------------------------- default frequency

DEFAULTS = validated(
    ReviewSettings,
    {
        "default_frequency": "1 year",
        "frequencies": [
            {"paths": ["guides/**"], "frequency": "6 months"},
            {"paths": ["guides/urgent/**", "alerts/*.md"], "frequency": "monthly"},
        ],
    },
)


@pytest.mark.parametrize(
    ("rel", "due"),
    [
        ("doc.md", date(2027, 1, 15)),
        ("guides/setup.md", date(2026, 7, 15)),
        ("guides/urgent/x.md", date(2026, 7, 15)),  # the first matching entry wins
        ("alerts/x.md", date(2026, 2, 15)),
    ],
)
def test_a_page_without_a_frequency_gets_the_default_for_its_path(
    tmp_path: Path, rel: str, due: date
) -> None:
    doc = check(tmp_path, frontmatter(reviewFrequency=None), review=DEFAULTS, rel=rel)
    assert doc.problems == ()  # review_frequency is not missing: a default applies
    facts = establish(doc, FieldNames())
    assert facts.due == due
    assert facts.review_frequency in ("1 year", "6 months", "monthly")


def test_a_page_frequency_beats_the_default(tmp_path: Path) -> None:
    doc = check(tmp_path, frontmatter(), review=DEFAULTS, rel="guides/a.md")
    assert establish(doc, FieldNames()).due == date(2026, 4, 15)


def test_without_a_default_the_frequency_is_required(tmp_path: Path) -> None:
    only_guides = validated(
        ReviewSettings, {"frequencies": [{"paths": ["guides/**"], "frequency": "6 months"}]}
    )
    doc = check(tmp_path, frontmatter(reviewFrequency=None), review=only_guides, rel="news/a.md")
    assert [(p.code, p.field) for p in doc.problems] == [("RS201", "reviewFrequency")]


def test_a_bad_default_frequency_is_a_config_error(tmp_path: Path) -> None:
    config = write_doc(tmp_path / "c.toml", '[review]\ndefault_frequency = "sometimes"\n')
    with pytest.raises(ConfigError, match=r"\[review\] default_frequency: .*sometimes"):
        load_settings(config)
    config.write_text('[[review.frequencies]]\npaths = []\nfrequency = "monthly"\n')
    with pytest.raises(ConfigError, match=r"\[review\] frequencies.0.paths"):
        load_settings(config)


# --------------------------------------------------------------------------- mark-reviewed


@pytest.fixture
def dated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_doc(
        tmp_path / "config" / "scheduler.toml",
        '[content]\nroot = "docs"\n[routing]\ndefault = ["team@example.org"]\n'
        '[store]\nurl = "sqlite:///state/state.sqlite3"\n'
        '[[review.frequencies]]\npaths = ["guides/**"]\nfrequency = "6 months"\n'
        '[fields]\nlast_reviewed = "last_update.date"\n',
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _page(**fields: Any) -> str:
    return frontmatter(lastReviewed=None, **fields)


def test_mark_reviewed_moves_a_next_review_date_by_the_frequency(dated: Path, run: Any) -> None:
    page = write_doc(dated / "docs" / "a.md", _page(reviewBy="'2026-09-01'"))
    result = run("mark-reviewed", "docs/a.md", "--as-of", TODAY, "--date", "2026-11-20")
    assert result.code == 0, result.err
    assert "next review 2027-02-20" in result.out
    assert page.read_text() == _page(reviewBy="'2027-02-20'")  # quarterly; nothing else moved
    check = run("--as-of", TODAY, "--format", "json", prog="check-reviews")
    doc = json.loads(check.out)["documents"][0]
    assert (doc["due"], doc["state"]) == ("2027-02-20", "ok")


def test_mark_reviewed_uses_the_default_frequency_for_the_path(dated: Path, run: Any) -> None:
    page = write_doc(
        dated / "docs" / "guides" / "a.md", _page(reviewFrequency=None, reviewBy="2026-09-01")
    )
    result = run("mark-reviewed", "docs/guides/a.md", "--as-of", TODAY)
    assert result.code == 0, result.err
    assert "reviewBy: 2027-05-27\n" in page.read_text()


def test_mark_reviewed_refuses_a_due_date_without_a_frequency(dated: Path, run: Any) -> None:
    text = _page(reviewFrequency=None, reviewBy="2026-09-01")
    page = write_doc(dated / "docs" / "news" / "a.md", text)
    result = run("mark-reviewed", "docs/news/a.md", "--as-of", TODAY)
    assert result.code == 1
    assert "has a next-review date (reviewBy) but no review frequency" in result.err
    assert page.read_text() == text


def test_mark_reviewed_sets_a_nested_date_and_the_due_date_together(dated: Path, run: Any) -> None:
    text = _page(reviewBy="2026-09-01").replace(
        "reviewFrequency",
        "last_update:\n  date: 2026-06-01  # by hand\n  author: Sam\nreviewFrequency",
    )
    page = write_doc(dated / "docs" / "a.md", text)
    result = run("mark-reviewed", "docs/a.md", "--as-of", TODAY, "--date", "2026-11-20")
    assert result.code == 0, result.err
    assert "last reviewed 2026-06-01 -> 2026-11-20; next review 2027-02-20" in result.out
    assert page.read_text() == text.replace("2026-06-01", "2026-11-20").replace(
        "2026-09-01", "2027-02-20"
    )


def test_mark_reviewed_refuses_to_add_a_missing_nested_key(dated: Path, run: Any) -> None:
    text = _page()
    page = write_doc(dated / "docs" / "a.md", text)
    result = run("mark-reviewed", "docs/a.md", "--as-of", TODAY)
    assert result.code == 1
    assert "has no last_update.date value to change; add it by hand" in result.err
    assert page.read_text() == text


def test_missing_schedule_hints_name_the_nested_place_and_the_alternative(
    tmp_path: Path,
) -> None:
    text = DOCUSAURUS.replace("  date: 2026-03-01\n", "")
    doc = check(tmp_path, text, names=DOCUSAURUS_NAMES, rules=FEW)
    assert [p.hint for p in doc.problems] == [
        "add 'date: YYYY-MM-DD' in the mapping 'last_update', or 'reviewBy: YYYY-MM-DD', "
        "the date of the next review"
    ]
    doc = check(tmp_path, frontmatter(lastReviewed=None))
    assert [p.hint for p in doc.problems] == [
        "add 'lastReviewed: YYYY-MM-DD' to the frontmatter, or 'reviewBy: YYYY-MM-DD', "
        "the date of the next review"
    ]
