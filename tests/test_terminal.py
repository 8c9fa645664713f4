"""The text report in a real terminal: a pseudo-terminal of a given size; colour switches."""

from __future__ import annotations

import fcntl
import os
import re
import struct
import subprocess
import sys
import termios
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.cells import cell_len

from scheduler.commands.options import wants_color
from scheduler.render import RenderOptions
from scheduler.render.check import _plain_text, _rich_text
from scheduler.results import CheckResult, DocumentReport, State

from .conftest import frontmatter, write_doc

CONFIG = """\
[content]
root = "content"
[store]
path = "state/state.sqlite3"
[routing]
default = ["content-team@example.org"]
[[routing.rules]]
paths = ["guides/**"]
editors = ["patient-information-editors@example.org", "oncology-review-board@example.org"]
"""

LONG_TITLE = "Chemotherapy and radiation therapy side effects: what to expect and how to cope"
DEEP = "guides/treatment/chemotherapy/side-effects/managing-nausea-and-vomiting.md"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
STATES = ("invalid", "overdue", "due soon", "ok", "exempt")


@pytest.fixture
def library(tmp_path: Path) -> Path:
    write_doc(tmp_path / "config" / "scheduler.toml", CONFIG)
    docs = {
        DEEP: frontmatter(title=f"'{LONG_TITLE}'", lastReviewed="2026-01-15"),
        "guides/soon.md": frontmatter(title="Short", lastReviewed="2026-02-20"),
        "ok.md": frontmatter(title="Fine page", reviewFrequency="annually"),
        "draft.md": frontmatter(title="Draft page", status="draft", lastReviewed="2025-01-01"),
        "broken.md": frontmatter(title="Broken page", lastReviewed="2026-02-30"),
    }
    for name, text in docs.items():
        write_doc(tmp_path / "content" / name, text)
    return tmp_path


def _environ(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR")
    }
    env["TERM"] = "xterm-256color"
    env.update(extra)
    return env


def in_terminal(cwd: Path, args: list[str], columns: int, **env: str) -> str:
    """Run check-reviews with its output on a pseudo-terminal ``columns`` wide (no $COLUMNS:
    the width comes from the terminal, as in real use); what it wrote, line ends normalised."""
    main, child = os.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    command = [sys.executable, "-c", "from scheduler.commands.main import *; check_reviews_main()"]
    with subprocess.Popen(
        [*command, *args],
        cwd=cwd,
        env=_environ(**env),
        stdin=subprocess.DEVNULL,
        stdout=child,
        stderr=subprocess.PIPE,
    ) as process:
        os.close(child)
        chunks = []
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the terminal's other side is closed
                break
            if not chunk:
                break
            chunks.append(chunk)
        process.wait(timeout=60)
        assert process.stderr is not None
        assert process.stderr.read() == b""
    os.close(main)
    assert process.returncode == 1  # overdue and invalid documents
    return b"".join(chunks).decode("utf-8").replace("\r\n", "\n")


def _table(text: str) -> list[str]:
    lines = ANSI.sub("", text).splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("State"))
    end = lines.index("", start) if "" in lines[start:] else len(lines)
    return lines[start:end]


@pytest.mark.parametrize("columns", [80, 120, 160])
def test_the_table_fits_the_terminal_and_cuts_no_state_or_date(library: Path, columns: int) -> None:
    text = in_terminal(library, ["--as-of", "2026-05-01"], columns)
    table = _table(text)
    assert all(cell_len(line) <= columns for line in table)
    headers = ["State", "Due", "Days", "Title", "Path", "Editors"]
    assert table[0].split() == (headers if columns > 150 else [*headers[:3], "Document"])
    body = "\n".join(table[2:])
    # every state, due date and day count whole, at the start of its row
    for state, due, days in [
        ("invalid", "-", ""),
        ("overdue", "2026-04-15", "-16"),
        ("due soon", "2026-05-20", "19"),
        ("ok", "2027-01-15", "259"),
        ("exempt", "2025-04-01", "-395"),
    ]:
        assert re.search(rf"^ {state} +{re.escape(due)} +{days}\b", body, re.M), (state, body)
    # the long title is all there, wrapped over several lines; every address whole
    words = re.findall(r"\S+", body)
    assert not set(LONG_TITLE.split()) - set(words)
    assert {"content-team@example.org", "patient-information-editors@example.org"} <= set(words)
    # the deep path keeps its end (the file's name), shortened from the left where needed
    if columns == 120:
        assert f"content/{DEEP}" in words
    else:
        shortened = [w for w in words if w.endswith("/managing-nausea-and-vomiting.md")]
        assert len(shortened) == 1 and shortened[0].startswith("…/"), shortened
        assert f"content/{DEEP}" not in body


def test_a_tiny_terminal_still_cuts_no_state_or_date(library: Path) -> None:
    table = _table(in_terminal(library, ["--as-of", "2026-05-01"], 30))
    body = "\n".join(table[2:])
    assert re.search(r"^ overdue +2026-04-15 +-16 ", body, re.M), body  # lines overflow instead
    assert re.search(r"^ due soon +2026-05-20 +19 ", body, re.M), body


def test_colour_in_a_terminal_and_its_switches(library: Path) -> None:
    args = ["--as-of", "2026-05-01"]
    assert "\x1b[1;31m" in in_terminal(library, args, 120)  # overdue in bold red
    assert "\x1b[1;31m" in in_terminal(library, args, 120, NO_COLOR="")  # empty: no effect
    assert "\x1b[" not in in_terminal(library, args, 120, NO_COLOR="1")
    assert "\x1b[" not in in_terminal(library, [*args, "--color", "never"], 120)
    assert "\x1b[1;31m" in in_terminal(library, [*args, "--color", "always"], 120, NO_COLOR="1")


def test_colour_on_a_pipe_only_when_forced(library: Path) -> None:
    command = [sys.executable, "-m", "scheduler", "check", "--as-of", "2026-05-01"]

    def piped(*extra: str, **env: str) -> str:
        done = subprocess.run(
            [*command[:3], *extra, *command[3:]],
            cwd=library,
            env=_environ(**env),
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 1, done.stderr
        return done.stdout

    assert "\x1b[" not in piped()
    assert "\x1b[1;31m" in piped(FORCE_COLOR="1")
    assert "\x1b[" not in piped(FORCE_COLOR="")
    assert "\x1b[" not in piped(FORCE_COLOR="1", NO_COLOR="1")
    assert "\x1b[1;31m" in piped("--color", "always")
    forced = piped("--color", "always")
    assert max(len(ANSI.sub("", line)) for line in forced.splitlines()) > 80  # no width: no wrap


@pytest.mark.parametrize(
    ("choice", "environ", "tty", "expected"),
    [
        ("auto", {}, True, True),
        ("auto", {}, False, False),
        ("auto", {"NO_COLOR": ""}, True, True),
        ("auto", {"NO_COLOR": "0"}, True, False),  # any non-empty value, even "0"
        ("auto", {"FORCE_COLOR": "1"}, False, True),
        ("auto", {"FORCE_COLOR": ""}, False, False),
        ("auto", {"FORCE_COLOR": "1", "NO_COLOR": "1"}, False, False),
        ("always", {"NO_COLOR": "1"}, False, True),
        ("never", {"FORCE_COLOR": "1"}, True, False),
    ],
)
def test_colour_decision(choice: str, environ: dict[str, str], tty: bool, expected: bool) -> None:
    assert wants_color(choice, environ, tty) is expected


# Text as documents hold it: letters of several scripts, wide ones, accents, punctuation.
_ALPHABET = st.characters(
    whitelist_categories=("Lu", "Ll", "Lo", "Nd", "Po", "Pd", "Zs", "Sm"),
    max_codepoint=0xFFFF,
)


@given(
    st.lists(
        st.builds(
            DocumentReport,
            path=st.text(_ALPHABET, min_size=1, max_size=40),
            title=st.text(_ALPHABET, max_size=50) | st.none(),
            state=st.sampled_from(State),
            status=st.none(),
            last_reviewed=st.none(),
            review_frequency=st.none(),
            due=st.dates() | st.none(),
            days_until_due=st.integers(-100_000, 100_000) | st.none(),
            editors=st.lists(st.text(_ALPHABET, max_size=20), max_size=3).map(tuple),
            problems=st.just(()),
            line=st.none(),
            url=st.none(),
        ),
        max_size=6,
    )
)
def test_the_report_on_a_pipe_is_what_rich_would_lay_out(docs: list[DocumentReport]) -> None:
    result = CheckResult(date(2026, 5, 1), "UTC", 30, docs)
    assert _plain_text(result) == _rich_text(result, RenderOptions())
