"""YAML tags, line breaks, the nesting limit, dates at the end of the calendar, the as-of date and
digits other than 0-9: each is an ordinary problem with its line, or a usage error."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from scheduler.config import Settings
from scheduler.content.facts import establish
from scheduler.content.loader import SourceFile, load_document, parse_frontmatter
from scheduler.content.metadata import validate
from scheduler.content.reading import ReadingSettings, _Context
from scheduler.results import Problem

from .conftest import REPO, SEED, frontmatter, write_doc
from .test_golden import corpus_gen
from .test_rules import HAZARDS

SETTINGS = Settings()


def read(tmp_path: Path, text: str, name: str = "doc.md") -> tuple[Problem, ...]:
    """The problems of the document's facts: reading and validating it, as a run would."""
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    stat = path.stat()
    file = SourceFile(str(path), name, name, stat.st_size, stat.st_mtime_ns)
    loaded = load_document(file, 1 << 20)
    validated = validate(loaded, SETTINGS.metadata, SETTINGS.fields)
    return establish(validated, SETTINGS.fields).problems


def shown(problems: tuple[Problem, ...] | list[Problem]) -> list[str]:
    return [f"{p.line}:{p.column}: {p.code} {p.field}: {p.message}" for p in problems]


# --------------------------------------------------------------------------- explicit tags


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("!!seq abc", "YAML tag !!seq is for a list, not a single value"),
        ("!!timestamp ''", "'' is not a date, as YAML tag !!timestamp requires"),
        ("!!bool maybe", "'maybe' is not a yes/no value, as YAML tag !!bool requires"),
        ("!!int ''", "'' is not a whole number, as YAML tag !!int requires"),
        ("!!float ''", "'' is not a number, as YAML tag !!float requires"),
        ("!!int '-'", "'-' is not a whole number, as YAML tag !!int requires"),
        ("!!null text", "'text' is not empty (null), as YAML tag !!null requires"),
        ("!!binary 'é'", "'é' is not base64 text, as YAML tag !!binary requires"),
        ("!!str [a, b]", "YAML tag !!str is for a single value, not a list"),
        ("!!seq {a: b}", "YAML tag !!seq is for a list, not a mapping"),
        ("!!map abc", "YAML tag !!map is for a mapping, not a single value"),
        ("[a, !!bool maybe]", "'maybe' is not a yes/no value, as YAML tag !!bool requires"),
        ("{a: !!int x}", "'x' is not a whole number, as YAML tag !!int requires"),
        ("!custom value", "YAML tag !custom is not supported in frontmatter"),
        (
            "!!python/name:os.system x",
            "YAML tag !!python/name:os.system is not supported in frontmatter",
        ),
        (
            "!<tag:example.org,2026:x> y",
            "YAML tag !<tag:example.org,2026:x> is not supported in frontmatter",
        ),
    ],
)
def test_a_tag_is_a_problem_on_its_line_and_others_are_kept(
    tmp_path: Path, value: str, message: str
) -> None:
    text = frontmatter(tags=value, title=None, citation="A\ncitation: B")
    line = text.splitlines().index(f"tags: {value}") + 1
    problems = read(tmp_path, text)
    tag = next(p for p in problems if p.code == "RS130")
    assert (tag.line, tag.field, tag.message) == (line, "tags", message)
    assert tag.column is not None and text.splitlines()[line - 1][tag.column - 1] == "!"
    # The document's other problems are all there.
    assert {p.code for p in problems} == {"RS130", "RS115", "RS201"}


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("lastReviewed", "!!str 2026-01-15", "2026-01-15"),
        ("lastReviewed", "!!timestamp 2026-01-15", date(2026, 1, 15)),
        ("reviewFrequency", "! quarterly", "quarterly"),  # the non-specific tag: text
        ("reviewFrequency", "!!str quarterly", "quarterly"),
        ("tags", "!!seq [a, !!str b]", ["a", "b"]),
    ],
)
def test_a_tag_that_fits_is_read(tmp_path: Path, key: str, value: str, expected: object) -> None:
    assert read(tmp_path, frontmatter(**{key: value})) == ()
    read_, problems = parse_frontmatter(f"{key}: {value}\n", "doc.md")
    assert problems == [] and read_ is not None and read_.values == {key: expected}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"source": "!!binary aGVsbG8="}, "8: RS217 source: expected text, got binary data"),
        (
            {"tags": "!!omap [a: x]"},
            "10: RS222 tags: entry 1 must be text, got a key: value pair",
        ),
    ],
)
def test_values_built_from_tags_are_named_for_editors(
    tmp_path: Path, fields: dict[str, str], expected: str
) -> None:
    problems = read(tmp_path, frontmatter(**fields))
    assert [f"{p.line}: {p.code} {p.field}: {p.message}" for p in problems] == [expected]


def test_a_tagged_key_is_checked_too(tmp_path: Path) -> None:
    problems = read(tmp_path, frontmatter(source="x\n!!int count: 3"))
    assert shown(problems) == [
        "9:1: RS130 count: 'count' is not a whole number, as YAML tag !!int requires",
        "9:None: RS204 count: unknown key",
    ]


def test_a_value_that_cannot_be_read_is_not_also_missing(tmp_path: Path) -> None:
    problems = read(tmp_path, frontmatter(lastReviewed="!!timestamp ''"))
    assert [p.code for p in problems] == ["RS130"]


def test_plain_equals_and_merge_signs_are_text(tmp_path: Path) -> None:
    frontmatter_, problems = parse_frontmatter("a: =\nb: <<\nc: {<<: x}\n", "doc.md")
    assert problems == []
    assert frontmatter_ is not None
    assert frontmatter_.values == {"a": "=", "b": "<<", "c": {"<<": "x"}}


def test_an_explicitly_tagged_value_gets_no_hint_to_quote_it(tmp_path: Path) -> None:
    doc = parse_frontmatter("version: !!int 5\ntitle: 5\n", "doc.md")[0]
    assert doc is not None and doc.raw == {"title": "5"}


def test_tags_in_validate_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Any
) -> None:
    write_doc(tmp_path / "docs" / "tagged.md", frontmatter(tags="!!seq abc", url=None))
    config = '[content]\nroot = "docs"\n[routing]\ndefault = ["team@example.org"]\n'
    write_doc(tmp_path / "config" / "scheduler.toml", config)
    monkeypatch.chdir(tmp_path)
    result = run("validate", "--as-of", "2026-05-01")
    assert (result.code, result.err) == (1, "")
    assert result.out == (
        "docs/tagged.md:1: warning: url: is missing (add 'url: https://...' to the "
        "frontmatter)\n"
        "docs/tagged.md:9: error: tags: YAML tag !!seq is for a list, not a single value "
        "(remove the tag)\n"
        "1 file checked: 0 valid, 1 with errors; 1 error, 1 warning\n"
    )


# --------------------------------------------------------------------------- line breaks

BREAKS = {"LF": "\n", "CRLF": "\r\n", "CR": "\r", "NEL": "\x85", "LS": "\u2028", "PS": "\u2029"}
EDITOR_BREAKS = {"LF", "CRLF", "CR"}  # what text editors show as the end of a line


@pytest.mark.parametrize("name", sorted(BREAKS))
def test_lines_are_the_lines_an_editor_shows(tmp_path: Path, name: str) -> None:
    # The first metadata line ends in the break under test; every other line ends in LF.
    text = f"---\nsource: A{BREAKS[name]}colour: blue\nstatus: active\nstatus: draft\n---\n"
    doc = load_document(_file(tmp_path, text), 1 << 20)
    assert doc.frontmatter is not None
    # YAML reads each of these breaks as the end of a line (so 'colour' is a key of its own).
    assert list(doc.frontmatter.values) == ["source", "colour", "status"]
    shift = 0 if name in EDITOR_BREAKS else 1  # the editor shows colour on source's line
    assert doc.frontmatter.lines == {"source": 2, "colour": 3 - shift, "status": 5 - shift}
    assert shown(doc.problems) == [
        f"{5 - shift}:1: RS115 status: duplicate key (first on line {4 - shift}); "
        "YAML would keep only this one"
    ]


@pytest.mark.parametrize("name", sorted(BREAKS))
def test_columns_count_from_the_line_an_editor_shows(tmp_path: Path, name: str) -> None:
    text = f"---\nsource: A{BREAKS[name]}tags: !!seq x\n---\n"
    problem = load_document(_file(tmp_path, text), 1 << 20).problems[0]
    editor_line = text.replace(BREAKS[name], "\n" if name in EDITOR_BREAKS else BREAKS[name])
    line = editor_line.split("\n")[problem.line - 1 if problem.line else 0]
    assert problem.column is not None and line[problem.column - 1 :].startswith("!!seq")


@pytest.mark.parametrize("name", sorted(BREAKS))
def test_syntax_and_reader_errors_give_editor_lines(tmp_path: Path, name: str) -> None:
    shift = 0 if name in EDITOR_BREAKS else 1
    syntax = f"---\nsource: é{BREAKS[name]}a: 1\nurl: [unclosed\nb: 2\n---\n"
    problem = load_document(_file(tmp_path, syntax, "syntax.md"), 1 << 20).problems[0]
    assert (problem.code, problem.line) == ("RS112", 5 - shift)
    # The reader reports a byte offset: non-ASCII text before it must not shift the line.
    control = f"---\ntitle: ééé{BREAKS[name]}a: 1\nsource: bell\x07\n---\n"
    problem = load_document(_file(tmp_path, control, "control.md"), 1 << 20).problems[0]
    assert (problem.message, problem.line) == (
        "YAML error: control characters are not allowed",
        4 - shift,
    )


def test_bytes_that_are_not_utf8_are_found_on_editor_lines(tmp_path: Path) -> None:
    path = tmp_path / "doc.md"
    path.write_bytes(b"---\ntitle: x\rsource: y\r\nurl: \xff\n---\n")
    stat = path.stat()
    doc = load_document(SourceFile(str(path), "doc.md", "doc.md", stat.st_size, 0), 1 << 20)
    assert [(p.line, p.message) for p in doc.problems] == [
        (4, "frontmatter contains bytes that are not UTF-8")
    ]


def _file(tmp_path: Path, text: str, name: str = "doc.md") -> SourceFile:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    stat = path.stat()
    return SourceFile(str(path), name, name, stat.st_size, stat.st_mtime_ns)


# --------------------------------------------------------------------------- nesting


def _nested(shape: str, depth: int, eol: str) -> str:
    """Frontmatter nesting ``depth`` collections deep (the top mapping is the first)."""
    inner = depth - 1
    if shape == "flow-lists":
        return "x: " + "[" * inner + "]" * inner + eol
    if shape == "flow-maps":
        return "x: " + "{a: " * inner + "}" * inner + eol
    if shape == "block-lists":
        return "x:" + eol + "- " * inner + "end" + eol
    if shape == "indented-maps":
        return "".join(" " * level + f"k{level}:" + eol for level in range(depth)) + (
            " " * depth + "end" + eol
        )
    assert shape == "mixed"  # indented maps holding compact lists, on one line at the end
    half = depth // 2
    maps = "".join(" " * level + f"k{level}:" + eol for level in range(half))
    return maps + " " * half + "- " * (depth - half) + "end" + eol


@pytest.mark.parametrize("anchor_free", [True, False], ids=["plain", "with-ampersand"])
@pytest.mark.parametrize("eol", sorted(BREAKS))
@pytest.mark.parametrize(
    "shape", ["flow-lists", "flow-maps", "block-lists", "indented-maps", "mixed"]
)
def test_one_nesting_limit_for_every_text(shape: str, eol: str, anchor_free: bool) -> None:
    # A "&" in a comment, or another line break, once decided whether the limit applied.
    prefix = "" if anchor_free else f"# Q&A{BREAKS[eol]}"
    deepest, too_deep = (prefix + _nested(shape, depth, BREAKS[eol]) for depth in (64, 65))
    frontmatter_, problems = parse_frontmatter(deepest, "doc.md")
    assert problems == [] and frontmatter_ is not None
    frontmatter_, problems = parse_frontmatter(too_deep, "doc.md")
    assert frontmatter_ is None
    assert [(p.code, p.message) for p in problems] in (
        [("RS113", "frontmatter is nested more than 64 levels deep")],
        [("RS112", "YAML syntax error: exceeded maximum nesting depth")],  # newer libyaml
    )


# --------------------------------------------------------------------------- due dates


@pytest.mark.parametrize(
    ("last", "frequency", "sum_"),
    [
        ("9999-06-01", "yearly", "9999-06-01 plus 1 year"),
        ("9999-12-31", "1 day", "9999-12-31 plus 1 day"),
        ("9995-03-01", "P10Y", "9995-03-01 plus 10 years"),
    ],
)
def test_a_due_date_past_the_calendar_is_a_problem(
    tmp_path: Path, last: str, frequency: str, sum_: str
) -> None:
    problems = read(tmp_path, frontmatter(lastReviewed=last, reviewFrequency=frequency))
    assert shown(problems) == [
        f"3:None: RS206 lastReviewed: {sum_} falls after 9999-12-31, so no due date can be set"
    ]


def test_the_last_due_date_there_is_is_fine(tmp_path: Path) -> None:
    assert read(tmp_path, frontmatter(lastReviewed="9999-11-30", reviewFrequency="monthly")) == ()


# --------------------------------------------------------------------------- --as-of


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("20260601", "'20260601' is not a date in the form YYYY-MM-DD (use YYYY-MM-DD)"),
        ("2026-W22-1", "'2026-W22-1' is not a date in the form YYYY-MM-DD (use YYYY-MM-DD)"),
        ("2026-06-01T00:00", "'2026-06-01T00:00' is not a date in the form YYYY-MM-DD"),
        (" 2026-06-01", "' 2026-06-01' is not a date in the form YYYY-MM-DD"),
        ("2026-6-1", "'2026-6-1' is not a date in the form YYYY-MM-DD"),
        ("2026-02-29", "'2026-02-29' is not a real date (use YYYY-MM-DD)"),
        (
            "２０２６-06-01",
            "'２０２６-06-01' contains '２' (U+FF12 FULLWIDTH DIGIT TWO), not one of the digits "
            "0-9 (write '2026-06-01')",
        ),
    ],
)
@pytest.mark.parametrize("command", ["validate", "check", "send", "preview"])
def test_as_of_takes_yyyy_mm_dd_only(
    command: str,
    value: str,
    message: str,
    run: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run(command, "--as-of", value)
    assert result.code == 2
    assert f"Invalid value for '--as-of': {message}" in result.err
    assert result.out == ""


def test_as_of_accepts_a_date(run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_doc(tmp_path / "seeds" / "page.md", SEED.read_text(encoding="utf-8"))
    monkeypatch.chdir(tmp_path)
    result = run("validate", "--as-of", "2026-02-28", "--format", "json")
    assert result.code == 0 and json.loads(result.out)["as_of"] == "2026-02-28"


# --------------------------------------------------------------------------- digits


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"reviewFrequency": "６ months"},
            "4: RS212 reviewFrequency: '６ months' contains '６' (U+FF16 FULLWIDTH DIGIT SIX), "
            "not one of the digits 0-9 (write '6 months')",
        ),
        (
            {"reviewFrequency": "P٣M"},
            "4: RS212 reviewFrequency: 'P٣M' contains '٣' (U+0663 ARABIC-INDIC DIGIT THREE), "
            "not one of the digits 0-9 (write 'P3M')",
        ),
        (
            {"lastReviewed": "'２０２６-０１-１５'"},
            "3: RS211 lastReviewed: '２０２６-０１-１５' contains '２' (U+FF12 FULLWIDTH DIGIT "
            "TWO), not one of the digits 0-9 (write '2026-01-15')",
        ),
        (
            {"lastReviewed": "2026-01-1５"},
            "3: RS211 lastReviewed: '2026-01-1５' contains '５' (U+FF15 FULLWIDTH DIGIT FIVE), "
            "not one of the digits 0-9 (write '2026-01-15')",
        ),
        (
            {"reviewFrequency": "every ² years"},
            "4: RS212 reviewFrequency: 'every ² years' contains '²' (U+00B2 SUPERSCRIPT TWO), "
            "not one of the digits 0-9 (write 'every 2 years')",
        ),
        (
            {"language": "es-４１９"},
            "9: RS216 language: 'es-４１９' contains '４' (U+FF14 FULLWIDTH DIGIT FOUR), not one "
            "of the digits 0-9 (write 'es-419')",
        ),
    ],
)
def test_digits_other_than_0_to_9_are_refused_by_name(
    tmp_path: Path, fields: dict[str, str], expected: str
) -> None:
    problems = read(tmp_path, frontmatter(**fields))
    assert [f"{p.line}: {p.code} {p.describe()}" for p in problems] == [expected]


def test_ascii_forms_of_the_same_values_are_read(tmp_path: Path) -> None:
    fields = {"reviewFrequency": "6 months", "lastReviewed": "'2026-01-15'", "language": "es-419"}
    assert read(tmp_path, frontmatter(**fields)) == ()


# --------------------------------------------------------------------------- agreement

HAZARD_LIBRARY = {
    **HAZARDS,
    "seq-tag.md": frontmatter(tags="!!seq abc"),
    "timestamp-tag.md": frontmatter(lastReviewed="!!timestamp ''"),
    "bool-tag.md": frontmatter(source="!!bool maybe"),
    "int-tag.md": frontmatter(version="!!int ''"),
    "past-the-calendar.md": frontmatter(lastReviewed="9999-06-01", reviewFrequency="yearly"),
    "last-day.md": frontmatter(lastReviewed="9999-12-24", reviewFrequency="weekly"),
    "long-before.md": frontmatter(lastReviewed="0001-01-01"),
    "fullwidth.md": frontmatter(reviewFrequency="６ months"),
    "fullwidth-date.md": frontmatter(lastReviewed="'２０２６-01-15'"),
    "separator.md": frontmatter(title="A\u2028status: draft"),
    "deep.md": frontmatter(tags="[" * 80 + "]" * 80),
    "archived-far.md": frontmatter(status="archived", lastReviewed="9999-06-01"),
}


def _library(name: str, tmp_path: Path) -> tuple[Path, list[str]]:
    """A folder to run in and the arguments naming its config and documents."""
    if name == "govuk":
        # Its review-scheduler.toml is found there: a link to config/examples/govuk-tech-docs.toml.
        return REPO / "tests" / "corpora" / "govuk", []
    if name == "seed":
        return REPO, ["--config", str(REPO / "config" / "scheduler.toml"), "seeds"]
    if name == "generated":
        folder = corpus_gen().generate(tmp_path / "generated", 400, body="Body text.\n")
        return folder, ["--config", str(folder / "config" / "scheduler.toml")]
    assert name == "hazards"
    for file, text in HAZARD_LIBRARY.items():
        write_doc(tmp_path / "hazards" / "docs" / file, text)
    config = write_doc(tmp_path / "hazards" / "scheduler.toml", '[content]\nroot = "docs"\n')
    return tmp_path / "hazards", ["--config", str(config)]


@pytest.mark.parametrize("as_of", ["2026-11-27", "9999-07-01", "9999-12-31"])
@pytest.mark.parametrize("name", ["govuk", "seed", "generated", "hazards"])
def test_validate_and_check_reviews_agree_on_every_document(
    name: str,
    as_of: str,
    run: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    store_in_tmp: Path,
) -> None:
    folder, arguments = _library(name, tmp_path)
    monkeypatch.chdir(folder)
    common = ["--as-of", as_of, "--format", "json", "--no-cache", *arguments]
    validated = run("validate", *common)
    checked = run(*common, "--fail-on", "never", prog="check-reviews")
    assert validated.code in (0, 1) and checked.code == 0, validated.err + checked.err
    with_errors = {
        f["path"]
        for f in json.loads(validated.out)["files"]
        if any(p["severity"] == "error" for p in f["problems"])
    }
    states = {d["path"]: d["state"] for d in json.loads(checked.out)["documents"]}
    assert states and set(states) >= with_errors
    invalid = {path for path, state in states.items() if state == "invalid"}
    # Exempt documents (a status that needs no review) are exempt whatever their errors.
    assert invalid == with_errors - {path for path, s in states.items() if s == "exempt"}
    assert all(
        p["code"] != "RS100" for f in json.loads(validated.out)["files"] for p in f["problems"]
    )
    if name == "hazards":
        assert {"docs/past-the-calendar.md", "docs/seq-tag.md", "docs/deep.md"} <= invalid
        # Due on the last day there is: a due date like any other.
        assert states["docs/last-day.md"] == ("due_soon" if as_of == "9999-12-31" else "invalid")


def test_no_yaml_reaches_the_safety_net_through_a_worker_context(tmp_path: Path) -> None:
    context = _Context(ReadingSettings.of(SETTINGS))
    for name, text in HAZARD_LIBRARY.items():
        outcome = context.read(_file(tmp_path, text, name), None)
        assert outcome.facts is not None and "RS100" not in outcome.facts, name
