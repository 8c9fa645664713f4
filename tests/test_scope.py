"""[content] scope: with "declared", only documents that declare a review date are scheduled."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scheduler.content.facts import DocumentFacts, FactsDecoder, encode_facts
from scheduler.content.fields import FIELDS, SCHEDULING

from .conftest import REPO, frontmatter, write_doc

AS_OF = ("--as-of", "2026-05-01")


@pytest.fixture
def library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_doc(
        tmp_path / "review-scheduler.toml",
        '[content]\nroot = "docs"\nscope = "declared"\n[routing]\ndefault = ["team@example.org"]\n',
    )
    docs = tmp_path / "docs"
    write_doc(docs / "late.md", frontmatter(title="Late page", lastReviewed="2026-01-15"))
    write_doc(docs / "bad-date.md", frontmatter(title="Bad date", lastReviewed="2026-02-30"))
    write_doc(docs / "README.md", "# Docs\n\nHow to write a page.\n")  # no frontmatter
    write_doc(docs / "section.md", "---\ntitle: A section\nweight: 3\n---\n")  # no review date
    write_doc(docs / "empty.md", "")
    write_doc(docs / "only-frequency.md", frontmatter(lastReviewed=None))
    write_doc(docs / "broken-yaml.md", "---\ntitle: [unclosed\n---\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _paths_and_states(out: str) -> dict[str, str]:
    return {d["path"]: d["state"] for d in json.loads(out)["documents"]}


def test_declared_scope_counts_documents_without_a_review_date_as_unscheduled(
    library: Path, run: Any
) -> None:
    result = run(*AS_OF, "--format", "json", "--fail-on", "invalid", prog="check-reviews")
    data = json.loads(result.out)
    # A document that declares a review date is checked as always (an impossible date is an
    # error); one whose frontmatter cannot be read might declare one, so it is reported too.
    assert _paths_and_states(result.out) == {
        "docs/bad-date.md": "invalid",
        "docs/broken-yaml.md": "invalid",
        "docs/late.md": "overdue",
    }
    assert data["summary"] == {
        "documents": 3,
        "overdue": 1,
        "due_soon": 0,
        "ok": 0,
        "exempt": 0,
        "invalid": 2,
        "unscheduled": 4,
    }
    assert data["scope"] == "declared"
    assert result.code == 1  # for the invalid documents, not the unscheduled ones
    listed = run(*AS_OF, "--format", "json", "--state", "unscheduled", prog="check-reviews")
    assert listed.code == 0
    assert _paths_and_states(listed.out) == {
        "docs/README.md": "unscheduled",
        "docs/empty.md": "unscheduled",
        "docs/only-frequency.md": "unscheduled",
        "docs/section.md": "unscheduled",
    }
    section = next(d for d in json.loads(listed.out)["documents"] if d["path"] == "docs/section.md")
    assert (section["title"], section["problems"], section["due"]) == ("A section", [], None)
    assert json.loads(listed.out)["summary"]["documents"] == 4
    text = run(*AS_OF, "--fail-on", "never", prog="check-reviews")
    assert text.out.splitlines()[0] == (
        "Review status on 2026-05-01 (UTC): 3 documents: 1 overdue, 0 due soon, 0 ok, 0 exempt, "
        "2 invalid; 4 unscheduled"
    )
    assert "README" not in text.out
    # A state selection without unscheduled neither lists nor counts them.
    overdue = run(*AS_OF, "--format", "json", "--state", "overdue", prog="check-reviews")
    assert json.loads(overdue.out)["summary"]["unscheduled"] == 0


def test_validate_leaves_unscheduled_files_out_and_counts_them(library: Path, run: Any) -> None:
    result = run("validate", *AS_OF, "--format", "json")
    data = json.loads(result.out)
    assert [f["path"] for f in data["files"]] == [
        "docs/bad-date.md",
        "docs/broken-yaml.md",
        "docs/late.md",
    ]
    assert data["summary"]["unscheduled"] == 4
    text = run("validate", *AS_OF)
    assert text.out.splitlines()[-1].endswith("; 4 unscheduled")


def test_scope_all_is_todays_behaviour(library: Path, run: Any) -> None:
    config = library / "review-scheduler.toml"
    config.write_text(config.read_text().replace('scope = "declared"\n', ""))
    result = run(*AS_OF, "--format", "json", "--fail-on", "never", prog="check-reviews")
    data = json.loads(result.out)
    assert "scope" not in data and "unscheduled" not in data["summary"]
    states = _paths_and_states(result.out)
    assert states["docs/README.md"] == "invalid" and states["docs/section.md"] == "invalid"
    assert len(states) == 7
    assert "unscheduled" not in run("validate", *AS_OF, "--format", "json").out


def test_govuk_corpus_with_the_declared_example(
    run: Any, monkeypatch: pytest.MonkeyPatch, store_in_tmp: Path
) -> None:
    """The tech-docs example schedules pages with last_reviewed_on; the README, the section
    index page and the ERB partial of the corpus are unscheduled. With scope "all" they are the
    invalid pages a new user met."""
    monkeypatch.chdir(REPO / "tests" / "corpora" / "govuk")
    args = ("--as-of", "2026-11-27", "--format", "json", "--fail-on", "never")
    listed = run(*args, "--state", "unscheduled", prog="check-reviews")
    assert sorted(_paths_and_states(listed.out)) == [
        "source/documentation/README.md",
        "source/documentation/manual/index.html.md.erb",
        "source/partials/_links.html.md.erb",
    ]
    monkeypatch.setenv("SCHEDULER_CONTENT__SCOPE", "all")
    every = _paths_and_states(run(*args, prog="check-reviews").out)
    assert [every[p] for p in sorted(_paths_and_states(listed.out))] == ["invalid"] * 3


def test_the_scheduling_fields_come_from_the_registry() -> None:
    """Any date field of the registry (the last review, a due date) makes a document
    scheduled: the check keys off the registry, not a fixed name."""
    assert "last_reviewed" in SCHEDULING
    assert all(name in {f.name for f in FIELDS} for name in SCHEDULING)
    assert "review_frequency" not in SCHEDULING and "title" not in SCHEDULING


def test_whether_a_document_declares_survives_the_parse_cache() -> None:
    decoder = FactsDecoder()
    for declared in (True, False):
        facts = DocumentFacts(title="t", declared=declared)
        assert decoder.facts(encode_facts(facts), "p.md").declared is declared
