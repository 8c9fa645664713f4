"""The report snapshot beside the parse cache: warm JSON reports taken from one file, the same
bytes as reports built document by document, whatever changed, broke or was removed. Real SQLite
files and snapshot files in tmp_path; runs are dated after the files changed (``later``)."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import sqlite3
import time
from datetime import date, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any

import pytest

import scheduler.content.cache as cache_module
import scheduler.content.snapshot as snapshot_module
import scheduler.render.check as render_check
import scheduler.usecases.check as check_module
from scheduler.config import Settings, load_settings
from scheduler.content.cache import RACY_NS, ParseCache
from scheduler.content.loader import Discovery
from scheduler.content.snapshot import SUFFIX
from scheduler.render.check import JsonEntries
from scheduler.results import CheckResult, State
from scheduler.usecases.check import Selection, check, clear_cache

from .conftest import frontmatter, write_doc
from .test_cache import STORE, library, reads
from .test_encoded_report import encoded_run, report

__all__ = ["library", "reads"]

DAY = date(2026, 5, 1)
SNAPSHOT = STORE.with_name(STORE.name + SUFFIX)


@pytest.fixture
def settings(library: Path) -> Settings:
    return load_settings(library / "config" / "scheduler.toml")


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the documents looked up in the parse cache."""
    paths: list[str] = []
    real = ParseCache.lookup

    def counting(self: ParseCache, file: Any) -> Any:
        paths.append(file.display)
        return real(self, file)

    monkeypatch.setattr(ParseCache, "lookup", counting)
    return paths


def fresh(settings: Settings, library: Path, today: date = DAY, **options: Any) -> str:
    """The report of a run without any cache, built document by document."""
    return report(check(settings, [], library, today, **options))


def head(path: Path = SNAPSHOT) -> dict[str, Any]:
    """What the snapshot's last line says of it."""
    loaded: dict[str, Any] = json.loads(path.read_bytes().rpartition(b"\n")[2])
    return loaded


@pytest.mark.parametrize(
    "today", [DAY, date(2026, 4, 10), date(2026, 12, 31), date(2024, 1, 1), date(2030, 1, 1)]
)
def test_a_warm_run_takes_every_entry_from_the_snapshot(
    library: Path,
    settings: Settings,
    reads: dict[str, int],
    lookups: list[str],
    today: date,
) -> None:
    later = time.time_ns() + 10 * RACY_NS
    encoded_run(settings, library, DAY, later)  # reads every document, writes the snapshot
    written = head()
    assert written["entries"] == 11  # every document, the unreadable ones too
    reads["parsed"] = reads["digested"] = 0
    lookups.clear()
    warm = encoded_run(settings, library, today, later + RACY_NS)
    looked = sorted(lookups)
    assert reads == {"parsed": 0, "digested": 0}
    assert report(warm) == fresh(settings, library, today)
    # Looked up in the parse cache: only documents whose review falls between the two days.
    facts_needed = {
        doc.path
        for doc in check(settings, [], library, today).documents
        if doc.last_reviewed and min(DAY, today) < doc.last_reviewed <= max(DAY, today)
    }
    assert looked == sorted(facts_needed)
    assert head() == written  # nothing changed: not written again


def test_an_edited_document_is_read_again_and_kept(
    library: Path, settings: Settings, reads: dict[str, int], lookups: list[str]
) -> None:
    later = time.time_ns() + 10 * RACY_NS
    encoded_run(settings, library, DAY, later)
    write_doc(library / "docs" / "good.md", frontmatter(source="NCI", title="Edited title"))
    reads["parsed"] = 0
    lookups.clear()
    edited = encoded_run(settings, library, DAY, later + RACY_NS)
    assert reads["parsed"] == 1 and lookups == ["docs/good.md"]
    assert report(edited) == fresh(settings, library)
    assert '"Edited title"' in report(edited)
    lookups.clear()
    again = encoded_run(settings, library, DAY, later + 2 * RACY_NS)
    assert report(again) == report(edited) and lookups == []  # the new entry was kept


def test_new_and_removed_documents(library: Path, settings: Settings, lookups: list[str]) -> None:
    later = time.time_ns() + 10 * RACY_NS
    encoded_run(settings, library, DAY, later)
    (library / "docs" / "warn.md").unlink()
    write_doc(library / "docs" / "zz-new.md", frontmatter(title="A new page"))
    lookups.clear()
    changed = encoded_run(settings, library, DAY, later + RACY_NS)
    assert lookups == ["docs/zz-new.md"]
    assert report(changed) == fresh(settings, library)
    assert "docs/warn.md" not in report(changed) and "A new page" in report(changed)
    with sqlite3.connect(library / STORE) as db:
        names = {name for (name,) in db.execute("SELECT name FROM parse_cache")}
    assert b"warn.md" not in names and b"zz-new.md" in names  # the removed one is forgotten
    assert head()["entries"] == 11


def test_a_file_changed_just_before_the_run_is_not_kept(
    library: Path, settings: Settings, lookups: list[str]
) -> None:
    """A file whose times are within RACY_NS of the run could change again unseen: the
    snapshot leaves it to the parse cache, which checks its digest."""
    later = time.time_ns() + 10 * RACY_NS
    encoded_run(settings, library, DAY, later)
    write_doc(library / "docs" / "good.md", frontmatter(source="NCI", title="Just written"))
    just_now = (library / "docs" / "good.md").stat().st_mtime_ns + RACY_NS // 2
    encoded_run(settings, library, DAY, just_now)
    lookups.clear()
    warm = encoded_run(settings, library, DAY, later + RACY_NS)
    assert lookups == ["docs/good.md"]
    assert report(warm) == fresh(settings, library)


def flipped(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]


DAMAGE = {
    "a flipped byte": lambda data: flipped(data, len(data) // 2),
    "a flipped byte in a template": lambda data: flipped(data, data.rfind(b"Example page")),
    "cut short": lambda data: data[: len(data) // 2],
    "no last line": lambda data: data.rpartition(b"\n")[0],
    "not JSON": lambda data: data.rpartition(b"\n")[0] + b"\n{nope",
    "an older format": lambda data: data.replace(b'"format": 1', b'"format": 0', 1),
    "another key": lambda data: data.replace(b'"key": "', b'"key": "0', 1),
    "empty": lambda data: b"",
    "a count that does not add up": lambda data: data.replace(
        b'"entries": 11', b'"entries": 12', 1
    ),
}


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_a_damaged_snapshot_is_not_used_and_is_written_again(
    library: Path, settings: Settings, reads: dict[str, int], lookups: list[str], kind: str
) -> None:
    later = time.time_ns() + 10 * RACY_NS
    encoded_run(settings, library, DAY, later)
    whole = SNAPSHOT.read_bytes()
    SNAPSHOT.write_bytes(DAMAGE[kind](whole))
    reads["parsed"] = reads["digested"] = 0
    lookups.clear()
    warm = encoded_run(settings, library, DAY, later + RACY_NS)
    assert reads == {"parsed": 0, "digested": 0}  # the parse cache answered
    assert len(lookups) == 11
    assert report(warm) == fresh(settings, library)
    assert SNAPSHOT.read_bytes() == whole  # written again as it was


def test_a_snapshot_belongs_to_one_folder_and_one_set_of_paths(
    library: Path, settings: Settings, lookups: list[str]
) -> None:
    later = time.time_ns() + 10 * RACY_NS
    encoded_run(settings, library, DAY, later)
    lookups.clear()
    with cache_module.opened(settings, library, later + RACY_NS) as cache:
        named = check(
            settings, [Path("docs/sub")], library, DAY, cache=cache, encoder=encoded_encoder()
        )
    assert len(lookups) == 4  # not taken from the snapshot of the whole library
    lookups.clear()
    assert report(named) == report(check(settings, [Path("docs/sub")], library, DAY))


def encoded_encoder() -> Any:
    return JsonEntries()


def test_a_state_filter_and_a_changed_document_merge_with_kept_entries(
    library: Path, settings: Settings
) -> None:
    later = time.time_ns() + 10 * RACY_NS
    encoded_run(settings, library, DAY, later)
    write_doc(library / "docs" / "aa-first.md", frontmatter(lastReviewed="2020-01-01"))
    for chosen in (Selection(), Selection(frozenset({State.OVERDUE, State.INVALID}))):
        warm = encoded_run(settings, library, DAY, later + RACY_NS, selection=chosen)
        assert report(warm) == fresh(settings, library, selection=chosen)


def test_names_that_are_not_utf8_come_back_as_written(
    library: Path, settings: Settings, lookups: list[str]
) -> None:
    odd = os.fsencode(library / "docs") + b"/caf\xe9 %s 100%.md"
    fd = os.open(odd, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    os.write(fd, frontmatter(title="100% of %s and %d").encode())
    os.close(fd)
    later = time.time_ns() + 10 * RACY_NS
    cold = encoded_run(settings, library, DAY, later)
    lookups.clear()
    warm = encoded_run(settings, library, DAY, later + RACY_NS)
    assert lookups == []
    assert report(warm) == report(cold) == fresh(settings, library)
    assert "caf\\\\xe9 %s 100%.md" in report(warm) and "100% of %s and %d" in report(warm)


def test_clearing_the_cache_removes_the_snapshot(library: Path, settings: Settings) -> None:
    encoded_run(settings, library, DAY, time.time_ns() + 10 * RACY_NS)
    assert SNAPSHOT.is_file()
    clear_cache(settings, library)
    assert not SNAPSHOT.exists()


def test_two_runs_leave_a_whole_snapshot(library: Path, settings: Settings) -> None:
    """Runs that write at the same time replace the file whole: the survivor is one of them."""
    later = time.time_ns() + 10 * RACY_NS
    first: CheckResult = encoded_run(settings, library, DAY, later)
    whole = SNAPSHOT.read_bytes()
    leftovers = [p for p in SNAPSHOT.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == [] and whole.count(b"\n") >= 1
    assert report(encoded_run(settings, library, DAY, later + RACY_NS)) == report(first)


@pytest.mark.parametrize(("seed", "chunk"), [(1, None), (2, None), (3, 7)])
def test_rounds_of_random_edits_give_the_reports_of_a_fresh_read(
    library: Path,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    seed: int,
    chunk: int | None,
) -> None:
    """Documents edited, added and removed at random between warm runs, on days before and
    after the reviews: every report equals the one built document by document. (``chunk``:
    the snapshot written a few characters at a time.)"""
    if chunk is not None:
        monkeypatch.setattr(snapshot_module, "_CHUNK_CHARACTERS", chunk)
    rng = random.Random(seed)
    docs = library / "docs" / "many"
    frequencies = ["monthly", "quarterly", "P30D", "annually", "weekly"]

    def page(number: int) -> str:
        reviewed = date(2026, 1, 1) + timedelta(days=rng.randrange(-400, 400))
        return frontmatter(
            title=f"Page {number} {'%s' if number % 7 == 0 else ''}",
            lastReviewed=reviewed.isoformat(),
            reviewFrequency=rng.choice(frequencies),
            status=rng.choice(["active", "active", "active", "draft"]),
        )

    for number in range(60):
        write_doc(docs / f"p{number:03}.md", page(number))
    stamp = time.time_ns() + 10 * RACY_NS
    for round_ in range(6):
        for name in rng.sample(sorted(p.name for p in docs.iterdir()), 5):
            if rng.random() < 0.3:
                (docs / name).unlink()
            else:
                write_doc(docs / name, page(rng.randrange(1000)))
        write_doc(docs / f"new-{round_}.md", page(round_))
        today = date(2026, 1, 1) + timedelta(days=rng.randrange(-500, 500))
        stamp += RACY_NS
        for _ in range(2):  # with the edits, then warm
            stamp += RACY_NS
            warm = encoded_run(settings, library, today, stamp)
            assert report(warm) == fresh(settings, library, today)
            written = head()
            opened = snapshot_module.Snapshot.open(
                SNAPSHOT, written["key"], 0, 0, JsonEntries.separator
            )
            assert opened.loaded == written["entries"] == len(warm.states)
            assert len(opened.lasts) == len(opened.ranks) == len(opened.paths) == opened.loaded
            assert sum(opened.lengths) + 4 * (opened.loaded - 1) == len(opened.text)


def test_a_report_too_large_to_copy_is_written_as_one(library: Path, settings: Settings) -> None:
    """With nothing changed, every kept entry is filled in one piece, larger than the renderer
    copies into others: the report is still the one built document by document."""
    for number in range(300):
        write_doc(library / "docs" / "bulk" / f"page-{number:03}.md", frontmatter(title="x" * 80))
    later = time.time_ns() + 10 * RACY_NS
    encoded_run(settings, library, DAY, later)
    warm = encoded_run(settings, library, DAY, later + RACY_NS)
    assert warm.encoded is not None
    pieces = list(warm.encoded.pieces)
    assert len(pieces) == 1 and len(pieces[0]) > render_check._LARGE
    assert report(warm) == fresh(settings, library)


@pytest.mark.parametrize("chunk", [1, 3, 7, 1 << 20])
def test_the_templates_written_again_are_those_kept_with_those_added(
    monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """Runs of kept templates are copied from the snapshot's text, new ones put where their
    cuts say, with the separator between every two: checked against joining them one by one,
    for empty templates (documents that need their facts) too, at the start, end and between."""
    monkeypatch.setattr(snapshot_module, "_CHUNK_CHARACTERS", chunk)
    rng = random.Random(chunk)
    separator = JsonEntries.separator
    for _ in range(300):
        kept = [rng.choice(["", f"T{i}-{'x' * i}"]) for i in range(rng.randrange(12))]
        snapshot = snapshot_module.Snapshot(Path("unused"), "key", 0, 0, separator)
        snapshot.text = separator.join(kept)
        snapshot.lengths = [len(template) for template in kept]
        snapshot.starts = list(
            accumulate((n + len(separator) for n in snapshot.lengths), initial=0)
        )
        retained = sorted(rng.sample(range(len(kept)), rng.randrange(len(kept) + 1)))
        count = rng.randrange(4)
        cuts = sorted(rng.randrange(len(retained) + 1) for _ in range(count))
        added = [rng.choice(["", f"NEW{i}"]) for i in range(count)]
        expected = [kept[i] for i in retained]
        for cut, template in reversed(list(zip(cuts, added, strict=True))):
            expected.insert(cut, template)
        written = "".join(snapshot._templates(retained, cuts, added))
        assert written == separator.join(expected)


@pytest.fixture
def split(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Warm runs split their walk from the first document, in two processes; the pids of the
    processes started for it."""
    monkeypatch.setattr(check_module, "SPLIT_FROM", 1)
    forked: list[int] = []
    real = os.fork

    def fork() -> int:
        pid = real()
        if pid:
            forked.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", fork)
    return forked


def two_workers(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings, performance=dataclasses.replace(settings.performance, workers=2)
    )


def spread(library: Path) -> None:
    """Documents in several top-level folders, so that both halves of a walk find some."""
    for folder in "abcdef":
        for number in range(3):
            write_doc(library / "docs" / folder / f"{number}.md", frontmatter(title=f"{folder}"))


def test_a_large_warm_run_walks_in_two_processes(
    library: Path, settings: Settings, lookups: list[str], split: list[int]
) -> None:
    spread(library)
    settings = two_workers(settings)
    later = time.time_ns() + 10 * RACY_NS
    encoded_run(settings, library, DAY, later)
    assert split == []  # nothing to split without a snapshot
    write_doc(library / "docs" / "a" / "1.md", frontmatter(title="Edited in one half"))
    write_doc(library / "docs" / "b" / "1.md", frontmatter(title="Edited in the other"))
    (library / "docs" / "c" / "2.md").unlink()
    lookups.clear()
    warm = encoded_run(settings, library, DAY, later + RACY_NS)
    assert len(split) == 1
    assert sorted(lookups) == ["docs/a/1.md", "docs/b/1.md"]
    assert report(warm) == fresh(settings, library)
    lookups.clear()
    again = encoded_run(settings, library, DAY, later + 2 * RACY_NS)
    assert lookups == [] and len(split) == 2
    assert report(again) == report(warm)
    assert head()["entries"] == len(again.states)


def test_a_split_walk_that_meets_a_link_to_a_folder_is_walked_again_whole(
    library: Path, settings: Settings, lookups: list[str], split: list[int]
) -> None:
    spread(library)
    (library / "docs" / "a" / "also-b").symlink_to("../x")
    write_doc(library / "docs" / "x" / "linked.md", frontmatter(title="Through a link"))
    settings = two_workers(settings)
    later = time.time_ns() + 10 * RACY_NS
    cold = encoded_run(settings, library, DAY, later)
    warm = encoded_run(settings, library, DAY, later + RACY_NS)
    assert len(split) == 1
    assert report(warm) == report(cold) == fresh(settings, library)


def test_a_failed_half_is_walked_here(
    library: Path,
    settings: Settings,
    lookups: list[str],
    split: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spread(library)
    settings = two_workers(settings)
    later = time.time_ns() + 10 * RACY_NS
    encoded_run(settings, library, DAY, later)
    real = Discovery.walk_share

    def failing(self: Discovery, target: Path, share: int, shares: int) -> Any:
        if share:
            raise OSError("the other half fails")
        return real(self, target, share, shares)

    monkeypatch.setattr(Discovery, "walk_share", failing)
    lookups.clear()
    warm = encoded_run(settings, library, DAY, later + RACY_NS)
    assert len(split) == 1 and lookups == []
    assert report(warm) == fresh(settings, library)


def test_worker_processes_make_the_entries_a_cold_run_keeps(
    library: Path,
    settings: Settings,
    reads: dict[str, int],
    lookups: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Read in worker processes, each document comes back with its entry's parts and what the
    snapshot keeps, made there: the cold report, and the warm one from what they made, are
    those built document by document."""
    spread(library)
    settings = dataclasses.replace(
        settings,
        performance=dataclasses.replace(settings.performance, workers=2, parallel_threshold=1),
    )
    made_here: list[str] = []
    real = check_module._Encoding.parts

    def counting(self: Any, record: str, doc: Any) -> str | None:
        made_here.append(doc.path)
        return real(self, record, doc)

    monkeypatch.setattr(check_module._Encoding, "parts", counting)
    later = time.time_ns() + 10 * RACY_NS
    cold = encoded_run(settings, library, DAY, later)
    assert reads["parsed"] == 0 and made_here == []  # not in this process: in the workers
    lookups.clear()
    warm = encoded_run(settings, library, DAY, later + RACY_NS)
    assert lookups == []  # every entry from the snapshot the workers' parts made
    assert report(cold) == report(warm) == fresh(settings, library)
