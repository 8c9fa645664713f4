"""What the tool asks of a state store, whatever keeps it.

A store holds what must outlive a process: the reminder ledger, the outbox of notifications, the
run history, the parse cache, and the lock that lets one daemon at a time work on it. Each part
is a small protocol. Every method that must be atomic is one call, so a backend makes it one
transaction; the rules deciding what to write (which ledger entries go with which digest, when to
retry or give up, when a cache entry still holds) stay with the callers in ``notify`` and
``content``. A backend raises :class:`~scheduler.errors.StoreError`, never its driver's errors,
and passes ``tests/test_store_contract.py``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:  # in annotations only: reading documents never loads the notification code
    from scheduler.notify.channel import Notification, Result
    from scheduler.notify.reminders import LedgerEntry


class OutboxStatus(StrEnum):
    """Where a notification, or one of its recipients, stands."""

    PENDING = "pending"  # waiting for a (first or next) attempt
    SENT = "sent"
    FAILED = "failed"  # refused for good, or given up
    # perhaps delivered: the server did not answer after the message data, twice (or when the
    # give-up window ended); held until ``outbox retry`` sends it again
    UNCONFIRMED = "unconfirmed"


class RunOutcome(StrEnum):
    OK = "ok"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # the process running it died


class Recipient(NamedTuple):
    """One recipient of a notification in the outbox, with the last word on them."""

    address: str
    status: OutboxStatus
    code: int | None = None
    reply: str | None = None


@dataclass(frozen=True, slots=True)
class Queued:
    """A notification to add to the outbox, and the ledger entries and review log entries that
    are written with it, only if it is new."""

    notification: Notification
    remember: tuple[LedgerEntry, ...] = ()
    log: tuple[LogEntry, ...] = ()

    @property
    def key(self) -> str:
        return self.notification.key


@dataclass(frozen=True, slots=True)
class Claimed:
    """A notification held under a lease by one delivering process."""

    id: int
    notification: Notification
    attempts: int
    window_start: datetime  # when the give-up window began
    recipients: tuple[Recipient, ...]  # all of them, in the order they were queued
    # the recipients an attempt since ``window_start`` left unconfirmed (an ``unconfirmed``
    # outcome in the attempt log): they get one more attempt at most
    unconfirmed: frozenset[str] = frozenset()

    @property
    def key(self) -> str:
        return self.notification.key

    @property
    def pending(self) -> tuple[str, ...]:
        """The recipients this attempt is for."""
        return tuple(r.address for r in self.recipients if r.status is OutboxStatus.PENDING)


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one delivery attempt did for one recipient, and where it leaves them."""

    address: str
    result: Result  # what the channel said, kept in the attempt log
    status: OutboxStatus
    reply: str  # what is shown for the recipient: the reply, or why it was given up


@dataclass(frozen=True, slots=True)
class Failing:
    """Pending notifications whose attempts failed: since when, how many, the latest reply."""

    since: datetime  # the first failed attempt
    messages: int
    last_code: int | None
    last_reply: str


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A notification in the outbox, as listed."""

    id: int
    key: str
    status: OutboxStatus
    subject: str
    created_at: datetime
    attempts: int
    next_attempt_at: datetime
    recipients: tuple[Recipient, ...]


@dataclass(frozen=True, slots=True)
class Run:
    """One entry of the run history."""

    id: int
    kind: str
    as_of: date | None
    started_at: datetime
    finished_at: datetime | None
    outcome: RunOutcome | None  # None while it runs (or when its process died unnoticed)
    detail: dict[str, object]


class CacheEntry(NamedTuple):
    """One file in the parse cache: its times when it was read, and what was read.

    (A named tuple: one is made for every cached document on every run.)"""

    name: bytes  # the file name within its folder
    size: int
    mtime_ns: int
    ctime_ns: int
    stamp_ns: int  # no later than when the file was read: the start of that run
    digest: bytes
    fingerprint: str  # the settings and version it was read under
    rel: str  # the path routing saw
    route: str  # the document's editors, encoded by the reader
    facts: str  # the document's facts, encoded by the reader


class Retimed(NamedTuple):
    """A cached file whose times changed and contents did not: its entry holds for new times.
    Only an entry that still has ``digest`` and ``fingerprint`` is changed."""

    folder: bytes
    name: bytes
    size: int
    mtime_ns: int
    ctime_ns: int
    stamp_ns: int
    digest: bytes
    fingerprint: str


class LogKind(StrEnum):
    """What an entry of the review log records."""

    REVIEWED = "reviewed"  # recorded with mark-reviewed
    EDITED_OUTSIDE = "edited-outside"  # the last-reviewed date changed by hand
    SNOOZED = "snoozed"
    SNOOZE_CANCELLED = "snooze-cancelled"
    REMINDED = "reminded"  # a digest listing the document was queued for ``editor``


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One entry of the review log: evidence of who did what to a document's review, when."""

    path: str
    kind: LogKind
    at: datetime
    editor: str | None = None
    old_date: date | None = None  # the last-reviewed date before (reviews)
    new_date: date | None = None  # the last-reviewed date after (reviews), or snoozed until
    outcome: str | None = None  # no-change, minor or major (reviews)
    note: str | None = None  # the note of a review, the reason of a snooze
    # (reviews) whether anything but the date changed since the previous review; None: unknown
    content_changed: bool | None = None


class Seen(NamedTuple):
    """A document's last-reviewed date as last seen, and a digest of its bytes apart from that
    date as they were at its last review (or when first seen needing one); None: not read.
    (A named tuple: a cycle reads one per document.)"""

    path: str
    last_reviewed: date
    content: str | None


@dataclass(frozen=True, slots=True)
class Snooze:
    """Reminders for a document are postponed until (not including) ``until``."""

    path: str
    until: date
    reason: str
    editor: str | None
    at: datetime


class ReviewLog(Protocol):
    """Every review, hand edit and snooze, per document; entries are only ever added."""

    def append(self, entries: Sequence[LogEntry]) -> None:
        """Add ``entries``, in one transaction."""
        ...

    def entries(self, path: str | None = None, since: datetime | None = None) -> list[LogEntry]:
        """The entries (of ``path``; from ``since`` on), oldest first, in the order added."""
        ...

    def latest_reviews(self) -> dict[str, LogEntry]:
        """Each document's last review (recorded or edited outside the tool), by path."""
        ...

    def seen(self) -> dict[str, Seen]:
        """What runs last saw of each document, by path."""
        ...

    def observe(self, seen: Sequence[Seen], entries: Sequence[LogEntry]) -> None:
        """In one transaction: set what was seen of each document, and add ``entries``."""
        ...


class SnoozeStore(Protocol):
    """Documents whose reminders are postponed. Each change is logged in the review log in the
    same transaction."""

    def snooze(self, snoozes: Sequence[Snooze]) -> None:
        """Set each document's snooze (replacing one it had) and log it."""
        ...

    def cancel(self, paths: Collection[str], now: datetime, editor: str | None) -> list[str]:
        """Remove the snoozes of ``paths`` and log it; returns the paths that had one."""
        ...

    def listing(self) -> list[Snooze]:
        """Every snooze, by path; those whose date has passed too (they no longer count)."""
        ...


class LedgerStore(Protocol):
    """What each editor was last told about each document. Written by :meth:`OutboxStore.enqueue`,
    together with the notifications."""

    def entries(self) -> list[LedgerEntry]: ...


class OutboxStore(Protocol):
    """Notifications waiting for delivery, each recipient's state, and every attempt."""

    def enqueue(
        self, queued: Sequence[Queued], forget: Collection[tuple[str, str]], now: datetime
    ) -> list[str]:
        """In one transaction: add each notification whose key is new, with its ledger entries
        and review log entries (a key already present is skipped with its entries), and delete
        the ledger entries ``forget`` names as (recipient, path). Returns the keys added."""
        ...

    def claim(
        self,
        now: datetime,
        owner: str,
        lease: timedelta,
        limit: int,
        *,
        channel: str,
        exclude: Collection[int] = (),
    ) -> list[Claimed]:
        """Lease up to ``limit`` pending notifications for ``channel`` that are due at ``now``,
        oldest first, skipping ``exclude``. A lease that ran out counts as free. Each comes with
        the recipients whose attempts since its ``window_start`` include an ``unconfirmed``
        outcome (:attr:`Claimed.unconfirmed`)."""
        ...

    def present(self, keys: Collection[str]) -> set[str]:
        """The keys among ``keys`` already in the outbox (whatever their state)."""
        ...

    def release(self, ids: Collection[int], owner: str) -> None:
        """Give back notifications ``owner`` leased and did not attempt."""
        ...

    def lease_owners(self) -> list[str]:
        """Everyone holding a lease now (expired or not)."""
        ...

    def release_owner(self, owner: str) -> int:
        """Free every lease ``owner`` holds; how many there were."""
        ...

    def record(
        self,
        outbox_id: int,
        now: datetime,
        attempts: Sequence[Attempt],
        status: OutboxStatus,
        attempt_count: int,
        next_attempt_at: datetime | None,
    ) -> None:
        """In one transaction: log the attempts, set each attempted recipient's state, set the
        notification's state, attempt count and next attempt (None when it is finished), and
        free its lease."""
        ...

    def rows(self, status: OutboxStatus | None = None) -> list[OutboxRow]: ...

    def counts(self) -> dict[str, int]:
        """How many notifications are in each :class:`OutboxStatus` (every status is a key)."""
        ...

    def failing(self) -> Failing | None:
        """Since when delivery has been failing: over the pending notifications that failed
        an attempt since they were (re)queued; None when none has."""
        ...

    def requeue(self, ids: Collection[int] | None, now: datetime) -> list[int]:
        """In one transaction: make the failed and unconfirmed notifications among ``ids`` (all,
        for None) pending and due at ``now`` with a give-up window starting then, their failed
        and unconfirmed recipients pending again. Returns the ids requeued."""
        ...


class RunHistory(Protocol):
    """When each cycle ran and how it ended."""

    def start(self, kind: str, as_of: date | None, now: datetime) -> int: ...

    def finish(
        self, run_id: int, outcome: RunOutcome, detail: Mapping[str, object], now: datetime
    ) -> None: ...

    def mark_interrupted(self, kind: str, now: datetime) -> int:
        """Close the runs of ``kind`` left unfinished; how many there were."""
        ...

    def last(self, kind: str) -> Run | None: ...


class CacheStore(Protocol):
    """The parse cache's entries, by folder. Folder and file names are bytes: any name a file
    system allows. Entries are kept as written, whatever fingerprint they carry: the cache's
    rules for using them are the caller's."""

    def adopt(self, fingerprint: str) -> bool:
        """Record ``fingerprint`` as the current one. If another one was recorded, drop the
        entries made under any but ``fingerprint`` and return True."""
        ...

    def folder(self, folder: bytes, name: bytes | None = None) -> list[CacheEntry]:
        """The entries of ``folder`` (only that of the file ``name``, if given), each field of
        the type :class:`CacheEntry` declares."""
        ...

    def write(
        self,
        upserts: Sequence[tuple[bytes, CacheEntry]],
        retimed: Sequence[Retimed],
        deletes: Sequence[tuple[bytes, bytes]],
    ) -> None:
        """In one transaction: add or replace entries (with their folder), give entries new
        times (those that still have the digest and fingerprint named), delete entries named by
        (folder, name)."""
        ...

    def folders(self) -> list[bytes]: ...

    def forget_folders(self, folders: Sequence[bytes]) -> None: ...

    def clear(self) -> int:
        """Delete every entry and the fingerprint; how many entries there were."""
        ...


class Settled(NamedTuple):
    """A reminder cycle that found nothing to do: no digest to queue, nothing to remember or
    forget, no date changed by hand. Another cycle with the same ``key`` (the day, the
    settings, the code and every file as stat found it) while the store's watched tables
    stand at the same ``generation`` would find nothing either."""

    key: str
    generation: int  # of the tables a cycle decides from, read before the cycle read them
    documents: int
    outstanding: int
    stamp_ns: int  # when its walk began: files changed since may show the same times


class SettledStore(Protocol):
    """What tells a reminder cycle that nothing changed since the last one found nothing to do.

    The store counts every change to the tables a cycle decides from (the reminder ledger, the
    review log, the dates seen, the snoozes) in its *generation*, whoever makes it (any process,
    any version: in SQLite and PostgreSQL by triggers), and keeps the last :class:`Settled`
    cycle."""

    def current(self) -> tuple[int, Settled | None]:
        """The generation now, and the last settled cycle (None if none)."""
        ...

    def record(self, settled: Settled) -> None:
        """Keep ``settled`` as the last settled cycle, in place of any before."""
        ...

    def forget(self) -> None:
        """Keep no settled cycle: the next cycle checks every document."""
        ...


@dataclass(frozen=True, slots=True)
class Replica:
    """A daemon process working on the store, as it last reported itself."""

    id: str  # the worker id, ``host:pid:token``
    host: str
    pid: int
    started_at: datetime
    seen_at: datetime


@dataclass(frozen=True, slots=True)
class Lease:
    """Who holds a named lease (the cycle lease: which daemon runs the scheduled cycles)."""

    name: str
    holder: str
    acquired_at: datetime  # when ``holder`` took it
    until: datetime  # it is free from then on unless renewed
    previous: str | None  # the holder before, whose lease ran out; None for the first


class ReplicaStore(Protocol):
    """The daemons sharing a store: their heartbeats, and leases only one of them holds."""

    def heartbeat(self, replica: Replica) -> None:
        """Record that ``replica`` is alive at ``replica.seen_at``."""
        ...

    def replicas(self, since: datetime) -> list[Replica]:
        """The replicas seen at or after ``since``, by id."""
        ...

    def forget(self, replica: str) -> None:
        """Remove a replica's heartbeat (it stopped)."""
        ...

    def lead(self, name: str, holder: str, now: datetime, lease: timedelta) -> Lease:
        """In one transaction: take or renew the lease ``name`` for ``holder`` until
        ``now + lease``, unless another holds it and it runs past ``now``. Returns the lease as
        it stands (its holder is someone else when it was not free)."""
        ...

    def resign(self, name: str, holder: str) -> None:
        """Give up the lease ``name`` if ``holder`` holds it."""
        ...

    def leader(self, name: str) -> Lease | None:
        """The lease ``name`` as last taken (it may have run out), or None."""
        ...


class StateStore(Protocol):
    """An open state store. Use as a context manager, or call :meth:`close`.

    ``shared`` says whether several daemons may work on the store at once (PostgreSQL): they
    take turns at cycles through the cycle lease in :attr:`replicas` instead of :meth:`lock`.
    """

    shared: bool

    @property
    def replicas(self) -> ReplicaStore: ...

    @property
    def ledger(self) -> LedgerStore: ...

    @property
    def outbox(self) -> OutboxStore: ...

    @property
    def runs(self) -> RunHistory: ...

    @property
    def cache(self) -> CacheStore: ...

    @property
    def reviews(self) -> ReviewLog: ...

    @property
    def snoozes(self) -> SnoozeStore: ...

    @property
    def settled(self) -> SettledStore: ...

    def lock(self) -> AbstractContextManager[None]:
        """Hold the single-daemon lock for the block (or until :meth:`close`); a
        :class:`~scheduler.errors.StoreError` naming the holder's pid if another holds it. The
        lock is freed when its holder dies."""
        ...

    def lock_holder(self) -> int | None:
        """The pid of the process holding the lock (-1 when unknown), or None."""
        ...

    def ensure_locked(self) -> None:
        """Check that this process still holds the lock on this very store; a
        :class:`~scheduler.errors.StoreError` saying what was lost when not (the store or its
        lock deleted or replaced under it, or the lock not held), so that a daemon stops before
        a second one can work on the store beside it."""
        ...

    def running(self) -> AbstractContextManager[None]:
        """Mark, for the block, that this process runs a cycle (any number of processes may);
        the mark goes when its holder dies."""
        ...

    def cycle_running(self) -> bool:
        """Whether another live process runs a cycle (see :meth:`running`): an unfinished run
        with none running was interrupted."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> StateStore: ...

    def __exit__(self, *exc_info: object) -> None: ...
