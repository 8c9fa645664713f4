"""The PostgreSQL state store: one database shared by every daemon of a team.

For teams that run the scheduler on several hosts or in containers, with no lasting local disk.
It keeps what the SQLite store keeps, in the same shape, and adds what several daemons need to
share it: outbox claims with ``FOR UPDATE SKIP LOCKED`` (replicas deliver in parallel, never the
same message twice), heartbeats, and the cycle lease (one replica runs each cycle).

psycopg 3 and its pool are imported only when a ``postgresql://`` store is opened: SQLite users
never need them (``pip install 'review-scheduler[postgresql]'``). The password never comes from
the URL: from ``SCHEDULER_STORE__PASSWORD``, else libpq's own ``PGPASSWORD`` or ``~/.pgpass``.
Schema steps are numbered, applied once at start-up under an advisory lock (two daemons starting
together never both migrate), and only ever appended.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from functools import cached_property
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from scheduler.errors import StoreError
from scheduler.notify.channel import Notification
from scheduler.notify.reminders import LedgerEntry
from scheduler.review.state import State
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
from scheduler.store.settled import SettledTable

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

SCHEMES = ("postgresql", "postgres")
# Advisory lock keys (in this database): schema steps, and the single-daemon lock.
SCHEMA_LOCK = 0x5253_0001
DAEMON_LOCK = 0x5253_0002
CYCLE_MARK = 0x5253_0003  # shared by every process running a cycle (send, a daemon's cycle)
CONNECT_TIMEOUT_S = 10  # to open a connection
# How long an operation waits for a connection before it fails (the server is away); each new
# connection is tried for a little less, so the first operation after the server is back
# connects at once instead of waiting out a long back-off.
POOL_WAIT_S = 4.0
RECONNECT_S = 2.0

STEPS = (
    """
    CREATE TABLE reminder_ledger (
        recipient TEXT NOT NULL,
        path TEXT NOT NULL,
        due DATE,
        state TEXT NOT NULL,
        notified_on DATE NOT NULL,
        PRIMARY KEY (recipient, path)
    );
    CREATE TABLE outbox (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
        data BYTEA,
        status TEXT NOT NULL DEFAULT 'pending',
        created_at TIMESTAMPTZ NOT NULL,
        window_start TIMESTAMPTZ NOT NULL,
        next_attempt_at TIMESTAMPTZ NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        lease_owner TEXT,
        lease_until TIMESTAMPTZ,
        finished_at TIMESTAMPTZ
    );
    CREATE INDEX outbox_due ON outbox (channel, next_attempt_at, id) WHERE status = 'pending';
    CREATE INDEX outbox_by_status ON outbox (status);
    CREATE INDEX outbox_by_lease ON outbox (lease_owner) WHERE lease_owner IS NOT NULL;
    CREATE TABLE outbox_recipients (
        outbox_id BIGINT NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        address TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        code INTEGER,
        reply TEXT,
        PRIMARY KEY (outbox_id, address)
    );
    CREATE TABLE delivery_attempts (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        outbox_id BIGINT NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
        at TIMESTAMPTZ NOT NULL,
        address TEXT NOT NULL,
        outcome TEXT NOT NULL,
        code INTEGER,
        reply TEXT
    );
    CREATE INDEX delivery_attempts_by_outbox ON delivery_attempts (outbox_id);
    CREATE TABLE runs (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        kind TEXT NOT NULL,
        as_of DATE,
        started_at TIMESTAMPTZ NOT NULL,
        finished_at TIMESTAMPTZ,
        outcome TEXT,
        detail TEXT
    );
    CREATE INDEX runs_by_kind ON runs (kind, id);
    CREATE TABLE parse_cache_settings (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        fingerprint TEXT NOT NULL
    );
    CREATE TABLE parse_cache (
        folder BYTEA NOT NULL,
        name BYTEA NOT NULL,
        size BIGINT NOT NULL,
        mtime_ns BIGINT NOT NULL,
        ctime_ns BIGINT NOT NULL,
        stamp_ns BIGINT NOT NULL,
        digest BYTEA NOT NULL,
        fingerprint TEXT NOT NULL,
        rel BYTEA NOT NULL,
        route TEXT NOT NULL,
        facts TEXT NOT NULL,
        PRIMARY KEY (folder, name)
    );
    CREATE TABLE review_log (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        path TEXT NOT NULL,
        kind TEXT NOT NULL,
        at TIMESTAMPTZ NOT NULL,
        editor TEXT,
        old_date DATE,
        new_date DATE,
        outcome TEXT,
        note TEXT,
        content_changed BOOLEAN
    );
    CREATE INDEX review_log_by_path ON review_log (path, id);
    CREATE INDEX review_log_by_kind ON review_log (kind, path, id);
    CREATE TABLE review_seen (
        path TEXT PRIMARY KEY,
        last_reviewed DATE NOT NULL,
        content TEXT
    );
    CREATE TABLE snoozes (
        path TEXT PRIMARY KEY,
        until DATE NOT NULL,
        reason TEXT NOT NULL,
        editor TEXT,
        at TIMESTAMPTZ NOT NULL
    );
    CREATE TABLE replicas (
        id TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started_at TIMESTAMPTZ NOT NULL,
        seen_at TIMESTAMPTZ NOT NULL
    );
    CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        acquired_at TIMESTAMPTZ NOT NULL,
        until TIMESTAMPTZ NOT NULL,
        previous TEXT
    )
    """,
    # Every change to the tables a reminder cycle decides from, by any process or version,
    # counted (see scheduler.store.settled), and the last cycle that found nothing to do. A
    # transaction counts once, however many statements it runs (executemany runs one per row:
    # the store's own bulk writes are one statement each, see _columns).
    """
    CREATE TABLE store_generation (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        n BIGINT NOT NULL,
        counted_in TEXT
    );
    INSERT INTO store_generation (id, n) VALUES (1, 0);
    CREATE TABLE settled_cycle (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        key TEXT NOT NULL,
        generation BIGINT NOT NULL,
        documents INTEGER NOT NULL,
        outstanding INTEGER NOT NULL,
        stamp_ns BIGINT NOT NULL
    );
    CREATE FUNCTION count_store_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE store_generation SET n = n + 1, counted_in = pg_current_xact_id()::text
        WHERE id = 1 AND counted_in IS DISTINCT FROM pg_current_xact_id()::text;
        RETURN NULL;
    END
    $$;
    CREATE TRIGGER reminder_ledger_counted
        AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON reminder_ledger
        FOR EACH STATEMENT EXECUTE FUNCTION count_store_change();
    CREATE TRIGGER review_log_counted
        AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON review_log
        FOR EACH STATEMENT EXECUTE FUNCTION count_store_change();
    CREATE TRIGGER review_seen_counted
        AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON review_seen
        FOR EACH STATEMENT EXECUTE FUNCTION count_store_change();
    CREATE TRIGGER snoozes_counted
        AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON snoozes
        FOR EACH STATEMENT EXECUTE FUNCTION count_store_change()
    """,
)


def location(rest: str) -> str:
    """The database a URL's part after ``postgresql://`` names, as a libpq URL (shown in
    messages). ValueError when it holds a password: passwords come from the environment."""
    url = f"postgresql://{rest}"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (validates the port)
    except ValueError as exc:
        raise ValueError(f"not a valid postgresql:// URL: {exc}") from None
    if parts.password is not None or "password" in parse_qs(parts.query):
        raise ValueError(
            "must not hold a password; set the environment variable SCHEDULER_STORE__PASSWORD "
            "(or libpq's PGPASSWORD, or a ~/.pgpass file) instead"
        )
    return url


def _driver() -> Any:
    try:
        import psycopg
        import psycopg_pool
    except ImportError:
        raise StoreError(
            "a postgresql:// store needs PostgreSQL support: "
            "pip install 'review-scheduler[postgresql]'"
        ) from None
    return psycopg, psycopg_pool


def _connect_kwargs(password: str | None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "connect_timeout": CONNECT_TIMEOUT_S,
        "options": "-c TimeZone=UTC",
        "application_name": f"review-scheduler:{os.getpid()}",
    }
    if password is not None:
        kwargs["password"] = password
    return kwargs


def exists(url: str, cwd: Path, password: str | None = None) -> bool:
    driver, _ = _driver()
    try:
        with driver.connect(url, **_connect_kwargs(password)) as conn:
            row = conn.execute("SELECT to_regclass('schema_steps') IS NOT NULL").fetchone()
    except driver.Error as exc:
        raise StoreError(f"cannot reach the state store {url}: {_reason(exc)}") from exc
    return bool(row[0])


def open_store(url: str, cwd: Path, durable: bool, password: str | None = None) -> PostgresStore:
    return PostgresStore(url, password)


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _statements(script: str) -> list[str]:
    """The statements of ``script``, a function's ``$$``-quoted body whole."""
    statements: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending = f"{pending};{piece}" if pending else piece
        if pending.count("$$") % 2 == 0:
            if pending.strip():
                statements.append(pending.strip())
            pending = ""
    if pending.strip():
        statements.append(pending.strip())
    return statements


class PostgresStore:
    """An open PostgreSQL state store (a :class:`~scheduler.store.interfaces.StateStore`):
    a small pool of connections, each operation one transaction on one of them.

    When the server goes away, operations fail with a :class:`StoreError` after a few seconds;
    the pool reconnects by itself once it is back.
    """

    shared = True  # several daemons: they take turns at cycles through the cycle lease

    def __init__(self, url: str, password: str | None) -> None:
        driver, pools = _driver()
        # The pool logs each failed reconnection; the daemon says once that the store is away.
        logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
        self._errors: tuple[type[BaseException], ...] = (driver.Error, pools.PoolTimeout)
        self.shown = url
        self._url = url
        self._kwargs = _connect_kwargs(password)
        self._lock_conn: psycopg.Connection[Any] | None = None
        self._mark_conns: list[psycopg.Connection[Any]] = []  # see running()
        try:
            # A first connection of our own: a clear error when the server is unreachable or
            # refuses us, and the schema brought up to date under a lock.
            with driver.connect(url, **self._kwargs) as conn:
                self._migrate(conn)
        except driver.Error as exc:
            raise StoreError(f"cannot open the state store {url}: {_reason(exc)}") from exc
        self.pool: ConnectionPool[Any] = pools.ConnectionPool(
            url,
            kwargs=self._kwargs,
            min_size=1,
            max_size=4,
            timeout=POOL_WAIT_S,
            check=pools.ConnectionPool.check_connection,
            reconnect_timeout=RECONNECT_S,
            name="review-scheduler",
            open=False,
        )
        self.pool.open(wait=False)

    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_steps ("
                " component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
            )
            row = conn.execute(
                "SELECT version FROM schema_steps WHERE component = 'store'"
            ).fetchone()
            version = row[0] if row else 0
            if version > len(STEPS):
                raise StoreError(
                    f"the state store {self.shown} was written by a newer review-scheduler "
                    f"(schema {version}, this version knows {len(STEPS)})"
                )
            for step in STEPS[version:]:
                for statement in _statements(step):
                    conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_steps (component, version) VALUES ('store', %s)"
                " ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                (len(STEPS),),
            )

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._unlock()
        for conn in self._mark_conns:
            _end_mark(conn)
        self._mark_conns.clear()
        self.pool.close()

    # ----- plumbing

    @contextmanager
    def guard(self) -> Iterator[None]:
        """The driver's errors, as the store's."""
        try:
            yield
        except self._errors as exc:
            raise StoreError(f"the state store {self.shown}: {_reason(exc)}") from exc

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """One transaction: everything in the block commits together or not at all."""
        with self.guard(), self.pool.connection() as conn:
            yield conn

    def query(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[Any]:
        with self.transaction() as conn:
            return conn.execute(sql, params).fetchall()

    # ----- the parts

    @cached_property
    def ledger(self) -> PgLedger:
        return PgLedger(self)

    @cached_property
    def outbox(self) -> PgOutbox:
        return PgOutbox(self)

    @cached_property
    def runs(self) -> PgRuns:
        return PgRuns(self)

    @cached_property
    def cache(self) -> PgCache:
        return PgCache(self)

    @cached_property
    def reviews(self) -> PgReviewLog:
        return PgReviewLog(self)

    @cached_property
    def snoozes(self) -> PgSnoozes:
        return PgSnoozes(self)

    @cached_property
    def replicas(self) -> PgReplicas:
        return PgReplicas(self)

    @cached_property
    def settled(self) -> SettledTable:
        return SettledTable(self, "%s")

    # ----- the single-daemon lock: a session advisory lock, freed when its connection ends

    @contextmanager
    def lock(self) -> Iterator[None]:
        driver, _ = _driver()
        with self.guard():
            conn = driver.connect(self._url, autocommit=True, **self._kwargs)
            try:
                (got,) = conn.execute("SELECT pg_try_advisory_lock(%s)", (DAEMON_LOCK,)).fetchone()
            except BaseException:
                conn.close()
                raise
        if not got:
            conn.close()
            holder = self.lock_holder()
            who = f" (pid {holder})" if holder and holder > 0 else ""
            raise StoreError(
                f"another review-scheduler daemon{who} is already running on the state store "
                f"{self.shown}; stop it first, or give this one another [store] url"
            )
        self._lock_conn = conn
        try:
            yield
        finally:
            self._unlock()

    def ensure_locked(self) -> None:
        """The lock lives in its own session: it is lost when that session ended (terminated,
        the server restarted, the database dropped), as the server then frees the lock for
        another daemon. A session still open that merely cannot answer yet is not a loss."""
        conn = self._lock_conn
        if conn is None:
            raise StoreError(f"this process does not hold the lock on the state store {self.shown}")
        driver, _ = _driver()
        try:
            row = conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND pid = pg_backend_pid() AND classid = 0 AND objid = %s AND objsubid = 1",
                (DAEMON_LOCK,),
            ).fetchone()
        except driver.Error as exc:
            if not conn.closed:
                raise StoreError(f"the state store {self.shown}: {_reason(exc)}") from exc
            held = False
            why = _reason(exc)
        else:
            held = row is not None and row[0] > 0
            why = "the session no longer holds it"
        if not held:
            raise StoreError(
                f"the lock on the state store {self.shown} was lost ({why}), so another daemon "
                "could start beside this one; stopping"
            )

    def _unlock(self) -> None:
        if self._lock_conn is not None:
            self._lock_conn.close()  # the session ends: the lock goes with it
            self._lock_conn = None

    # ----- the mark of a running cycle: a shared session advisory lock, freed with its session

    @contextmanager
    def running(self) -> Iterator[None]:
        driver, _ = _driver()
        with self.guard():
            conn = driver.connect(self._url, autocommit=True, **self._kwargs)
        self._mark_conns.append(conn)
        try:
            with self.guard():
                conn.execute("SELECT pg_advisory_lock_shared(%s)", (CYCLE_MARK,))
            yield
        finally:
            if conn in self._mark_conns:
                self._mark_conns.remove(conn)
                _end_mark(conn)

    def cycle_running(self) -> bool:
        with self.transaction() as conn:
            # An exclusive try-lock in this transaction fails while anyone holds the mark.
            row = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (CYCLE_MARK,)).fetchone()
        return row is not None and not row[0]

    def lock_holder(self) -> int | None:
        rows = self.query(
            "SELECT a.application_name FROM pg_locks l"
            " LEFT JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
            " AND l.classid = 0 AND l.objid = %s"
            " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            (DAEMON_LOCK,),
        )
        if not rows:
            return None
        name = rows[0][0] or ""
        pid = name.rpartition(":")[2]
        return int(pid) if name.startswith("review-scheduler:") and pid.isdigit() else -1


def _end_mark(conn: psycopg.Connection[Any]) -> None:
    """Take the running-cycle mark off at once (a closed session's locks go only when its
    server process has ended, a moment later), then close the session."""
    with contextlib.suppress(Exception):  # the server is away: its session, and the mark, too
        conn.execute("SELECT pg_advisory_unlock_all()")
    conn.close()


class PgLedger:
    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    def entries(self) -> list[LedgerEntry]:
        rows = self._store.query(
            "SELECT recipient, path, due, state, notified_on FROM reminder_ledger"
        )
        return [LedgerEntry(r, p, d, State(s), n) for r, p, d, s, n in rows]


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
        prebuilt=bytes(data) if data is not None else None,
    )


def _recipients(conn: psycopg.Connection[Any], ids: list[int]) -> dict[int, tuple[Recipient, ...]]:
    found: dict[int, list[Recipient]] = {i: [] for i in ids}
    for outbox_id, address, status, code, reply in conn.execute(
        "SELECT outbox_id, address, status, code, reply FROM outbox_recipients"
        " WHERE outbox_id = ANY(%s) ORDER BY outbox_id, position",
        (ids,),
    ):
        found[outbox_id].append(Recipient(address, OutboxStatus(status), code, reply))
    return {i: tuple(r) for i, r in found.items()}


def _columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """``rows`` as ``width`` columns, each a list: the arrays ``unnest`` takes them from. (Bulk
    writes are one statement each, not one per row: fewer round trips, and a table's
    statement triggers run once.)"""
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * width


def _last_by(rows: Sequence[tuple[Any, ...]], width: int) -> list[tuple[Any, ...]]:
    """``rows`` with one row per key (its first ``width`` values), the last written: one
    statement may not update a row twice."""
    return list({row[:width]: row for row in rows}.values())


def _log(conn: psycopg.Connection[Any], entries: Sequence[LogEntry]) -> None:
    """Add ``entries`` to the review log in the order of their paths, as the SQLite store does
    (a stable sort: the entries of one path keep theirs)."""
    if not entries:
        return
    rows = [
        (
            e.path,
            e.kind.value,
            e.at,
            e.editor,
            e.old_date,
            e.new_date,
            e.outcome,
            e.note,
            e.content_changed,
        )
        for e in sorted(entries, key=attrgetter("path"))
    ]
    conn.execute(
        "INSERT INTO review_log (path, kind, at, editor, old_date, new_date, outcome, note,"
        " content_changed) SELECT path, kind, at, editor, old_date, new_date, outcome, note,"
        " content_changed FROM unnest(%s::text[], %s::text[], %s::timestamptz[], %s::text[],"
        " %s::date[], %s::date[], %s::text[], %s::text[], %s::boolean[]) WITH ORDINALITY"
        " AS u (path, kind, at, editor, old_date, new_date, outcome, note, content_changed,"
        " position) ORDER BY position",
        _columns(rows, 9),
    )


class PgOutbox:
    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    def enqueue(
        self, queued: Sequence[Queued], forget: Collection[tuple[str, str]], now: datetime
    ) -> list[str]:
        added = []
        with self._store.transaction() as conn, conn.cursor() as cursor:
            for item in queued:
                row = cursor.execute(
                    f"INSERT INTO outbox ({_NOTIFICATION_COLUMNS}, created_at, window_start,"  # noqa: S608
                    " next_attempt_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
                    " %s, %s) ON CONFLICT (key) DO NOTHING RETURNING id",
                    (*_notification_values(item.notification), now, now, now),
                ).fetchone()
                if row is None:
                    continue  # queued before: so were its ledger entries
                added.append(item.key)
                cursor.executemany(
                    "INSERT INTO outbox_recipients (outbox_id, position, address)"
                    " VALUES (%s, %s, %s)",
                    [(row[0], i, a) for i, a in enumerate(item.notification.recipients)],
                )
                if item.remember:
                    rows = [
                        (e.recipient, e.path, e.due, e.state.value, e.notified_on)
                        for e in item.remember
                    ]
                    cursor.execute(
                        "INSERT INTO reminder_ledger (recipient, path, due, state, notified_on)"
                        " SELECT * FROM unnest(%s::text[], %s::text[], %s::date[], %s::text[],"
                        " %s::date[]) ON CONFLICT (recipient, path) DO UPDATE"
                        " SET due = excluded.due, state = excluded.state,"
                        " notified_on = excluded.notified_on",
                        _columns(_last_by(rows, 2), 5),
                    )
                _log(conn, item.log)
            if forget:
                cursor.execute(
                    "DELETE FROM reminder_ledger WHERE (recipient, path) IN"
                    " (SELECT * FROM unnest(%s::text[], %s::text[]))",
                    _columns(list(forget), 2),
                )
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
        # SKIP LOCKED: a row another replica is claiming right now is passed over, not waited
        # for; once that claim commits, its lease keeps the row from everyone else.
        with self._store.transaction() as conn:
            rows = conn.execute(
                "UPDATE outbox SET lease_owner = %s, lease_until = %s WHERE id IN ("  # noqa: S608
                " SELECT id FROM outbox WHERE status = 'pending' AND channel = %s"
                " AND next_attempt_at <= %s AND (lease_until IS NULL OR lease_until <= %s)"
                " AND NOT (id = ANY(%s)) ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)"
                f" RETURNING id, attempts, window_start, {_NOTIFICATION_COLUMNS}",
                (owner, now + lease, channel, now, now, list(exclude), limit),
            ).fetchall()
            rows.sort(key=lambda row: row[0])
            recipients = _recipients(conn, [row[0] for row in rows])
            unconfirmed: dict[int, set[str]] = {}
            for outbox_id, address in conn.execute(
                "SELECT DISTINCT a.outbox_id, a.address FROM delivery_attempts a"
                " JOIN outbox o ON o.id = a.outbox_id WHERE a.outbox_id = ANY(%s)"
                " AND a.outcome = 'unconfirmed' AND a.at >= o.window_start",
                ([row[0] for row in rows],),
            ):
                unconfirmed.setdefault(outbox_id, set()).add(address)
        return [
            Claimed(
                id=row[0],
                notification=_notification(row[3:]),
                attempts=row[1],
                window_start=row[2],
                recipients=recipients[row[0]],
                unconfirmed=frozenset(unconfirmed.get(row[0], ())),
            )
            for row in rows
        ]

    def present(self, keys: Collection[str]) -> set[str]:
        rows = self._store.query("SELECT key FROM outbox WHERE key = ANY(%s)", (list(keys),))
        return {key for (key,) in rows}

    def release(self, ids: Collection[int], owner: str) -> None:
        with self._store.transaction() as conn:
            conn.execute(
                "UPDATE outbox SET lease_owner = NULL, lease_until = NULL"
                " WHERE id = ANY(%s) AND lease_owner = %s",
                (list(ids), owner),
            )

    def lease_owners(self) -> list[str]:
        return [
            owner
            for (owner,) in self._store.query(
                "SELECT DISTINCT lease_owner FROM outbox WHERE lease_owner IS NOT NULL"
            )
        ]

    def release_owner(self, owner: str) -> int:
        with self._store.transaction() as conn:
            return conn.execute(
                "UPDATE outbox SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = %s",
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
        with self._store.transaction() as conn, conn.cursor() as cursor:
            if attempts:
                cursor.executemany(
                    "INSERT INTO delivery_attempts (outbox_id, at, address, outcome, code, reply)"
                    " VALUES (%s, %s, %s, %s, %s, %s)",
                    [
                        (
                            outbox_id,
                            now,
                            a.address,
                            a.result.outcome.value,
                            a.result.code,
                            a.result.reply,
                        )
                        for a in attempts
                    ],
                )
                cursor.executemany(
                    "UPDATE outbox_recipients SET status = %s, code = %s, reply = %s"
                    " WHERE outbox_id = %s AND address = %s",
                    [
                        (a.status.value, a.result.code, a.reply, outbox_id, a.address)
                        for a in attempts
                    ],
                )
            cursor.execute(
                "UPDATE outbox SET status = %s, attempts = %s, next_attempt_at = %s,"
                " lease_owner = NULL, lease_until = NULL, finished_at = %s WHERE id = %s",
                (
                    status.value,
                    attempt_count,
                    next_attempt_at or now,
                    None if next_attempt_at else now,
                    outbox_id,
                ),
            )

    def rows(self, status: OutboxStatus | None = None) -> list[OutboxRow]:
        with self._store.transaction() as conn:
            rows = conn.execute(
                "SELECT id, key, status, subject, created_at, attempts, next_attempt_at"
                " FROM outbox WHERE %s::text IS NULL OR status = %s ORDER BY id",
                (status and status.value, status and status.value),
            ).fetchall()
            recipients = _recipients(conn, [row[0] for row in rows])
        return [
            OutboxRow(
                id=row[0],
                key=row[1],
                status=OutboxStatus(row[2]),
                subject=row[3],
                created_at=row[4],
                attempts=row[5],
                next_attempt_at=row[6],
                recipients=recipients[row[0]],
            )
            for row in rows
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
        return Failing(since, messages, code, reply or "")

    def requeue(self, ids: Collection[int] | None, now: datetime) -> list[int]:
        with self._store.transaction() as conn:
            failed = {
                i
                for (i,) in conn.execute(
                    "SELECT id FROM outbox WHERE status IN ('failed', 'unconfirmed')"
                )
            }
            chosen = sorted(failed) if ids is None else [i for i in ids if i in failed]
            conn.execute(
                "UPDATE outbox_recipients SET status = 'pending'"
                " WHERE outbox_id = ANY(%s) AND status IN ('failed', 'unconfirmed')",
                (chosen,),
            )
            conn.execute(
                "UPDATE outbox SET status = 'pending', next_attempt_at = %s, window_start = %s,"
                " finished_at = NULL WHERE id = ANY(%s)",
                (now, now, chosen),
            )
        return chosen


class PgRuns:
    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    def start(self, kind: str, as_of: date | None, now: datetime) -> int:
        with self._store.transaction() as conn:
            row = conn.execute(
                "INSERT INTO runs (kind, as_of, started_at) VALUES (%s, %s, %s) RETURNING id",
                (kind, as_of, now),
            ).fetchone()
        assert row is not None
        return int(row[0])

    def finish(
        self, run_id: int, outcome: RunOutcome, detail: Mapping[str, object], now: datetime
    ) -> None:
        with self._store.transaction() as conn:
            conn.execute(
                "UPDATE runs SET finished_at = %s, outcome = %s, detail = %s WHERE id = %s",
                (now, outcome.value, json.dumps(detail, sort_keys=True), run_id),
            )

    def mark_interrupted(self, kind: str, now: datetime) -> int:
        with self._store.transaction() as conn:
            return conn.execute(
                "UPDATE runs SET finished_at = %s, outcome = %s"
                " WHERE kind = %s AND finished_at IS NULL",
                (now, RunOutcome.INTERRUPTED.value, kind),
            ).rowcount

    def last(self, kind: str) -> Run | None:
        found = self._store.query(
            "SELECT id, kind, as_of, started_at, finished_at, outcome, detail FROM runs"
            " WHERE kind = %s ORDER BY id DESC LIMIT 1",
            (kind,),
        )
        if not found:
            return None
        run_id, kind, as_of, started_at, finished_at, outcome, detail = found[0]
        return Run(
            id=run_id,
            kind=kind,
            as_of=as_of,
            started_at=started_at,
            finished_at=finished_at,
            outcome=RunOutcome(outcome) if outcome else None,
            detail=json.loads(detail) if detail else {},
        )


_LOG_COLUMNS = "path, kind, at, editor, old_date, new_date, outcome, note, content_changed"


def _log_entry(row: Sequence[Any]) -> LogEntry:
    path, kind, at, editor, old, new, outcome, note, changed = row
    return LogEntry(path, LogKind(kind), at, editor, old, new, outcome, note, changed)


class PgReviewLog:
    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    def append(self, entries: Sequence[LogEntry]) -> None:
        with self._store.transaction() as conn:
            _log(conn, entries)

    def entries(self, path: str | None = None, since: datetime | None = None) -> list[LogEntry]:
        rows = self._store.query(
            f"SELECT {_LOG_COLUMNS} FROM review_log"  # noqa: S608 (a constant)
            " WHERE (%(path)s::text IS NULL OR path = %(path)s)"
            " AND (%(since)s::timestamptz IS NULL OR at >= %(since)s) ORDER BY id",
            {"path": path, "since": since},
        )
        return [_log_entry(row) for row in rows]

    def latest_reviews(self) -> dict[str, LogEntry]:
        rows = self._store.query(
            f"SELECT DISTINCT ON (path) {_LOG_COLUMNS} FROM review_log"  # noqa: S608 (a constant)
            " WHERE kind = ANY(%s) ORDER BY path, id DESC",
            ([LogKind.REVIEWED.value, LogKind.EDITED_OUTSIDE.value],),
        )
        return {entry.path: entry for entry in map(_log_entry, rows)}

    def seen(self) -> dict[str, Seen]:
        rows = self._store.query("SELECT path, last_reviewed, content FROM review_seen")
        return {path: Seen(path, day, content) for path, day, content in rows}

    def observe(self, seen: Sequence[Seen], entries: Sequence[LogEntry]) -> None:
        with self._store.transaction() as conn:
            if seen:
                rows = [(s.path, s.last_reviewed, s.content) for s in seen]
                conn.execute(
                    "INSERT INTO review_seen (path, last_reviewed, content)"
                    " SELECT * FROM unnest(%s::text[], %s::date[], %s::text[])"
                    " ON CONFLICT (path) DO UPDATE SET"
                    " last_reviewed = excluded.last_reviewed, content = excluded.content",
                    _columns(_last_by(rows, 1), 3),
                )
            _log(conn, entries)


class PgSnoozes:
    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    def snooze(self, snoozes: Sequence[Snooze]) -> None:
        with self._store.transaction() as conn:
            if snoozes:
                rows = [(s.path, s.until, s.reason, s.editor, s.at) for s in snoozes]
                conn.execute(
                    "INSERT INTO snoozes (path, until, reason, editor, at)"
                    " SELECT * FROM unnest(%s::text[], %s::date[], %s::text[], %s::text[],"
                    " %s::timestamptz[]) ON CONFLICT (path) DO UPDATE SET"
                    " until = excluded.until, reason = excluded.reason,"
                    " editor = excluded.editor, at = excluded.at",
                    _columns(_last_by(rows, 1), 5),
                )
            _log(
                conn,
                [
                    LogEntry(
                        s.path, LogKind.SNOOZED, s.at, s.editor, new_date=s.until, note=s.reason
                    )
                    for s in snoozes
                ],
            )

    def cancel(self, paths: Collection[str], now: datetime, editor: str | None) -> list[str]:
        with self._store.transaction() as conn:
            cancelled = sorted(
                path
                for (path,) in conn.execute(
                    "DELETE FROM snoozes WHERE path = ANY(%s) RETURNING path", (sorted(set(paths)),)
                )
            )
            _log(conn, [LogEntry(p, LogKind.SNOOZE_CANCELLED, now, editor) for p in cancelled])
        return cancelled

    def listing(self) -> list[Snooze]:
        rows = self._store.query(
            "SELECT path, until, reason, editor, at FROM snoozes ORDER BY path"
        )
        return [Snooze(*row) for row in rows]


_CACHE_FOLDER = (
    "SELECT name, size, mtime_ns, ctime_ns, stamp_ns, digest, fingerprint, rel,"
    " route, facts FROM parse_cache WHERE folder = %s"
)
_CACHE_FILE = (
    "SELECT name, size, mtime_ns, ctime_ns, stamp_ns, digest, fingerprint, rel,"
    " route, facts FROM parse_cache WHERE folder = %s AND name = %s"
)


class PgCache:
    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    def adopt(self, fingerprint: str) -> bool:
        with self._store.transaction() as conn:
            row = conn.execute("SELECT fingerprint FROM parse_cache_settings FOR UPDATE").fetchone()
            if row is not None and row[0] == fingerprint:
                return False
            conn.execute("DELETE FROM parse_cache WHERE fingerprint <> %s", (fingerprint,))
            conn.execute(
                "INSERT INTO parse_cache_settings (id, fingerprint) VALUES (1, %s)"
                " ON CONFLICT (id) DO UPDATE SET fingerprint = excluded.fingerprint",
                (fingerprint,),
            )
            return row is not None

    def folder(self, folder: bytes, name: bytes | None = None) -> list[CacheEntry]:
        make, decode = CacheEntry._make, os.fsdecode
        return [
            make((bytes(row[0]), *row[1:5], bytes(row[5]), row[6], decode(bytes(row[7])), *row[8:]))
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
        with self._store.transaction() as conn, conn.cursor() as cursor:
            if upserts:
                cursor.executemany(
                    "INSERT INTO parse_cache (folder, name, size, mtime_ns, ctime_ns, stamp_ns,"
                    " digest, fingerprint, rel, route, facts)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (folder, name) DO UPDATE SET size = excluded.size,"
                    " mtime_ns = excluded.mtime_ns, ctime_ns = excluded.ctime_ns,"
                    " stamp_ns = excluded.stamp_ns, digest = excluded.digest,"
                    " fingerprint = excluded.fingerprint, rel = excluded.rel,"
                    " route = excluded.route, facts = excluded.facts",
                    [(folder, *e[:7], os.fsencode(e.rel), *e[8:]) for folder, e in upserts],
                )
            if retimed:
                cursor.executemany(
                    "UPDATE parse_cache SET size = %(size)s, mtime_ns = %(mtime_ns)s,"
                    " ctime_ns = %(ctime_ns)s, stamp_ns = %(stamp_ns)s"
                    " WHERE folder = %(folder)s AND name = %(name)s AND digest = %(digest)s"
                    " AND fingerprint = %(fingerprint)s",
                    [r._asdict() for r in retimed],
                )
            if deletes:
                cursor.executemany(
                    "DELETE FROM parse_cache WHERE folder = %s AND name = %s", list(deletes)
                )

    def folders(self) -> list[bytes]:
        return [bytes(f) for (f,) in self._store.query("SELECT DISTINCT folder FROM parse_cache")]

    def forget_folders(self, folders: Sequence[bytes]) -> None:
        with self._store.transaction() as conn:
            conn.execute("DELETE FROM parse_cache WHERE folder = ANY(%s)", (list(folders),))

    def clear(self) -> int:
        with self._store.transaction() as conn:
            removed = conn.execute("DELETE FROM parse_cache").rowcount
            conn.execute("DELETE FROM parse_cache_settings")
        return int(removed)


class PgReplicas:
    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    def heartbeat(self, replica: Replica) -> None:
        with self._store.transaction() as conn:
            conn.execute(
                "INSERT INTO replicas (id, host, pid, started_at, seen_at)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE"
                " SET seen_at = excluded.seen_at",
                (replica.id, replica.host, replica.pid, replica.started_at, replica.seen_at),
            )

    def replicas(self, since: datetime) -> list[Replica]:
        rows = self._store.query(
            "SELECT id, host, pid, started_at, seen_at FROM replicas WHERE seen_at >= %s"
            " ORDER BY id",
            (since,),
        )
        return [Replica(*row) for row in rows]

    def forget(self, replica: str) -> None:
        with self._store.transaction() as conn:
            conn.execute("DELETE FROM replicas WHERE id = %s", (replica,))

    def lead(self, name: str, holder: str, now: datetime, lease: timedelta) -> Lease:
        with self._store.transaction() as conn:
            conn.execute(
                "INSERT INTO leases AS l (name, holder, acquired_at, until)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (name) DO UPDATE SET"
                " holder = excluded.holder, until = excluded.until,"
                " acquired_at = CASE WHEN l.holder = excluded.holder THEN l.acquired_at"
                " ELSE excluded.acquired_at END,"
                " previous = CASE WHEN l.holder = excluded.holder THEN l.previous"
                " ELSE l.holder END"
                " WHERE l.holder = excluded.holder OR l.until <= excluded.acquired_at",
                (name, holder, now, now + lease),
            )
            row = conn.execute(
                "SELECT name, holder, acquired_at, until, previous FROM leases WHERE name = %s",
                (name,),
            ).fetchone()
        assert row is not None
        return Lease(*row)

    def resign(self, name: str, holder: str) -> None:
        with self._store.transaction() as conn:
            conn.execute("DELETE FROM leases WHERE name = %s AND holder = %s", (name, holder))

    def leader(self, name: str) -> Lease | None:
        rows = self._store.query(
            "SELECT name, holder, acquired_at, until, previous FROM leases WHERE name = %s",
            (name,),
        )
        return Lease(*rows[0]) if rows else None
