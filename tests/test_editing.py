"""Writing documents: the last-reviewed value changes and not one other byte."""

from __future__ import annotations

import stat
from datetime import date
from pathlib import Path
from unittest.mock import patch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.content.editing import Edited, Refused, set_date, write_atomically

from .conftest import SEED

NEW = date(2026, 11, 27)
KEY = "lastReviewed"

# (name, document, the old value as written, the new value as it must be written)
IN_PLACE = [
    ("seed", SEED.read_bytes(), b"'2025-12-30'", b"'2026-11-27'"),
    (
        "comments",
        b"---\n# reviewed by the web team\ntitle: A  # short\nlastReviewed: 2026-01-15"
        b"   # last time\nstatus: active\n---\nBody\n",
        b"2026-01-15",
        b"2026-11-27",
    ),
    (
        "crlf",
        b"---\r\ntitle: A\r\nlastReviewed: '2026-01-15'\r\nstatus: active\r\n---\r\nBody\r\n",
        b"'2026-01-15'",
        b"'2026-11-27'",
    ),
    (
        "bom",
        b'\xef\xbb\xbf---\ntitle: A\nlastReviewed: "2026-01-15"\n---\nBody\n',
        b'"2026-01-15"',
        b'"2026-11-27"',
    ),
    (
        "flow mapping",
        b"---\n{title: A, lastReviewed: 2026-01-15, tags: [x, y]}\n---\n",
        b"2026-01-15",
        b"2026-11-27",
    ),
    (
        "flow values, unusual order, odd spacing",
        b"---\nlastReviewed:     2026-01-15\ntags: [a, 'b']\nowner: {name: x}\n"
        b"  \ntitle:   A\n---\n\xff\xfe body that is not UTF-8\n",
        b"2026-01-15",
        b"2026-11-27",
    ),
    (
        "an unreadable date is put right",
        b"---\ntitle: A\nlastReviewed: 2025-02-30\n---\n",
        b"2025-02-30",
        b"2026-11-27",
    ),
]


@pytest.mark.parametrize(("name", "data", "old", "new"), IN_PLACE, ids=[c[0] for c in IN_PLACE])
def test_only_the_value_changes(name: str, data: bytes, old: bytes, new: bytes) -> None:
    edit = set_date(data, KEY, NEW, "doc.md")
    assert isinstance(edit, Edited), edit
    assert data.count(old) == 1
    assert edit.data == data.replace(old, new)
    assert edit.old_value == old.strip(b"'\"").decode()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"---\ntitle: A\n---\nBody\n", b"---\ntitle: A\nlastReviewed: '2026-11-27'\n---\nBody\n"),
        (
            b"\xef\xbb\xbf---\r\ntitle: A # c\r\n---\r\n",
            b"\xef\xbb\xbf---\r\ntitle: A # c\r\nlastReviewed: '2026-11-27'\r\n---\r\n",
        ),
    ],
    ids=["lf", "bom-crlf"],
)
def test_a_missing_field_is_added_at_the_end_of_the_frontmatter(
    data: bytes, expected: bytes
) -> None:
    edit = set_date(data, KEY, NEW, "doc.md")
    assert isinstance(edit, Edited)
    assert edit.data == expected
    assert edit.old_value is None


def test_the_configured_key_is_the_one_changed() -> None:
    data = b"---\nlast_reviewed_on: 2026-01-15\nlastReviewed: 2020-01-01\n---\n"
    edit = set_date(data, "last_reviewed_on", NEW, "doc.md")
    assert isinstance(edit, Edited)
    assert edit.data == b"---\nlast_reviewed_on: 2026-11-27\nlastReviewed: 2020-01-01\n---\n"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"title: A\n", "has no frontmatter"),
        (b"---\ntitle: A\nlastReviewed: 2026-01-15\n", "never closed"),
        (b"---\ntitle: [A\nlastReviewed: 2026-01-15\n---\n", "cannot be read safely"),
        (b"---\ntitle: A\ntitle: B\n---\n", "cannot be read safely"),
        (b"---\n- a\n- b\n---\n", "cannot be read safely"),
        (b"---\nlastReviewed: !!str 2026-01-15\n---\n", "not written as a plain or quoted"),
        (b"---\nlastReviewed: |\n  2026-01-15\n---\n", "not written as a plain or quoted"),
        (b"---\nlastReviewed: [2026-01-15]\n---\n", "not written as a plain or quoted"),
        (b"---\nlastReviewed: '2026-01-''15'\n---\n", "not written as a plain or quoted"),
        (b"---\n{title: A}\n---\n", "one flow mapping"),
    ],
)
def test_documents_that_cannot_be_edited_safely_are_refused(data: bytes, reason: str) -> None:
    edit = set_date(data, KEY, NEW, "doc.md")
    assert isinstance(edit, Refused)
    assert reason in edit.reason


def test_write_atomically_keeps_permissions_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "docs" / "doc.md"
    path.parent.mkdir()
    path.write_bytes(b"old")
    path.chmod(0o640)
    write_atomically(path, b"new contents")
    assert path.read_bytes() == b"new contents"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert [p.name for p in path.parent.iterdir()] == ["doc.md"]


def test_write_atomically_replaces_the_file_not_its_contents(tmp_path: Path) -> None:
    path = tmp_path / "doc.md"
    path.write_bytes(b"old")
    with path.open("rb") as reader:  # a reader holding the old file still reads it whole
        write_atomically(path, b"new")
        assert reader.read() == b"old"
    assert path.read_bytes() == b"new"


def _every_sample_document() -> list[tuple[str, bytes]]:
    tests = Path(__file__).parent
    files = [SEED, *sorted((tests / "corpora").rglob("*.md")), *sorted(tests.rglob("*.txt"))]
    samples = [(str(f.relative_to(tests.parent)), f.read_bytes()) for f in files if f.is_file()]
    samples += [(f"in-place {name}", data) for name, data, _, _ in IN_PLACE]
    # Characters outside the basic plane, line separators, a byte-order mark, CR line ends.
    samples += [
        ("astral", "---\ntitle: '😀 𝔘 page'\nlastReviewed: 2025-01-02\n---\nx\n".encode()),
        ("separator", "---\ntitle: 'a\u2028b'\nlastReviewed: \"2025-01-02\"\n---\n".encode()),
        ("bom crlf", b"\xef\xbb\xbf---\r\ntitle: \xc3\xa9\r\nlastReviewed: 2025-01-02\r\n---\r\n"),
        ("nested", b"---\nlast_update:\n  date: 2025-01-02\n  author: x\n---\n"),
    ]
    return samples


@pytest.mark.parametrize("key", [KEY, "last_update.date", "last_modified_at", "lastmod"])
def test_libyaml_and_pyyaml_composers_edit_every_sample_alike(
    key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Edits find the value by libyaml's offsets (fast); PyYAML's own composer must find the
    same characters in every sample document, so either gives the same bytes or refusal."""
    import yaml

    from scheduler.content import yaml_block  # where the editor takes its loader from

    assert yaml_block.SafeLoader is not yaml.SafeLoader  # libyaml's, here
    samples = _every_sample_document()
    assert len(samples) > 20
    fast = [set_date(data, key, NEW, name) for name, data in samples]
    monkeypatch.setattr(yaml_block, "SafeLoader", yaml.SafeLoader)
    slow = [set_date(data, key, NEW, name) for name, data in samples]
    assert fast == slow
    assert any(isinstance(edit, Edited) for edit in fast)


# Lines the date's line is read from, and look-alikes where it must not be: the composer decides.
_LOOK_ALIKES = [
    ("comment", b"---\nlastReviewed: 2025-01-02 # by the web team\n---\n"),
    ("hash without a space", b"---\nlastReviewed: 2025-01-02#x\n---\n"),
    ("tab after the colon", b"---\nlastReviewed:\t2025-01-02\n---\n"),
    ("trailing tab", b"---\nlastReviewed: 2025-01-02\t\n---\n"),
    ("space before the colon", b"---\nlastReviewed : 2025-01-02\n---\n"),
    ("quoted key", b'---\n"lastReviewed": 2025-01-02\n---\n'),
    ("continued plain value", b"---\nlastReviewed: 2025-01-02\n  and more\ntitle: A\n---\n"),
    ("multi-line flow mapping", b"---\n{title: A,\nlastReviewed: 2025-01-02\n}\n---\n"),
    ("in a quoted title", b'---\ntitle: "a\nlastReviewed: 2025-01-02"\n---\n'),
    (
        "its very line in a quoted title",
        b"---\ntitle: 'a\nlastReviewed: 2025-01-02\n  '\nlastReviewed: 2025-01-02\n---\n",
    ),
    ("line separator", "---\ntitle: A\u2028lastReviewed: 2025-01-02\n---\n".encode()),
    ("nested look-alike", b"---\nmeta:\n  x: 1\nlastReviewed: 2025-01-02\n---\n"),
    ("indented", b"---\nmeta:\n  lastReviewed: 2025-01-02\nlastReviewed: 2024-01-02\n---\n"),
    ("impossible date", b"---\nlastReviewed: 2025-13-45\n---\n"),
    ("timestamp", b"---\nlastReviewed: 2025-01-02 10:00:00\n---\n"),
    ("mixed quotes", b"---\nlastReviewed: '2025-01-02\"\n---\n"),
    ("crlf comment", b"---\r\nlastReviewed: '2025-01-02'   # x\r\n---\r\n"),
    ("second key alike", b"---\nlastReviewedBy: 2025-01-03\nlastReviewed: 2025-01-02\n---\n"),
    ("after a block scalar", b"---\nnote: |\n  text\nlastReviewed: 2025-01-02\n---\n"),
]


@pytest.mark.parametrize("key", [KEY, "last_update.date", "last_modified_at", "lastmod"])
def test_a_date_read_from_its_line_is_the_one_the_composer_finds(
    key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key written on a line of its own with a date is edited without composing the YAML;
    every sample document and every look-alike must come out as the composer would have it
    (the same bytes, or the same refusal)."""
    from scheduler.content import editing

    samples = _every_sample_document() + _LOOK_ALIKES
    found = editing._date_span
    taken = []

    def counted(*args: object) -> object:
        span = found(*args)  # type: ignore[arg-type]
        taken.append(span is not None)
        return span

    monkeypatch.setattr(editing, "_date_span", counted)
    by_line = [set_date(data, key, NEW, name) for name, data in samples]
    monkeypatch.setattr(editing, "_date_span", lambda *args: None)
    composed = [set_date(data, key, NEW, name) for name, data in samples]
    assert by_line == composed
    if key == KEY:  # both ways are taken
        assert sum(taken) >= 10
        assert not all(taken)


_KEYS = st.sampled_from(["lastReviewed", "lastReviewedBy", "title", "note"])
_VALUES = st.sampled_from(
    [
        "2025-01-02",
        "2025-13-45",
        "'2025-01-02'",
        '"2025-01-02"',
        "'2025-01-02\"",
        "2025-01-02 10:00:00",
        "2025-1-2",
        "[2025-01-02]",
        "|",
        "text",
        "'a",
        "",
    ]
)
_LINE = st.tuples(
    _KEYS,
    st.sampled_from(["", " ", "  ", "\t"]),  # before the colon... and after it:
    st.sampled_from([" ", "  ", "\t", ""]),
    _VALUES,
    st.sampled_from(["", "  ", " # c", "#c", "\t", " #"]),
    st.sampled_from(["", "  more", "- item", "  '", "lastReviewed: 2025-01-02"]),  # next line
)


@settings(max_examples=600, deadline=None)
@given(
    line=_LINE,
    before=st.lists(_LINE, max_size=3),
    after=st.lists(_LINE, max_size=3),
    crlf=st.booleans(),
)
def test_any_frontmatter_is_edited_alike_from_the_line_and_by_the_composer(
    line: tuple[str, str, str, str, str, str],
    before: list[tuple[str, str, str, str, str, str]],
    after: list[tuple[str, str, str, str, str, str]],
    crlf: bool,
) -> None:
    from scheduler.content import editing

    eol = "\r\n" if crlf else "\n"
    lines = [*before, (KEY, *line[1:]), *after]  # the key edited, written in any way
    block = "".join(
        f"{key}{gap}:{space}{value}{trailing}{eol}" + (f"{follow}{eol}" if follow else "")
        for key, gap, space, value, trailing, follow in lines
    )
    data = f"---{eol}{block}---{eol}body{eol}".encode()
    by_line = set_date(data, KEY, NEW, "doc.md")
    with patch.object(editing, "_date_span", lambda *args: None):
        composed = set_date(data, KEY, NEW, "doc.md")
    assert by_line == composed
