"""Every output format of the freshness report, asserted exactly, through the real command."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import astuple
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.render import RenderOptions
from scheduler.render.check import CHECK_FORMATS, document_json
from scheduler.results import CheckResult, DocumentReport, Problem, Severity, State

from .conftest import frontmatter, write_doc

CONFIG = """\
[content]
root = "content"
[routing]
default = ["team@example.org"]
[[routing.rules]]
paths = ["guides/**"]
editors = ["guides@example.org", "team@example.org"]
"""


@pytest.fixture
def corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_doc(tmp_path / "config" / "scheduler.toml", CONFIG)
    docs = {
        "overdue.md": frontmatter(
            title="Overdue page", lastReviewed="2026-01-15", owner="a@example.org"
        ),
        "guides/soon.md": frontmatter(
            title="'Chemo | side effects <b>'", lastReviewed="2026-02-20"
        ),
        "ok.md": frontmatter(
            title="Fine page", lastReviewed="2026-04-01", reviewFrequency="annually"
        ),
        "draft.md": frontmatter(title="Draft page", status="draft", lastReviewed="2025-01-01"),
        "broken.md": frontmatter(title="Broken, page", lastReviewed="2026-02-30", url=None),
    }
    for name, text in docs.items():
        write_doc(tmp_path / "content" / name, text)
    monkeypatch.chdir(tmp_path)
    return tmp_path


TEXT = """\
Review status on 2026-05-01 (UTC): 5 documents: 1 overdue, 1 due soon, 1 ok, 1 exempt, 1 invalid

 State      Due          Days   Title                      Path                     Editors
 ───────────────────────────────────────────────────────────────────────────────────────────────────────────────────────
 invalid    -                   Broken, page               content/broken.md        team@example.org
 overdue    2026-04-15    -16   Overdue page               content/overdue.md       a@example.org
 due soon   2026-05-20     19   Chemo | side effects <b>   content/guides/soon.md   guides@example.org, team@example.org
 ok         2027-04-01    335   Fine page                  content/ok.md            team@example.org
 exempt     2025-04-01   -395   Draft page                 content/draft.md         team@example.org

Problems:
  content/broken.md:1: warning: url: is missing (add 'url: https://...' to the frontmatter)
  content/broken.md:3: error: lastReviewed: '2026-02-30' is not a real date (use YYYY-MM-DD)
"""  # noqa: E501

JSON = """\
{"schema_version": 1, "as_of": "2026-05-01", "timezone": "UTC", "due_soon_days": 30, "summary": {"documents": 5, "overdue": 1, "due_soon": 1, "ok": 1, "exempt": 1, "invalid": 1}, "documents": [
  {"path": "content/broken.md", "title": "Broken, page", "state": "invalid", "status": "active", "last_reviewed": null, "review_frequency": "quarterly", "due": null, "days_until_due": null, "editors": ["team@example.org"], "problems": [{"severity": "warning", "field": "url", "line": 1, "message": "is missing", "hint": "add 'url: https://...' to the frontmatter", "code": "RS202", "rule": "missing-recommended", "column": null}, {"severity": "error", "field": "lastReviewed", "line": 3, "message": "'2026-02-30' is not a real date", "hint": "use YYYY-MM-DD", "code": "RS211", "rule": "invalid-last-reviewed", "column": null}]},
  {"path": "content/overdue.md", "title": "Overdue page", "state": "overdue", "status": "active", "last_reviewed": "2026-01-15", "review_frequency": "quarterly", "due": "2026-04-15", "days_until_due": -16, "editors": ["a@example.org"], "problems": []},
  {"path": "content/guides/soon.md", "title": "Chemo | side effects <b>", "state": "due_soon", "status": "active", "last_reviewed": "2026-02-20", "review_frequency": "quarterly", "due": "2026-05-20", "days_until_due": 19, "editors": ["guides@example.org", "team@example.org"], "problems": []},
  {"path": "content/ok.md", "title": "Fine page", "state": "ok", "status": "active", "last_reviewed": "2026-04-01", "review_frequency": "annually", "due": "2027-04-01", "days_until_due": 335, "editors": ["team@example.org"], "problems": []},
  {"path": "content/draft.md", "title": "Draft page", "state": "exempt", "status": "draft", "last_reviewed": "2025-01-01", "review_frequency": "quarterly", "due": "2025-04-01", "days_until_due": -395, "editors": ["team@example.org"], "problems": []}
]}
"""  # noqa: E501

MARKDOWN = """\
**Review status on 2026-05-01 (UTC): 5 documents: 1 overdue, 1 due soon, 1 ok, 1 exempt, 1 invalid**

| State | Due | Days | Title | Path | Editors |
|---|---|---:|---|---|---|
| invalid |  |  | Broken, page | content/broken.md | team@example.org |
| overdue | 2026-04-15 | -16 | Overdue page | content/overdue.md | a@example.org |
| due soon | 2026-05-20 | 19 | Chemo \\| side effects &lt;b&gt; | content/guides/soon.md | guides@example.org, team@example.org |
| ok | 2027-04-01 | 335 | Fine page | content/ok.md | team@example.org |
| exempt | 2025-04-01 | -395 | Draft page | content/draft.md | team@example.org |

**Problems**

- content/broken.md:1: warning: url: is missing (add 'url: https://...' to the frontmatter)
- content/broken.md:3: error: lastReviewed: '2026-02-30' is not a real date (use YYYY-MM-DD)
"""  # noqa: E501

CSV = """\
path,title,state,status,last_reviewed,review_frequency,due,days_until_due,editors,errors,warnings,snoozed_until,snooze_reason,rubber_stamped
content/broken.md,"Broken, page",invalid,active,,quarterly,,,team@example.org,1,1,,,
content/overdue.md,Overdue page,overdue,active,2026-01-15,quarterly,2026-04-15,-16,a@example.org,0,0,,,
content/guides/soon.md,Chemo | side effects <b>,due_soon,active,2026-02-20,quarterly,2026-05-20,19,guides@example.org;team@example.org,0,0,,,
content/ok.md,Fine page,ok,active,2026-04-01,annually,2027-04-01,335,team@example.org,0,0,,,
content/draft.md,Draft page,exempt,draft,2025-01-01,quarterly,2025-04-01,-395,team@example.org,0,0,,,
"""  # noqa: E501

GITHUB = """\
::error file=content/broken.md,line=3,title=Invalid metadata::lastReviewed: '2026-02-30' is not a real date (use YYYY-MM-DD)
::error file=content/overdue.md,line=3,title=Review overdue::Overdue page was due for review on 2026-04-15 (16 days ago); editors: a@example.org
::notice file=content/guides/soon.md,line=3,title=Review due soon::Chemo | side effects <b> is due for review on 2026-05-20 (in 19 days); editors: guides@example.org, team@example.org
Review status on 2026-05-01 (UTC): 5 documents: 1 overdue, 1 due soon, 1 ok, 1 exempt, 1 invalid
"""  # noqa: E501


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [("text", TEXT), ("json", JSON), ("markdown", MARKDOWN), ("csv", CSV), ("github", GITHUB)],
)
def test_every_format_exactly(corpus: Path, run: Any, fmt: str, expected: str) -> None:
    result = run("--as-of", "2026-05-01", "--format", fmt, prog="check-reviews")
    assert result.out == expected
    assert result.err == ""
    assert result.code == 1  # an overdue and an invalid document


def test_text_is_the_default_and_review_scheduler_check_is_the_same(corpus: Path, run: Any) -> None:
    assert run("--as-of", "2026-05-01", prog="check-reviews").out == TEXT
    assert run("check", "--as-of", "2026-05-01").out == TEXT


def test_json_parses_and_has_the_documented_shape(corpus: Path, run: Any) -> None:
    data = json.loads(run("--as-of", "2026-05-01", "--format", "json", prog="check-reviews").out)
    assert list(data) == [
        "schema_version",
        "as_of",
        "timezone",
        "due_soon_days",
        "summary",
        "documents",
    ]
    assert list(data["summary"]) == ["documents", "overdue", "due_soon", "ok", "exempt", "invalid"]
    for doc in data["documents"]:
        assert set(doc) >= {
            "path",
            "title",
            "state",
            "status",
            "last_reviewed",
            "review_frequency",
            "due",
            "days_until_due",
            "editors",
            "problems",
        }
        for problem in doc["problems"]:
            assert set(problem) >= {"severity", "field", "line", "message"}


def test_csv_parses_and_neutralises_formulas(corpus: Path, run: Any) -> None:
    write_doc(
        corpus / "content" / "formula.md",
        frontmatter(title="'=HYPERLINK(\"http://x\")'", lastReviewed="2026-04-20"),
    )
    out = run("--as-of", "2026-05-01", "--format", "csv", prog="check-reviews").out
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 6
    formula = next(r for r in rows if r["path"] == "content/formula.md")
    assert formula["title"] == '\'=HYPERLINK("http://x")'


def test_github_annotations_escape_newlines_and_separators(corpus: Path, run: Any) -> None:
    """A line break in a title is shown as ``\\n``, as every control character is."""
    write_doc(
        corpus / "content" / "odd,name:x.md",
        frontmatter(title='"50% off\\nnow"', lastReviewed="2026-01-01"),
    )
    out = run(
        "--as-of", "2026-05-01", "--format", "github", "content/odd,name:x.md", prog="check-reviews"
    ).out
    assert out.splitlines()[0] == (
        "::error file=content/odd%2Cname%3Ax.md,line=3,title=Review overdue::50%25 off\\nnow was "
        "due for review on 2026-04-01 (30 days ago); editors: team@example.org"
    )


@pytest.mark.parametrize(
    ("args", "paths", "code"),
    [
        (["--state", "overdue"], ["content/overdue.md"], 1),
        (["--state", "due_soon,ok"], ["content/guides/soon.md", "content/ok.md"], 0),
        (["--state", "due-soon"], ["content/guides/soon.md"], 0),
        (["--editor", "GUIDES@example.org"], ["content/guides/soon.md"], 0),
        (
            ["--editor", "a@example.org", "--editor", "guides@example.org"],
            ["content/overdue.md", "content/guides/soon.md"],
            1,
        ),
        (["--fail-on", "invalid", "--state", "overdue"], ["content/overdue.md"], 0),
        (["--fail-on", "invalid"], None, 1),
        (["--fail-on", "never"], None, 0),
        (["content/ok.md", "content/draft.md"], ["content/ok.md", "content/draft.md"], 0),
        (["content/guides"], ["content/guides/soon.md"], 0),
    ],
)
def test_filters_and_exit_codes(
    corpus: Path, run: Any, args: list[str], paths: list[str] | None, code: int
) -> None:
    result = run("--as-of", "2026-05-01", "--format", "json", *args, prog="check-reviews")
    data = json.loads(result.out)
    if paths is not None:
        assert [d["path"] for d in data["documents"]] == paths
        assert data["summary"]["documents"] == len(paths)
    assert result.code == code


def test_as_of_runs_are_reproducible_byte_for_byte(corpus: Path, run: Any) -> None:
    for fmt in ("text", "json", "markdown", "csv", "github"):
        first = run("--as-of", "2026-05-01", "--format", fmt, prog="check-reviews").out
        second = run("--as-of", "2026-05-01", "--format", fmt, prog="check-reviews").out
        assert first == second


def test_unowned_documents_are_listed(corpus: Path, run: Any) -> None:
    write_doc(corpus / "config" / "scheduler.toml", '[content]\nroot = "content"\n')
    out = run(
        "--as-of", "2026-05-01", "content/ok.md", "content/draft.md", prog="check-reviews"
    ).out
    assert " ok       2027-04-01    335   Fine page    content/ok.md      (nobody)" in out
    # exempt documents need nobody
    assert out.endswith(
        "Problems:\n  content/ok.md: warning: no editor is responsible for this document (add an "
        "'owner' field, a [[routing.rules]] entry, or [routing] default)\n"
    )


def test_colour_only_on_a_terminal(corpus: Path, run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from scheduler.commands import options as cli
    from scheduler.render.check import render_check_text
    from scheduler.usecases.check import check

    assert "\x1b[" not in run("--as-of", "2026-05-01", prog="check-reviews").out  # a pipe
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    options = cli.output_options()
    assert options.color and options.width
    settings = cli.settings_for(None)
    result = check(settings, [], corpus, cli.today_for(settings, None))
    coloured = "".join(render_check_text(result, options))
    assert "\x1b[1;31m" in coloured  # overdue rows in bold red
    monkeypatch.setenv("NO_COLOR", "1")
    assert not cli.output_options().color


# --------------------------------------------------------------------------- large reports

_texts = st.text(max_size=30) | st.none()
_problems = st.builds(
    Problem,
    path=st.text(max_size=20),
    line=st.integers(1, 10_000) | st.none(),
    field=_texts,
    severity=st.sampled_from(Severity),
    message=st.text(max_size=40),
    hint=_texts,
)
_reports = st.builds(
    DocumentReport,
    path=st.text(min_size=1, max_size=40),
    title=_texts,
    state=st.sampled_from(State),
    status=_texts,
    last_reviewed=st.dates() | st.none(),
    review_frequency=_texts,
    due=st.dates() | st.none(),
    days_until_due=st.integers(-100_000, 100_000) | st.none(),
    editors=st.tuples(st.text(max_size=20)) | st.tuples(),
    problems=st.lists(_problems, max_size=3).map(tuple),
    line=st.integers(1, 99) | st.none(),
    url=_texts,
)


@given(_reports)
def test_each_document_is_written_as_the_json_encoder_would(doc: DocumentReport) -> None:
    assert document_json(doc) == json.JSONEncoder(ensure_ascii=False).encode(doc.to_json())


def _report_of(count: int) -> CheckResult:
    doc = DocumentReport(
        "a.md",
        "A “title”",
        State.OK,
        "active",
        date(2026, 1, 1),
        "quarterly",
        date(2026, 4, 1),
        10,
        ("a@example.org",),
        (),
        3,
        None,
    )
    documents = [DocumentReport(f"p{i}.md", *astuple(doc)[1:]) for i in range(count)]
    return CheckResult(date(2026, 2, 1), "UTC", 30, documents)


@pytest.mark.parametrize("count", [0, 1, 499, 500, 1201])
def test_large_reports_are_written_in_pieces_that_make_the_whole(count: int) -> None:
    result = _report_of(count)
    pieces = list(CHECK_FORMATS.stream("json", result, RenderOptions()))
    assert (len(pieces) > 1) == (count >= 499)  # the head and 499 documents make the first
    assert "".join(pieces) == CHECK_FORMATS.render("json", result, RenderOptions())
    data = json.loads("".join(pieces))
    assert [d["path"] for d in data["documents"]] == [f"p{i}.md" for i in range(count)]
    assert data["summary"]["documents"] == count
    pieces = list(CHECK_FORMATS.stream("csv", result, RenderOptions()))
    assert len(pieces) == count // 500 + 1
    assert len(list(csv.reader(io.StringIO("".join(pieces))))) == count + 1
    if count <= 1:  # the others come whole
        assert list(CHECK_FORMATS.stream("text", result, RenderOptions())) == [
            CHECK_FORMATS.render("text", result, RenderOptions())
        ]
