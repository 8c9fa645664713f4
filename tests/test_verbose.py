"""-v and -vv: what a run used, what it read, and how long each stage took, on stderr."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from scheduler.content.cache import RACY_NS

from .conftest import frontmatter, write_doc

CONFIG = """\
[content]
root = "content"
[store]
path = "state/state.sqlite3"
[routing]
default = ["team@example.org"]
"""


@pytest.fixture
def library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_doc(tmp_path / "config" / "scheduler.toml", CONFIG)
    for name in ("a.md", "b.md", "guides/c.md"):
        write_doc(tmp_path / "content" / name, frontmatter(title=name))
    monkeypatch.chdir(tmp_path)
    return tmp_path


STAGE = re.compile(r"^INFO scheduler\.commands: (.+) took \d+\.\d{3} s$", re.M)


def test_verbose_says_config_store_cache_and_timings(
    library: Path, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Runs stamp the cache later than the files' changes, so that entries are trusted.
    real = time.time_ns
    monkeypatch.setattr(time, "time_ns", lambda: real() + 10 * RACY_NS)
    args = ("--as-of", "2026-03-01", "--fail-on", "never")
    quiet = run(*args, "--no-cache", prog="check-reviews")
    assert quiet.code == 0 and quiet.err == ""

    first = run("-v", *args, prog="check-reviews")
    assert first.code == 0 and first.out == quiet.out  # the report is unchanged
    assert "INFO scheduler.commands: config: config/scheduler.toml\n" in first.err
    assert "INFO scheduler.commands: state store: state/state.sqlite3\n" in first.err
    assert "documents: 3 found, 3 read, 0 from the parse cache\n" in first.err
    assert STAGE.findall(first.err) == [
        "loading the settings",
        "finding, reading and judging documents",
        "writing the text output",
    ]
    assert "DEBUG" not in first.err

    write_doc(library / "content" / "b.md", frontmatter(title="b changed"))
    second = run("-vv", *args, prog="check-reviews")
    assert "documents: 3 found, 1 read, 2 from the parse cache\n" in second.err
    assert "DEBUG scheduler.usecases.check: reading: content/b.md\n" in second.err
    assert "DEBUG scheduler.usecases.check: from the parse cache: content/a.md\n" in second.err

    uncached = run("-v", "validate", "--no-cache", "--as-of", "2026-03-01")
    assert uncached.code == 0
    assert "documents: 3 found, 3 read, 0 from the parse cache (the cache is off)\n" in uncached.err
    assert STAGE.findall(uncached.err) == [
        "loading the settings",
        "finding and reading documents",
        "writing the text output",
    ]


def test_verbose_without_a_config_names_the_defaults(
    tmp_path: Path, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_doc(tmp_path / "one.md", frontmatter())
    monkeypatch.chdir(tmp_path)
    result = run("-v", "--no-cache", "--as-of", "2026-03-01", "one.md", prog="check-reviews")
    assert "config: none found, built-in defaults\n" in result.err


def test_a_file_name_with_escapes_is_shown_safely(library: Path, run: Any) -> None:
    write_doc(library / "content" / "evil\x1b[31m.md", frontmatter())
    result = run("-vv", "--as-of", "2026-03-01", prog="check-reviews")
    assert "\x1b" not in result.err
    assert "reading: content/evil\\x1b[31m.md\n" in result.err
