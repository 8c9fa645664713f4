"""The state store's contract: what every backend must do, tested against each of them.

A new backend joins by adding its name to BACKENDS and a way to open a fresh store in
``store_settings``.
"""

from __future__ import annotations

import os
import shutil
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from scheduler.config import StoreSettings
from scheduler.errors import StoreError
from scheduler.notify.channel import Notification, Outcome, Result
from scheduler.notify.reminders import LedgerEntry
from scheduler.review.state import State
from scheduler.store import (
    Attempt,
    CacheEntry,
    Lease,
    LogEntry,
    LogKind,
    OutboxStatus,
    Queued,
    Recipient,
    Replica,
    Retimed,
    RunOutcome,
    Seen,
    Settled,
    Snooze,
    StateStore,
    open_store,
    store_exists,
)

from .pg_server import PgCluster

BACKENDS = ["sqlite", "postgresql"]

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
LEASE = timedelta(minutes=10)


@pytest.fixture(params=BACKENDS)
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> StoreSettings:
    """Settings naming a fresh, empty store of one backend."""
    if request.param == "sqlite":
        return StoreSettings(url=f"sqlite:///{tmp_path / 'state' / 'state.sqlite3'}")
    if request.param == "postgresql":
        cluster: PgCluster = request.getfixturevalue("pg_cluster")
        return StoreSettings(url=cluster.url(cluster.database()))
    raise AssertionError(f"no way to open a {request.param} store")


@pytest.fixture
def store(store_settings: StoreSettings, tmp_path: Path) -> Iterator[StateStore]:
    with open_store(store_settings, tmp_path) as opened:
        yield opened


def note(key: str, *to: str, cc: Sequence[str] = (), channel: str = "email") -> Notification:
    return Notification(
        key=key,
        channel=channel,
        sender="reviews@example.org",
        sender_name="Reviews",
        to=to or ("ed@example.org",),
        cc=tuple(cc),
        subject=f"Subject of {key}",
        text="text ü\n",
        html="<p>html</p>\n",
        headers=(("Date", "Fri, 01 May 2026 09:00:00 +0000"), ("Message-ID", f"<{key}@x>")),
    )


def entry(recipient: str, path: str, state: State = State.OVERDUE) -> LedgerEntry:
    return LedgerEntry(recipient, path, date(2026, 4, 1), state, date(2026, 5, 1))


def delivered(address: str) -> Attempt:
    return Attempt(address, Result(Outcome.DELIVERED, 250, "ok"), OutboxStatus.SENT, "ok")


def refused(address: str, reply: str = "gone") -> Attempt:
    return Attempt(address, Result(Outcome.PERMANENT, 550, reply), OutboxStatus.FAILED, reply)


def deferred(address: str) -> Attempt:
    return Attempt(address, Result(Outcome.TEMPORARY, 450, "busy"), OutboxStatus.PENDING, "busy")


def statuses(store: StateStore) -> list[tuple[str, OutboxStatus, tuple[Recipient, ...]]]:
    return [(row.key, row.status, row.recipients) for row in store.outbox.rows()]


# --------------------------------------------------------------------------- opening


def test_looking_does_not_create_a_store(store_settings: StoreSettings, tmp_path: Path) -> None:
    assert not store_exists(store_settings, tmp_path)
    with open_store(store_settings, tmp_path):
        pass
    assert store_exists(store_settings, tmp_path)


# --------------------------------------------------------------------------- ledger and enqueue


def test_ledger_round_trip(store: StateStore) -> None:
    assert store.ledger.entries() == []
    remembered = (entry("ed@example.org", "a.md"), entry("ed@example.org", "b.md", State.DUE_SOON))
    added = store.outbox.enqueue([Queued(note("k1"), remembered)], (), T0)
    assert added == ["k1"]
    assert sorted(store.ledger.entries(), key=lambda e: e.path) == list(remembered)

    newer = LedgerEntry(
        "ed@example.org", "a.md", date(2026, 8, 1), State.DUE_SOON, date(2026, 6, 1)
    )
    store.outbox.enqueue([Queued(note("k2"), (newer,))], [("ed@example.org", "b.md")], T0)
    assert store.ledger.entries() == [newer]  # replaced, and b.md forgotten


def test_a_key_is_queued_once_and_its_entries_only_with_it(store: StateStore) -> None:
    store.outbox.enqueue([Queued(note("k1"), (entry("ed@example.org", "a.md"),))], (), T0)
    again = store.outbox.enqueue(
        [Queued(note("k1"), (entry("ed@example.org", "other.md"),)), Queued(note("k2"))], (), T0
    )
    assert again == ["k2"]
    assert [e.path for e in store.ledger.entries()] == ["a.md"]
    assert [row.key for row in store.outbox.rows()] == ["k1", "k2"]


class Crashing(Sequence[Queued]):
    """A batch whose second item cannot be produced: a crash in the middle of an enqueue."""

    def __init__(self, first: Queued) -> None:
        self.first = first

    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: Any) -> Any:
        if index == 0:
            return self.first
        raise RuntimeError("crash in the middle of the enqueue")


def test_a_failure_mid_enqueue_leaves_nothing(store: StateStore) -> None:
    store.outbox.enqueue([Queued(note("before"), (entry("ed@example.org", "kept.md"),))], (), T0)
    batch = Crashing(Queued(note("k1", "a@example.org"), (entry("a@example.org", "a.md"),)))
    with pytest.raises(RuntimeError, match="crash in the middle"):
        store.outbox.enqueue(batch, [("ed@example.org", "kept.md")], T0)
    assert [row.key for row in store.outbox.rows()] == ["before"]
    assert [e.path for e in store.ledger.entries()] == ["kept.md"]
    assert store.outbox.claim(T0, "w", LEASE, 10, channel="email")[0].key == "before"


# --------------------------------------------------------------------------- claiming


def test_a_claimed_notification_is_the_one_queued(store: StateStore) -> None:
    queued = note("k1", "ed@example.org", cc=["boss@example.org", "ed@example.org"])
    store.outbox.enqueue([Queued(queued)], (), T0)
    (claimed,) = store.outbox.claim(T0, "w", LEASE, 10, channel="email")
    assert claimed.notification == queued
    assert (claimed.attempts, claimed.window_start) == (0, T0)
    assert claimed.recipients == (
        Recipient("ed@example.org", OutboxStatus.PENDING),
        Recipient("boss@example.org", OutboxStatus.PENDING),
    )
    assert claimed.pending == ("ed@example.org", "boss@example.org")


def test_claims_are_leased_oldest_first_and_expire(store: StateStore) -> None:
    store.outbox.enqueue([Queued(note(f"k{i}")) for i in range(3)], (), T0)
    first = store.outbox.claim(T0, "a", LEASE, 2, channel="email")
    assert [c.key for c in first] == ["k0", "k1"]
    assert [c.key for c in store.outbox.claim(T0, "b", LEASE, 10, channel="email")] == ["k2"]
    assert (
        store.outbox.claim(T0 + LEASE - timedelta(seconds=1), "c", LEASE, 10, channel="email") == []
    )
    expired = store.outbox.claim(T0 + LEASE, "c", LEASE, 10, channel="email")
    assert [c.key for c in expired] == ["k0", "k1", "k2"]


def test_claims_skip_other_channels_excluded_ids_and_future_attempts(store: StateStore) -> None:
    store.outbox.enqueue([Queued(note("mail")), Queued(note("chat", channel="chat"))], (), T0)
    assert store.outbox.claim(T0 - timedelta(seconds=1), "w", LEASE, 10, channel="email") == []
    (mail,) = store.outbox.claim(T0, "w", LEASE, 10, channel="email")
    store.outbox.release([mail.id], "w")
    assert store.outbox.claim(T0, "w", LEASE, 10, channel="email", exclude=[mail.id]) == []
    (chat,) = store.outbox.claim(T0, "w", LEASE, 10, channel="chat")
    assert chat.key == "chat"


def test_only_the_owner_releases_its_claims(store: StateStore) -> None:
    store.outbox.enqueue([Queued(note("k1"))], (), T0)
    (claimed,) = store.outbox.claim(T0, "a", LEASE, 10, channel="email")
    store.outbox.release([claimed.id], "b")
    assert store.outbox.claim(T0, "b", LEASE, 10, channel="email") == []
    store.outbox.release([claimed.id], "a")
    assert [c.key for c in store.outbox.claim(T0, "b", LEASE, 10, channel="email")] == ["k1"]


def test_the_leases_of_an_owner_can_be_freed(store: StateStore) -> None:
    store.outbox.enqueue([Queued(note(f"k{i}")) for i in range(3)], (), T0)
    store.outbox.claim(T0, "host:1:dead", LEASE, 2, channel="email")
    store.outbox.claim(T0, "host:2:alive", LEASE, 1, channel="email")
    assert sorted(store.outbox.lease_owners()) == ["host:1:dead", "host:2:alive"]
    assert store.outbox.release_owner("host:1:dead") == 2
    assert store.outbox.lease_owners() == ["host:2:alive"]
    assert [c.key for c in store.outbox.claim(T0, "new", LEASE, 10, channel="email")] == [
        "k0",
        "k1",
    ]


# --------------------------------------------------------------------------- recording


def test_record_settles_recipients_and_frees_the_lease(store: StateStore) -> None:
    store.outbox.enqueue([Queued(note("k1", "a@example.org", cc=["b@example.org"]))], (), T0)
    (claimed,) = store.outbox.claim(T0, "w", LEASE, 10, channel="email")
    later = T0 + timedelta(minutes=5)
    attempts = [delivered("a@example.org"), deferred("b@example.org")]
    store.outbox.record(claimed.id, T0, attempts, OutboxStatus.PENDING, 1, later)
    (row,) = store.outbox.rows()
    assert (row.status, row.attempts, row.next_attempt_at) == (OutboxStatus.PENDING, 1, later)
    assert row.recipients == (
        Recipient("a@example.org", OutboxStatus.SENT, 250, "ok"),
        Recipient("b@example.org", OutboxStatus.PENDING, 450, "busy"),
    )
    assert store.outbox.claim(later - timedelta(seconds=1), "w", LEASE, 10, channel="email") == []
    (again,) = store.outbox.claim(later, "other", LEASE, 10, channel="email")  # lease freed
    assert (again.attempts, again.pending) == (1, ("b@example.org",))

    store.outbox.record(
        again.id, later, [refused("b@example.org", "gave up")], OutboxStatus.FAILED, 2, None
    )
    (row,) = store.outbox.rows(OutboxStatus.FAILED)
    assert row.attempts == 2
    assert row.recipients[1] == Recipient("b@example.org", OutboxStatus.FAILED, 550, "gave up")
    assert store.outbox.rows(OutboxStatus.PENDING) == []
    assert store.outbox.claim(later + LEASE, "w", LEASE, 10, channel="email") == []
    assert store.outbox.counts() == {"pending": 0, "sent": 0, "failed": 1, "unconfirmed": 0}


def test_requeue_brings_back_failed_recipients_only(store: StateStore) -> None:
    store.outbox.enqueue(
        [
            Queued(note("k1", "a@example.org", cc=["b@example.org"])),
            Queued(note("k2")),
            Queued(note("k3")),
        ],
        (),
        T0,
    )
    k1, k2, k3 = store.outbox.claim(T0, "w", LEASE, 10, channel="email")
    store.outbox.record(
        k1.id,
        T0,
        [delivered("a@example.org"), refused("b@example.org")],
        OutboxStatus.FAILED,
        1,
        None,
    )
    store.outbox.record(k2.id, T0, [delivered("ed@example.org")], OutboxStatus.SENT, 1, None)
    store.outbox.record(k3.id, T0, [refused("ed@example.org")], OutboxStatus.FAILED, 1, None)
    assert store.outbox.counts() == {"pending": 0, "sent": 1, "failed": 2, "unconfirmed": 0}

    later = T0 + timedelta(days=3)
    assert store.outbox.requeue([k1.id, k2.id, 999], later) == [k1.id]
    (again,) = store.outbox.claim(later, "w", LEASE, 10, channel="email")
    assert (again.key, again.pending, again.window_start) == ("k1", ("b@example.org",), later)
    store.outbox.release([again.id], "w")
    assert store.outbox.requeue(None, later) == [k3.id]
    assert store.outbox.counts() == {"pending": 2, "sent": 1, "failed": 0, "unconfirmed": 0}


def unconfirmed(address: str, status: OutboxStatus = OutboxStatus.PENDING) -> Attempt:
    result = Result(Outcome.UNCONFIRMED, None, "timed out after the data")
    return Attempt(address, result, status, "timed out after the data")


def test_claims_name_the_recipients_left_unconfirmed_in_the_window(store: StateStore) -> None:
    store.outbox.enqueue([Queued(note("k1", "a@example.org", cc=["b@example.org"]))], (), T0)
    (first,) = store.outbox.claim(T0, "w", LEASE, 10, channel="email")
    assert first.unconfirmed == frozenset()
    t1 = T0 + timedelta(minutes=1)
    store.outbox.record(
        first.id,
        t1,
        [unconfirmed("a@example.org"), deferred("b@example.org")],
        OutboxStatus.PENDING,
        1,
        t1,
    )
    (second,) = store.outbox.claim(t1, "w", LEASE, 10, channel="email")
    assert second.unconfirmed == frozenset({"a@example.org"})
    assert second.pending == ("a@example.org", "b@example.org")
    t2 = t1 + timedelta(minutes=1)
    store.outbox.record(
        second.id,
        t2,
        [unconfirmed("a@example.org", OutboxStatus.UNCONFIRMED), delivered("b@example.org")],
        OutboxStatus.UNCONFIRMED,
        2,
        None,
    )
    assert store.outbox.claim(t2 + LEASE, "w", LEASE, 10, channel="email") == []  # held
    (row,) = store.outbox.rows(OutboxStatus.UNCONFIRMED)
    assert row.recipients == (
        Recipient("a@example.org", OutboxStatus.UNCONFIRMED, None, "timed out after the data"),
        Recipient("b@example.org", OutboxStatus.SENT, 250, "ok"),
    )
    assert store.outbox.counts() == {"pending": 0, "sent": 0, "failed": 0, "unconfirmed": 1}

    # queued again by a person: only the unconfirmed recipient, and a fresh window in which
    # the earlier unconfirmed attempts no longer count
    t3 = t2 + timedelta(hours=1)
    assert store.outbox.requeue(None, t3) == [row.id]
    (third,) = store.outbox.claim(t3, "w", LEASE, 10, channel="email")
    assert (third.pending, third.unconfirmed, third.window_start) == (
        ("a@example.org",),
        frozenset(),
        t3,
    )


# --------------------------------------------------------------------------- run history


def test_run_history(store: StateStore) -> None:
    assert store.runs.last("cycle") is None
    first = store.runs.start("cycle", date(2026, 5, 1), T0)
    store.runs.finish(first, RunOutcome.OK, {"documents": 3}, T0 + timedelta(seconds=2))
    run = store.runs.last("cycle")
    assert run is not None
    assert (run.id, run.kind, run.as_of, run.started_at) == (first, "cycle", date(2026, 5, 1), T0)
    assert (run.finished_at, run.outcome, run.detail) == (
        T0 + timedelta(seconds=2),
        RunOutcome.OK,
        {"documents": 3},
    )

    second = store.runs.start("cycle", None, T0 + timedelta(days=1))
    other = store.runs.start("other", None, T0)
    running = store.runs.last("cycle")
    assert running is not None and (running.id, running.outcome, running.as_of) == (
        second,
        None,
        None,
    )
    assert store.runs.mark_interrupted("cycle", T0 + timedelta(days=2)) == 1
    interrupted = store.runs.last("cycle")
    assert interrupted is not None and interrupted.outcome is RunOutcome.INTERRUPTED
    assert interrupted.finished_at == T0 + timedelta(days=2)
    still = store.runs.last("other")
    assert still is not None and (still.id, still.outcome) == (other, None)


# --------------------------------------------------------------------------- parse cache


def cached(name: bytes, size: int = 10, facts: str = "[]", fingerprint: str = "fp1") -> CacheEntry:
    return CacheEntry(
        name,
        size,
        1,
        2,
        3,
        b"\x00digest",
        fingerprint,
        "sub/a.md",
        '[["ed@example.org"],[]]',
        facts,
    )


def test_cache_entries_by_folder(store: StateStore) -> None:
    cache = store.cache
    assert cache.adopt("fp1") is False  # a first fingerprint drops nothing
    odd = b"caf\xe9"  # not UTF-8: any name a file system allows
    cache.write([(b"/d", cached(b"a.md")), (b"/d", cached(odd)), (b"/e", cached(b"b.md"))], [], [])
    assert sorted(cache.folder(b"/d")) == sorted([cached(b"a.md"), cached(odd)])
    assert sorted(cache.folders()) == [b"/d", b"/e"]

    cache.write(
        [(b"/d", cached(b"a.md", size=11, facts='["new"]'))],
        [Retimed(b"/e", b"b.md", 12, 5, 6, 7, b"\x00digest", "fp1")],
        [(b"/d", odd)],
    )
    assert cache.folder(b"/d") == [cached(b"a.md", size=11, facts='["new"]')]
    assert cache.folder(b"/e") == [
        cached(b"b.md")._replace(size=12, mtime_ns=5, ctime_ns=6, stamp_ns=7)
    ]
    cache.forget_folders([b"/e"])
    assert cache.folders() == [b"/d"]


def test_only_the_entry_that_was_checked_gets_new_times(store: StateStore) -> None:
    """Another run may replace an entry between one run's reading it and giving it new times."""
    cache = store.cache
    cache.adopt("fp1")
    cache.write([(b"/d", cached(b"a.md"))], [], [])
    cache.write(
        [],
        [
            Retimed(b"/d", b"a.md", 12, 5, 6, 7, b"other digest", "fp1"),
            Retimed(b"/d", b"a.md", 12, 5, 6, 7, b"\x00digest", "fp2"),
        ],
        [],
    )
    assert cache.folder(b"/d") == [cached(b"a.md")]


def test_cache_fingerprint_and_clear(store: StateStore) -> None:
    cache = store.cache
    cache.adopt("fp1")
    cache.write([(b"/d", cached(b"a.md"))], [], [])
    assert cache.adopt("fp1") is False
    assert cache.folder(b"/d") == [cached(b"a.md")]
    # A run under other settings may write at any time: entries keep their own fingerprint.
    cache.write([(b"/d", cached(b"b.md", fingerprint="fp2"))], [], [])
    assert sorted(cache.folder(b"/d")) == [cached(b"a.md"), cached(b"b.md", fingerprint="fp2")]
    assert cache.adopt("fp2") is True  # the settings changed: entries made under others go
    assert cache.folder(b"/d") == [cached(b"b.md", fingerprint="fp2")]
    cache.write([(b"/d", cached(b"a.md"))], [], [])
    assert cache.adopt("fp2") is False  # unchanged: nothing is dropped
    assert len(cache.folder(b"/d")) == 2
    assert cache.clear() == 2
    assert cache.folders() == []
    assert cache.adopt("fp2") is False  # the fingerprint went too


# --------------------------------------------------------------------------- the daemon lock


def test_one_lock_holder_at_a_time(store_settings: StoreSettings, tmp_path: Path) -> None:
    with ExitStack() as stack:
        first = stack.enter_context(open_store(store_settings, tmp_path))
        second = stack.enter_context(open_store(store_settings, tmp_path))
        assert first.lock_holder() is None
        with first.lock():
            assert second.lock_holder() == os.getpid()
            with pytest.raises(StoreError, match=rf"daemon \(pid {os.getpid()}\) is already"):
                stack.enter_context(second.lock())
        with second.lock():  # released when the block ended
            assert first.lock_holder() == os.getpid()
        assert first.lock_holder() is None


def test_closing_the_store_releases_the_lock(store_settings: StoreSettings, tmp_path: Path) -> None:
    with open_store(store_settings, tmp_path) as second:
        first = open_store(store_settings, tmp_path)
        holding = first.lock()
        holding.__enter__()
        with pytest.raises(StoreError, match="already running"):
            second.lock().__enter__()
        first.close()
        with second.lock():
            assert second.lock_holder() == os.getpid()
        holding.__exit__(None, None, None)


def lose(store_settings: StoreSettings, what: str, pg: PgCluster | None) -> None:
    """Take the store (``what`` = "store") or only its lock ("lock") from under its user, as
    an operator or a clean-up job might: on SQLite the files deleted; on PostgreSQL the
    database dropped (and created again, empty) or the lock's session terminated."""
    if store_settings.url.startswith("sqlite://"):
        path = Path(store_settings.url.removeprefix("sqlite://")[1:])
        if what == "store":
            shutil.rmtree(path.parent)
        else:
            path.with_name(path.name + ".lock").unlink()
        return
    from scheduler.store.postgres import DAEMON_LOCK

    assert pg is not None
    name = urllib.parse.urlsplit(store_settings.url).path.lstrip("/")
    if what == "store":
        pg.psql(f"DROP DATABASE {name} WITH (FORCE)")
        pg.psql(f"CREATE DATABASE {name}")
    else:
        assert DAEMON_LOCK == 1381171202
        terminated = pg.psql(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
            " AND granted AND objid = 1381171202 AND database ="
            " (SELECT oid FROM pg_database WHERE datname = current_database())",
            database=name,
        )
        assert terminated.split() == ["t"]


LOST = "deleted or replaced while in use|lock on the state store .* was lost"


def test_a_held_lock_checks_out(store_settings: StoreSettings, tmp_path: Path) -> None:
    with open_store(store_settings, tmp_path) as store:
        with pytest.raises(StoreError, match="does not hold the lock"):
            store.ensure_locked()
        with store.lock():
            store.ensure_locked()
            store.ensure_locked()  # checking changes nothing
        with pytest.raises(StoreError, match="does not hold the lock"):
            store.ensure_locked()


@pytest.mark.parametrize("what", ["store", "lock"])
def test_a_lost_store_or_lock_is_noticed_before_a_second_holder_works(
    store_settings: StoreSettings, tmp_path: Path, what: str, request: pytest.FixtureRequest
) -> None:
    pg = request.getfixturevalue("pg_cluster") if "postgresql" in store_settings.url else None
    with ExitStack() as stack:
        first = stack.enter_context(open_store(store_settings, tmp_path))
        stack.enter_context(first.lock())
        first.ensure_locked()
        lose(store_settings, what, pg)
        with pytest.raises(StoreError, match=LOST):
            first.ensure_locked()
        # a second user can now take a lock: the first one has been told to stop
        second = stack.enter_context(open_store(store_settings, tmp_path))
        stack.enter_context(second.lock())
        second.ensure_locked()
        with pytest.raises(StoreError, match=LOST):
            first.ensure_locked()


def test_a_running_cycle_is_seen_by_others_until_it_ends(
    store_settings: StoreSettings, tmp_path: Path
) -> None:
    with ExitStack() as stack:
        sender = stack.enter_context(open_store(store_settings, tmp_path))
        looker = stack.enter_context(open_store(store_settings, tmp_path))
        assert not looker.cycle_running()
        with sender.running():
            assert looker.cycle_running()
        assert not looker.cycle_running()
        marking = sender.running()
        marking.__enter__()
        assert looker.cycle_running()
        sender.close()  # as when its process dies: the mark goes with it
        assert not looker.cycle_running()


def test_failing_says_since_when_pending_messages_have_failed(store: StateStore) -> None:
    assert store.outbox.failing() is None
    store.outbox.enqueue([Queued(note("k1")), Queued(note("k2"))], (), T0)
    k1, k2 = store.outbox.claim(T0, "w", LEASE, 10, channel="email")
    later = T0 + timedelta(minutes=5)
    store.outbox.record(k1.id, T0, [deferred("ed@example.org")], OutboxStatus.PENDING, 1, later)
    store.outbox.record(k2.id, later, [deferred("ed@example.org")], OutboxStatus.PENDING, 1, later)
    failing = store.outbox.failing()
    assert failing is not None
    assert (failing.since, failing.messages, failing.last_code) == (T0, 2, 450)
    assert failing.last_reply == "busy"
    (again, _) = store.outbox.claim(later, "w", LEASE, 10, channel="email")
    store.outbox.record(again.id, later, [delivered("ed@example.org")], OutboxStatus.SENT, 2, None)
    failing = store.outbox.failing()
    assert failing is not None and (failing.since, failing.messages) == (later, 1)


# --------------------------------------------------------------------------- review log, snoozes


def test_review_log_keeps_every_entry_in_order(store: StateStore) -> None:
    assert store.reviews.entries() == []
    first = LogEntry(
        "a.md",
        LogKind.REVIEWED,
        T0,
        "ed@example.org",
        date(2026, 1, 1),
        date(2026, 5, 1),
        "minor",
        "fixed a link ü",
    )
    later = LogEntry("b.md", LogKind.EDITED_OUTSIDE, T0 + timedelta(days=1), None, None, None)
    again = LogEntry("a.md", LogKind.REVIEWED, T0 + timedelta(days=2), outcome="no-change")
    store.reviews.append([first, later])
    store.reviews.append([again])
    assert store.reviews.entries() == [first, later, again]
    assert store.reviews.entries("a.md") == [first, again]
    assert store.reviews.entries(since=T0 + timedelta(days=1)) == [later, again]


def test_log_entries_written_together_come_in_the_order_of_their_paths(
    store: StateStore,
) -> None:
    b1 = LogEntry("b.md", LogKind.REMINDED, T0, "ed@example.org", note="overdue")
    a1 = LogEntry("a.md", LogKind.REMINDED, T0, "ed@example.org", note="overdue")
    b2 = LogEntry("b.md", LogKind.REMINDED, T0, "boss@example.org", note="escalation digest")
    store.reviews.append([b1, a1, b2])
    assert store.reviews.entries() == [a1, b1, b2]  # one path's entries keep their order
    c1, c2 = (LogEntry("c.md", LogKind.REMINDED, T0 + LEASE, who) for who in ("x@a.org", "y@a.org"))
    store.outbox.enqueue([Queued(note("k1"), log=(c2,)), Queued(note("k2"), log=(c1, b1))], (), T0)
    assert store.reviews.entries(since=T0 + LEASE) == [c2, c1]
    assert store.reviews.entries("b.md")[-1] == b1


def test_enqueue_writes_its_log_entries_only_when_new(store: StateStore) -> None:
    logged = (
        LogEntry("a.md", LogKind.REMINDED, T0, "ed@example.org", note="overdue"),
        LogEntry("b.md", LogKind.REMINDED, T0, "ed@example.org", note="due_soon"),
    )
    store.outbox.enqueue([Queued(note("k1"), log=logged)], (), T0)
    again = LogEntry("a.md", LogKind.REMINDED, T0 + LEASE, "ed@example.org")
    store.outbox.enqueue([Queued(note("k1"), log=(again,))], (), T0 + LEASE)  # queued before
    assert store.reviews.entries() == list(logged)


def test_snoozes_are_set_replaced_cancelled_and_logged(store: StateStore) -> None:
    assert store.snoozes.listing() == []
    one = Snooze("a.md", date(2026, 6, 1), "waiting for new guidance", "ed@example.org", T0)
    two = Snooze("b.md", date(2026, 7, 1), "rewrite planned", None, T0)
    store.snoozes.snooze([one, two])
    longer = Snooze("a.md", date(2026, 8, 1), "guidance delayed", "ed@example.org", T0 + LEASE)
    store.snoozes.snooze([longer])
    assert store.snoozes.listing() == [longer, two]
    assert store.snoozes.cancel(["b.md", "c.md"], T0 + LEASE, "boss@example.org") == ["b.md"]
    assert store.snoozes.listing() == [longer]
    assert [(e.path, e.kind, e.new_date, e.note, e.editor) for e in store.reviews.entries()] == [
        ("a.md", LogKind.SNOOZED, date(2026, 6, 1), "waiting for new guidance", "ed@example.org"),
        ("b.md", LogKind.SNOOZED, date(2026, 7, 1), "rewrite planned", None),
        ("a.md", LogKind.SNOOZED, date(2026, 8, 1), "guidance delayed", "ed@example.org"),
        ("b.md", LogKind.SNOOZE_CANCELLED, None, None, "boss@example.org"),
    ]


def test_review_log_survives_reopening(store_settings: StoreSettings, tmp_path: Path) -> None:
    logged = LogEntry("a.md", LogKind.REVIEWED, T0, "ed@example.org", outcome="major")
    with open_store(store_settings, tmp_path) as store:
        store.reviews.append([logged])
    with open_store(store_settings, tmp_path) as store:
        assert store.reviews.entries() == [logged]


def test_seen_documents_and_latest_reviews(store: StateStore) -> None:
    assert store.reviews.seen() == {} and store.reviews.latest_reviews() == {}
    first = Seen("a.md", date(2026, 1, 1), None)
    store.reviews.observe([first, Seen("b.md", date(2026, 2, 1), "digest-b")], [])
    hand = LogEntry(
        "a.md", LogKind.EDITED_OUTSIDE, T0, None, date(2026, 1, 1), date(2026, 5, 1),
        content_changed=False,
    )  # fmt: skip
    store.reviews.observe([Seen("a.md", date(2026, 5, 1), "digest-a")], [hand])
    assert store.reviews.seen() == {
        "a.md": Seen("a.md", date(2026, 5, 1), "digest-a"),
        "b.md": Seen("b.md", date(2026, 2, 1), "digest-b"),
    }
    review = LogEntry("b.md", LogKind.REVIEWED, T0, "ed@example.org", outcome="minor")
    later = LogEntry("b.md", LogKind.REVIEWED, T0 + LEASE, content_changed=True)
    snoozed = Snooze("b.md", date(2026, 6, 1), "later", None, T0 + LEASE)
    store.reviews.append([review, later])
    store.snoozes.snooze([snoozed])  # not a review
    assert store.reviews.latest_reviews() == {"a.md": hand, "b.md": later}


# --------------------------------------------------------------------------- replicas, leases


def test_heartbeats_list_the_replicas_seen_recently(store: StateStore) -> None:
    one = Replica("h1:10:aa", "h1", 10, T0, T0)
    two = Replica("h2:20:bb", "h2", 20, T0, T0 + LEASE)
    store.replicas.heartbeat(one)
    store.replicas.heartbeat(two)
    assert store.replicas.replicas(T0) == [one, two]
    assert store.replicas.replicas(T0 + timedelta(seconds=1)) == [two]
    later = Replica("h1:10:aa", "h1", 10, T0 + LEASE, T0 + 2 * LEASE)  # started_at is kept
    store.replicas.heartbeat(later)
    assert store.replicas.replicas(T0 + LEASE) == [
        Replica("h1:10:aa", "h1", 10, T0, T0 + 2 * LEASE),
        two,
    ]
    store.replicas.forget("h2:20:bb")
    assert [r.id for r in store.replicas.replicas(T0)] == ["h1:10:aa"]


def test_one_holder_of_a_lease_until_it_runs_out(store: StateStore) -> None:
    assert store.replicas.leader("cycle") is None
    first = store.replicas.lead("cycle", "a", T0, LEASE)
    assert first == Lease("cycle", "a", T0, T0 + LEASE, None)
    # another cannot take it while it runs
    assert store.replicas.lead("cycle", "b", T0 + LEASE - timedelta(seconds=1), LEASE) == first
    # its holder renews it, keeping when it was taken
    renewed = store.replicas.lead("cycle", "a", T0 + timedelta(minutes=5), LEASE)
    assert renewed == Lease("cycle", "a", T0, T0 + timedelta(minutes=15), None)
    assert store.replicas.leader("cycle") == renewed
    # once it runs out, another takes it over, and the lease says from whom
    late = T0 + timedelta(minutes=15)
    taken = store.replicas.lead("cycle", "b", late, LEASE)
    assert taken == Lease("cycle", "b", late, late + LEASE, "a")
    assert store.replicas.lead("cycle", "a", late, LEASE).holder == "b"
    # other leases are separate
    assert store.replicas.lead("other", "a", late, LEASE).holder == "a"
    # resigning frees it at once, for the holder only
    store.replicas.resign("cycle", "a")
    assert store.replicas.lead("cycle", "c", late, LEASE).holder == "b"
    store.replicas.resign("cycle", "b")
    assert store.replicas.leader("cycle") is None
    assert store.replicas.lead("cycle", "c", late, LEASE) == Lease(
        "cycle", "c", late, late + LEASE, None
    )


# --------------------------------------------------------------------------- settled cycles


def test_settled_cycle_round_trip(store_settings: StoreSettings, tmp_path: Path) -> None:
    with open_store(store_settings, tmp_path) as store:
        generation, last = store.settled.current()
        assert last is None
        store.settled.record(Settled("key-1", generation, 7, 3, 1_000))
        store.settled.record(Settled("key-2", generation, 8, 4, 2_000))  # replaces the first
    with open_store(store_settings, tmp_path) as store:
        assert store.settled.current() == (generation, Settled("key-2", generation, 8, 4, 2_000))


def _changes(store: StateStore) -> dict[str, Any]:
    """Every kind of write to the tables a cycle decides from, by the store's own methods."""
    seen = Seen("a.md", date(2026, 1, 1), "digest")
    return {
        "ledger entries queued": lambda: store.outbox.enqueue(
            [Queued(note("k1"), (entry("ed@example.org", "a.md"),))], (), T0
        ),
        "ledger entries replaced": lambda: store.outbox.enqueue(
            [Queued(note("k2"), (entry("ed@example.org", "a.md", State.DUE_SOON),))], (), T0
        ),
        "ledger entries forgotten": lambda: store.outbox.enqueue(
            [Queued(note("k3"))], [("ed@example.org", "a.md")], T0
        ),
        "review log appended": lambda: store.reviews.append(
            [LogEntry("a.md", LogKind.REVIEWED, T0, "ed@example.org")]
        ),
        "date seen": lambda: store.reviews.observe([seen], []),
        "date seen again, changed": lambda: store.reviews.observe(
            [seen._replace(last_reviewed=date(2026, 2, 1))], []
        ),
        "snoozed": lambda: store.snoozes.snooze(
            [Snooze("a.md", date(2026, 6, 1), "rewrite", None, T0)]
        ),
        "snooze cancelled": lambda: store.snoozes.cancel(["a.md"], T0, None),
    }


def test_every_change_a_cycle_decides_from_moves_the_generation(store: StateStore) -> None:
    generation, _ = store.settled.current()
    for what, change in _changes(store).items():
        change()
        now, _ = store.settled.current()
        assert now > generation, what
        generation = now


def test_other_writes_leave_the_generation(store: StateStore) -> None:
    before, _ = store.settled.current()
    store.outbox.enqueue([Queued(note("k1"))], (), T0)  # a notification with no ledger entries
    run = store.runs.start("cycle", date(2026, 5, 1), T0)
    store.runs.finish(run, RunOutcome.OK, {}, T0)
    store.cache.write([(b"/d", cached(b"a.md"))], [], [])
    store.settled.record(Settled("key", before, 1, 0, 5))
    assert store.settled.current() == (before, Settled("key", before, 1, 0, 5))


def test_writes_by_another_connection_move_the_generation(
    store_settings: StoreSettings, tmp_path: Path
) -> None:
    """The generation is kept by the database itself: a process that writes the tables without
    knowing of it (another version, or a hand-made fix) moves it too."""
    with open_store(store_settings, tmp_path) as store:
        store.outbox.enqueue([Queued(note("k1"), (entry("ed@example.org", "a.md"),))], (), T0)
        before, _ = store.settled.current()
    statement = "UPDATE reminder_ledger SET notified_on = '2026-05-02'"
    if store_settings.url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(tmp_path / "state" / "state.sqlite3") as db:
            db.execute(statement)
    else:
        import psycopg

        with psycopg.connect(store_settings.url) as conn:
            conn.execute(statement)
    with open_store(store_settings, tmp_path) as store:
        assert store.settled.current()[0] > before


def test_a_write_naming_a_row_twice_keeps_the_last(store: StateStore) -> None:
    first, last = Seen("a.md", date(2026, 1, 1), None), Seen("a.md", date(2026, 2, 1), "d")
    store.reviews.observe([first, last], [])
    assert store.reviews.seen() == {"a.md": last}
    one = Snooze("a.md", date(2026, 6, 1), "one", None, T0)
    two = Snooze("a.md", date(2026, 7, 1), "two", "ed@example.org", T0 + LEASE)
    store.snoozes.snooze([one, two])
    assert store.snoozes.listing() == [two]
    soon, late = entry("ed@example.org", "a.md", State.DUE_SOON), entry("ed@example.org", "a.md")
    store.outbox.enqueue([Queued(note("k1"), (soon, late))], (), T0)
    assert store.ledger.entries() == [late]
    # One cycle's digests are written together: of two naming the row, the later wins.
    store.outbox.enqueue([Queued(note("k2"), (late,)), Queued(note("k3"), (soon,))], (), T0)
    assert store.ledger.entries() == [soon]
