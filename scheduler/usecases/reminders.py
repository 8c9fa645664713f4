"""Reminders: one cycle, its dry run, an editor's preview, the outbox and the service's health.

What the commands ``send``, ``preview``, ``outbox``, ``outbox retry`` and ``status`` call. Each
opens the state store and the delivery channel itself and returns a result object; nothing here
prints, reads the clock (``now`` and ``clock`` are arguments) or exits. Looking (``status``,
``preview``, ``send --dry-run``) never creates a store. Relative store locations are taken from
``cwd``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path

from scheduler.config import Settings
from scheduler.errors import StoreError
from scheduler.notify.delivery import Clock, DeliveryReport, deliver_pending
from scheduler.notify.email import check_delivery_settings, make_channel
from scheduler.notify.outbox import Outbox
from scheduler.notify.reminders import LedgerEntry
from scheduler.results import Evidence
from scheduler.runtime.cycle import (
    CYCLE,
    CycleReport,
    Preview,
    dry_run_cycle,
    preview_digest,
    run_cycle,
)
from scheduler.runtime.health import HealthPolicy, Status, judge, missed_slots
from scheduler.store import (
    Lease,
    OutboxRow,
    OutboxStatus,
    Replica,
    open_read_only,
    open_store,
    store_exists,
)
from scheduler.usecases.reviews import evidence


def _looked_up(
    settings: Settings, cwd: Path, today: date
) -> tuple[Mapping[tuple[str, str], LedgerEntry], Evidence]:
    """What editors were last told, and what the review log says; nothing when there is no
    store yet (looking never creates one)."""
    if not store_exists(settings.store, cwd):
        return {}, Evidence()
    with open_read_only(settings.store, cwd) as store:
        return Outbox(store).ledger(), evidence(store, today)


def send(settings: Settings, cwd: Path, today: date, clock: Clock) -> CycleReport:
    """One reminder cycle: check, decide, queue the digests, deliver them. The store is marked
    meanwhile, so that ``status`` knows the cycle is running, not interrupted."""
    check_delivery_settings(settings)
    with open_store(settings.store, cwd) as store, store.running():
        channel = make_channel(settings.smtp, settings.mail.outbox_dir)
        return asyncio.run(run_cycle(settings, cwd, today, clock, store, channel))


def dry_run(settings: Settings, cwd: Path, today: date, now: datetime) -> CycleReport:
    """What a cycle would send today, composed; nothing is written or sent."""
    if not store_exists(settings.store, cwd):
        return dry_run_cycle(settings, cwd, today, now, None)
    with open_read_only(settings.store, cwd) as store:
        return dry_run_cycle(settings, cwd, today, now, store)


def preview(settings: Settings, cwd: Path, today: date, editor: str) -> Preview:
    """The digests ``editor`` (an address or alias) would get today, listing all they have
    outstanding."""
    return preview_digest(settings, cwd, today, editor, *_looked_up(settings, cwd, today))


@dataclass(frozen=True, slots=True)
class OutboxListing:
    rows: list[OutboxRow]
    counts: dict[str, int]  # by OutboxStatus value

    @property
    def failed(self) -> int:
        return self.counts.get(OutboxStatus.FAILED, 0)

    @property
    def unconfirmed(self) -> int:
        return self.counts.get(OutboxStatus.UNCONFIRMED, 0)


def outbox(settings: Settings, cwd: Path, status: str | None = None) -> OutboxListing:
    """The messages in the outbox (those in ``status``, or all) and the counts by status;
    none when there is no store (looking never creates one)."""
    if not store_exists(settings.store, cwd):
        return OutboxListing([], {s.value: 0 for s in OutboxStatus})
    with open_read_only(settings.store, cwd) as store:
        box = Outbox(store)
        return OutboxListing(box.rows(OutboxStatus(status) if status else None), box.counts())


@dataclass(frozen=True, slots=True)
class RetryResult:
    queued: list[int]
    unknown: list[int]  # named, but not failed or not in the outbox
    delivery: DeliveryReport


def retry(settings: Settings, cwd: Path, ids: Collection[int] | None, clock: Clock) -> RetryResult:
    """Queue failed and unconfirmed messages again (``ids``, or every one) and deliver them
    now. With no store there is nothing to retry, and none is created."""
    check_delivery_settings(settings)
    if not store_exists(settings.store, cwd):
        return RetryResult(queued=[], unknown=sorted(set(ids or ())), delivery=DeliveryReport())
    with open_store(settings.store, cwd) as store:
        box = Outbox(store)
        chosen = box.requeue(ids, clock())
        unknown = sorted(set(ids or ()) - set(chosen))
        channel = make_channel(settings.smtp, settings.mail.outbox_dir)
        report = asyncio.run(
            deliver_pending(
                box, channel, settings.delivery, settings.smtp.message_deadline_seconds, clock
            )
        )
    return RetryResult(queued=chosen, unknown=unknown, delivery=report)


def health_policy(settings: Settings, require_daemon: bool = False) -> HealthPolicy:
    h = settings.health
    after = h.delivery_failing_seconds
    if after is None:
        after = 3 * settings.daemon.drain_interval_seconds
    return HealthPolicy(timedelta(seconds=after), h.missed_cycles, require_daemon)


def status(settings: Settings, cwd: Path, now: datetime, *, require_daemon: bool = False) -> Status:
    """The service's figures and the findings of the health rules on them. Reads the store
    without writing anything (it may be read-only); a store that cannot be read is a finding."""
    # The daemon's schedule (APScheduler, and the calendar feeds the daemon publishes) is
    # imported only here: a cycle run by ``send`` needs none of it.
    from scheduler.runtime.daemon import cycle_trigger

    policy = health_policy(settings, require_daemon)
    trigger = cycle_trigger(settings)
    status = Status(
        last=None,
        outcome=None,
        next_cycle=trigger.next_after(now),
        schedule=settings.daemon.schedule,
        timezone=settings.review.zone.key,
        outbox={s.value: 0 for s in OutboxStatus},
    )
    if store_exists(settings.store, cwd):
        try:
            status = _stored_status(status, settings, cwd, now, policy)
        except StoreError as exc:
            status = replace(status, store_error=str(exc))
    return replace(status, findings=judge(status, policy, now))


def _stored_status(
    status: Status, settings: Settings, cwd: Path, now: datetime, policy: HealthPolicy
) -> Status:
    from scheduler.runtime.daemon import CYCLE_LEASE, cycle_trigger

    with open_read_only(settings.store, cwd) as store:
        holder = store.lock_holder()
        last = store.runs.last(CYCLE)
        counts = Outbox(store).counts()
        failing = store.outbox.failing()
        problem = Outbox(store).delivery_problem()
        running = last is not None and last.outcome is None and store.cycle_running()
        shared = store.shared
        replicas: tuple[Replica, ...] = ()
        lease: Lease | None = None
        if shared:
            # Several daemons: the one holding the cycle lease runs the cycles.
            recently = now - timedelta(seconds=settings.daemon.cycle_lease_seconds)
            replicas = tuple(store.replicas.replicas(recently))
            taken = store.replicas.leader(CYCLE_LEASE)
            lease = taken if taken is not None and taken.until > now else None
            leader = [r for r in replicas if lease is not None and r.id == lease.holder]
            if lease is not None:
                holder = leader[0].pid if leader else -1
            else:
                holder = -1 if replicas else None
    outcome = None
    if last is not None:
        alive = running or holder is not None
        outcome = last.outcome.value if last.outcome else ("running" if alive else "interrupted")
    trigger = cycle_trigger(settings)
    return replace(
        status,
        last=last,
        outcome=outcome,
        outbox=counts,
        daemon_pid=holder if holder != -1 else None,
        daemon_running=holder is not None,
        missed=missed_slots(trigger, last.started_at if last else None, now, policy.missed_cycles),
        failing=failing,
        delivery_cause=problem[0] if problem else None,
        delivery_cause_since=problem[1] if problem else None,
        shared=shared,
        replicas=replicas,
        cycle_lease=lease,
    )
