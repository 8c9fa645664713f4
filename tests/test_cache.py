"""The parse cache: real SQLite files in tmp_path, the commands run in-process."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

import scheduler.content.cache as cache_module
import scheduler.content.reading as reading
from scheduler.config import load_settings
from scheduler.content.cache import RACY_NS, CacheEntry, ParseCache
from scheduler.content.loader import SourceFile
from scheduler.usecases.check import check, parse_cache

from .conftest import Result, frontmatter, write_doc

AS_OF = ("--as-of", "2026-05-01")
STORE = Path(".review-scheduler/state.sqlite3")


@pytest.fixture
def library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small library with every kind of document: valid, warnings, errors, exempt, unreadable,
    reviewed "in the future", owned through an alias or by nobody known."""
    write_doc(
        tmp_path / "config" / "scheduler.toml",
        '[content]\nroot = "docs"\n'
        '[routing]\ndefault = ["team@example.org"]\n'
        '[routing.aliases]\n"#web" = ["web@example.org"]\n'
        '[[routing.rules]]\nmatch = { source = "NCI" }\neditors = ["nci@example.org"]\n',
    )
    docs = tmp_path / "docs"
    write_doc(docs / "good.md", frontmatter(source="NCI"))
    write_doc(docs / "warn.md", frontmatter(url=None, title="Ünïcode “quotes” – 日本語"))
    write_doc(docs / "bad.md", frontmatter(lastReviewed="2025-02-30", reviewFrequency="biannually"))
    write_doc(docs / "draft.md", frontmatter(status="draft", license=None))
    write_doc(docs / "future.md", frontmatter(lastReviewed="2026-12-01"))
    write_doc(docs / "owned.md", frontmatter(owner="['#web', 'not an address']"))
    write_doc(docs / "typo.md", frontmatter(lastReveiwed="2026-01-01", lastReviewed=None))
    write_doc(docs / "sub" / "deeper" / "page.md", frontmatter(reviewFrequency="P90D"))
    write_doc(docs / "sub" / "empty.md", "")
    write_doc(docs / "sub" / "nofm.md", "# Just a heading\n")
    (docs / "sub" / "latin1.md").write_bytes(b"---\ntitle: caf\xe9\n---\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts how often documents are parsed, and how often a digest alone is taken."""
    counts = {"parsed": 0, "digested": 0}

    def counting(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any) -> Any:
            counts[name] += 1
            return real(*args)

        return wrapper

    monkeypatch.setattr(reading, "load_document", counting("parsed", reading.load_document))
    monkeypatch.setattr(reading, "head_digest", counting("digested", reading.head_digest))
    return counts


def rows(path: Path = STORE) -> dict[str, tuple[int, int]]:
    """name -> (size, mtime_ns) of every cache entry."""
    with sqlite3.connect(path) as db:
        found = db.execute("SELECT folder, name, size, mtime_ns FROM parse_cache").fetchall()
    return {os.fsdecode(f + b"/" + n): (size, mtime) for f, n, size, mtime in found}


def as_fresh(run: Any, *args: str) -> Result:
    """Run a command with the cache, checking it says what a run without the cache says."""
    result: Result = run(*args)
    fresh = run(*args, "--no-cache")
    assert (result.code, result.out) == (fresh.code, fresh.out)
    return result


def same_size_edit(path: Path, old: str, new: str) -> None:
    """Change ``path``'s text keeping its size and modification time."""
    assert len(old) == len(new)
    stat = path.stat()
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns


@pytest.mark.parametrize("fmt", ["json", "text", "csv", "markdown", "github"])
def test_cold_warm_and_changed_runs_give_the_reports_of_a_fresh_read(
    library: Path, run: Any, reads: dict[str, int], fmt: str
) -> None:
    args = ("check", *AS_OF, "--format", fmt, "--fail-on", "never")
    cold = run(*args)
    assert cold.code == 0 and cold.err == ""
    assert reads["parsed"] == 11  # every document, once
    assert STORE.is_file()

    reads["parsed"] = 0
    warm = run(*args)
    assert (warm.code, warm.out, warm.err) == (0, cold.out, "")
    assert reads["parsed"] == 0  # everything came from the cache
    assert warm.out == run(*args, "--no-cache").out

    same_size_edit(library / "docs" / "good.md", "2026-01-15", "2025-01-15")  # now overdue
    (library / "docs" / "bad.md").unlink()
    write_doc(library / "docs" / "sub" / "new.md", frontmatter(title="Added"))
    reads["parsed"] = 0
    changed = run(*args)
    fresh = run(*args, "--no-cache")
    assert changed.out == fresh.out and changed.err == ""
    assert changed.out != cold.out
    assert reads["parsed"] == 2 + 11  # the edited and the added file; then the fresh run
    assert "new.md" in changed.out and "bad.md" not in changed.out


def test_validate_reads_through_the_same_cache(
    library: Path, run: Any, reads: dict[str, int]
) -> None:
    cold = run("validate", *AS_OF, "--format", "json")
    parsed = reads["parsed"]
    warm = run("validate", *AS_OF, "--format", "json")
    assert (warm.code, warm.out) == (cold.code, cold.out)
    assert reads["parsed"] == parsed  # nothing parsed again
    assert warm.out == run("validate", *AS_OF, "--format", "json", "--no-cache").out
    assert '"2026-12-01 is after today (2026-05-01)"' in warm.out  # worked out on every run
    later = run("validate", "--as-of", "2026-12-31", "--format", "json")
    assert "is after today" not in later.out


def test_deleted_files_and_folders_leave_the_cache(library: Path, run: Any) -> None:
    run("check", *AS_OF)
    before = rows()
    assert str(library / "docs" / "sub" / "deeper" / "page.md") in before
    (library / "docs" / "warn.md").unlink()
    (library / "docs" / "sub" / "deeper" / "page.md").unlink()
    (library / "docs" / "sub" / "deeper").rmdir()
    run("check", *AS_OF)
    after = rows()
    assert set(before) - set(after) == {
        str(library / "docs" / "warn.md"),
        str(library / "docs" / "sub" / "deeper" / "page.md"),
    }


def test_checking_some_paths_keeps_the_entries_of_the_others(library: Path, run: Any) -> None:
    run("check", *AS_OF)
    before = rows()
    result = as_fresh(run, "check", *AS_OF, "docs/good.md", "--format", "json")
    assert result.out.count('"path"') == 1
    assert rows() == before


def test_a_touched_but_unchanged_file_is_not_parsed_again(
    library: Path, run: Any, reads: dict[str, int]
) -> None:
    cold = run("check", *AS_OF, "--format", "json")
    page = library / "docs" / "good.md"
    later = page.stat().st_mtime_ns + 5_000_000_000
    os.utime(page, ns=(later, later))
    reads["parsed"] = reads["digested"] = 0
    touched = run("check", *AS_OF, "--format", "json")
    assert touched.out == cold.out
    assert reads["parsed"] == 0 and reads["digested"] > 0  # the digest settled it
    assert rows()[str(page)] == (page.stat().st_size, later)  # the entry holds for the new time
    assert touched.out == run("check", *AS_OF, "--format", "json", "--no-cache").out


def test_same_size_and_time_but_new_content_is_seen(library: Path, run: Any) -> None:
    cold = run("check", *AS_OF, "--format", "json")
    same_size_edit(library / "docs" / "warn.md", "quarterly", "annually!")
    result = run("check", *AS_OF, "--format", "json")
    assert result.out == run("check", *AS_OF, "--format", "json", "--no-cache").out
    assert result.out != cold.out
    assert "annually!" in result.out


def test_entries_are_trusted_only_for_files_changed_well_before_they_were_read() -> None:
    file = SourceFile("/d/a.md", "a.md", "a.md", 100, 10_000_000_000, 10_000_000_000)
    cache = ParseCache.off()

    def entry(size: int = 100, mtime: int = file.mtime_ns, stamp: int = 0) -> CacheEntry:
        return CacheEntry(b"a.md", size, mtime, file.ctime_ns, stamp, b"", "", "a.md", "", "")

    settled = file.mtime_ns + RACY_NS + 1
    assert cache.holds(entry(stamp=settled), file)
    assert not cache.holds(entry(stamp=settled - 2), file)  # changed as it was read: racy
    assert not cache.holds(entry(stamp=file.mtime_ns - 1), file)  # dated after the read
    assert not cache.holds(entry(size=99, stamp=settled), file)
    assert not cache.holds(entry(mtime=file.mtime_ns - 1, stamp=settled), file)


def test_settled_entries_are_not_even_digested(library: Path, reads: dict[str, int]) -> None:
    """Runs started well after the files last changed trust the cache without reading."""
    settings = load_settings(library / "config" / "scheduler.toml")
    later = time.time_ns() + 10 * RACY_NS
    with parse_cache(settings, library, later) as cache:
        cold = check(settings, [], library, date(2026, 5, 1), cache=cache)
    reads["parsed"] = reads["digested"] = 0
    with parse_cache(settings, library, later + RACY_NS) as cache:
        warm = check(settings, [], library, date(2026, 5, 1), cache=cache)
    assert reads == {"parsed": 0, "digested": 0}
    assert warm == cold == check(settings, [], library, date(2026, 5, 1))  # without a cache


def test_racy_entries_are_checked_by_digest(library: Path, reads: dict[str, int]) -> None:
    """A file read in the same moment it was written is verified by its digest next time."""
    settings = load_settings(library / "config" / "scheduler.toml")
    now = time.time_ns()
    with parse_cache(settings, library, now) as cache:
        check(settings, [], library, date(2026, 5, 1), cache=cache)
    reads["parsed"] = reads["digested"] = 0
    with parse_cache(settings, library, now + 10 * RACY_NS) as cache:
        warm = check(settings, [], library, date(2026, 5, 1), cache=cache)
    assert reads["parsed"] == 0 and reads["digested"] == 11
    assert warm == check(settings, [], library, date(2026, 5, 1))  # without a cache


def test_the_cache_is_dropped_when_the_version_changes(
    library: Path, run: Any, reads: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    cold = run("check", *AS_OF, "--format", "json")
    monkeypatch.setattr(cache_module, "__version__", "99.0.0")
    reads["parsed"] = 0
    upgraded = run("check", *AS_OF, "--format", "json")
    assert upgraded.out == cold.out
    assert reads["parsed"] == 11  # every document read again
    reads["parsed"] = 0
    again = run("check", *AS_OF, "--format", "json")
    assert reads["parsed"] == 0  # and cached again under the new version
    assert again.out == run("check", *AS_OF, "--format", "json", "--no-cache").out


@pytest.mark.parametrize(
    "setting",
    [
        '[metadata]\nrecommended = ["url", "source", "language", "owner"]\n',
        '[fields]\nurl = "link"\n',
        '[routing]\ndefault = ["other@example.org"]\n',
        "[content]\nmax_file_bytes = 100\n",
    ],
)
def test_the_cache_is_dropped_when_a_setting_that_shapes_it_changes(
    library: Path, run: Any, setting: str
) -> None:
    cold = run("check", *AS_OF, "--format", "json")
    config = library / "config" / "scheduler.toml"
    text = config.read_text()
    if setting.startswith("[routing]"):
        text = text.replace('default = ["team@example.org"]', 'default = ["other@example.org"]')
    elif setting.startswith("[content]"):
        text = text.replace('root = "docs"', 'root = "docs"\nmax_file_bytes = 100')
    else:
        text += setting
    config.write_text(text)
    result = run("check", *AS_OF, "--format", "json")
    assert result.out != cold.out
    assert result.out == run("check", *AS_OF, "--format", "json", "--no-cache").out


def test_cache_clear(library: Path, run: Any, reads: dict[str, int]) -> None:
    assert run("cache", "clear").out == (f"No state store at {STORE}: nothing to clear.\n")
    assert not STORE.exists()
    run("check", *AS_OF)
    cleared = run("cache", "clear")
    assert (cleared.code, cleared.out) == (
        0,
        f"Cleared the parse cache in {STORE} (11 documents).\n",
    )
    assert rows() == {}
    reads["parsed"] = 0
    after = run("check", *AS_OF)
    assert reads["parsed"] == 11
    assert after.out == run("check", *AS_OF, "--no-cache").out


def test_no_cache_neither_uses_nor_creates_the_store(library: Path, run: Any) -> None:
    result = run("check", *AS_OF, "--no-cache", "--format", "json")
    assert result.err == ""
    assert not STORE.parent.exists()


@pytest.mark.parametrize("kind", ["parent is a file", "not a database"])
def test_an_unusable_store_only_costs_the_cache(library: Path, run: Any, kind: str) -> None:
    if kind == "parent is a file":
        write_doc(library / "blocker", "a file where the folder should be")
        store = library / "blocker" / "state.sqlite3"
    else:
        store = write_doc(library / "garbage.sqlite3", "this is not SQLite " * 100)
    config = library / "config" / "scheduler.toml"
    config.write_text(config.read_text() + f'[store]\npath = "{store}"\n')
    expected = run("check", *AS_OF, "--format", "json", "--no-cache").out
    for _ in range(2):
        result = run("check", *AS_OF, "--format", "json")
        assert result.out == expected
        warnings = result.err.splitlines()
        assert warnings[-1].startswith(  # said once per run
            "WARNING scheduler.content.cache: working without the parse cache"
        )
        # a store that is there but unreadable: the report goes on without its review log too
        assert warnings[:-1] == (
            [
                "WARNING scheduler.usecases.reviews: working without the review log (snoozes,"
                f" rubber stamps): the state store {store}: file is not a database: the file is"
                " not a review-scheduler state store: check [store] url, or move the file aside"
            ]
            if kind == "not a database"
            else []
        )


def test_a_cache_written_by_a_newer_version_is_left_alone(library: Path, run: Any) -> None:
    run("check", *AS_OF)
    with sqlite3.connect(STORE) as db:
        db.execute("UPDATE schema_steps SET version = 99 WHERE component = 'parse_cache'")
    result = run("check", *AS_OF, "--format", "json")
    assert result.out == run("check", *AS_OF, "--format", "json", "--no-cache").out
    assert "written by a newer review-scheduler" in result.err


# --------------------------------------------------------------------------- runs at once

# Settings another run may have (from the environment): each changes the report.
OTHER_SETTINGS = {
    "narrowed licenses": ("SCHEDULER_METADATA__LICENSES", '["CC0-1.0"]'),
    "another default editor": ("SCHEDULER_ROUTING__DEFAULT", '["other@example.org"]'),
}
REPORT = ("check", *AS_OF, "--format", "json", "--fail-on", "never")


def run_in_another_process(cwd: Path, *env: tuple[str, str]) -> str:
    """``check`` in a process of its own, to the end; its report."""
    done = subprocess.run(
        [sys.executable, "-m", "scheduler", *REPORT],
        cwd=cwd,
        env={**os.environ, **dict(env)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    return done.stdout


@pytest.mark.parametrize("moment", ["after the fingerprint check", "before the first write"])
@pytest.mark.parametrize("other", sorted(OTHER_SETTINGS))
def test_a_run_under_other_settings_at_the_same_time_leaves_no_wrong_entries(
    library: Path, run: Any, monkeypatch: pytest.MonkeyPatch, moment: str, other: str
) -> None:
    """Another process, under other settings, runs from start to end while this one is between
    checking the cache's fingerprint and writing its entries (or reading them)."""
    setting = OTHER_SETTINGS[other]
    theirs: list[str] = []

    def another_run() -> None:
        if not theirs:
            theirs.append(run_in_another_process(library, setting))

    if moment == "after the fingerprint check":
        real_open = ParseCache.open

        def open_then_another_run(cls: type[ParseCache], *args: Any) -> ParseCache:
            cache = real_open(*args)
            another_run()
            return cache

        monkeypatch.setattr(ParseCache, "open", classmethod(open_then_another_run))
    else:
        real_flush = ParseCache.flush

        def another_run_then_flush(self: ParseCache) -> bool:
            another_run()
            return real_flush(self)

        monkeypatch.setattr(ParseCache, "flush", another_run_then_flush)
    mine = as_fresh(run, *REPORT)
    assert len(theirs) == 1

    monkeypatch.setenv(*setting)
    assert theirs[0] == run(*REPORT, "--no-cache").out != mine.out
    for _ in range(2):  # the entries are replaced, then used
        as_fresh(run, *REPORT)
    monkeypatch.delenv(setting[0])
    for _ in range(2):
        as_fresh(run, *REPORT)


# --------------------------------------------------------------------------- damaged entries


def facts_with(index: int, value: Any) -> Callable[[str], str]:
    """A change to a record: its item ``index`` becomes ``value``."""

    def change(record: str) -> str:
        fields = json.loads(record)
        fields[index] = value
        return json.dumps(fields)

    return change


# column -> how it is damaged
DAMAGE: dict[str, tuple[str, Callable[[str], str]]] = {
    "a bad date": ("facts", lambda record: record.replace('"2026-01-15"', '"2026-02-30"')),
    "bad JSON": ("facts", lambda record: record[:-1]),
    "no JSON at all": ("facts", lambda record: ""),
    "more after the record": ("facts", lambda record: record + "[]"),
    "too few fields": ("facts", lambda record: json.dumps(json.loads(record)[:-1])),
    "not an array": ("facts", lambda record: '{"title": "x"}'),
    "a title that is not text": ("facts", facts_with(0, 5)),
    "a date that is not text": ("facts", facts_with(2, [2026, 1, 15])),
    "an unknown severity": ("facts", facts_with(7, [[1, "title", "fatal", "m", None, "RS106", 1]])),
    "an unknown rule": ("facts", facts_with(7, [[1, "title", "error", "m", None, "RS999", 1]])),
    "a short problem": ("facts", facts_with(7, [[1, "title", "error"]])),
    "further fields that are not a table": ("facts", facts_with(8, [["language", "en"]])),
    "nesting too deep for Python": ("facts", lambda record: "[" * 100_000 + "]" * 100_000),
    "a route of one item": ("route", lambda route: '["ed@example.org"]'),
    "editors that are not text": ("route", lambda route: "[[1],[]]"),
    "a bad problem in the route": ("route", lambda route: '[["ed@example.org"],[[1]]]'),
    "a route that is not JSON": ("route", lambda route: "[["),
}


def damage(path: Path, column: str, change: Callable[[str], str]) -> None:
    folder, name = os.fsencode(path.parent), os.fsencode(path.name)
    with sqlite3.connect(STORE) as db:
        where = "WHERE folder = ? AND name = ?"
        (old,) = db.execute(f"SELECT {column} FROM parse_cache {where}", (folder, name)).fetchone()  # noqa: S608
        # The facts record, less what JSON reports keep after it (their entry's parts).
        record, separator, kept = old.partition("\n")
        changed = change(record) + separator + kept
        db.execute(f"UPDATE parse_cache SET {column} = ? {where}", (changed, folder, name))  # noqa: S608


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_an_entry_that_cannot_be_decoded_is_a_miss_and_is_replaced(
    library: Path, run: Any, reads: dict[str, int], kind: str
) -> None:
    run(*REPORT)
    damage(library / "docs" / "good.md", *DAMAGE[kind])
    reads["parsed"] = 0
    damaged = run(*REPORT)
    assert reads["parsed"] == 1  # that document, again
    assert damaged.err == (
        "WARNING scheduler.content.cache: 1 entry of the parse cache could not be decoded;"
        " the documents were read again\n"
    )
    assert damaged.out == run(*REPORT, "--no-cache").out
    reads["parsed"] = 0
    repaired = as_fresh(run, *REPORT)
    assert (repaired.err, reads["parsed"]) == ("", 11)  # 11: the run without the cache


def test_entry_times_of_the_wrong_type_are_not_trusted(
    library: Path, run: Any, reads: dict[str, int]
) -> None:
    run(*REPORT)
    with sqlite3.connect(STORE) as db:
        db.execute("UPDATE parse_cache SET stamp_ns = 'late' WHERE name = ?", (b"good.md",))
        db.execute("UPDATE parse_cache SET size = x'00' WHERE name = ?", (b"warn.md",))
    reads["parsed"] = 0
    damaged = run(*REPORT)
    assert (damaged.err, reads["parsed"]) == ("", 1)  # warn.md; good.md is settled by digest
    assert damaged.out == run(*REPORT, "--no-cache").out
    with sqlite3.connect(STORE) as db:
        stamps = db.execute("SELECT typeof(stamp_ns), typeof(size) FROM parse_cache").fetchall()
    assert set(stamps) == {("integer", "integer")}  # both entries rewritten


# --------------------------------------------------------------------------- the current folder


def test_editors_of_files_outside_the_content_root_are_those_a_fresh_read_gives(
    tmp_path: Path, run: Any, reads: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Routing globs see a path relative to the content root, or for a file outside it the path
    shown, which depends on the current folder. One store serves runs from either folder."""
    config = write_doc(
        tmp_path / "scheduler.toml",
        f'[content]\nroot = "{tmp_path / "docs"}"\n'
        f'[store]\nurl = "sqlite:///{tmp_path / "state.sqlite3"}"\n'
        '[routing]\ndefault = ["team@example.org"]\n'
        '[[routing.rules]]\npaths = ["outside/*.md"]\neditors = ["out@example.org"]\n',
    )
    (tmp_path / "docs").mkdir()
    write_doc(tmp_path / "outside" / "extra.md", frontmatter())

    def editors(cwd: Path, target: str) -> list[str]:
        monkeypatch.chdir(cwd)
        report = json.loads(as_fresh(run, *REPORT, "--config", str(config), target).out)
        return [e for doc in report["documents"] for e in doc["editors"]]

    for _ in range(2):
        assert editors(tmp_path, "outside/extra.md") == ["out@example.org"]
        assert editors(tmp_path / "outside", "extra.md") == ["team@example.org"]
    reads["parsed"] = 0
    editors(tmp_path / "outside", "extra.md")
    assert reads["parsed"] == 1  # the run without the cache: the other came from the cache


def test_dry_runs_and_previews_look_at_the_parse_cache_and_write_nothing(
    library: Path, run: Any, reads: dict[str, int]
) -> None:
    cold = run("check", *AS_OF)
    assert reads["parsed"] == 11  # every document
    before = (library / STORE).read_bytes()
    dry = ("send", *AS_OF, "--dry-run")
    preview = ("preview", "--editor", "team@example.org", *AS_OF)
    for args in (dry, preview):
        reads["parsed"] = 0
        assert run(*args).code == 0
        assert reads["parsed"] == 0  # every document answered by the cache
    page = library / "docs" / "good.md"
    page.write_text(page.read_text().replace("Example page", "Edited page"))
    for args in (dry, dry, preview):  # read each time: what a look reads is not kept
        reads["parsed"] = 0
        assert run(*args).code == 0
        assert reads["parsed"] == 1
    assert "Edited page" in run("send", "--as-of", "2026-09-01", "--dry-run").out
    assert (library / STORE).read_bytes() == before
    reads["parsed"] = 0
    assert run("send", *AS_OF).code == 0  # a cycle keeps what it reads
    assert reads["parsed"] == 1
    assert cold.code == run("check", *AS_OF).code
