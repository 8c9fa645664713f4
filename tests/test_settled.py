"""A reminder cycle that found nothing to do answers the next one with the same inputs: the day,
the settings, the code, the folder it runs from, every file as stat finds it, and the store's
ledger, review log, dates seen and snoozes (its generation). Any change among them means a
full cycle.

Real cycles (``send``), a real SQLite store (and PostgreSQL), the .eml outbox. Each cycle's
clock is passed in: a minute after the library's last change, unless a test says otherwise.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import sqlite3
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from scheduler.config import Settings, load_settings
from scheduler.errors import TemplateError
from scheduler.notify.outbox import Outbox
from scheduler.runtime.cycle import CycleReport, plan_cycle
from scheduler.store import LogEntry, LogKind, Settled, Snooze, open_store
from scheduler.usecases.reminders import send
from scheduler.usecases.reviews import evidence, observed
from scheduler.usecases.settled import cycle_key, walk

from .conftest import frontmatter, write_doc

CONFIG = """\
[content]
root = "docs"
[routing]
default = ["team@example.org"]
[reminders]
escalate_to = ["lead@example.org"]
[mail]
from_address = "reviews@example.org"
{extra}
"""
DAY = date(2026, 5, 1)
ANSWERED = "nothing changed since the last cycle found nothing to do"


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the outbox folder is taken from the current folder


def _library(root: Path, extra: str = "") -> Settings:
    write_doc(root / "config" / "scheduler.toml", CONFIG.format(extra=extra))
    docs = root / "docs"
    for index in range(4):  # overdue, to the team
        write_doc(
            docs / f"late-{index}.md",
            frontmatter(title=f"Late {index}", lastReviewed="2026-01-1" + str(index)),
        )
    write_doc(docs / "soon.md", frontmatter(title="Soon", lastReviewed="2026-02-20"))
    write_doc(docs / "fine.md", frontmatter(title="Fine", lastReviewed="2026-04-20"))
    write_doc(docs / "sub" / "bad.md", frontmatter(title="Bad", lastReviewed="2026-02-30"))
    write_doc(
        docs / "owned.md",
        frontmatter(title="Owned", lastReviewed="2025-10-01", owner="ed@example.org"),
    )
    name = os.fsdecode(b"caf\xe9.md")  # not UTF-8
    write_doc(docs / name, frontmatter(title="Caf\u00e9", lastReviewed="2026-04-25"))
    return load_settings(root / "config" / "scheduler.toml", root)


class Cycles:
    """Runs cycles as ``send`` does, telling which were answered by a settled one."""

    def __init__(self, settings: Settings, cwd: Path, caplog: pytest.LogCaptureFixture) -> None:
        self.settings = settings
        self.cwd = cwd
        self.caplog = caplog

    def __call__(
        self, today: date = DAY, *, clock: Callable[[], datetime] | None = None
    ) -> tuple[CycleReport, bool]:
        later = datetime.now(UTC) + timedelta(minutes=1)
        self.caplog.clear()
        with self.caplog.at_level(logging.INFO, logger="scheduler"):
            report = send(self.settings, self.cwd, today, clock or (lambda: later))
        answered = any(ANSWERED in r.getMessage() for r in self.caplog.records)
        read = any(r.getMessage().startswith("documents: ") for r in self.caplog.records)
        assert answered != read  # an answered cycle walks, but looks at no document
        return report, answered

    def settle(self, today: date = DAY) -> CycleReport:
        """Cycles until one is answered; at most three are needed (one that queues, one that
        finds nothing to do, one answered)."""
        for _ in range(3):
            report, answered = self(today)
            if answered:
                return report
        raise AssertionError("no cycle was answered by a settled one")


def _store_rows(settings: Settings, cwd: Path) -> dict[str, list[Any]]:
    """What the store holds that a cycle decides from or writes, less the run history."""
    with open_store(settings.store, cwd) as store:
        return {
            "ledger": sorted(store.ledger.entries()),
            "log": [(e.path, e.kind, e.old_date, e.new_date) for e in store.reviews.entries()],
            "seen": sorted(store.reviews.seen().values()),
            "outbox": sorted(row.key for row in store.outbox.rows()),
        }


def test_a_cycle_that_found_nothing_answers_the_next(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _library(tmp_path)
    cycles = Cycles(settings, tmp_path, caplog)
    first, answered = cycles()
    # the team's digest, ed's, and the lead's escalation digest (owned.md is long overdue)
    assert not answered and len(first.queued) == 3
    second, answered = cycles()
    assert not answered and second.queued == () and second.plan.digests == ()
    rows = _store_rows(settings, tmp_path)
    third, answered = cycles()
    assert answered
    assert (third.documents, third.outstanding) == (second.documents, second.outstanding) == (9, 7)
    assert third.queued == () and third.plan.digests == () and third.delivery is not None
    assert _store_rows(settings, tmp_path) == rows  # nothing written
    assert len(list(tmp_path.rglob("*.eml"))) == 3
    _, answered = cycles()
    assert answered  # and again
    with open_store(settings.store, tmp_path) as store:
        last = store.runs.last("cycle")
    assert last is not None and last.detail["documents"] == 9  # recorded as every cycle is


def _hand_edit(root: Path) -> None:
    late = root / "docs" / "late-0.md"
    late.write_text(late.read_text().replace("2026-01-10", "2026-04-30"))


def _touch(root: Path) -> None:
    fine = root / "docs" / "fine.md"
    stat = fine.stat()
    os.utime(fine, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000))


def _snooze(root: Path, settings: Settings) -> None:
    with open_store(settings.store, root) as store:
        store.snoozes.snooze(
            [Snooze("docs/late-1.md", date(2026, 6, 1), "rewrite", None, datetime.now(UTC))]
        )


def _stamp(root: Path, settings: Settings) -> None:
    """A review recorded with nothing else changed (a rubber stamp), the file left as it was."""
    with open_store(settings.store, root) as store:
        stamped = LogEntry(
            "docs/late-2.md",
            LogKind.REVIEWED,
            datetime.now(UTC),
            "ed@example.org",
            old_date=date(2026, 1, 12),
            new_date=date(2026, 1, 12),
            content_changed=False,
        )
        store.reviews.append([stamped])


def _foreign_write(root: Path, settings: Settings) -> None:
    """Another process (another version, a hand-made fix) changes the ledger."""
    with sqlite3.connect(root / ".review-scheduler" / "state.sqlite3") as db:
        db.execute("UPDATE reminder_ledger SET notified_on = '2026-04-20'")


CHANGES: dict[str, Callable[[Path, Settings], Any]] = {
    "a date moved by hand": lambda root, _: _hand_edit(root),
    "a file's times": lambda root, _: _touch(root),
    "a new file": lambda root, _: write_doc(root / "docs" / "new.md", frontmatter(title="New")),
    "a file deleted": lambda root, _: (root / "docs" / "soon.md").unlink(),
    "a file renamed": lambda root, _: (root / "docs" / "fine.md").rename(
        root / "docs" / "fine2.md"
    ),
    "a snooze": _snooze,
    "a review recorded": _stamp,
    "the ledger, by another process": _foreign_write,
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_any_change_means_a_full_cycle(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, change: str
) -> None:
    settings = _library(tmp_path)
    cycles = Cycles(settings, tmp_path, caplog)
    cycles.settle()
    CHANGES[change](tmp_path, settings)
    full = _full_plan(settings, tmp_path, DAY)
    report, answered = cycles()
    assert not answered
    assert list(report.queued) == [d.key for d in full]
    # and settles again: the same day, unless a reminder is due that today's digest, queued
    # already, did not carry (then the next day)
    if report.plan.digests:
        cycles.settle(DAY + timedelta(days=1))
    else:
        cycles.settle()


def test_the_next_day_another_folder_or_other_settings_mean_a_full_cycle(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _library(tmp_path)
    cycles = Cycles(settings, tmp_path, caplog)
    cycles.settle()
    assert not cycles(DAY + timedelta(days=1))[1]
    cycles.settle(DAY + timedelta(days=1))
    assert not cycles(DAY)[1]  # the day before: not the day settled last
    cycles.settle()
    wider = Settings(**{**settings.__dict__, "review": type(settings.review)(due_soon_days=90)})
    report, answered = Cycles(wider, tmp_path, caplog)()
    assert not answered and report.outstanding == 9  # fine.md, café.md due soon within 90 days
    cycles.settle()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    moved = load_settings(tmp_path / "config" / "scheduler.toml", elsewhere)
    assert not Cycles(moved, elsewhere, caplog)()[1]


def test_files_changed_just_before_the_cycle_are_not_trusted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A file changed within two seconds of a cycle's walk may change again with the same
    times: that cycle settles nothing, however little it found to do."""
    settings = _library(tmp_path)
    cycles = Cycles(settings, tmp_path, caplog)
    cycles.settle()
    _touch(tmp_path)
    changed = (tmp_path / "docs" / "fine.md").stat()
    just_after = datetime.fromtimestamp(changed.st_ctime_ns / 1e9 + 1, UTC)
    for _ in range(3):
        report, answered = cycles(clock=lambda: just_after)
        assert not answered and report.plan.digests == ()
    assert cycles()[1] is False  # the last cycle found nothing but settled nothing
    assert cycles()[1] is True


def test_a_template_error_never_settles(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    templates = tmp_path / "templates"
    write_doc(templates / "subject.txt", "{{ digest.nothing }}\n")
    settings = _library(tmp_path, f'templates = "{templates}"')
    cycles = Cycles(settings, tmp_path, caplog)
    for _ in range(3):
        with pytest.raises(TemplateError, match="has no attribute 'nothing'"):
            cycles()
    with open_store(settings.store, tmp_path) as store:
        assert store.settled.current()[1] is None
        assert store.ledger.entries() == []


def _full_plan(settings: Settings, cwd: Path, today: date) -> tuple[Any, ...]:
    """The digests a full cycle would queue now, from the store as it is."""
    with open_store(settings.store, cwd) as store:
        ledger, known = Outbox(store).ledger(), evidence(store, today)
        queued = Outbox(store).queued
        _, plan = plan_cycle(settings, cwd, today, ledger, known, write=False)
        skipped = queued(plan)
    return tuple(d for d in plan.digests if d.key not in skipped)


def test_answered_cycles_decide_what_full_cycles_decide(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Random edits, snoozes and days between cycles: whenever a cycle is answered by a settled
    one, a full cycle from the same store and files would have planned and noticed nothing."""
    settings = _library(tmp_path)
    cycles = Cycles(settings, tmp_path, caplog)
    rng = random.Random(1602)
    today = DAY
    counts = {True: 0, False: 0}
    for _ in range(40):
        move = rng.random()
        if move < 0.15:
            today += timedelta(days=rng.choice([1, 3, 8]))
        elif move < 0.45:
            kind = rng.choice(list(CHANGES))
            if kind in {"a file deleted", "a file renamed"}:
                kind = "a new file" if not (tmp_path / "docs" / "new.md").exists() else kind
            with contextlib.suppress(FileNotFoundError):  # deleted or renamed already
                CHANGES[kind](tmp_path, settings)
        with open_store(settings.store, tmp_path) as store:
            seen = store.reviews.seen()
            ledger, known = Outbox(store).ledger(), evidence(store, today)
        result, plan = plan_cycle(settings, tmp_path, today, ledger, known, write=False)
        now = datetime.now(UTC)
        updates, _ = observed(seen, result.documents, tmp_path, settings, now)
        report, answered = cycles(today)
        counts[answered] += 1
        if answered:
            assert plan.digests == () and plan.remember == () and plan.forget == ()
            assert updates == []
            counted = (len(result.documents), result.outstanding)
            assert (report.documents, report.outstanding) == counted
    assert counts[True] >= 10 and counts[False] >= 10, counts


def test_the_key_covers_every_file_and_the_day(tmp_path: Path) -> None:
    settings = _library(tmp_path)
    walked = walk(settings, tmp_path, DAY, 0)
    assert walked.key == cycle_key(settings, tmp_path, DAY, walked.files)
    assert walked.key != cycle_key(settings, tmp_path, DAY + timedelta(days=1), walked.files)
    assert walked.key != cycle_key(settings, tmp_path, DAY, walked.files[1:])
    first = walked.files[0]
    assert walked.key != cycle_key(
        settings,
        tmp_path,
        DAY,
        [first._replace(size=first.size + 1), *walked.files[1:]],  # type: ignore[union-attr]
    )
    assert walk(settings, tmp_path, DAY, 0).key == walked.key
    later = Settled(walked.key or "", 5, 8, 7, walked.newest_ns + 2_000_000_001)
    assert walked.answered_by(later, 5)
    assert not walked.answered_by(later, 6)  # the store's tables changed since
    assert not walked.answered_by(later._replace(stamp_ns=walked.newest_ns + 2_000_000_000), 5)
    assert walked.settles(8, 7, 5) is None  # stamp 0: every file looks too fresh


def test_a_postgresql_store_settles_too(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, pg_cluster: Any
) -> None:
    url = pg_cluster.url(pg_cluster.database())
    settings = _library(tmp_path, f'[store]\nurl = "{url}"')
    cycles = Cycles(settings, tmp_path, caplog)
    assert [cycles()[1] for _ in range(3)] == [False, False, True]
    _snooze(tmp_path, settings)
    assert not cycles()[1]


def test_cache_clear_forgets_the_settled_cycle(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, run: Any
) -> None:
    """``cache clear`` promises that the next run reads every document: cycles included."""
    settings = _library(tmp_path)
    cycles = Cycles(settings, tmp_path, caplog)
    cycles.settle()
    assert run("cache", "clear", "--config", str(tmp_path / "config" / "scheduler.toml")).code == 0
    report, answered = cycles()
    assert not answered and report.documents == 9
    assert cycles()[1]  # that cycle found nothing to do, and settled again
