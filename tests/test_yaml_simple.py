"""Frontmatter in the common shape is read without libyaml: it must give exactly what libyaml
and the safe constructor give (values and their types, lines, raw text, problems), on every
document the repository holds and on generated text made to sit on the edges of that shape."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.content import yaml_block
from scheduler.content.loader import FM_BOUNDARY, parse_frontmatter
from scheduler.content.yaml_block import _read_simple, parse_with_libyaml

from .test_golden import corpus_gen
from .test_loader import yaml_text

REPO = Path(__file__).resolve().parent.parent


def _same(block: str, first_line: int = 1) -> bool:
    """Whether ``block`` is read in the common shape; asserts it reads as libyaml reads it."""
    simple = _read_simple(block, "doc.md", first_line)
    if simple is None:
        return False
    # repr tells apart what == does not: True and 1, 1 and 1.0, a date and a datetime.
    assert repr(simple) == repr(parse_with_libyaml(block, "doc.md", first_line)), block
    return True


def _blocks(paths: list[Path]) -> list[str]:
    blocks = []
    for path in paths:
        text = path.read_text(encoding="utf-8", errors="surrogateescape").removeprefix("\ufeff")
        if not FM_BOUNDARY.match(text):
            continue
        start = text.find("\n") + 1
        closing = FM_BOUNDARY.search(text, start)
        if closing is not None:
            blocks.append(text[start : closing.start()])
    return blocks


def test_every_document_in_the_repository_reads_the_same() -> None:
    paths = [
        p
        for p in (*(REPO / "tests" / "corpora").rglob("*"), *(REPO / "seeds").iterdir())
        if p.is_file() and p.suffix in (".md", ".markdown", ".txt", ".mdx")
    ]
    blocks = _blocks(paths)
    assert len(blocks) > 15
    read_simply = sum(_same(block) for block in blocks)
    assert read_simply >= len(blocks) // 2  # the shape is the common one


def test_the_benchmark_library_reads_the_same() -> None:
    generate = corpus_gen().frontmatter
    rng = random.Random(7)
    blocks = [generate(rng, index).split("---\n")[1] for index in range(3000)]
    assert all(_same(block, first_line=3) for block in blocks)


@pytest.mark.parametrize(
    "block",
    [
        "a: x\n",
        "a: x",
        "a:\n",
        "a:",
        "a: ''\nb: \"\"\n",
        "a: 'it''s'  \nb: \"say 'hi'\"\n",
        "a: ' padded '\n",
        "a: 2024-12-01\nb: 2025-02-30\nc: 2024-12-01 10:00:00+02:00\nd: 2024-12-01T10:00:00Z\n",
        "a: yes\nb: No\nc: ~\nd: null\ne: 1_000\nf: 0x1F\ng: 1:30\nh: .inf\ni: 1e3\nj: 017\n",
        "a: =\nb: <<\nc: +1\nd: .\ne: 0o7\n",
        "a: x # a comment\nb: #only a comment\n# a line of comment\n  # indented\n",
        "a: x#y\nb: http://e.org/p#frag\nc: a:b\n",
        "a: x, [y] {z} | > % @ ` & * ! ?\n",
        "tags:\n- a\n- b\nnext: x\n",
        "tags:\n  - a\n  - 'b c'\n  - \"d\"\nnext: x\n",
        "tags:\n\n- a\n\n- b\n",
        "tags: # the tags\n- a # first\n- b\n",
        "a: x\nb: y\na: z\n",
        "a:\n- x\na: y\n",
        "a: 1\na: text\n",
        "a: x\n\n\nb: y\n\n",
        "a: café ü 中文 \U0001f600\n",
        "a: x\xa0y\xa0\n",
        "last_update.date: 2024-01-01\nreview-scheduler-ignore: RS201\n",
        "K_1: a\nk-2: b\n_k: c\n",
        "a: " + "9" * 500 + "\n",
        "a: " + "x" * 300 + "\n",
        "a:  two spaces\n",
        "a: 0x\nb: 9999-99-99 99:99:99\n",
        "a: x   \nb:   \n",
    ],
)
def test_edges_of_the_shape_read_the_same(block: str) -> None:
    assert _same(block)


@pytest.mark.parametrize(
    "block",
    [
        "",
        "\n",
        "# only a comment\n",
        "- a\n- b\n",
        "just text\n",
        "a: x\n  continued\n",
        "a: 'x\n  y'\n",
        'a: "x\\ty"\n',
        "a: x\tb\n",
        "a: x\r\nb: y\r\n",
        "a: x\u2028b: y\n",
        "a: x\x85\n",
        "a: \ufeffx\n",
        "a: &anchor x\nb: *anchor\n",
        "a: !!str 1\n",
        "a: [x, y]\n",
        "a: {b: c}\n",
        "a: |\n  text\n",
        "a:\n  b: c\n",
        "a: x: y\n",
        "a: x:\n",
        "a: -1\n",
        "a: - x\n",
        "tags:\n- a\n  - b\n",
        "tags:\n- [a]\n",
        "tags:\n- 1\n- 2\n",
        "tags:\n-\n",
        "a: x\n- b\n",
        " a: x\n",
        "a : x\n",
        "1a: x\n",
        "a: x\n...\n",
        "a: x\n---\n",
        "%YAML 1.1\na: x\n",
        "a: 0b_\n",
        "a: x \t\n",
        "a: 'x' y\n",
        "a: '''\n",
        "k" * 300 + ": x\n",
    ],
)
def test_what_the_shape_leaves_out_goes_to_libyaml(block: str) -> None:
    assert _read_simple(block, "doc.md", 1) is None
    assert repr(parse_frontmatter(block, "doc.md")) == repr(parse_with_libyaml(block, "doc.md"))


# Lines made of the pieces that decide how YAML reads a line, so that many land in the shape
# and many just outside it.
_KEYS = st.sampled_from(
    ["title", "a", "tags", "status", "K_1", "x-y", "a.b", "_", "yes", "1", " a", "a ", "-a", "?a"]
)
_PIECES = st.sampled_from(
    [
        "x",
        "text with spaces",
        " ",
        "  ",
        ":",
        ": ",
        "#",
        " #",
        "'",
        "''",
        '"',
        "\\",
        "-",
        "- ",
        "?",
        ",",
        "[",
        "]",
        "{",
        "}",
        "&",
        "*",
        "!",
        "|",
        ">",
        "%",
        "@",
        "`",
        "~",
        "=",
        "<<",
        ".",
        "+",
        "\t",
        "\xa0",
        "\u2028",
        "\ufeff",
        "\x85",
        "\x7f",
        "é",
        "\U0001f600",
        "2024-12-01",
        "2025-02-30",
        "2024-12-01 10:00:00 -05:00",
        "yes",
        "Off",
        "null",
        "1",
        "0x1F",
        "0b101",
        "1:30",
        "1e999",
        ".nan",
        "0o17",
        "9" * 30,
    ]
)
_VALUES = st.lists(_PIECES, max_size=5).map("".join)
_QUOTED = _VALUES.map(lambda v: "'" + v.replace("'", "''") + "'") | _VALUES.map(
    lambda v: '"' + v.replace('"', "").replace("\\", "") + '"'
)
_COMMENTS = st.sampled_from(["", "", "", " # note", "  #: x", " #", "#x"])
_LINES = st.one_of(
    st.tuples(_KEYS, st.sampled_from([": ", ":", ":  ", " : "]), _VALUES | _QUOTED, _COMMENTS).map(
        "".join
    ),
    st.tuples(_KEYS, st.just(":"), _COMMENTS).map("".join),
    st.tuples(st.sampled_from(["", "", "  ", " "]), st.just("- "), _VALUES | _QUOTED).map("".join),
    st.sampled_from(["", "# comment", "  # comment", "   ", "-", "---", "..."]),
)
_SHAPED = st.tuples(
    st.lists(_LINES, min_size=1, max_size=8), st.sampled_from(["\n", "\n", "\n", "\r\n", "\r"])
).map(lambda parts: parts[1].join(parts[0]) + parts[1])


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(block=_SHAPED)
def test_generated_frontmatter_reads_the_same(block: str) -> None:
    _same(block)


@settings(max_examples=400, deadline=None)
@given(block=yaml_text)
def test_arbitrary_text_reads_the_same(block: str) -> None:
    _same(block)


def test_generated_frontmatter_often_lands_in_the_shape() -> None:
    """The generated text tests the shape only if much of it is in it."""
    rng = random.Random(3)
    keys = ["title", "tags", "a.b", "yes"]
    values = ["x", "2024-12-01", "'q''s'", '"d"', "x # c", "1:30", "x, y", "", "é"]
    hits = 0
    for _ in range(300):
        lines = []
        for _ in range(rng.randint(1, 6)):
            if rng.random() < 0.2:
                lines.append(f"{rng.choice(['', '  '])}- {rng.choice(values) or 'x'}")
            else:
                lines.append(f"{rng.choice(keys)}: {rng.choice(values)}".rstrip())
        hits += _same("\n".join(lines) + "\n")
    assert hits > 100


def test_built_values_are_remembered_within_bounds() -> None:
    yaml_block._BUILT.clear()
    for day in range(1, 29):
        _same(f"a: 2024-01-{day:02d}\n")
    assert len(yaml_block._BUILT) == 28
    for index in range(yaml_block._BUILT_MAX + 10):
        assert _read_simple(f"a: {index}\n", "doc.md", 1) is not None
    assert len(yaml_block._BUILT) <= yaml_block._BUILT_MAX


_IN_SHAPE_VALUES = st.lists(
    st.sampled_from(
        ["x", "Text", " ", "-", ",", "#", ":x", "'", "é", "2024-12-01", "yes", "1", "1:30", "~"]
    ),
    min_size=1,
    max_size=4,
).map("".join)
_IN_SHAPE_LINES = st.one_of(
    st.tuples(st.sampled_from(["title", "tags", "a.b", "K_1"]), st.just(": "), _IN_SHAPE_VALUES),
    st.tuples(st.sampled_from(["title", "tags"]), st.just(":"), st.sampled_from(["", " # c"])),
    st.tuples(st.sampled_from(["", "  "]), st.just("- "), _IN_SHAPE_VALUES | _QUOTED),
    st.tuples(st.sampled_from(["", "# c"]), st.just(""), st.just("")),
).map("".join)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(_IN_SHAPE_LINES, min_size=1, max_size=8))
def test_generated_frontmatter_mostly_in_the_shape_reads_the_same(lines: list[str]) -> None:
    _same("\n".join(lines) + "\n")
