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
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from scheduler.config import Settings
from scheduler.notify.delivery import Clock, DeliveryReport, deliver_pending
from scheduler.notify.email import make_channel
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
from scheduler.runtime.daemon import cycle_trigger
from scheduler.store import OutboxRow, OutboxStatus, Run, open_store, store_exists
from scheduler.usecases.reviews import evidence


def _looked_up(
    settings: Settings, cwd: Path, today: date
) -> tuple[Mapping[tuple[str, str], LedgerEntry], Evidence]:
    """What editors were last told, and what the review log says; nothing when there is no
    store yet (looking never creates one)."""
    if not store_exists(settings.store, cwd):
        return {}, Evidence()
    with open_store(settings.store, cwd) as store:
        return Outbox(store).ledger(), evidence(store, today)


def send(settings: Settings, cwd: Path, today: date, clock: Clock) -> CycleReport:
    """One reminder cycle: check, decide, queue the digests, deliver them."""
    with open_store(settings.store, cwd) as store:
        channel = make_channel(settings.smtp, settings.mail.outbox_dir)
        return asyncio.run(run_cycle(settings, cwd, today, clock, store, channel))


def dry_run(settings: Settings, cwd: Path, today: date, now: datetime) -> CycleReport:
    """What a cycle would send today, composed; nothing is written or sent."""
    if not store_exists(settings.store, cwd):
        return dry_run_cycle(settings, cwd, today, now, None)
    with open_store(settings.store, cwd) as store:
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


def outbox(settings: Settings, cwd: Path, status: str | None = None) -> OutboxListing:
    """The messages in the outbox (those in ``status``, or all) and the counts by status."""
    with open_store(settings.store, cwd) as store:
        box = Outbox(store)
        return OutboxListing(box.rows(OutboxStatus(status) if status else None), box.counts())


@dataclass(frozen=True, slots=True)
class RetryResult:
    queued: list[int]
    unknown: list[int]  # named, but not failed or not in the outbox
    delivery: DeliveryReport


def retry(settings: Settings, cwd: Path, ids: Collection[int] | None, clock: Clock) -> RetryResult:
    """Queue failed messages again (``ids``, or every failed one) and deliver them now."""
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


@dataclass(frozen=True, slots=True)
class Status:
    """How the service is doing: the last and next cycle, the outbox, the daemon."""

    last: Run | None
    outcome: str | None  # of the last cycle: ok, failed, running or interrupted
    next_cycle: datetime | None
    schedule: str
    timezone: str
    outbox: dict[str, int] = field(default_factory=dict)
    daemon_pid: int | None = None  # None also when a daemon runs whose process id is unknown
    daemon_running: bool = False

    @property
    def stopped(self) -> bool:
        """Whether the last cycle was interrupted by an orderly stop (SIGTERM): not a fault."""
        return (
            self.outcome == "interrupted"
            and self.last is not None
            and "stopped" in self.last.detail
        )

    @property
    def healthy(self) -> bool:
        interrupted = self.outcome == "interrupted" and not self.stopped
        return self.outcome != "failed" and not interrupted and not self.outbox.get("failed")


def status(settings: Settings, cwd: Path, now: datetime) -> Status:
    holder = None
    last = None
    counts = {s.value: 0 for s in OutboxStatus}
    if store_exists(settings.store, cwd):
        with open_store(settings.store, cwd) as store:
            holder = store.lock_holder()
            last = store.runs.last(CYCLE)
            counts = Outbox(store).counts()
    outcome = None
    if last is not None:
        outcome = last.outcome.value if last.outcome else ("running" if holder else "interrupted")
    return Status(
        last=last,
        outcome=outcome,
        next_cycle=cycle_trigger(settings).next_after(now),
        schedule=settings.daemon.schedule,
        timezone=settings.review.zone.key,
        outbox=counts,
        daemon_pid=holder if holder != -1 else None,
        daemon_running=holder is not None,
    )
