"""The reminder ledger, the outbox and the run history, kept in the state store.

The ledger remembers what each editor was last told about each document. The outbox holds
rendered messages until the server has accepted them: rows are written in the same transaction
as the ledger decisions that produced them, claimed under a lease by the process delivering them
(a crashed holder's lease simply expires), and every attempt is recorded per recipient.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from scheduler.notify.email import Outcome, OutgoingMessage, Result
from scheduler.notify.reminders import LedgerEntry, Plan
from scheduler.review.state import State
from scheduler.store.sqlite import Store


def ts(moment: datetime) -> str:
    """Timestamps are stored as UTC ISO strings, which sort as text."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def from_ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


REMINDER_STEPS = [
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
]


@dataclass(frozen=True, slots=True)
class Claimed:
    """An outbox message held under a lease by one delivering process."""

    id: int
    key: str
    message_id: str
    sender: str
    subject: str
    data: bytes
    attempts: int
    window_start: datetime
    recipients: tuple[str, ...]  # those still pending


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    key: str
    status: str
    subject: str
    created_at: datetime
    attempts: int
    next_attempt_at: datetime
    recipients: tuple[tuple[str, str, int | None, str | None], ...]  # address, status, code, reply


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    initial_seconds: float
    max_seconds: float
    give_up_after: timedelta

    def delay(self, attempts: int) -> timedelta:
        """Exponential backoff: initial, 2x, 4x, ... capped at max."""
        seconds = min(self.initial_seconds * 2 ** max(attempts - 1, 0), self.max_seconds)
        return timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True)
class Recorded:
    status: str  # pending, sent or failed
    delivered: tuple[str, ...]
    failed: tuple[tuple[str, str], ...]  # address, reply
    retrying: tuple[str, ...]
    next_attempt_at: datetime | None


class Reminders:
    """The reminder ledger, the outbox and the run history, in the state store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        store.migrate("reminders", REMINDER_STEPS)

    # ----- ledger

    def ledger(self) -> dict[tuple[str, str], LedgerEntry]:
        rows = self.store.db.execute(
            "SELECT recipient, path, due, state, notified_on FROM reminder_ledger"
        )
        return {
            (r, p): LedgerEntry(
                r, p, date.fromisoformat(d) if d else None, State(s), date.fromisoformat(n)
            )
            for r, p, d, s, n in rows
        }

    # ----- enqueue: decisions and messages in one transaction

    def enqueue(
        self, plan: Plan, messages: Mapping[str, OutgoingMessage], now: datetime
    ) -> tuple[list[str], list[str]]:
        """Write the plan's digests to the outbox and its decisions to the ledger, atomically.

        A digest whose key is already in the outbox (the cycle ran before) is skipped with its
        ledger updates. Returns (queued keys, skipped keys).
        """
        queued: list[str] = []
        skipped: list[str] = []
        stamp = ts(now)
        with self.store.transaction() as db:
            for digest in plan.digests:
                message = messages.get(digest.key)
                if message is None:
                    continue  # refused while composing: neither queued nor remembered
                cursor = db.execute(
                    "INSERT INTO outbox (key, cycle, recipient, message_id, sender, subject, data,"
                    " created_at, window_start, next_attempt_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
                    (
                        message.key,
                        digest.cycle.isoformat(),
                        digest.recipient,
                        message.message_id,
                        message.sender,
                        message.subject,
                        message.data,
                        stamp,
                        stamp,
                        stamp,
                    ),
                )
                if cursor.rowcount == 0:
                    skipped.append(digest.key)
                    continue
                queued.append(digest.key)
                db.executemany(
                    "INSERT INTO outbox_recipients (outbox_id, address) VALUES (?, ?)",
                    [(cursor.lastrowid, address) for address in message.recipients],
                )
                folded = digest.recipient.casefold()
                db.executemany(
                    "INSERT INTO reminder_ledger (recipient, path, due, state, notified_on)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (recipient, path) DO UPDATE SET"
                    " due = excluded.due, state = excluded.state,"
                    " notified_on = excluded.notified_on",
                    [
                        (
                            e.recipient,
                            e.path,
                            e.due.isoformat() if e.due else None,
                            e.state.value,
                            e.notified_on.isoformat(),
                        )
                        for e in plan.remember
                        if e.recipient == folded
                    ],
                )
            db.executemany(
                "DELETE FROM reminder_ledger WHERE recipient = ? AND path = ?", plan.forget
            )
        return queued, skipped

    # ----- delivery

    def claim(
        self, now: datetime, owner: str, lease: timedelta, limit: int, exclude: Collection[int] = ()
    ) -> list[Claimed]:
        """Take up to ``limit`` due messages under a lease. Expired leases (a crashed holder)
        count as free."""
        stamp = ts(now)
        # Only integers are spliced into the statement.
        skip = f" AND id NOT IN ({','.join(str(int(i)) for i in exclude)})" if exclude else ""
        with self.store.transaction() as db:
            rows = db.execute(
                "UPDATE outbox SET lease_owner = ?, lease_until = ? WHERE id IN ("  # noqa: S608
                " SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= ?"
                f" AND (lease_until IS NULL OR lease_until <= ?){skip} ORDER BY id LIMIT ?)"
                " RETURNING id, key, message_id, sender, subject, data, attempts, window_start",
                (owner, ts(now + lease), stamp, stamp, limit),
            ).fetchall()
            claimed = []
            for row in sorted(rows):
                recipients = tuple(
                    a
                    for (a,) in db.execute(
                        "SELECT address FROM outbox_recipients WHERE outbox_id = ?"
                        " AND status = 'pending' ORDER BY rowid",
                        (row[0],),
                    )
                )
                claimed.append(
                    Claimed(
                        row[0],
                        row[1],
                        row[2],
                        row[3],
                        row[4],
                        row[5],
                        row[6],
                        from_ts(row[7]),
                        recipients,
                    )
                )
        return claimed

    def release(self, ids: Collection[int], owner: str) -> None:
        """Give back messages this process claimed but did not send."""
        with self.store.transaction() as db:
            db.executemany(
                "UPDATE outbox SET lease_owner = NULL, lease_until = NULL"
                " WHERE id = ? AND lease_owner = ?",
                [(i, owner) for i in ids],
            )

    def release_dead(self, host: str, is_alive: Callable[[int], bool]) -> int:
        """Free the leases of processes on ``host`` that no longer exist (killed, crashed), so
        their messages need not wait for the lease to run out. Returns how many were freed."""
        freed = 0
        with self.store.transaction() as db:
            owners = [
                o
                for (o,) in db.execute(
                    "SELECT DISTINCT lease_owner FROM outbox WHERE lease_owner IS NOT NULL"
                )
            ]
            for owner in owners:
                owner_host, _, pid = owner.rpartition(":")
                if owner_host == host and pid.isdigit() and not is_alive(int(pid)):
                    freed += db.execute(
                        "UPDATE outbox SET lease_owner = NULL, lease_until = NULL"
                        " WHERE lease_owner = ?",
                        (owner,),
                    ).rowcount
        return freed

    def record(
        self, message: Claimed, results: Mapping[str, Result], now: datetime, policy: RetryPolicy
    ) -> Recorded:
        """Record one delivery attempt and decide the message's next state."""
        stamp = ts(now)
        giving_up = now - message.window_start >= policy.give_up_after
        delivered, failed, retrying = [], [], []
        with self.store.transaction() as db:
            attempts = message.attempts + 1
            for address in message.recipients:
                result = results.get(address, Result(Outcome.TEMPORARY, None, "no result"))
                db.execute(
                    "INSERT INTO delivery_attempts (outbox_id, at, address, outcome, code, reply)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (message.id, stamp, address, result.outcome.value, result.code, result.reply),
                )
                if result.outcome is Outcome.DELIVERED:
                    status, reply = "sent", result.reply
                    delivered.append(address)
                elif result.outcome is Outcome.PERMANENT or giving_up:
                    status = "failed"
                    reply = (
                        result.reply
                        if result.outcome is Outcome.PERMANENT
                        else (f"gave up after {attempts} attempts: {result.reply}")
                    )
                    failed.append((address, reply))
                else:
                    status, reply = "pending", result.reply
                    retrying.append(address)
                db.execute(
                    "UPDATE outbox_recipients SET status = ?, code = ?, reply = ?"
                    " WHERE outbox_id = ? AND address = ?",
                    (status, result.code, reply, message.id, address),
                )
            states = {
                s
                for (s,) in db.execute(
                    "SELECT status FROM outbox_recipients WHERE outbox_id = ?", (message.id,)
                )
            }
            if "pending" in states:
                overall, next_at = "pending", now + policy.delay(attempts)
            else:
                overall, next_at = ("sent" if states == {"sent"} else "failed"), None
            db.execute(
                "UPDATE outbox SET status = ?, attempts = ?, next_attempt_at = ?,"
                " lease_owner = NULL, lease_until = NULL, finished_at = ? WHERE id = ?",
                (
                    overall,
                    attempts,
                    ts(next_at) if next_at else stamp,
                    None if next_at else stamp,
                    message.id,
                ),
            )
        return Recorded(overall, tuple(delivered), tuple(failed), tuple(retrying), next_at)

    # ----- inspection and manual retry

    def rows(self, status: str | None = None) -> list[OutboxRow]:
        query = "SELECT id, key, status, subject, created_at, attempts, next_attempt_at FROM outbox"
        params: tuple[str, ...] = ()
        if status is not None:
            query += " WHERE status = ?"
            params = (status,)
        out = []
        for row in self.store.db.execute(query + " ORDER BY id", params).fetchall():
            recipients = tuple(
                self.store.db.execute(
                    "SELECT address, status, code, reply FROM outbox_recipients WHERE outbox_id = ?"
                    " ORDER BY rowid",
                    (row[0],),
                ).fetchall()
            )
            out.append(
                OutboxRow(
                    row[0],
                    row[1],
                    row[2],
                    row[3],
                    from_ts(row[4]),
                    row[5],
                    from_ts(row[6]),
                    recipients,
                )
            )
        return out

    def counts(self) -> dict[str, int]:
        tally = dict(
            self.store.db.execute("SELECT status, count(*) FROM outbox GROUP BY status").fetchall()
        )
        return {s: tally.get(s, 0) for s in ("pending", "sent", "failed")}

    def requeue(self, ids: Collection[int] | None, now: datetime) -> list[int]:
        """Put failed messages (all, or those in ``ids``) back in the queue, due now, with a
        fresh give-up window. Only their failed recipients are tried again."""
        stamp = ts(now)
        with self.store.transaction() as db:
            if ids is None:
                chosen = [i for (i,) in db.execute("SELECT id FROM outbox WHERE status = 'failed'")]
            else:
                chosen = [
                    i
                    for i in ids
                    if db.execute(
                        "SELECT 1 FROM outbox WHERE id = ? AND status = 'failed'", (i,)
                    ).fetchone()
                ]
            for message_id in chosen:
                db.execute(
                    "UPDATE outbox_recipients SET status = 'pending'"
                    " WHERE outbox_id = ? AND status = 'failed'",
                    (message_id,),
                )
                db.execute(
                    "UPDATE outbox SET status = 'pending', next_attempt_at = ?, window_start = ?,"
                    " finished_at = NULL WHERE id = ?",
                    (stamp, stamp, message_id),
                )
        return chosen

    # ----- runs

    def start_run(self, kind: str, as_of: date | None, now: datetime) -> int:
        with self.store.transaction() as db:
            cursor = db.execute(
                "INSERT INTO runs (kind, as_of, started_at) VALUES (?, ?, ?)",
                (kind, as_of.isoformat() if as_of else None, ts(now)),
            )
            return int(cursor.lastrowid or 0)

    def finish_run(
        self, run_id: int, outcome: str, detail: Mapping[str, object], now: datetime
    ) -> None:
        with self.store.transaction() as db:
            db.execute(
                "UPDATE runs SET finished_at = ?, outcome = ?, detail = ? WHERE id = ?",
                (ts(now), outcome, json.dumps(detail, sort_keys=True), run_id),
            )

    def mark_interrupted(self, kind: str, now: datetime) -> int:
        """Close the runs a dead process left unfinished. Returns how many there were."""
        with self.store.transaction() as db:
            return db.execute(
                "UPDATE runs SET finished_at = ?, outcome = 'interrupted'"
                " WHERE kind = ? AND finished_at IS NULL",
                (ts(now), kind),
            ).rowcount

    def last_run(self, kind: str) -> Run | None:
        row = self.store.db.execute(
            "SELECT id, kind, as_of, started_at, finished_at, outcome, detail FROM runs"
            " WHERE kind = ? ORDER BY id DESC LIMIT 1",
            (kind,),
        ).fetchone()
        if row is None:
            return None
        return Run(
            row[0],
            row[1],
            date.fromisoformat(row[2]) if row[2] else None,
            from_ts(row[3]),
            from_ts(row[4]) if row[4] else None,
            row[5],
            json.loads(row[6]) if row[6] else {},
        )


@dataclass(frozen=True, slots=True)
class Run:
    id: int
    kind: str
    as_of: date | None
    started_at: datetime
    finished_at: datetime | None
    outcome: str | None
    detail: dict[str, object]
