"""The SQLite state store: one file holding everything that must outlive a process.

The only module that speaks SQL. Each part of the store (the reminder ledger, outbox and run
history; the parse cache) has its numbered schema steps, applied once, in a transaction, the
first time the part is used; steps are only ever appended. The file uses write-ahead logging and
full synchronous commits, so a crash or power cut loses no committed transaction. The daemon
lock is a lock on a file beside the store (:mod:`scheduler.store.locking`), released by the
system when its holder dies.
"""

from __future__ import annotations

import errno
import json
import os
import re
import sqlite3
import sys
import urllib.parse
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scheduler.errors import StoreError
from scheduler.review.state import State

if TYPE_CHECKING:  # imported where rows become them: reading documents needs neither
    from scheduler.notify.channel import Notification
    from scheduler.notify.reminders import LedgerEntry

from scheduler.store.interfaces import (
    Attempt,
    CacheEntry,
    Claimed,
    Failing,
    Lease,
    LogEntry,
    LogKind,
    OutboxRow,
    OutboxStatus,
    Queued,
    Recipient,
    Replica,
    Retimed,
    Run,
    RunOutcome,
    Seen,
    Snooze,
)
from scheduler.store.locking import CycleMarker, FileLock
from scheduler.store.settled import SettledTable

BUSY_TIMEOUT_MS = 10_000

REMINDER_STEPS = (
    """
    CREATE TABLE reminder_ledger (
        recipient TEXT NOT NULL,
        path TEXT NOT NULL,
        due TEXT,
        state TEXT NOT NULL,
        notified_on TEXT NOT NULL,
        PRIMARY KEY (recipient, path)
    );
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        cycle TEXT NOT NULL,
        recipient TEXT NOT NULL,
        message_id TEXT NOT NULL,
        sender TEXT NOT NULL,
        subject TEXT NOT NULL,
        data BLOB NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        created_at TEXT NOT NULL,
        window_start TEXT NOT NULL,
        next_attempt_at TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        lease_owner TEXT,
        lease_until TEXT,
        finished_at TEXT
    );
    CREATE INDEX outbox_by_status ON outbox (status, next_attempt_at);
    CREATE TABLE outbox_recipients (
        outbox_id INTEGER NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
        address TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        code INTEGER,
        reply TEXT,
        PRIMARY KEY (outbox_id, address)
    );
    CREATE TABLE delivery_attempts (
        id INTEGER PRIMARY KEY,
        outbox_id INTEGER NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
        at TEXT NOT NULL,
        address TEXT NOT NULL,
        outcome TEXT NOT NULL,
        code INTEGER,
        reply TEXT
    );
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        as_of TEXT,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        outcome TEXT,
        detail TEXT
    )
    """,
    # Notifications instead of MIME: the outbox keeps the parts a channel builds its message
    # from. Messages queued before keep their bytes in ``data`` and are sent as they are.
    """
    CREATE TABLE outbox_v2 (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        channel TEXT NOT NULL,
        sender TEXT NOT NULL,
        sender_name TEXT NOT NULL,
        to_addresses TEXT NOT NULL,
        cc_addresses TEXT NOT NULL,
        subject TEXT NOT NULL,
        text_body TEXT NOT NULL,
        html_body TEXT NOT NULL,
        headers TEXT NOT NULL,
        data BLOB,
        status TEXT NOT NULL DEFAULT 'pending',
        created_at TEXT NOT NULL,
        window_start TEXT NOT NULL,
        next_attempt_at TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        lease_owner TEXT,
        lease_until TEXT,
        finished_at TEXT
    );
    INSERT INTO outbox_v2 (id, key, channel, sender, sender_name, to_addresses, cc_addresses,
        subject, text_body, html_body, headers, data, status, created_at, window_start,
        next_attempt_at, attempts, lease_owner, lease_until, finished_at)
    SELECT id, key, 'email', sender, '', json_array(recipient), json_array(), subject, '', '',
        json_array(json_array('Message-ID', message_id)), data, status, created_at,
        window_start, next_attempt_at, attempts, lease_owner, lease_until, finished_at
    FROM outbox;
    DROP TABLE outbox;
    ALTER TABLE outbox_v2 RENAME TO outbox;
    CREATE INDEX outbox_by_status ON outbox (status, next_attempt_at)
    """,
    # Claims look up a notification's unconfirmed attempts.
    "CREATE INDEX delivery_attempts_by_outbox ON delivery_attempts (outbox_id, outcome)",
)

CACHE_STEPS = (
    """
    CREATE TABLE parse_cache_settings (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        fingerprint TEXT NOT NULL
    );
    CREATE TABLE parse_cache (
        folder BLOB NOT NULL,
        name BLOB NOT NULL,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        ctime_ns INTEGER NOT NULL,
        stamp_ns INTEGER NOT NULL,
        digest BLOB NOT NULL,
        title TEXT,
        status TEXT,
        last_reviewed TEXT,
        review_frequency TEXT,
        due TEXT,
        last_reviewed_line INTEGER,
        url TEXT,
        problems TEXT,
        route TEXT NOT NULL,
        PRIMARY KEY (folder, name)
    )
    """,
    # A document's facts are one encoded record. The cache can be rebuilt: it starts afresh.
    """
    DROP TABLE parse_cache;
    DELETE FROM parse_cache_settings;
    CREATE TABLE parse_cache (
        folder BLOB NOT NULL,
        name BLOB NOT NULL,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        ctime_ns INTEGER NOT NULL,
        stamp_ns INTEGER NOT NULL,
        digest BLOB NOT NULL,
        route TEXT NOT NULL,
        facts TEXT NOT NULL,
        PRIMARY KEY (folder, name)
    )
    """,
    # Each entry says what it was read under: the settings' fingerprint and the path routing
    # saw. The cache starts afresh.
    """
    DROP TABLE parse_cache;
    DELETE FROM parse_cache_settings;
    CREATE TABLE parse_cache (
        folder BLOB NOT NULL,
        name BLOB NOT NULL,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        ctime_ns INTEGER NOT NULL,
        stamp_ns INTEGER NOT NULL,
        digest BLOB NOT NULL,
        fingerprint TEXT NOT NULL,
        rel TEXT NOT NULL,
        route TEXT NOT NULL,
        facts TEXT NOT NULL,
        PRIMARY KEY (folder, name)
    )
    """,
)

REVIEW_STEPS = (
    """
    CREATE TABLE review_log (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL,
        kind TEXT NOT NULL,
        at TEXT NOT NULL,
        editor TEXT,
        old_date TEXT,
        new_date TEXT,
        outcome TEXT,
        note TEXT,
        content_changed INTEGER
    );
    CREATE INDEX review_log_by_path ON review_log (path, id);
    CREATE INDEX review_log_by_kind ON review_log (kind, path, id);
    CREATE TABLE review_seen (
        path TEXT PRIMARY KEY,
        last_reviewed TEXT NOT NULL,
        content TEXT
    );
    CREATE TABLE snoozes (
        path TEXT PRIMARY KEY,
        until TEXT NOT NULL,
        reason TEXT NOT NULL,
        editor TEXT,
        at TEXT NOT NULL
    )
    """,
)

# The tables a reminder cycle decides from, whose every change (by any process or version) the
# store counts: see scheduler.store.settled. Needs the "reminders" and "reviews" components.
SETTLED_STEPS = (
    """
    CREATE TABLE store_generation (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        n INTEGER NOT NULL
    );
    INSERT INTO store_generation (id, n) VALUES (1, 0);
    CREATE TABLE settled_cycle (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        key TEXT NOT NULL,
        generation INTEGER NOT NULL,
        documents INTEGER NOT NULL,
        outstanding INTEGER NOT NULL,
        stamp_ns INTEGER NOT NULL
    );
    CREATE TRIGGER reminder_ledger_insert_counted AFTER INSERT ON reminder_ledger
    BEGIN UPDATE store_generation SET n = n + 1; END;
    CREATE TRIGGER reminder_ledger_update_counted AFTER UPDATE ON reminder_ledger
    BEGIN UPDATE store_generation SET n = n + 1; END;
    CREATE TRIGGER reminder_ledger_delete_counted AFTER DELETE ON reminder_ledger
    BEGIN UPDATE store_generation SET n = n + 1; END;
    CREATE TRIGGER review_log_insert_counted AFTER INSERT ON review_log
    BEGIN UPDATE store_generation SET n = n + 1; END;
    CREATE TRIGGER review_log_update_counted AFTER UPDATE ON review_log
    BEGIN UPDATE store_generation SET n = n + 1; END;
    CREATE TRIGGER review_log_delete_counted AFTER DELETE ON review_log
    BEGIN UPDATE store_generation SET n = n + 1; END;
    CREATE TRIGGER review_seen_insert_counted AFTER INSERT ON review_seen
    BEGIN UPDATE store_generation SET n = n + 1; END;
    CREATE TRIGGER review_seen_update_counted AFTER UPDATE ON review_seen
    BEGIN UPDATE store_generation SET n = n + 1; END;
    CREATE TRIGGER review_seen_delete_counted AFTER DELETE ON review_seen
    BEGIN UPDATE store_generation SET n = n + 1; END;
    CREATE TRIGGER snoozes_insert_counted AFTER INSERT ON snoozes
    BEGIN UPDATE store_generation SET n = n + 1; END;
    CREATE TRIGGER snoozes_update_counted AFTER UPDATE ON snoozes
    BEGIN UPDATE store_generation SET n = n + 1; END;
    CREATE TRIGGER snoozes_delete_counted AFTER DELETE ON snoozes
    BEGIN UPDATE store_generation SET n = n + 1; END
    """,
)

REPLICA_STEPS = (
    """
    CREATE TABLE replicas (
        id TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started_at TEXT NOT NULL,
        seen_at TEXT NOT NULL
    );
    CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        acquired_at TEXT NOT NULL,
        until TEXT NOT NULL,
        previous TEXT
    )
    """,
)


def location(rest: str) -> str:
    """The file named by a URL's part after ``sqlite://``: ``/relative/path`` (from the
    current folder) or ``//absolute/path``."""
    if not rest.startswith("/") or rest == "/":
        raise ValueError(
            "a sqlite URL names a file: sqlite:///relative/path or sqlite:////absolute/path"
        )
    return rest[1:]


def exists(path: str, cwd: Path, password: str | None = None) -> bool:
    return (cwd / path).exists()


def open_store(path: str, cwd: Path, durable: bool, password: str | None = None) -> SqliteStore:
    return SqliteStore(cwd / path, path, durable=durable)


def open_read_only(path: str, cwd: Path) -> SqliteStore:
    return SqliteStore(cwd / path, path, read_only=True)


def ts(moment: datetime) -> str:
    """Timestamps are stored as UTC ISO strings, which sort as text."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def from_ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day is not None else None


def _statements(script: str) -> list[str]:
    """The statements of ``script``, a trigger's ``BEGIN ... END`` whole."""
    statements: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                statements.append(pending.strip().removesuffix(";").strip())
            pending = ""
    if pending.strip(" \n;"):
        statements.append(pending.strip().removesuffix(";").strip())
    return statements


_TEMPORARY = re.compile(r"^CREATE TABLE", re.IGNORECASE)

# What to do about each kind of SQLite failure, by primary result code.
_ADVICE = {
    sqlite3.SQLITE_BUSY: "another process held it for longer than {timeout:.0f} s; try again "
    "when it has finished (a long cycle, or a stuck process: see 'review-scheduler status')",
    sqlite3.SQLITE_LOCKED: "another process held it for longer than {timeout:.0f} s; try again "
    "when it has finished",
    sqlite3.SQLITE_READONLY: "it is read-only: give the user running review-scheduler write "
    "access to the file and its folder, or point [store] url at a writable place",
    sqlite3.SQLITE_FULL: "the disk (or the database's size limit) is full: free space where "
    "it is kept, then run the command again (nothing half-written was kept)",
    sqlite3.SQLITE_CORRUPT: "the file is damaged: restore it from a backup, or move it aside "
    "to start afresh (the outbox, reminder ledger and review log in it are then lost)",
    sqlite3.SQLITE_NOTADB: "the file is not a review-scheduler state store: check [store] url, "
    "or move the file aside",
    sqlite3.SQLITE_CANTOPEN: "check that the file and its folder exist and are accessible to "
    "the user running review-scheduler",
    sqlite3.SQLITE_PERM: "check the file's permissions",
    sqlite3.SQLITE_IOERR: "the disk reported an error: check the disk and the file system "
    "(a full disk reports this too)",
}


def _store_error(shown: str, exc: sqlite3.Error) -> StoreError:
    """A SQLite failure as one line: the file, what went wrong, what to do."""
    code = getattr(exc, "sqlite_errorcode", None)
    advice = _ADVICE.get(code & 0xFF) if isinstance(code, int) else None
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if advice is None:
        return StoreError(f"the state store {shown}: {text}")
    return StoreError(
        f"the state store {shown}: {text}: " + advice.format(timeout=BUSY_TIMEOUT_MS / 1000)
    )


def _os_advice(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "free space on the disk where it is kept"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (
            "give the user running review-scheduler access to the folder and the files in it, "
            "or point [store] url at a place it may write"
        )
    return "check [store] url and the folder it names"


class SqliteStore:
    """An open SQLite state store (a :class:`~scheduler.store.interfaces.StateStore`).

    ``shown`` is how messages name it (the path as configured). Without ``durable``, the last
    commits may be lost in a power cut (never corrupted): for a store opened only for the parse
    cache, which can be rebuilt.
    """

    shared = False  # one daemon, holding the lock

    def __init__(
        self, path: Path, shown: str, *, durable: bool = True, read_only: bool = False
    ) -> None:
        self.path = path
        self.shown = shown
        self.read_only = read_only
        self._migrated: set[str] = set()
        self._lock = FileLock(path.with_name(path.name + ".lock"), shown, _os_advice)
        self._cycles = CycleMarker(path.with_name(path.name + ".cycle.lock"), shown, _os_advice)
        if read_only:
            self.db = self._connect_read_only()
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit mode: transactions are explicit, see _transaction().
            self.db = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        except OSError as exc:
            raise StoreError(
                f"cannot open the state store {shown}: {exc.strerror}; {_os_advice(exc)}"
            ) from exc
        except sqlite3.Error as exc:
            raise _store_error(shown, exc) from exc
        try:
            with self.guard():
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
                # Statement journals in memory: with the triggers that count changes (see
                # SETTLED_STEPS) every statement writing a counted table keeps one, and as files
                # they cost system calls each (0.6 to 0.8 s of system time for a cycle that
                # writes 230,000 such rows).
                self.db.execute("PRAGMA temp_store=MEMORY")
                self.db.execute("PRAGMA foreign_keys=ON")
                self.db.execute(
                    "CREATE TABLE IF NOT EXISTS schema_steps ("
                    " component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
                )
        except StoreError:
            self.db.close()
            raise
        self._identity = _identity(path)

    def _connect_read_only(self) -> sqlite3.Connection:
        """A connection that never writes (nor creates) anything: ``mode=ro``, and when even
        that needs a file it may not create (the write-ahead log's index in a read-only
        folder), ``immutable=1``: nobody can be writing a store whose folder is read-only."""
        if not self.path.is_file():
            raise StoreError(
                f"the state store {self.shown} does not exist (or is not a file); check [store] url"
            )
        uri = "file:" + urllib.parse.quote(os.fsencode(self.path.absolute())) + "?mode=ro"
        for suffix in ("", "&immutable=1"):
            db = sqlite3.connect(
                uri + suffix, uri=True, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000
            )
            try:
                db.execute("SELECT count(*) FROM sqlite_schema").fetchone()
            except sqlite3.Error as exc:
                db.close()
                # no write-ahead log index, and none can be made: read the file as it is
                # (only when no write-ahead log holds commits the file lacks)
                cannot_share = (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY)
                if exc.sqlite_errorcode & 0xFF in cannot_share and not suffix and self._no_log():
                    continue
                raise _store_error(self.shown, exc) from exc
            return db
        raise AssertionError("unreachable")  # pragma: no cover

    def _no_log(self) -> bool:
        log = self.path.with_name(self.path.name + "-wal")
        try:
            return log.stat().st_size == 0
        except FileNotFoundError:
            return True

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._lock.release()
        self._cycles.release()
        self.db.close()

    @contextmanager
    def lock(self) -> Iterator[None]:
        self._lock.acquire()
        try:
            yield
        finally:
            self._lock.release()

    def lock_holder(self) -> int | None:
        return self._lock.holder()

    def ensure_locked(self) -> None:
        self._lock.ensure_held()
        if self._identity is None or _identity(self.path) != self._identity:
            raise StoreError(
                f"the state store {self.shown} was deleted or replaced while in use; stopping "
                "so that no message is sent twice (restart to use the store now there)"
            )

    @contextmanager
    def running(self) -> Iterator[None]:
        self._cycles.acquire()
        try:
            yield
        finally:
            self._cycles.release()

    def cycle_running(self) -> bool:
        return self._cycles.held_elsewhere()

    @cached_property
    def ledger(self) -> SqliteLedger:
        return SqliteLedger(self._ready("reminders", REMINDER_STEPS))

    @cached_property
    def outbox(self) -> SqliteOutbox:
        return SqliteOutbox(self._ready("reminders", REMINDER_STEPS))

    @cached_property
    def runs(self) -> SqliteRuns:
        return SqliteRuns(self._ready("reminders", REMINDER_STEPS))

    @cached_property
    def cache(self) -> SqliteCache:
        return SqliteCache(self._ready("parse_cache", CACHE_STEPS))

    @cached_property
    def reviews(self) -> SqliteReviewLog:
        return SqliteReviewLog(self._ready("reviews", REVIEW_STEPS))

    @cached_property
    def snoozes(self) -> SqliteSnoozes:
        return SqliteSnoozes(self._ready("reviews", REVIEW_STEPS))

    @cached_property
    def replicas(self) -> SqliteReplicas:
        return SqliteReplicas(self._ready("replicas", REPLICA_STEPS))

    @cached_property
    def settled(self) -> SettledTable:
        self._ready("reminders", REMINDER_STEPS)
        self._ready("reviews", REVIEW_STEPS)  # the tables its triggers watch
        return SettledTable(self._ready("settled", SETTLED_STEPS), "?")

    # ----- plumbing

    @contextmanager
    def guard(self) -> Iterator[None]:
        """SQLite's errors, as the store's: one line naming the file and what to do."""
        try:
            yield
        except sqlite3.Error as exc:
            raise _store_error(self.shown, exc) from exc

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: everything in the block commits together or not at all.

        ``BEGIN IMMEDIATE`` takes the write lock up front, so two processes never interleave
        their read-then-write steps. A failed commit (a full disk) is rolled back too.
        """
        with self.guard():
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
                self.db.execute("COMMIT")
            except BaseException:
                if self.db.in_transaction:  # SQLite may have rolled back already
                    with suppress(sqlite3.Error):  # the first error is the one to report
                        self.db.execute("ROLLBACK")
                raise

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self.guard():
            return self.db.execute(sql, params).fetchall()

    def _ready(self, component: str, steps: Sequence[str]) -> SqliteStore:
        """The store, with ``component``'s tables brought up to date (once per connection)."""
        if component not in self._migrated:
            if self.read_only:
                self._readable(component, steps)
            else:
                self.migrate(component, steps)
            self._migrated.add(component)
        return self

    def _readable(self, component: str, steps: Sequence[str]) -> None:
        """Read-only: a component never written reads as empty (its tables made, empty, in
        the connection's temporary schema); one written by another version is refused."""
        with self.guard():
            has_steps = self.db.execute(
                "SELECT 1 FROM sqlite_schema WHERE name = 'schema_steps'"
            ).fetchone()
            row = (
                self.db.execute(
                    "SELECT version FROM schema_steps WHERE component = ?", (component,)
                ).fetchone()
                if has_steps
                else None
            )
            version = row[0] if row else 0
            if version == 0:
                for step in steps:
                    for statement in _statements(step):
                        self.db.execute(_TEMPORARY.sub("CREATE TEMP TABLE", statement))
                return
        if version != len(steps):
            newer = "a newer" if version > len(steps) else "an older"
            raise StoreError(
                f"the state store {self.shown} was written by {newer} review-scheduler "
                f"({component} schema {version}, this version knows {len(steps)}); "
                + (
                    "upgrade review-scheduler"
                    if version > len(steps)
                    else "run a command that writes (send, or the daemon) once to upgrade it"
                )
            )

    def migrate(self, component: str, steps: Sequence[str]) -> None:
        """Run ``component``'s missing schema steps, in one transaction.

        Foreign keys are off meanwhile, so that a step may rebuild a table others refer to; they
        are checked before the commit.
        """
        with self.guard():
            self.db.execute("PRAGMA foreign_keys=OFF")  # a no-op inside a transaction
        try:
            with self.transaction() as db:
                row = db.execute(
                    "SELECT version FROM schema_steps WHERE component = ?", (component,)
                ).fetchone()
                version = row[0] if row else 0
                if version > len(steps):
                    raise StoreError(
                        f"the state store {self.shown} was written by a newer review-scheduler "
                        f"({component} schema {version}, this version knows {len(steps)})"
                    )
                for step in steps[version:]:
                    for statement in _statements(step):
                        db.execute(statement)
                if db.execute("PRAGMA foreign_key_check").fetchone() is not None:
                    raise StoreError(f"the state store {self.shown}: broken references")
                db.execute(
                    "INSERT INTO schema_steps (component, version) VALUES (?, ?)"
                    " ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                    (component, len(steps)),
                )
        finally:
            with self.guard():
                self.db.execute("PRAGMA foreign_keys=ON")


def _identity(path: Path) -> tuple[int, int] | None:
    """The file at ``path`` (device and inode), or None when there is none."""
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_dev, found.st_ino


class SqliteLedger:
    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    def entries(self) -> list[LedgerEntry]:
        from scheduler.notify.reminders import LedgerEntry

        rows = self._store.query(
            "SELECT recipient, path, due, state, notified_on FROM reminder_ledger"
        )
        # Tens of thousands of rows share a few hundred dates and a few states: each is
        # converted once (State("overdue") alone costs more than the rest of a row).
        dates = _Dates()
        states = {state.value: state for state in State}
        return [
            LedgerEntry(r, p, dates[d] if d else None, states.get(s) or State(s), dates[n])
            for r, p, d, s, n in rows
        ]


class _Dates(dict[str, date]):
    """ISO dates as :class:`date` objects, each text converted once."""

    def __missing__(self, text: str) -> date:
        value = self[text] = date.fromisoformat(text)
        return value


_NOTIFICATION_COLUMNS = (
    "key, channel, sender, sender_name, to_addresses, cc_addresses, subject, text_body,"
    " html_body, headers, data"
)


def _notification_values(n: Notification) -> tuple[object, ...]:
    return (
        n.key,
        n.channel,
        n.sender,
        n.sender_name,
        json.dumps(n.to),
        json.dumps(n.cc),
        n.subject,
        n.text,
        n.html,
        json.dumps(n.headers),
        n.prebuilt,
    )


def _notification(row: Sequence[Any]) -> Notification:
    from scheduler.notify.channel import Notification

    key, channel, sender, sender_name, to, cc, subject, text, html, headers, data = row
    return Notification(
        key=key,
        channel=channel,
        sender=sender,
        sender_name=sender_name,
        to=tuple(json.loads(to)),
        cc=tuple(json.loads(cc)),
        subject=subject,
        text=text,
        html=html,
        headers=tuple((name, value) for name, value in json.loads(headers)),
        prebuilt=data,
    )


class SqliteOutbox:
    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    def enqueue(
        self, queued: Sequence[Queued], forget: Collection[tuple[str, str]], now: datetime
    ) -> list[str]:
        stamp = ts(now)
        added = []
        self._store._ready("reviews", REVIEW_STEPS)  # the review log, logged to below
        remembered: list[tuple[str, str, str | None, str, str]] = []
        logged: list[LogEntry] = []
        with self._store.transaction() as db:
            for item in queued:
                cursor = db.execute(
                    f"INSERT INTO outbox ({_NOTIFICATION_COLUMNS}, created_at, window_start,"  # noqa: S608
                    " next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (key) DO NOTHING",
                    (*_notification_values(item.notification), stamp, stamp, stamp),
                )
                if cursor.rowcount == 0:
                    continue  # queued before: so were its ledger entries
                added.append(item.key)
                db.executemany(
                    "INSERT INTO outbox_recipients (outbox_id, address) VALUES (?, ?)",
                    [(cursor.lastrowid, a) for a in item.notification.recipients],
                )
                remembered += [
                    (e.recipient, e.path, _iso(e.due), e.state.value, e.notified_on.isoformat())
                    for e in item.remember
                ]
                logged += item.log
            # Every digest's entries in one statement, in key order (see _BY_KEY); a stable
            # sort, so that of two entries for one recipient and path the later still wins.
            remembered.sort(key=_BY_KEY)
            db.executemany(
                "INSERT INTO reminder_ledger (recipient, path, due, state, notified_on)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (recipient, path) DO UPDATE SET"
                " due = excluded.due, state = excluded.state,"
                " notified_on = excluded.notified_on",
                remembered,
            )
            _log(db, logged)
            db.executemany("DELETE FROM reminder_ledger WHERE recipient = ? AND path = ?", forget)
        return added

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
        stamp = ts(now)
        # Only integers are spliced into the statement.
        skip = f" AND id NOT IN ({','.join(str(int(i)) for i in exclude)})" if exclude else ""
        with self._store.transaction() as db:
            rows = db.execute(
                "UPDATE outbox SET lease_owner = ?, lease_until = ? WHERE id IN ("  # noqa: S608
                " SELECT id FROM outbox WHERE status = 'pending' AND channel = ?"
                " AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until <= ?)"
                f"{skip} ORDER BY id LIMIT ?)"
                f" RETURNING id, attempts, window_start, {_NOTIFICATION_COLUMNS}",
                (owner, ts(now + lease), channel, stamp, stamp, limit),
            ).fetchall()
            return [
                Claimed(
                    id=row[0],
                    notification=_notification(row[3:]),
                    attempts=row[1],
                    window_start=from_ts(row[2]),
                    recipients=_recipients(db, row[0]),
                    unconfirmed=frozenset(
                        address
                        for (address,) in db.execute(
                            "SELECT DISTINCT address FROM delivery_attempts WHERE outbox_id = ?"
                            " AND outcome = 'unconfirmed' AND at >= ?",
                            (row[0], row[2]),
                        )
                    ),
                )
                for row in sorted(rows)
            ]

    def present(self, keys: Collection[str]) -> set[str]:
        rows = self._store.query(
            "SELECT key FROM outbox WHERE key IN (SELECT value FROM json_each(?))",
            (json.dumps(list(keys)),),
        )
        return {key for (key,) in rows}

    def release(self, ids: Collection[int], owner: str) -> None:
        with self._store.transaction() as db:
            db.executemany(
                "UPDATE outbox SET lease_owner = NULL, lease_until = NULL"
                " WHERE id = ? AND lease_owner = ?",
                [(i, owner) for i in ids],
            )

    def lease_owners(self) -> list[str]:
        return [
            owner
            for (owner,) in self._store.query(
                "SELECT DISTINCT lease_owner FROM outbox WHERE lease_owner IS NOT NULL"
            )
        ]

    def release_owner(self, owner: str) -> int:
        with self._store.transaction() as db:
            return db.execute(
                "UPDATE outbox SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ?",
                (owner,),
            ).rowcount

    def record(
        self,
        outbox_id: int,
        now: datetime,
        attempts: Sequence[Attempt],
        status: OutboxStatus,
        attempt_count: int,
        next_attempt_at: datetime | None,
    ) -> None:
        stamp = ts(now)
        with self._store.transaction() as db:
            db.executemany(
                "INSERT INTO delivery_attempts (outbox_id, at, address, outcome, code, reply)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        outbox_id,
                        stamp,
                        a.address,
                        a.result.outcome.value,
                        a.result.code,
                        a.result.reply,
                    )
                    for a in attempts
                ],
            )
            db.executemany(
                "UPDATE outbox_recipients SET status = ?, code = ?, reply = ?"
                " WHERE outbox_id = ? AND address = ?",
                [(a.status.value, a.result.code, a.reply, outbox_id, a.address) for a in attempts],
            )
            db.execute(
                "UPDATE outbox SET status = ?, attempts = ?, next_attempt_at = ?,"
                " lease_owner = NULL, lease_until = NULL, finished_at = ? WHERE id = ?",
                (
                    status.value,
                    attempt_count,
                    ts(next_attempt_at) if next_attempt_at else stamp,
                    None if next_attempt_at else stamp,
                    outbox_id,
                ),
            )

    def rows(self, status: OutboxStatus | None = None) -> list[OutboxRow]:
        query = "SELECT id, key, status, subject, created_at, attempts, next_attempt_at FROM outbox"
        params: tuple[str, ...] = ()
        if status is not None:
            query += " WHERE status = ?"
            params = (status.value,)
        with self._store.guard():
            db = self._store.db
            return [
                OutboxRow(
                    id=row[0],
                    key=row[1],
                    status=OutboxStatus(row[2]),
                    subject=row[3],
                    created_at=from_ts(row[4]),
                    attempts=row[5],
                    next_attempt_at=from_ts(row[6]),
                    recipients=_recipients(db, row[0]),
                )
                for row in db.execute(query + " ORDER BY id", params).fetchall()
            ]

    def counts(self) -> dict[str, int]:
        tally = dict(self._store.query("SELECT status, count(*) FROM outbox GROUP BY status"))
        return {s.value: tally.get(s.value, 0) for s in OutboxStatus}

    def failing(self) -> Failing | None:
        failed = (
            " FROM outbox o JOIN delivery_attempts a ON a.outbox_id = o.id"
            " AND a.at >= o.window_start AND a.outcome != 'delivered' WHERE o.status = 'pending'"
        )
        since, messages = self._store.query("SELECT min(a.at), count(DISTINCT o.id)" + failed)[0]
        if since is None:
            return None
        code, reply = self._store.query(
            "SELECT a.code, a.reply" + failed + " ORDER BY a.at DESC, a.id DESC LIMIT 1"
        )[0]
        return Failing(from_ts(since), messages, code, reply or "")

    def requeue(self, ids: Collection[int] | None, now: datetime) -> list[int]:
        stamp = ts(now)
        with self._store.transaction() as db:
            failed = {
                i
                for (i,) in db.execute(
                    "SELECT id FROM outbox WHERE status IN ('failed', 'unconfirmed')"
                )
            }
            chosen = sorted(failed) if ids is None else [i for i in ids if i in failed]
            for outbox_id in chosen:
                db.execute(
                    "UPDATE outbox_recipients SET status = 'pending'"
                    " WHERE outbox_id = ? AND status IN ('failed', 'unconfirmed')",
                    (outbox_id,),
                )
                db.execute(
                    "UPDATE outbox SET status = 'pending', next_attempt_at = ?, window_start = ?,"
                    " finished_at = NULL WHERE id = ?",
                    (stamp, stamp, outbox_id),
                )
        return chosen


def _recipients(db: sqlite3.Connection, outbox_id: int) -> tuple[Recipient, ...]:
    return tuple(
        Recipient(address=a, status=OutboxStatus(s), code=c, reply=r)
        for a, s, c, r in db.execute(
            "SELECT address, status, code, reply FROM outbox_recipients WHERE outbox_id = ?"
            " ORDER BY rowid",
            (outbox_id,),
        )
    )


class SqliteRuns:
    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    def start(self, kind: str, as_of: date | None, now: datetime) -> int:
        with self._store.transaction() as db:
            cursor = db.execute(
                "INSERT INTO runs (kind, as_of, started_at) VALUES (?, ?, ?)",
                (kind, _iso(as_of), ts(now)),
            )
            return int(cursor.lastrowid or 0)

    def finish(
        self, run_id: int, outcome: RunOutcome, detail: Mapping[str, object], now: datetime
    ) -> None:
        with self._store.transaction() as db:
            db.execute(
                "UPDATE runs SET finished_at = ?, outcome = ?, detail = ? WHERE id = ?",
                (ts(now), outcome.value, json.dumps(detail, sort_keys=True), run_id),
            )

    def mark_interrupted(self, kind: str, now: datetime) -> int:
        with self._store.transaction() as db:
            return db.execute(
                "UPDATE runs SET finished_at = ?, outcome = ?"
                " WHERE kind = ? AND finished_at IS NULL",
                (ts(now), RunOutcome.INTERRUPTED.value, kind),
            ).rowcount

    def last(self, kind: str) -> Run | None:
        found = self._store.query(
            "SELECT id, kind, as_of, started_at, finished_at, outcome, detail FROM runs"
            " WHERE kind = ? ORDER BY id DESC LIMIT 1",
            (kind,),
        )
        if not found:
            return None
        run_id, kind, as_of, started_at, finished_at, outcome, detail = found[0]
        return Run(
            id=run_id,
            kind=kind,
            as_of=date.fromisoformat(as_of) if as_of else None,
            started_at=from_ts(started_at),
            finished_at=from_ts(finished_at) if finished_at else None,
            outcome=RunOutcome(outcome) if outcome else None,
            detail=json.loads(detail) if detail else {},
        )


def _date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


# Bulk writes to the ledger, the review log and the seen dates go in the order of the keys
# their indexes hold (recipient and path, or path), not in the order a plan lists documents
# (urgency): each insert then lands beside the previous one in the index, rather than on a page
# of its own, and a cycle remembering 75,000 reminders writes them in half the time.
_BY_KEY = itemgetter(0, 1)  # a ledger row: recipient, path
_BY_PATH = itemgetter(0)  # a seen row: path


def _log(db: sqlite3.Connection, entries: Sequence[LogEntry]) -> None:
    """Add ``entries`` to the review log, in the order of their paths (see _BY_KEY); a stable
    sort, so that the entries of one path keep theirs."""
    db.executemany(
        "INSERT INTO review_log (path, kind, at, editor, old_date, new_date, outcome, note,"
        " content_changed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                e.path,
                e.kind.value,
                ts(e.at),
                e.editor,
                _iso(e.old_date),
                _iso(e.new_date),
                e.outcome,
                e.note,
                e.content_changed,
            )
            for e in sorted(entries, key=attrgetter("path"))
        ],
    )


_LOG_COLUMNS = "path, kind, at, editor, old_date, new_date, outcome, note, content_changed"


def _log_entry(row: Sequence[Any]) -> LogEntry:
    path, kind, at, editor, old, new, outcome, note, changed = row
    return LogEntry(
        path=path,
        kind=LogKind(kind),
        at=from_ts(at),
        editor=editor,
        old_date=_date(old),
        new_date=_date(new),
        outcome=outcome,
        note=note,
        content_changed=None if changed is None else bool(changed),
    )


class SqliteReviewLog:
    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    def append(self, entries: Sequence[LogEntry]) -> None:
        with self._store.transaction() as db:
            _log(db, entries)

    def entries(self, path: str | None = None, since: datetime | None = None) -> list[LogEntry]:
        rows = self._store.query(
            f"SELECT {_LOG_COLUMNS} FROM review_log"  # noqa: S608 (a constant)
            " WHERE (?1 IS NULL OR path = ?1) AND (?2 IS NULL OR at >= ?2) ORDER BY id",
            (path, ts(since) if since is not None else None),
        )
        return [_log_entry(row) for row in rows]

    def latest_reviews(self) -> dict[str, LogEntry]:
        kinds = (LogKind.REVIEWED.value, LogKind.EDITED_OUTSIDE.value)
        rows = self._store.query(
            f"SELECT {_LOG_COLUMNS} FROM review_log WHERE id IN ("  # noqa: S608 (a constant)
            " SELECT max(id) FROM review_log WHERE kind IN (?, ?) GROUP BY path)",
            kinds,
        )
        return {entry.path: entry for entry in map(_log_entry, rows)}

    def seen(self) -> dict[str, Seen]:
        rows = self._store.query("SELECT path, last_reviewed, content FROM review_seen")
        dates = _Dates()
        return {path: Seen(path, dates[d], content) for path, d, content in rows}

    def observe(self, seen: Sequence[Seen], entries: Sequence[LogEntry]) -> None:
        with self._store.transaction() as db:
            db.executemany(
                "INSERT INTO review_seen (path, last_reviewed, content) VALUES (?, ?, ?)"
                " ON CONFLICT (path) DO UPDATE SET last_reviewed = excluded.last_reviewed,"
                " content = excluded.content",
                sorted(
                    ((s.path, s.last_reviewed.isoformat(), s.content) for s in seen),
                    key=_BY_PATH,
                ),
            )
            _log(db, entries)


class SqliteSnoozes:
    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    def snooze(self, snoozes: Sequence[Snooze]) -> None:
        with self._store.transaction() as db:
            db.executemany(
                "INSERT INTO snoozes (path, until, reason, editor, at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (path) DO UPDATE SET until = excluded.until,"
                " reason = excluded.reason, editor = excluded.editor, at = excluded.at",
                [(s.path, s.until.isoformat(), s.reason, s.editor, ts(s.at)) for s in snoozes],
            )
            _log(
                db,
                [
                    LogEntry(
                        s.path, LogKind.SNOOZED, s.at, s.editor, new_date=s.until, note=s.reason
                    )
                    for s in snoozes
                ],
            )

    def cancel(self, paths: Collection[str], now: datetime, editor: str | None) -> list[str]:
        cancelled = []
        with self._store.transaction() as db:
            for path in sorted(set(paths)):
                if db.execute("DELETE FROM snoozes WHERE path = ?", (path,)).rowcount:
                    cancelled.append(path)
            _log(db, [LogEntry(p, LogKind.SNOOZE_CANCELLED, now, editor) for p in cancelled])
        return cancelled

    def listing(self) -> list[Snooze]:
        rows = self._store.query(
            "SELECT path, until, reason, editor, at FROM snoozes ORDER BY path"
        )
        return [
            Snooze(path, date.fromisoformat(until), reason, editor, from_ts(at))
            for path, until, reason, editor, at in rows
        ]


_FS_CODEC = (sys.getfilesystemencoding(), sys.getfilesystemencodeerrors())


_CACHE_FOLDER = (
    "SELECT CAST(name AS BLOB), CAST(size AS INTEGER), CAST(mtime_ns AS INTEGER),"
    " CAST(ctime_ns AS INTEGER), CAST(stamp_ns AS INTEGER), CAST(digest AS BLOB),"
    " CAST(fingerprint AS TEXT), CAST(rel AS BLOB), CAST(route AS TEXT),"
    " CAST(facts AS TEXT) FROM parse_cache WHERE folder = ?"
)
_CACHE_FILE = (
    "SELECT CAST(name AS BLOB), CAST(size AS INTEGER), CAST(mtime_ns AS INTEGER),"
    " CAST(ctime_ns AS INTEGER), CAST(stamp_ns AS INTEGER), CAST(digest AS BLOB),"
    " CAST(fingerprint AS TEXT), CAST(rel AS BLOB), CAST(route AS TEXT),"
    " CAST(facts AS TEXT) FROM parse_cache WHERE folder = ? AND name = ?"
)


class SqliteCache:
    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    def adopt(self, fingerprint: str) -> bool:
        with self._store.transaction() as db:
            row = db.execute("SELECT fingerprint FROM parse_cache_settings").fetchone()
            if row is not None and row[0] == fingerprint:
                return False
            db.execute("DELETE FROM parse_cache WHERE fingerprint != ?", (fingerprint,))
            db.execute(
                "INSERT INTO parse_cache_settings (id, fingerprint) VALUES (1, ?)"
                " ON CONFLICT (id) DO UPDATE SET fingerprint = excluded.fingerprint",
                (fingerprint,),
            )
            return row is not None

    def folder(self, folder: bytes, name: bytes | None = None) -> list[CacheEntry]:
        # SQLite keeps whatever a column is given: the casts hand back the declared types even
        # from a damaged file.
        # The routing path is kept as the bytes of a file name (any name the file system allows,
        # UTF-8 or not), like the folder and the name.
        # os.fsdecode's own work, without its Python-level checks: one call per cached file.
        make, encoding, errors = CacheEntry._make, *_FS_CODEC
        return [
            make((*row[:7], row[7].decode(encoding, errors), *row[8:]))
            for row in (
                self._store.query(_CACHE_FOLDER, (folder,))
                if name is None
                else self._store.query(_CACHE_FILE, (folder, name))
            )
        ]

    def write(
        self,
        upserts: Sequence[tuple[bytes, CacheEntry]],
        retimed: Sequence[Retimed],
        deletes: Sequence[tuple[bytes, bytes]],
    ) -> None:
        with self._store.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO parse_cache (folder, name, size, mtime_ns, ctime_ns,"
                " stamp_ns, digest, fingerprint, rel, route, facts)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(folder, *e[:7], os.fsencode(e.rel), *e[8:]) for folder, e in upserts],
            )
            db.executemany(
                "UPDATE parse_cache SET size = :size, mtime_ns = :mtime_ns, ctime_ns = :ctime_ns,"
                " stamp_ns = :stamp_ns WHERE folder = :folder AND name = :name"
                " AND digest = :digest AND fingerprint = :fingerprint",
                [r._asdict() for r in retimed],
            )
            db.executemany("DELETE FROM parse_cache WHERE folder = ? AND name = ?", deletes)

    def folders(self) -> list[bytes]:
        return [f for (f,) in self._store.query("SELECT DISTINCT folder FROM parse_cache")]

    def forget_folders(self, folders: Sequence[bytes]) -> None:
        with self._store.transaction() as db:
            db.executemany("DELETE FROM parse_cache WHERE folder = ?", [(f,) for f in folders])

    def clear(self) -> int:
        with self._store.transaction() as db:
            removed = db.execute("DELETE FROM parse_cache").rowcount
            db.execute("DELETE FROM parse_cache_settings")
        return int(removed)


class SqliteReplicas:
    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    def heartbeat(self, replica: Replica) -> None:
        with self._store.transaction() as db:
            db.execute(
                "INSERT INTO replicas (id, host, pid, started_at, seen_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
                (
                    replica.id,
                    replica.host,
                    replica.pid,
                    ts(replica.started_at),
                    ts(replica.seen_at),
                ),
            )

    def replicas(self, since: datetime) -> list[Replica]:
        rows = self._store.query(
            "SELECT id, host, pid, started_at, seen_at FROM replicas WHERE seen_at >= ?"
            " ORDER BY id",
            (ts(since),),
        )
        return [Replica(i, h, p, from_ts(a), from_ts(b)) for i, h, p, a, b in rows]

    def forget(self, replica: str) -> None:
        with self._store.transaction() as db:
            db.execute("DELETE FROM replicas WHERE id = ?", (replica,))

    def lead(self, name: str, holder: str, now: datetime, lease: timedelta) -> Lease:
        stamp = ts(now)
        with self._store.transaction() as db:
            db.execute(
                "INSERT INTO leases (name, holder, acquired_at, until) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,"
                " until = excluded.until,"
                " acquired_at = CASE WHEN holder = excluded.holder THEN acquired_at"
                " ELSE excluded.acquired_at END,"
                " previous = CASE WHEN holder = excluded.holder THEN previous ELSE holder END"
                " WHERE holder = excluded.holder OR until <= excluded.acquired_at",
                (name, holder, stamp, ts(now + lease)),
            )
            row = db.execute(
                "SELECT name, holder, acquired_at, until, previous FROM leases WHERE name = ?",
                (name,),
            ).fetchone()
        return Lease(row[0], row[1], from_ts(row[2]), from_ts(row[3]), row[4])

    def resign(self, name: str, holder: str) -> None:
        with self._store.transaction() as db:
            db.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))

    def leader(self, name: str) -> Lease | None:
        rows = self._store.query(
            "SELECT name, holder, acquired_at, until, previous FROM leases WHERE name = ?",
            (name,),
        )
        if not rows:
            return None
        name, holder, acquired_at, until, previous = rows[0]
        return Lease(name, holder, from_ts(acquired_at), from_ts(until), previous)
