from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from scheduler.config import FieldNames, MetadataRules
from scheduler.content.cadence import Cadence
from scheduler.content.loader import SourceFile, load_document
from scheduler.content.metadata import ValidatedDocument, future_review_problem, validate
from scheduler.results import Severity

from .conftest import SEED, frontmatter

RULES = MetadataRules()
NAMES = FieldNames()


def check(
    tmp_path: Path, text: str, rules: MetadataRules = RULES, names: FieldNames = NAMES
) -> ValidatedDocument:
    path = tmp_path / "doc.md"
    path.write_text(text, encoding="utf-8")
    stat = path.stat()
    loaded = load_document(
        SourceFile(str(path), "doc.md", "doc.md", stat.st_size, stat.st_mtime_ns), 1 << 20
    )
    return validate(loaded, rules, names)


def lines_of(doc: ValidatedDocument) -> list[str]:
    return [f"{p.line}: {p.severity}: {p.describe()}" for p in doc.problems]


def test_seed_is_valid_and_fully_read() -> None:
    stat = SEED.stat()
    loaded = load_document(
        SourceFile(str(SEED), "seed", "seed", stat.st_size, stat.st_mtime_ns), 1 << 20
    )
    doc = validate(loaded, RULES, NAMES)
    assert doc.problems == ()
    meta = doc.metadata
    assert meta is not None
    assert meta.title == "Metastatic Cancer Research - NCI"
    assert meta.last_reviewed == date(2025, 12, 30)
    assert meta.review_frequency == Cadence(months=3)
    assert (meta.status, meta.license, meta.language) == ("active", "public_domain", "en")
    assert meta.cancer_types == ("metastatic cancer", "breast", "lung", "pancreatic", "liver")
    assert meta.tags == ("cancer-type",)
    assert (meta.source, meta.source_type, meta.citation) == ("NCI", "02_nci_core", "NCI, 2025")
    assert (meta.audience_level, meta.version) == ("patient", "v1")
    assert meta.url == "https://www.cancer.gov/types/metastatic-cancer/research"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        # lastReviewed (line 3)
        ({"lastReviewed": "'2026-01-15'"}, []),
        ({"lastReviewed": '"2026-01-15"'}, []),
        (
            {"lastReviewed": "2025-02-30"},
            ["3: error: lastReviewed: '2025-02-30' is not a real date (use YYYY-MM-DD)"],
        ),
        (
            {"lastReviewed": "'2025-02-30'"},
            ["3: error: lastReviewed: '2025-02-30' is not a real date (use YYYY-MM-DD)"],
        ),
        (
            {"lastReviewed": "30/12/2025"},
            [
                "3: error: lastReviewed: '30/12/2025' is not a date in the form YYYY-MM-DD "
                "(use YYYY-MM-DD)"
            ],
        ),
        (
            {"lastReviewed": "2025-1-5"},
            [
                "3: error: lastReviewed: '2025-1-5' is not a date in the form YYYY-MM-DD "
                "(use YYYY-MM-DD)"
            ],
        ),
        (
            {"lastReviewed": "20251230"},
            [
                "3: error: lastReviewed: expected a date, got the number 20251230 "
                "(write the date as YYYY-MM-DD)"
            ],
        ),
        # A timestamp is read as the date it falls on (in UTC, the default time zone).
        ({"lastReviewed": "2025-12-30 10:00:00"}, []),
        (
            {"lastReviewed": "'2025-12-30 25:00'"},
            ["3: error: lastReviewed: '2025-12-30 25:00' is not a real time of day (use HH:MM:SS)"],
        ),
        (
            {"lastReviewed": "[2025-12-30]"},
            ["3: error: lastReviewed: expected a date, got a list (write the date as YYYY-MM-DD)"],
        ),
        # reviewFrequency (line 4)
        ({"reviewFrequency": "6 months"}, []),
        ({"reviewFrequency": "P90D"}, []),
        ({"reviewFrequency": "Semi-Annually"}, []),
        (
            {"reviewFrequency": "biannually"},
            [
                "4: error: reviewFrequency: 'biannually' is ambiguous: it can mean twice a year "
                "or every two years (write 'semiannually' for every 6 months or 'biennially' for "
                "every 2 years)"
            ],
        ),
        (
            {"reviewFrequency": "biweekly"},
            [
                "4: error: reviewFrequency: 'biweekly' is ambiguous: it can mean twice a week or "
                "every two weeks (write 'fortnightly' or '2 weeks' for every two weeks)"
            ],
        ),
        (
            {"reviewFrequency": "quartely"},
            [
                "4: error: reviewFrequency: 'quartely' is not a review frequency "
                "(did you mean 'quarterly'?)"
            ],
        ),
        # status (line 5)
        ({"status": "Active"}, []),
        ({"status": "retired"}, []),
        (
            {"status": "published"},
            [
                "5: error: status: 'published' is not an accepted status "
                "(use one of: active, draft, archived, retired)"
            ],
        ),
        (
            {"status": "activ"},
            [
                "5: error: status: 'activ' is not an accepted status (did you mean 'active'? "
                "use one of: active, draft, archived, retired)"
            ],
        ),
        # license (line 6)
        ({"license": "cc-by-4.0"}, []),
        (
            {"license": "MIT"},
            [
                "6: error: license: 'MIT' is not an accepted license (use one of: public_domain, "
                "CC0-1.0, CC-BY-4.0, CC-BY-SA-4.0, CC-BY-NC-4.0, CC-BY-NC-SA-4.0, CC-BY-ND-4.0, "
                "CC-BY-NC-ND-4.0)"
            ],
        ),
        # title (line 2)
        ({"title": "''"}, ["2: error: title: is empty (write a value after the colon)"]),
        (
            {"title": ""},
            ["2: error: title: is empty (write a value after the colon, or remove the line)"],
        ),
        (
            {"title": "2025"},
            [
                "2: error: title: expected text, got the number 2025 "
                "(YAML read 2025 as the number 2025; quote it: '2025')"
            ],
        ),
        # url (line 7)
        (
            {"url": "/types/cancer"},
            [
                "7: error: url: '/types/cancer' is not an absolute http(s) URL "
                "(write the full address, https://...)"
            ],
        ),
        (
            {"url": "ftp://example.org/x"},
            [
                "7: error: url: 'ftp://example.org/x' is not an absolute http(s) URL "
                "(write the full address, https://...)"
            ],
        ),
        (
            {"url": "javascript:alert(1)"},
            [
                "7: error: url: 'javascript:alert(1)' is not an absolute http(s) URL "
                "(write the full address, https://...)"
            ],
        ),
        ({"url": "http://example.org/x"}, []),
        # language (line 9)
        ({"language": "es-419"}, []),
        ({"language": "pt-BR"}, []),
        ({"language": "zh-Hant-TW"}, []),
        (
            {"language": "en_US"},
            ["9: error: language: 'en_US' is not a BCP 47 language tag (use a hyphen: en-US)"],
        ),
        (
            {"language": "english"},
            [
                "9: error: language: 'english' is not a BCP 47 language tag "
                "(use a BCP 47 tag such as en, es, es-419 or pt-BR)"
            ],
        ),
        (
            {"language": "no"},
            [
                "9: error: language: expected text, got the yes/no value false "
                "(YAML read no as the yes/no value false; quote it: 'no')"
            ],
        ),
        ({"language": "'no'"}, []),
        # optional typed fields, appended after line 9
        ({"tags": "[a, b]", "cancerTypes": "[breast]"}, []),
        (
            {"tags": "cancer"},
            [
                "10: error: tags: expected a list of text, got a single text value "
                "(write it as [cancer])"
            ],
        ),
        (
            {"cancerTypes": "[breast, 5]"},
            ["10: error: cancerTypes: entry 2 must be text, got the number 5 (quote each entry)"],
        ),
        (
            {"version": "1.10"},
            [
                "10: error: version: expected text, got the number 1.1 "
                "(YAML read 1.10 as the number 1.1; quote it: '1.10')"
            ],
        ),
        (
            {
                "version": "v2",
                "citation": "NCI, 2025",
                "sourceType": "core",
                "audienceLevel": "patient",
            },
            [],
        ),
        (
            {"source": "[NCI]"},
            ["8: error: source: expected text, got a list (put the value in quotes)"],
        ),
    ],
)
def test_field_rules(tmp_path: Path, fields: dict[str, str], expected: list[str]) -> None:
    assert lines_of(check(tmp_path, frontmatter(**fields))) == expected


def test_all_problems_of_a_file_are_reported(tmp_path: Path) -> None:
    doc = check(
        tmp_path,
        frontmatter(
            title=None,
            lastReviewed="2025-02-30",
            reviewFrequency="bimonthly",
            status="live",
            license=None,
            url="www.example.org",
            language=None,
            lastReveiwed="2025-01-01",
            colour="blue",
        ),
    )
    assert lines_of(doc) == [
        "1: error: license: is missing (add 'license: CC-BY-4.0' to the frontmatter)",
        "1: error: title: is missing (add 'title: a title' to the frontmatter)",
        "1: warning: language: is missing (add 'language: en' to the frontmatter)",
        "2: error: lastReviewed: '2025-02-30' is not a real date (use YYYY-MM-DD)",
        "3: error: reviewFrequency: 'bimonthly' is ambiguous: it can mean twice a month or "
        "every two months (write '2 months' for every two months, or '2 weeks' for twice a "
        "month)",
        "4: error: status: 'live' is not an accepted status "
        "(use one of: active, draft, archived, retired)",
        "5: error: url: 'www.example.org' is not an absolute http(s) URL "
        "(write the full address, https://...)",
        "7: warning: lastReveiwed: unknown key (did you mean 'lastReviewed'?)",
        "8: warning: colour: unknown key (remove it, or list it in [metadata] extra_keys)",
    ]
    assert doc.has_errors
    # What could be read is kept: the due date needs only what is valid.
    assert doc.metadata is not None and doc.metadata.source == "Example"
    assert doc.metadata.last_reviewed is None


def test_missing_required_field_points_at_a_misspelt_key(tmp_path: Path) -> None:
    doc = check(tmp_path, frontmatter(lastReviewed=None, lastReveiwed="2026-01-01"))
    assert lines_of(doc) == [
        "1: error: lastReviewed: is missing ('lastReveiwed' on line 9 looks like a misspelling "
        "of 'lastReviewed')",
        "9: warning: lastReveiwed: unknown key (did you mean 'lastReviewed'?)",
    ]


def test_missing_recommended_fields_are_warnings(tmp_path: Path) -> None:
    doc = check(tmp_path, frontmatter(url=None, source=None, language=None))
    assert [p.severity for p in doc.problems] == [Severity.WARNING] * 3
    assert {p.field for p in doc.problems} == {"url", "source", "language"}
    assert not doc.has_errors


def test_unknown_keys_can_be_allowed_or_silenced(tmp_path: Path) -> None:
    text = frontmatter(weight="10", colour="blue", lastReveiwed="2026-01-01")
    allowed = MetadataRules(extra_keys=("weight",))
    assert [p.field for p in check(tmp_path, text, allowed).problems] == ["colour", "lastReveiwed"]
    quiet = MetadataRules(warn_unknown_keys=False)
    # near-misses of known keys are always worth saying
    assert [p.field for p in check(tmp_path, text, quiet).problems] == ["lastReveiwed"]


def test_configured_lists_and_required_fields(tmp_path: Path) -> None:
    rules = MetadataRules(
        required=("title", "last_reviewed", "review_frequency"),
        recommended=(),
        statuses=("live", "withdrawn"),
        review_statuses=("live",),
        licenses=("OGL-UK-3.0",),
    )
    assert lines_of(check(tmp_path, frontmatter(status="live", license="OGL-UK-3.0"), rules)) == []
    assert lines_of(check(tmp_path, frontmatter(status=None, license=None), rules)) == []
    assert lines_of(check(tmp_path, frontmatter(status="active"), rules)) == [
        "5: error: status: 'active' is not an accepted status (use one of: live, withdrawn)",
        "6: error: license: 'CC-BY-4.0' is not an accepted license (use one of: OGL-UK-3.0)",
    ]


def test_other_field_names(tmp_path: Path) -> None:
    names = FieldNames(last_reviewed="last_reviewed_on", review_frequency="review_in")
    text = frontmatter(
        lastReviewed=None, reviewFrequency=None, last_reviewed_on="2026-01-15", review_in="6 months"
    )
    doc = check(tmp_path, text, names=names)
    assert doc.problems == ()
    assert doc.metadata is not None and doc.metadata.review_frequency == Cadence(months=6)
    assert doc.lines["last_reviewed"] == 8


def test_review_in_the_future_is_an_error_against_the_as_of_date(tmp_path: Path) -> None:
    doc = check(tmp_path, frontmatter(lastReviewed="2026-03-01"))
    assert doc.metadata is not None
    reviewed, line = doc.metadata.last_reviewed, doc.lines["last_reviewed"]
    assert future_review_problem("doc.md", reviewed, line, "lastReviewed", date(2026, 3, 1)) is None
    later = future_review_problem("doc.md", reviewed, line, "lastReviewed", date(2026, 2, 28))
    assert later is not None
    assert f"{later.line}: {later.severity}: {later.describe()}" == (
        "3: error: lastReviewed: 2026-03-01 is after today (2026-02-28) "
        "(a review cannot be recorded in the future; check the year)"
    )


def test_owner_field_forms(tmp_path: Path) -> None:
    assert check(tmp_path, frontmatter(owner="a@example.org")).metadata.owner == ("a@example.org",)  # type: ignore[union-attr]
    doc = check(tmp_path, frontmatter(owner="[a@example.org, '#team']"))
    assert doc.metadata is not None and doc.metadata.owner == ("a@example.org", "#team")
    assert lines_of(check(tmp_path, frontmatter(owner="42"))) == [
        "10: error: owner: expected a list of text, got the number 42 (write it as [a, b])"
    ]
