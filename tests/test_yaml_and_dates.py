"""YAML tags, line breaks and the nesting limit: each is an ordinary problem with its line."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from scheduler.config import Settings
from scheduler.content.facts import establish
from scheduler.content.loader import SourceFile, load_document, parse_frontmatter
from scheduler.content.metadata import validate
from scheduler.results import Problem

from .conftest import frontmatter, write_doc

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
    write_doc(tmp_path / "config" / "scheduler.toml", '[content]\nroot = "docs"\n')
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
