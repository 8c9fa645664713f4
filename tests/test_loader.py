from __future__ import annotations

import json
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.config import Settings
from scheduler.content.facts import FactsDecoder
from scheduler.content.fields import FIELDS
from scheduler.content.loader import (
    FM_BOUNDARY,
    Discovery,
    LoadedDocument,
    SourceFile,
    display_path,
    load_document,
    parse_frontmatter,
)
from scheduler.content.reading import ReadingSettings, _Context
from scheduler.content.yaml_block import MAX_DEPTH, _Loader, _needs_scan
from scheduler.results import Problem, Severity

from .conftest import GOOD_FRONTMATTER, SEED


def _source(path: Path, cwd: Path | None = None) -> SourceFile:
    stat = path.stat()
    shown = display_path(path, cwd or path.parent)
    return SourceFile(str(path), shown, shown, stat.st_size, stat.st_mtime_ns)


def load_bytes(
    tmp_path: Path, data: bytes, name: str = "doc.md", max_bytes: int = 1 << 20
) -> LoadedDocument:
    path = tmp_path / name
    path.write_bytes(data)
    return load_document(_source(path), max_bytes)


def only_problem(doc: LoadedDocument) -> Problem:
    assert len(doc.problems) == 1, doc.problems
    return doc.problems[0]


def test_seed_reads_cleanly_with_line_numbers() -> None:
    doc = load_document(_source(SEED), 1 << 20)
    assert doc.problems == ()
    assert doc.frontmatter is not None
    assert doc.frontmatter.values["lastReviewed"] == "2025-12-30"
    assert doc.frontmatter.values["cancerTypes"] == [
        "metastatic cancer",
        "breast",
        "lung",
        "pancreatic",
        "liver",
    ]
    assert doc.frontmatter.lines == {
        "audienceLevel": 2,
        "cancerTypes": 3,
        "citation": 9,
        "language": 10,
        "lastReviewed": 11,
        "license": 12,
        "reviewFrequency": 13,
        "source": 14,
        "sourceType": 15,
        "status": 16,
        "tags": 17,
        "title": 19,
        "url": 20,
        "version": 21,
    }


@pytest.mark.parametrize(
    ("data", "line", "message"),
    [
        (b"", None, "is empty"),
        (b"  \n\n", None, "is empty"),
        (b"# Title\n\nNo metadata here.\n", 1, "has no frontmatter: the first line must be '---'"),
        (b"\n---\ntitle: x\n---\n", 1, "has no frontmatter: the first line must be '---'"),
        (b"---\ntitle: x\nstatus: active\n", 1, "frontmatter opened on line 1 is never closed"),
        (b"---", 1, "frontmatter opened on line 1 is never closed"),
        (b"---\n---\nbody\n", 1, "frontmatter is empty"),
        (b"---\n# only a comment\n---\n", 1, "frontmatter is empty"),
        (b"---\n- a\n- b\n---\n", 2, "frontmatter must be a mapping of keys to values, not a list"),
        (
            b"---\njust a sentence\n---\n",
            2,
            "frontmatter must be a mapping of keys to values, not a single value",
        ),
        (
            b"---\ntitle: x\nurl: [unclosed\nstatus: active\n---\n",
            4,
            "YAML syntax error: did not find expected ',' or ']'",
        ),
        (
            b"---\ntitle: x\n  bad: indent\n---\n",
            3,
            "YAML syntax error: mapping values are not allowed in this context",
        ),
        (
            b"---\ntitle: 'unterminated\n---\n",
            3,
            "YAML syntax error: found unexpected end of stream",
        ),
        (b"---\ntitle: \x07bell\n---\n", 2, "YAML error: control characters are not allowed"),
        (b"---\ntitle: caf\xe9\n---\n", 2, "frontmatter contains bytes that are not UTF-8"),
        (b"---\ntitle: a\x00b\n---\n", 2, "frontmatter contains a NUL byte"),
        (b"\xff\xfe-\x00-\x00-\x00\n\x00", None, "is not UTF-8 text"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", None, "is not UTF-8 text"),
        (
            b"---\nlinks: &a [x, y]\nmore: *a\n---\n",
            2,
            "YAML anchor &a is not allowed in frontmatter",
        ),
        (b"---\ntitle: x\nmore: *a\n---\n", 3, "YAML alias *a is not allowed in frontmatter"),
        (
            b"---\ntitle: !!python/object:os.system x\n---\n",
            2,
            "YAML tag !!python/object:os.system is not supported in frontmatter",
        ),
        (b"---\n[a]: x\n---\n", 2, "keys must be plain text"),
    ],
)
def test_hazards_are_reported_with_their_line(
    tmp_path: Path, data: bytes, line: int | None, message: str
) -> None:
    problem = only_problem(load_bytes(tmp_path, data))
    assert problem.severity is Severity.ERROR
    assert problem.line == line
    assert problem.message == message
    assert problem.path == "doc.md"


def test_duplicate_keys_are_errors_on_the_second_line(tmp_path: Path) -> None:
    doc = load_bytes(tmp_path, b"---\ntitle: One\nstatus: active\ntitle: Two\n---\n")
    problem = only_problem(doc)
    assert (problem.line, problem.field) == (4, "title")
    assert problem.message == "duplicate key (first on line 2); YAML would keep only this one"
    assert doc.frontmatter is not None and doc.frontmatter.values["title"] == "Two"


def test_every_duplicate_is_reported(tmp_path: Path) -> None:
    doc = load_bytes(tmp_path, b"---\na: 1\nb: 2\na: 3\nb: 4\na: 5\n---\n")
    assert [(p.line, p.field) for p in doc.problems] == [(4, "a"), (5, "b"), (6, "a")]


def test_bom_and_crlf_are_as_if_absent(tmp_path: Path) -> None:
    plain = load_bytes(tmp_path, GOOD_FRONTMATTER.encode(), "plain.md")
    crlf = GOOD_FRONTMATTER.replace("\n", "\r\n").encode()
    for name, data in [
        ("bom.md", b"\xef\xbb\xbf" + GOOD_FRONTMATTER.encode()),
        ("crlf.md", crlf),
        ("both.md", b"\xef\xbb\xbf" + crlf),
    ]:
        doc = load_bytes(tmp_path, data, name)
        assert doc.problems == ()
        assert doc.frontmatter == plain.frontmatter


def test_impossible_unquoted_date_is_kept_as_text_for_validation(tmp_path: Path) -> None:
    doc = load_bytes(tmp_path, b"---\nlastReviewed: 2025-02-30\n---\n")
    assert doc.problems == ()
    assert doc.frontmatter is not None
    assert doc.frontmatter.values == {"lastReviewed": "2025-02-30"}


def test_plain_scalars_that_yaml_turns_into_other_types_keep_their_text(tmp_path: Path) -> None:
    doc = load_bytes(tmp_path, b"---\nlanguage: no\nversion: 1.10\ntitle: 'no'\n---\n")
    assert doc.frontmatter is not None
    assert doc.frontmatter.values == {"language": False, "version": 1.1, "title": "no"}
    assert doc.frontmatter.raw == {"language": "no", "version": "1.10"}


def test_file_over_the_size_cap_is_not_read(tmp_path: Path) -> None:
    problem = only_problem(
        load_bytes(tmp_path, GOOD_FRONTMATTER.encode() + b"x" * 2000, max_bytes=1000)
    )
    assert problem.line is None
    assert problem.message == "is 2.1 KiB, over the limit of 1000 bytes"


def test_frontmatter_longer_than_one_read_is_found(tmp_path: Path) -> None:
    tags = "".join(f"  - tag number {i}\n" for i in range(2000))
    doc = load_bytes(
        tmp_path, f"---\ntitle: Long\ntags:\n{tags}status: active\n---\nbody\n".encode()
    )
    assert doc.problems == ()
    assert doc.frontmatter is not None
    assert doc.frontmatter.lines["status"] == 2004
    assert len(doc.frontmatter.values["tags"]) == 2000


def test_multibyte_character_across_read_boundary(tmp_path: Path) -> None:
    padding = "a" * 8190  # puts the two bytes of "é" on both sides of the first read
    doc = load_bytes(tmp_path, f"---\ntitle: {padding}é\n---\n".encode())
    assert doc.problems == ()
    assert doc.frontmatter is not None and doc.frontmatter.values["title"].endswith("aé")


def test_body_is_not_read(tmp_path: Path) -> None:
    # Invalid bytes far into the body are never reached: only the head is read.
    data = GOOD_FRONTMATTER.encode() + b"x" * 100_000 + b"\xff\xfe"
    doc = load_bytes(tmp_path, data)
    assert doc.problems == ()


def test_alias_bomb_costs_milliseconds_not_memory() -> None:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, 30):
        refs = ", ".join(f"*a{i - 1}" for _ in range(9))
        lines.append(f"a{i}: &a{i} [{refs}]")
    block = "\n".join(lines) + "\n"
    tracemalloc.start()
    started = time.perf_counter()
    frontmatter, problems = parse_frontmatter(block, "bomb.md")
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert frontmatter is None
    assert [p.message for p in problems] == ["YAML anchor &a0 is not allowed in frontmatter"]
    assert problems[0].line == 2
    # 9**30 strings if expanded; reading it must stay tiny. (A bound, not a timing assertion.)
    assert peak < 5 * 1024 * 1024
    assert elapsed < 5


def test_ampersands_and_asterisks_in_text_are_fine(tmp_path: Path) -> None:
    doc = load_bytes(tmp_path, b"---\ntitle: Q&A about *rare* cancers\ncitation: A & B\n---\n")
    assert doc.problems == ()
    assert doc.frontmatter is not None
    assert doc.frontmatter.values["title"] == "Q&A about *rare* cancers"


@settings(
    max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(data=st.binary(max_size=3000))
def test_arbitrary_bytes_only_ever_produce_problems(tmp_path: Path, data: bytes) -> None:
    doc = load_bytes(tmp_path, data)
    assert isinstance(doc, LoadedDocument)
    assert all(isinstance(p, Problem) for p in doc.problems)
    assert doc.frontmatter is not None or doc.problems


@settings(
    max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(data=st.binary(max_size=2000))
def test_arbitrary_bytes_inside_fences_only_ever_produce_problems(
    tmp_path: Path, data: bytes
) -> None:
    doc = load_bytes(tmp_path, b"---\n" + data + b"\n---\nbody\n")
    assert doc.frontmatter is not None or doc.problems


# Every tag the safe loader knows, some it does not, and the non-specific "!".
_KNOWN = [
    "str",
    "int",
    "float",
    "bool",
    "null",
    "timestamp",
    "binary",
    "seq",
    "map",
    "omap",
    "pairs",
    "set",
]
_UNKNOWN = ["merge", "value", "yaml", "python/name:os.system"]
TAGS = [f"!!{name} " for name in _KNOWN + _UNKNOWN] + [
    "!custom ",
    "! ",
    "!<tag:yaml.org,2002:int> ",
    "!<tag:example.org,2026:x> ",
]
LINE_BREAKS = ["\n", "\r\n", "\r", "\x85", "\u2028", "\u2029"]

yaml_text = st.recursive(
    st.one_of(
        st.text(alphabet=st.characters(codec="utf-8"), max_size=20),
        st.sampled_from(
            [
                "&a",
                "*a",
                "<<: *a",
                "- ",
                ": ",
                "? ",
                "!!binary",
                "!!python/name:x",
                "{",
                "}",
                "[",
                "]",
                "'",
                '"',
                "|",
                ">",
                "#",
                "\t",
                "\n",
                "  ",
                "---",
                "...",
                "%YAML 1.1",
                "2025-02-30",
                "~",
                "0x",
                "1e999",
                "9" * 5000,
                *TAGS,
                "=",
                "<<",
                *LINE_BREAKS,
            ]
        ),
    ),
    lambda children: st.lists(children, max_size=6).map("".join),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None)
@given(block=yaml_text)
def test_arbitrary_yaml_only_ever_produces_problems(block: str) -> None:
    frontmatter, problems = parse_frontmatter(block, "doc.md")
    assert frontmatter is not None or problems
    assert all(isinstance(p, Problem) and p.path == "doc.md" for p in problems)


@pytest.mark.parametrize(
    "block",
    [
        "x: " + "[" * 100_000 + "]" * 100_000,
        "x: " + "{a: " * 100_000 + "}" * 100_000,
        "x:\n" + "- " * 100_000 + "end",
        "x:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, 1000)) + " " * 1000 + "end",
    ],
    ids=["flow-lists", "flow-maps", "block-lists", "indented-maps"],
)
def test_deep_nesting_is_a_problem_not_a_crash(block: str) -> None:
    # libyaml's composer recurses on the C stack: unguarded, these crash the interpreter.
    # (Newer libyaml builds also stop deep flow collections themselves, with their own words.)
    frontmatter, problems = parse_frontmatter(block, "deep.md")
    assert frontmatter is None
    assert len(problems) == 1 and problems[0].is_error
    assert problems[0].message in (
        "frontmatter is nested more than 64 levels deep",
        "YAML syntax error: exceeded maximum nesting depth",
    )


def test_nesting_up_to_the_limit_is_read() -> None:
    frontmatter, problems = parse_frontmatter("x: " + "[" * 63 + "]" * 63, "ok.md")
    assert problems == [] and frontmatter is not None


# --------------------------------------------------------------------------- discovery


def _discover(
    cwd: Path,
    *targets: Path,
    root: Path = Path("content"),
    include: tuple[str, ...] = ("**/*.md", "**/*.markdown", "**/*.txt"),
    exclude: tuple[str, ...] = (),
) -> list[str]:
    discovery = Discovery(include, exclude, root, cwd)
    out = []
    for item in discovery.iter_files(list(targets) or [root]):
        if isinstance(item, Problem):
            out.append(f"problem {item.path}: {item.message}")
        else:
            out.append(f"{item.display} [{item.rel}]")
    return out


def test_discovery_applies_globs_and_skips_hidden(tmp_path: Path) -> None:
    content = tmp_path / "content"
    for name in [
        "a.md",
        "b.markdown",
        "c.txt",
        "d.html",
        "e.md.bak",
        "sub/f.md",
        "sub/deeper/g.txt",
        ".hidden.md",
        ".git/h.md",
        "drafts/i.md",
    ]:
        (content / name).parent.mkdir(parents=True, exist_ok=True)
        (content / name).write_text("x")
    assert _discover(tmp_path, exclude=("drafts/**",)) == [
        "content/a.md [a.md]",
        "content/b.markdown [b.markdown]",
        "content/c.txt [c.txt]",
        "content/sub/f.md [sub/f.md]",  # a folder's files, then its subfolders
        "content/sub/deeper/g.txt [sub/deeper/g.txt]",
    ]


def test_discovery_of_named_files_and_folders(tmp_path: Path) -> None:
    (tmp_path / "content" / "sub").mkdir(parents=True)
    (tmp_path / "content" / "sub" / "a.md").write_text("x")
    (tmp_path / "content" / "notes.html").write_text("x")
    assert _discover(
        tmp_path, Path("content/sub"), Path("content/notes.html"), Path("content/sub/a.md")
    ) == [
        "content/sub/a.md [sub/a.md]",
        "content/notes.html [notes.html]",  # a named file is taken whatever its name
    ]


def test_symlinks_outside_the_root_are_refused(tmp_path: Path) -> None:
    content = tmp_path / "content"
    outside = tmp_path / "outside"
    content.mkdir()
    outside.mkdir()
    (outside / "secret.md").write_text("x")
    (content / "real.md").write_text("x")
    (content / "link.md").symlink_to(outside / "secret.md")
    (content / "linked-folder").symlink_to(outside)
    (content / "alias.md").symlink_to(content / "real.md")  # inside: found as real.md
    (content / "broken.md").symlink_to(tmp_path / "missing.md")
    (content / "ignored.png").symlink_to(outside / "secret.md")  # not a document name
    outside_posix = outside.resolve().as_posix()
    assert _discover(tmp_path) == [
        "problem content/broken.md: is a broken symbolic link",
        f"problem content/link.md: is a symbolic link to {outside_posix}/secret.md, outside "
        "the content root; it was not followed",
        f"problem content/linked-folder: is a symbolic link to {outside_posix}, outside the "
        "content root; it was not followed",
        "content/real.md [real.md]",
    ]


def test_display_paths_are_relative_to_cwd_only_below_it(tmp_path: Path) -> None:
    assert display_path(tmp_path / "a" / "b.md", tmp_path) == "a/b.md"
    assert display_path(Path("/elsewhere/b.md"), tmp_path) == "/elsewhere/b.md"


# --------------------------------------------------------------------------- tagged YAML

_PLAIN = "'' maybe yes - _ 0x 0b_ 1_0 ._ .inf ~ = << 2026-01-15 2026-13-01 9999-12-31 aGVsbG8="
_scalars = st.one_of(
    st.sampled_from(
        [*_PLAIN.split(), "", "2026-01-15 10:00", "é", "quarterly", "６ months", "9" * 5000]
    ),
    st.text(max_size=12).map(lambda text: json.dumps(text)),  # double quoted, any characters
)
_tag = st.sampled_from(["", "", "", *TAGS])
_values = st.recursive(
    st.builds(str.__add__, _tag, _scalars),
    lambda inner: st.one_of(
        st.builds(
            lambda tag, items: f"{tag}[{', '.join(items)}]", _tag, st.lists(inner, max_size=3)
        ),
        st.builds(
            lambda tag, pairs: tag + "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}",
            _tag,
            st.lists(
                st.tuples(st.sampled_from(["a", "!!int 1", "!!str b", "? c"]), inner), max_size=3
            ),
        ),
    ),
    max_leaves=6,
)
_keys = st.builds(
    str.__add__,
    st.sampled_from(["", "", "", "", "!!str ", "!!int ", "!!bool ", "!custom "]),
    st.sampled_from([field.key for field in FIELDS] + ["x", "1", "yes"]),
)
_entries = st.one_of(
    st.builds(lambda key, value: f"{key}: {value}", _keys, _values),
    st.builds(  # a block list, each entry possibly tagged
        lambda key, tag, items, eol: f"{key}: {tag}" + "".join(f"{eol}- {item}" for item in items),
        _keys,
        _tag,
        st.lists(_values, min_size=1, max_size=3),
        st.sampled_from(LINE_BREAKS),
    ),
)
tagged_yaml = st.builds(
    lambda entries, eol: eol.join(entries),
    st.lists(_entries, min_size=1, max_size=6),
    st.sampled_from(LINE_BREAKS),
)


@settings(
    max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(block=tagged_yaml)
def test_tagged_yaml_never_reaches_the_safety_net(tmp_path: Path, block: str) -> None:
    # The whole of reading a document, as a worker does it: any exception would be caught by
    # its safety net and reported as a bug (RS100).
    path = tmp_path / "doc.md"
    path.write_bytes(f"---\n{block}\n---\nbody\n".encode())
    stat = path.stat()
    file = SourceFile(str(path), "doc.md", "doc.md", stat.st_size, stat.st_mtime_ns)
    outcome = _Context(ReadingSettings.of(Settings())).read(file, None)
    assert outcome.facts is not None and outcome.route is not None
    facts = FactsDecoder().facts(outcome.facts, "doc.md")
    assert all(p.code != "RS100" for p in facts.problems), facts.problems
    for problem in facts.problems:
        if problem.code == "RS130":  # a tag problem: on a line of the frontmatter, with a column
            assert problem.line is not None and 2 <= problem.line <= 2 + len(block)
            assert problem.column is not None


@settings(max_examples=400, deadline=None)
@given(block=st.one_of(yaml_text, tagged_yaml))
def test_text_read_without_a_scan_is_within_the_nesting_limit(block: str) -> None:
    # The scan for depth is skipped only where the text cannot nest deeper than the limit.
    if _needs_scan(block):
        return
    loader = _Loader(block)
    try:
        node = loader.get_single_node()
    except yaml.YAMLError:
        return
    finally:
        loader.dispose()
    assert _depth(node) <= MAX_DEPTH


def _depth(node: Any) -> int:
    if node is None or isinstance(node, yaml.ScalarNode):
        return 0
    children = [n for item in node.value for n in (item if isinstance(item, tuple) else (item,))]
    return 1 + max((_depth(child) for child in children), default=0)


def test_the_fence_is_python_frontmatters() -> None:
    # Written out in the loader so that finding a fence imports no PyYAML: the same pattern.
    from frontmatter.default_handlers import YAMLHandler

    assert FM_BOUNDARY.pattern == YAMLHandler.FM_BOUNDARY.pattern
    assert FM_BOUNDARY.flags == YAMLHandler.FM_BOUNDARY.flags
