"""Nothing a report prints can hurt a terminal or a parser.

File names that are not UTF-8, control sequences and bidirectional controls in titles, keys,
file names and messages: every output is valid UTF-8 (checked through a real process whose
standard output is strict UTF-8), text for people shows every control escaped, and Markdown
cannot be made to forge a row or carry HTML (checked with a real Markdown parser).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, date, datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from scheduler.commands import options as cli
from scheduler.render import RenderOptions
from scheduler.render.check import CHECK_FORMATS
from scheduler.render.common import json_safe, shown, shown_lines
from scheduler.render.outbox import OUTBOX_FORMATS
from scheduler.render.status import STATUS_FORMATS
from scheduler.store import OutboxStatus
from scheduler.store.interfaces import OutboxRow, Recipient, Run
from scheduler.usecases.check import check
from scheduler.usecases.reminders import OutboxListing, Status

from .conftest import frontmatter, write_doc

CONFIG = """\
[content]
root = "content"
[routing]
default = ["team@example.org"]
"""

# What must never reach a terminal raw (line breaks aside, which the formats use themselves).
UNSAFE = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
    "\ud800-\udfff]"
)

# Clear screen, window title, a hyperlink (OSC 8), BEL, a C1 CSI, bidi override and isolates.
HOSTILE = (
    "Clear\x1b[2J\x1b]0;owned\x07 \x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\ "
    "\x9b31m \u202eevil\u202c \u2066iso\u2069 \u200fmark"
)
HOSTILE_NAME = "esc\x1b[2J\u202egnp.md"
UNDECODABLE = os.fsdecode(b"bad\xff.md")  # "bad\udcff.md"


def _yaml(text: str) -> str:
    """A YAML double-quoted scalar: YAML reads JSON's escapes, and refuses raw controls."""
    return json.dumps(text)


@pytest.fixture
def library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_doc(tmp_path / "config" / "scheduler.toml", CONFIG)
    content = tmp_path / "content"
    # overdue, no url (a warning): shown by every format of check-reviews and of validate
    write_doc(
        content / UNDECODABLE, frontmatter(title="Plain", lastReviewed="2025-01-01", url=None)
    )
    write_doc(
        content / HOSTILE_NAME,
        frontmatter(
            title=_yaml(HOSTILE), lastReviewed="2025-01-01", owner=_yaml("x\x1b]0;t\x07"), url=None
        ),
    )
    write_doc(
        content / "key.md",
        frontmatter(lastReviewed=_yaml("2026-13-01\x1b[31m\u202e")).replace(
            "title:", _yaml("ti\x1b[5mtle\u2066") + ": 1\ntitle:"
        ),
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _safe(out: str) -> str:
    found = UNSAFE.search(out)
    assert found is None, f"{found.group()!r} printed raw in {out!r}"
    return out


# --------------------------------------------------------------------------- undecodable names


CASES = [
    *(("check", fmt, 1) for fmt in ("text", "json", "markdown", "csv", "github")),
    *(("validate", fmt, 1) for fmt in ("text", "json", "github")),
]
SHOWN_AS = {"markdown": r"content/bad\\xff.md", "json": r'"path": "content/bad\\xff.md"'}


def _strict(library: Path, *args: str) -> tuple[int, str]:
    """``review-scheduler ARGS`` in a process whose standard output is strict UTF-8: its exit
    code and its output, decoded strictly (a byte that is not UTF-8 fails the test)."""
    done = subprocess.run(
        [sys.executable, "-m", "scheduler", *args, "--as-of", "2026-05-01"],
        cwd=library,
        env=os.environ | {"PYTHONIOENCODING": "utf-8:strict"},
        capture_output=True,
        timeout=60,
    )
    assert b"unexpected error" not in done.stderr, done.stderr.decode("utf-8", "replace")
    return done.returncode, done.stdout.decode("utf-8")


@pytest.mark.parametrize(("command", "fmt", "code"), CASES)
def test_undecodable_names_on_a_strict_utf8_stdout(
    library: Path, command: str, fmt: str, code: int
) -> None:
    assert (library / "content" / UNDECODABLE).is_file()  # a real name, not UTF-8
    returncode, out = _strict(library, command, "--format", fmt)
    assert returncode == code
    assert "\ufffd" not in out  # escaped, never replaced
    assert SHOWN_AS.get(fmt, r"content/bad\xff.md") in out
    if fmt == "json":
        data = json.loads(out)
        assert r"content/bad\xff.md" in {d["path"] for d in data.get("documents") or data["files"]}
    else:
        _safe(out)


@pytest.mark.parametrize("fmt", ["text", "html"])
def test_undecodable_names_in_the_digest_preview(library: Path, fmt: str) -> None:
    returncode, out = _strict(library, "preview", "--editor", "team@example.org", "--format", fmt)
    assert returncode == 0
    assert r"content/bad\xff.md" in _safe(out)
    assert r"Clear\x1b[2J" in out


# --------------------------------------------------------------------------- controls


# Each hostile part and the outputs that show it: a title, a file name, an owner (in a routing
# warning), a key (in a warning), a value (in an error's message).
PARTS = {
    r"Clear\x1b[2J\x1b]0;owned\x07 \x1b]8;;https://evil.example\x1b\link\x1b]8;;\x1b\ "
    r"\u009b31m \u202eevil\u202c \u2066iso\u2069 \u200fmark": {
        "check text",
        "check markdown",
        "check csv",
        "check github",
    },
    r"esc\x1b[2J\u202egnp.md": {
        "check text",
        "check markdown",
        "check csv",
        "check github",
        "validate text",
        "validate github",
    },
    r"x\x1b]0;t\x07": {"check text", "check markdown"},
    r"ti\x1b[5mtle\u2066": {"check text", "check markdown", "validate text", "validate github"},
    r"2026-13-01\x1b[31m\u202e": {
        "check text",
        "check markdown",
        "check github",
        "validate text",
        "validate github",
    },
}


@pytest.mark.parametrize(
    "output",
    [
        "check text",
        "check markdown",
        "check csv",
        "check github",
        "validate text",
        "validate github",
    ],
)
def test_controls_are_shown_escaped_in_a_pipe(library: Path, run: Any, output: str) -> None:
    command, fmt = output.split()
    out = _safe(run(command, "--as-of", "2026-05-01", "--format", fmt).out)
    if fmt == "markdown":  # as read: without Markdown's own backslash escapes
        out = re.sub(r"\\([!-/:-@[-`{-~])", r"\1", out)
    for part, outputs in PARTS.items():
        if output in outputs:
            assert part in out


def test_controls_are_shown_escaped_in_a_dry_run(library: Path, run: Any) -> None:
    result = run("send", "--dry-run", "--as-of", "2026-05-01")
    assert result.code == 0
    out = _safe(result.out.replace("\r\n", "\n"))  # the message's own line breaks stay
    assert "Subject: Review reminder: 2 overdue, 1 invalid\n" in out
    assert r"File: content/bad\xff.md" in out
    assert f"\n* [NEW] {shown(HOSTILE)}\n" in out
    assert r"File: content/esc\x1b[2J\u202egnp.md" in out


def test_digests_sent_show_names_and_titles_escaped(library: Path, run: Any) -> None:
    result = run("send", "--as-of", "2026-05-01")
    assert (result.code, result.err) == (0, "")
    [eml] = (library / ".review-scheduler" / "outbox").glob("*.eml")
    message = message_from_bytes(eml.read_bytes(), policy=policy.default)
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    for part in (text.get_content(), html.get_content()):
        assert r"content/bad\xff.md" in part
        _safe(part.replace("\r\n", "\n").replace("\n", " "))


def test_controls_are_shown_escaped_on_a_terminal_too(library: Path) -> None:
    settings = cli.settings_for(None)
    result = check(settings, [], library, date(2026, 5, 1))
    coloured = CHECK_FORMATS.render("text", result, RenderOptions(color=True, width=400))
    assert "\x1b[1;31m" in coloured  # the report's own colours
    _safe(re.sub("\x1b\\[[0-9;]*m", "", coloured))  # and nothing else
    assert r"\x1b]0;owned\x07" in coloured


def test_json_keeps_exact_values_and_is_strict_utf8(library: Path, run: Any) -> None:
    out = run("check", "--as-of", "2026-05-01", "--format", "json").out
    out.encode("utf-8")  # strict
    titles = {d["title"] for d in json.loads(out)["documents"]}
    assert HOSTILE in titles  # JSON escapes controls itself: the value is exact
    assert "\x1b" not in out  # written as \u001b


# --------------------------------------------------------------------------- Markdown


@pytest.mark.parametrize("root", ["content", "."])
def test_markdown_names_and_titles_cannot_forge_rows_or_inject_html(
    tmp_path: Path, run: Any, monkeypatch: pytest.MonkeyPatch, root: str
) -> None:
    """With the root ".", the problems' list items start with the names themselves."""
    write_doc(tmp_path / "config" / "scheduler.toml", CONFIG.replace('"content"', f'"{root}"'))
    hostile = {
        "a|b\n| forged | row |.md": "<script>alert(1)</script> | `code` *b* [l](javascript:x)",
        "<img src=x onerror=alert(1)>.md": "&lt;b&gt; \\| ~~gone~~ <b>x</b>",
        "back`tick``s\\|.md": "1. # not a heading\r\n| forged | row |",
        "# heading.md": "_under_ line",
        "1. one.md": "- a list",
        "- dash.md": "+ plus",
        "+ plus.md": "= equals",
    }
    prefix = "" if root == "." else f"{root}/"
    for name, title in hostile.items():
        write_doc(tmp_path / root / name, frontmatter(title=_yaml(title), url=None))
    monkeypatch.chdir(tmp_path)
    out = run("check", "--as-of", "2026-05-01", "--format", "markdown").out
    _safe(out)

    tokens = MarkdownIt("commonmark", {"html": True}).enable("table").parse(out)
    assert not [t for t in tokens if t.type == "html_block"]
    rows: list[list[str]] = []
    items: list[str] = []
    for index, token in enumerate(tokens):
        if token.type == "tr_open":
            rows.append([])
        if token.type != "inline" or index < 2:
            continue
        in_cell = tokens[index - 1].type in ("th_open", "td_open")
        in_item = tokens[index - 2].type == "list_item_open"
        if not (in_cell or in_item):
            continue
        assert token.children is not None
        # nothing but text: no HTML, links, emphasis, code or line breaks
        assert {child.type for child in token.children} <= {"text"}, token.content
        text = "".join(child.content for child in token.children)
        (rows[-1] if in_cell else items).append(text)
    assert [len(row) for row in rows] == [6] * (1 + len(hostile))  # the header and one a document
    assert {row[4] for row in rows[1:]} == {shown(prefix + name) for name in hostile}
    assert {row[3] for row in rows[1:]} == {shown(title) for title in hostile.values()}
    assert {item.split(": warning:")[0] for item in items} == {
        shown(f"{prefix}{name}:1") for name in hostile
    } | {shown(f"{prefix}back`tick``s\\|.md:2")}  # its title spans two lines: RS208
    opened = [t.type for t in tokens if t.type.endswith("_open")]
    assert opened.count("bullet_list_open") == 1  # the problems, and no list in them
    assert not {"heading_open", "ordered_list_open", "blockquote_open"} & set(opened)


# --------------------------------------------------------------------------- status, outbox


def test_status_text_and_json() -> None:
    when = datetime(2026, 5, 1, 7, tzinfo=UTC)
    last = Run(1, "cycle", None, when, when, None, {"error": "boom\x1b]0;x\x07 \udcff \u202e"})
    status = Status(
        last, "failed", None, "0 7 * * *", "UTC", {"pending": 0, "failed": 0, "sent": 0}
    )
    text = _safe(STATUS_FORMATS.render("text", status, RenderOptions()))
    assert r"failed: boom\x1b]0;x\x07 \xff \u202e" in text
    data = json.loads(STATUS_FORMATS.render("json", status, RenderOptions()).encode("utf-8"))
    assert data["last_cycle"]["counts"]["error"] == "boom\x1b]0;x\x07 \\xff \u202e"


def test_outbox_text_and_json() -> None:
    when = datetime(2026, 5, 1, 7, tzinfo=UTC)
    to = Recipient("ed\u202e@example.org", OutboxStatus.FAILED, 550, "no\x1b[2J \udcff")
    row = OutboxRow(1, "k", OutboxStatus.FAILED, "Sub\x07ject", when, 3, when, (to,))
    listing = OutboxListing([row], {"pending": 0, "failed": 1, "sent": 0})
    text = _safe(OUTBOX_FORMATS.render("text", listing, RenderOptions()))
    assert "attempts=3 Sub\\x07ject\n" in text
    assert r"    ed\u202e@example.org: failed 550 no\x1b[2J \xff" in text
    out = OUTBOX_FORMATS.render("json", listing, RenderOptions())
    assert json.loads(out.encode("utf-8"))["messages"][0]["recipients"][0]["reply"] == (
        "no\x1b[2J \\xff"
    )


# --------------------------------------------------------------------------- the escaping rule


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain text, ünïcode and emoji 👩‍⚕️ a\\b", "plain text, ünïcode and emoji 👩‍⚕️ a\\b"),
        ("\x1b[2J", r"\x1b[2J"),
        ("\x07\x00\x7f", r"\x07\x00\x7f"),
        ("a\nb\rc\td", r"a\nb\rc\td"),
        ("\x9b\x85", r"\u009b\u0085"),
        ("\u202a\u202b\u202c\u202d\u202e", r"\u202a\u202b\u202c\u202d\u202e"),
        (
            "\u2066\u2067\u2068\u2069\u200e\u200f\u061c",
            r"\u2066\u2067\u2068\u2069\u200e\u200f\u061c",
        ),
        ("\u2028\u2029", r"\u2028\u2029"),
        (os.fsdecode(b"n\xe9\xff.md"), r"n\xe9\xff.md"),  # the bytes of a name, as bytes
        ("\ud800", r"\ud800"),  # a lone surrogate that is no byte
    ],
)
def test_shown(text: str, expected: str) -> None:
    assert shown(text) == expected


def test_shown_lines_keeps_line_breaks() -> None:
    assert shown_lines("a\x1b\r\nb\n\u202ec\rd\n") == "a\\x1b\r\nb\n\\u202ec\\rd\n"


_ESCAPE = re.compile(r"\\(?:x([0-9a-f]{2})|u([0-9a-f]{4})|([nrt]))")


def _unshown(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        byte, code, letter = match.groups()
        if letter:
            return {"n": "\n", "r": "\r", "t": "\t"}[letter]
        if byte:
            value = int(byte, 16)
            return chr(value if value < 0x80 else 0xDC00 + value)
        return chr(int(code, 16))

    return _ESCAPE.sub(one, text)


@given(st.text(st.characters(blacklist_categories=(), blacklist_characters="\\")))
def test_shown_is_safe_strict_utf8_and_reversible(text: str) -> None:
    escaped = shown(text)
    assert UNSAFE.search(escaped) is None
    escaped.encode("utf-8")
    assert shown(escaped) == escaped
    assert _unshown(escaped) == text


@given(st.text(st.characters(blacklist_categories=())))
def test_json_safe_is_strict_utf8_and_changes_only_undecodable_bytes(text: str) -> None:
    encoded = json_safe(json.dumps({"path": text}, ensure_ascii=False))
    encoded.encode("utf-8")
    expected = re.sub("[\ud800-\udfff]", lambda m: shown(m.group()), text)
    assert json.loads(encoded) == {"path": expected}
