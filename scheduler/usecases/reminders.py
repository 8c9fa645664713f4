"""Reminders: one cycle, its dry run, an editor's preview, the outbox and the service's health.

What the commands ``send``, ``preview``, ``outbox``, ``outbox retry`` and ``status`` call. Each
opens the state store and the delivery channel itself and returns a result object; nothing here
prints, reads the clock (``now`` and ``clock`` are arguments) or exits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from scheduler.config import Settings
from scheduler.notify.delivery import Clock, DeliveryReport, deliver_pending
from scheduler.notify.digest import RenderedDigest
from scheduler.notify.email import make_sender
from scheduler.notify.outbox import OutboxRow, Reminders, Run
from scheduler.notify.reminders import LedgerEntry
from scheduler.runtime.cycle import CycleReport, dry_run_cycle, preview_digest, run_cycle
from scheduler.runtime.daemon import cycle_trigger
from scheduler.store.sqlite import Store, StoreLock


def _ledger(settings: Settings) -> Mapping[tuple[str, str], LedgerEntry]:
    """What editors were last told; nothing when there is no store yet (never creates one)."""
    if not settings.store.path.exists():
        return {}
    with Store(settings.store.path) as store:
        return Reminders(store).ledger()


def send(settings: Settings, cwd: Path, today: date, clock: Clock) -> CycleReport:
    """One reminder cycle: check, decide, queue the digests, deliver them."""
    with Store(settings.store.path) as store:
        reminders = Reminders(store)
        sender = make_sender(settings.smtp, settings.mail.outbox_dir)
        return asyncio.run(run_cycle(settings, cwd, today, clock, reminders, sender))


def dry_run(settings: Settings, cwd: Path, today: date, now: datetime) -> CycleReport:
    """What a cycle would send today, rendered; nothing is written or sent."""
    return dry_run_cycle(settings, cwd, today, now, _ledger(settings))


def preview(settings: Settings, cwd: Path, today: date, editor: str) -> RenderedDigest | None:
    """The digest ``editor`` would get today, listing all they have outstanding."""
    return preview_digest(settings, cwd, today, editor, _ledger(settings))


@dataclass(frozen=True, slots=True)
class OutboxListing:
    rows: list[OutboxRow]
    counts: dict[str, int]

    @property
    def failed(self) -> int:
        return self.counts.get("failed", 0)


def outbox(settings: Settings, status: str | None = None) -> OutboxListing:
    """The messages in the outbox (those in ``status``, or all) and the counts by status."""
    with Store(settings.store.path) as store:
        reminders = Reminders(store)
        return OutboxListing(reminders.rows(status), reminders.counts())


@dataclass(frozen=True, slots=True)
class RetryResult:
    queued: list[int]
    unknown: list[int]  # named, but not failed or not in the outbox
    delivery: DeliveryReport


def retry(settings: Settings, ids: Collection[int] | None, clock: Clock) -> RetryResult:
    """Queue failed messages again (``ids``, or every failed one) and deliver them now."""
    with Store(settings.store.path) as store:
        reminders = Reminders(store)
        chosen = reminders.requeue(ids, clock())
        unknown = sorted(set(ids or ()) - set(chosen))
        sender = make_sender(settings.smtp, settings.mail.outbox_dir)
        report = asyncio.run(
            deliver_pending(
                reminders, sender, settings.delivery, settings.smtp.message_deadline_seconds, clock
            )
        )
    return RetryResult(chosen, unknown, report)


@dataclass(frozen=True, slots=True)
class Status:
    """How the service is doing: the last and next cycle, the outbox, the daemon."""

    last: Run | None
    outcome: str | None  # of the last cycle: ok, failed, running or interrupted
    next_cycle: datetime | None
    schedule: str
    timezone: str
    outbox: dict[str, int] = field(default_factory=dict)
    daemon_pid: int | None = None  # -1: running, process id unknown
    daemon_running: bool = False

    @property
    def healthy(self) -> bool:
        return self.outcome not in ("failed", "interrupted") and not self.outbox.get("failed")


def status(settings: Settings, now: datetime) -> Status:
    holder = StoreLock(settings.store.path).holder()
    last = None
    counts = {"pending": 0, "failed": 0, "sent": 0}
    if settings.store.path.exists():
        with Store(settings.store.path) as store:
            reminders = Reminders(store)
            last = reminders.last_run("cycle")
            counts = reminders.counts()
    outcome = None
    if last is not None:
        outcome = last.outcome or ("running" if holder else "interrupted")
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
