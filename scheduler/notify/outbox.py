"""The outbox: notifications kept in the state store until every recipient has them.

What it guarantees, over any store backend:

- one notification per key, ever (a digest's key is its recipient and day): a cycle run twice
  queues nothing new;
- a digest's ledger entries are written in the same transaction as the digest, and only if the
  digest is new, so the ledger never claims an editor was told what was never queued;
- a notification is delivered by the process holding its lease (a crashed holder's lease runs
  out; a dead holder's on this host is freed at once), a few at a time;
- each attempt is recorded per recipient: delivered recipients are never sent to again,
  temporary failures are retried with exponential backoff, permanent ones fail at once, and
  everyone still pending when the give-up window has passed fails;
- a recipient the server did not answer after the message data (perhaps delivered) is tried
  once more at most, then held as unconfirmed, never given up as failed;
- failed and unconfirmed notifications can be queued again, for those recipients only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from scheduler.notify.channel import Notification, Outcome, Result
from scheduler.notify.reminders import Digest, LedgerEntry, Plan, ledger_path
from scheduler.store.interfaces import (
    Attempt,
    Claimed,
    LogEntry,
    LogKind,
    OutboxRow,
    OutboxStatus,
    Queued,
    RunOutcome,
    StateStore,
)

NO_RESULT = Result(Outcome.TEMPORARY, None, "no result")
DELIVERY = "delivery"  # the run history's kind for delivery becoming impossible, or working


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
    """Where a notification stands after an attempt."""

    status: OutboxStatus
    delivered: tuple[str, ...]
    failed: tuple[tuple[str, str], ...]  # address, reply
    retrying: tuple[str, ...]
    next_attempt_at: datetime | None
    unconfirmed: tuple[str, ...] = ()  # held: perhaps delivered


def lease_holder(owner: str) -> tuple[str, int] | None:
    """The host and process id in a lease owner (``host:pid:token``, or ``host:pid`` as
    version 0.1 wrote them), or None for anything else."""
    parts = owner.split(":")
    if len(parts) in (2, 3) and parts[1].isdigit():
        return parts[0], int(parts[1])
    return None


def attempt(
    message: Claimed, results: Mapping[str, Result], now: datetime, policy: RetryPolicy
) -> tuple[list[Attempt], OutboxStatus, datetime | None]:
    """What an attempt's results make of each pending recipient and of the notification: its
    attempts, its state, and when to try again (None when it is finished). Pure.

    A recipient left unconfirmed (no answer after the message data: perhaps delivered) is tried
    once more; unconfirmed again, or when the give-up window has passed, it is held as
    unconfirmed, never failed, until ``outbox retry`` sends it again.
    """
    count = message.attempts + 1
    giving_up = now - message.window_start >= policy.give_up_after
    attempts = []
    for address in message.pending:
        result = results.get(address, NO_RESULT)
        if result.outcome is Outcome.DELIVERED:
            status, reply = OutboxStatus.SENT, result.reply
        elif result.outcome is Outcome.PERMANENT:
            status, reply = OutboxStatus.FAILED, result.reply
        elif result.outcome is Outcome.UNCONFIRMED and (
            giving_up or address in message.unconfirmed
        ):
            status = OutboxStatus.UNCONFIRMED
            reply = f"unconfirmed after {count} attempts, perhaps delivered: {result.reply}"
        elif giving_up and address in message.unconfirmed:
            status = OutboxStatus.UNCONFIRMED  # an earlier attempt may have delivered it
            reply = f"unconfirmed after {count} attempts, perhaps delivered: {result.reply}"
        elif giving_up:
            status, reply = OutboxStatus.FAILED, f"gave up after {count} attempts: {result.reply}"
        else:
            status, reply = OutboxStatus.PENDING, result.reply
        attempts.append(Attempt(address=address, result=result, status=status, reply=reply))
    states = {r.address: r.status for r in message.recipients} | {
        a.address: a.status for a in attempts
    }
    if OutboxStatus.PENDING in states.values():
        return attempts, OutboxStatus.PENDING, now + policy.delay(count)
    if set(states.values()) == {OutboxStatus.SENT}:
        return attempts, OutboxStatus.SENT, None
    if OutboxStatus.UNCONFIRMED in states.values():
        return attempts, OutboxStatus.UNCONFIRMED, None
    return attempts, OutboxStatus.FAILED, None


def _reminded(digest: Digest, now: datetime) -> tuple[LogEntry, ...]:
    """The review log's record of a digest: one entry per document it lists."""
    kind = "escalation digest: " if digest.escalation else ""
    return tuple(
        LogEntry(
            ledger_path(item.document),
            LogKind.REMINDED,
            now,
            digest.recipient,
            note=kind + item.document.state.value,
        )
        for item in digest.items
    )


class Outbox:
    """The reminder ledger and the outbox of a state store."""

    def __init__(self, store: StateStore) -> None:
        self._store = store

    def ledger(self) -> dict[tuple[str, str], LedgerEntry]:
        """What each editor was last told, by (recipient casefolded, path)."""
        return {(e.recipient, e.path): e for e in self._store.ledger.entries()}

    def enqueue(
        self, plan: Plan, notifications: Mapping[str, Notification], now: datetime
    ) -> tuple[list[str], list[str]]:
        """Queue the plan's digests, with the ledger entries of each recipient, and forget what
        the plan forgets: all in one transaction.

        A digest without a notification (refused while composing) is neither queued nor
        remembered. A digest whose key is already queued (the cycle ran before) is skipped with
        its ledger entries. Returns (queued keys, skipped keys).
        """
        remember: dict[str, list[LedgerEntry]] = defaultdict(list)
        for entry in plan.remember:
            remember[entry.recipient].append(entry)
        queued = [
            Queued(notification, tuple(remember[digest.ledger_recipient]), _reminded(digest, now))
            for digest in plan.digests
            if (notification := notifications.get(digest.key)) is not None
        ]
        added = set(self._store.outbox.enqueue(queued, plan.forget, now))
        return (
            [q.key for q in queued if q.key in added],
            [q.key for q in queued if q.key not in added],
        )

    def queued(self, plan: Plan) -> set[str]:
        """The keys of the plan's digests that are queued already (the cycle ran before): a
        cycle skips them."""
        return self._store.outbox.present([digest.key for digest in plan.digests])

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
        """Take up to ``limit`` due notifications for ``channel`` under a lease. Expired leases
        (a crashed holder) count as free."""
        return self._store.outbox.claim(now, owner, lease, limit, channel=channel, exclude=exclude)

    def release(self, ids: Collection[int], owner: str) -> None:
        """Give back notifications this process claimed but did not attempt."""
        self._store.outbox.release(ids, owner)

    def release_dead(self, host: str, is_alive: Callable[[int], bool]) -> int:
        """Free the leases of processes on ``host`` that no longer exist (killed, crashed), so
        their notifications need not wait for the lease to run out. Returns how many."""
        freed = 0
        for owner in self._store.outbox.lease_owners():
            holder = lease_holder(owner)
            if holder is not None and holder[0] == host and not is_alive(holder[1]):
                freed += self._store.outbox.release_owner(owner)
        return freed

    def record(
        self, message: Claimed, results: Mapping[str, Result], now: datetime, policy: RetryPolicy
    ) -> Recorded:
        """Record one delivery attempt (one transaction) and say where it leaves the
        notification."""
        attempts, status, next_at = attempt(message, results, now, policy)
        self._store.outbox.record(message.id, now, attempts, status, message.attempts + 1, next_at)
        return Recorded(
            status=status,
            delivered=tuple(a.address for a in attempts if a.status is OutboxStatus.SENT),
            failed=tuple((a.address, a.reply) for a in attempts if a.status is OutboxStatus.FAILED),
            retrying=tuple(a.address for a in attempts if a.status is OutboxStatus.PENDING),
            next_attempt_at=next_at,
            unconfirmed=tuple(a.address for a in attempts if a.status is OutboxStatus.UNCONFIRMED),
        )

    def rows(self, status: OutboxStatus | None = None) -> list[OutboxRow]:
        return self._store.outbox.rows(status)

    def note_delivery(self, cause: str | None, now: datetime) -> None:
        """Remember that nothing could be delivered and why (``cause``), or that delivery works
        (None), in the run history as a run of kind :data:`DELIVERY`. Only a change is written:
        a cause repeated keeps the time it was first seen."""
        runs = self._store.runs
        last = runs.last(DELIVERY)
        failing = last is not None and last.outcome is RunOutcome.FAILED
        if cause is None and not failing:
            return
        if cause is not None and last is not None and failing and last.detail.get("cause") == cause:
            return
        run_id = runs.start(DELIVERY, None, now)
        outcome = RunOutcome.OK if cause is None else RunOutcome.FAILED
        runs.finish(run_id, outcome, {} if cause is None else {"cause": cause}, now)

    def delivery_problem(self) -> tuple[str, datetime] | None:
        """Why nothing can be delivered, and since when; None when the last delivery worked."""
        last = self._store.runs.last(DELIVERY)
        if last is None or last.outcome is not RunOutcome.FAILED:
            return None
        return str(last.detail.get("cause", "")), last.started_at

    def counts(self) -> dict[str, int]:
        return self._store.outbox.counts()

    def requeue(self, ids: Collection[int] | None, now: datetime) -> list[int]:
        """Put failed and unconfirmed notifications (all, or those in ``ids``) back in the
        queue, due now, with a fresh give-up window. Only their failed and unconfirmed
        recipients are tried again."""
        return self._store.outbox.requeue(ids, now)
