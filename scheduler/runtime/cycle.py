"""The reminder cycle, shared by ``review-scheduler send`` and the daemon: check every document,
decide today's digests, render them, write decisions and messages in one transaction, deliver.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from scheduler.config import Settings
from scheduler.errors import HeaderInjectionError
from scheduler.notify.channel import Channel, Notification
from scheduler.notify.channel import compose as compose_notification
from scheduler.notify.delivery import Clock, DeliveryReport, deliver_pending
from scheduler.notify.digest import DigestRenderer, RenderedDigest, digest_context
from scheduler.notify.email import CHANNEL as EMAIL
from scheduler.notify.outbox import Outbox
from scheduler.notify.reminders import (
    OUTSTANDING,
    Digest,
    LedgerEntry,
    Plan,
    ReminderPolicy,
    plan_reminders,
)
from scheduler.results import CheckResult, Snoozed
from scheduler.review.routing import expand
from scheduler.store import RunOutcome, StateStore
from scheduler.usecases.check import check
from scheduler.usecases.reviews import snoozed

log = logging.getLogger(__name__)

Ledger = Mapping[tuple[str, str], LedgerEntry]
Snoozes = Mapping[str, Snoozed]  # by path

CYCLE = "cycle"  # the kind of run a cycle is, in the run history


def reminder_policy(settings: Settings) -> ReminderPolicy:
    r = settings.reminders
    return ReminderPolicy(
        r.remind_every_days, r.escalate_after_days, expand(r.escalate_to, settings.routing.aliases)
    )


def render(settings: Settings, renderer: DigestRenderer, digest: Digest) -> RenderedDigest:
    return renderer.render(
        digest_context(
            digest,
            escalate_after_days=settings.reminders.escalate_after_days,
            last_reviewed_key=settings.fields.key("last_reviewed"),
        )
    )


def compose(
    settings: Settings, plan: Plan, now: datetime
) -> tuple[dict[str, Notification], dict[str, str]]:
    """Every digest of the plan as a notification by email, keyed by its idempotency key.

    A digest whose headers would carry line breaks or encoded words is refused, not sent; the
    others go ahead. Returns (messages, refused: key -> reason).
    """
    renderer = DigestRenderer(settings.mail.templates)
    messages: dict[str, Notification] = {}
    refused: dict[str, str] = {}
    for digest in plan.digests:
        rendered = render(settings, renderer, digest)
        try:
            messages[digest.key] = compose_notification(
                key=digest.key,
                channel=EMAIL,
                from_address=settings.mail.from_address,
                from_name=settings.mail.from_name,
                to=(digest.recipient,),
                cc=digest.cc,
                subject=rendered.subject,
                text=rendered.text,
                html=rendered.html,
                date=now,
            )
        except HeaderInjectionError as exc:
            log.error("not sending the digest for %s: %s", digest.recipient, exc)
            refused[digest.key] = str(exc)
    return messages, refused


@dataclass(frozen=True, slots=True)
class CycleReport:
    as_of: date
    documents: int
    outstanding: int
    plan: Plan
    messages: dict[str, Notification]
    refused: dict[str, str] = field(default_factory=dict)
    queued: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    delivery: DeliveryReport | None = None
    destination: str = ""

    def summary(self) -> dict[str, int]:
        delivery = self.delivery or DeliveryReport()
        return {
            "documents": self.documents,
            "outstanding": self.outstanding,
            "digests": len(self.plan.digests),
            "queued": len(self.queued),
            "skipped": len(self.skipped),
            "refused": len(self.refused),
            "delivered": delivery.delivered,
            "retrying": delivery.retrying,
            "failed": delivery.failed,
        }


def plan_cycle(
    settings: Settings,
    cwd: Path,
    today: date,
    ledger: Ledger,
    snoozes: Snoozes,
    recipients: Sequence[str] | None = None,
    *,
    write: bool = True,
) -> tuple[CheckResult, Plan]:
    """Check every document and decide the digests; snoozed documents get none. With ``write``
    false (previews, dry runs) nothing is written, not even the parse cache."""
    result = check(settings, [], cwd, today, use_cache=write, snoozes=snoozes)
    plan = plan_reminders(result.documents, ledger, today, reminder_policy(settings), recipients)
    return result, plan


def _outstanding(result: CheckResult) -> int:
    return sum(doc.state in OUTSTANDING for doc in result.documents)


def preview_digest(
    settings: Settings, cwd: Path, today: date, editor: str, ledger: Ledger, snoozes: Snoozes
) -> RenderedDigest | None:
    """The digest ``editor`` would get today, listing all they have outstanding."""
    _, plan = plan_cycle(settings, cwd, today, ledger, snoozes, recipients=[editor], write=False)
    if not plan.digests:
        return None
    return render(settings, DigestRenderer(settings.mail.templates), plan.digests[0])


def dry_run_cycle(
    settings: Settings, cwd: Path, today: date, now: datetime, ledger: Ledger, snoozes: Snoozes
) -> CycleReport:
    """What a cycle would send, rendered, with nothing written or sent."""
    result, plan = plan_cycle(settings, cwd, today, ledger, snoozes, write=False)
    messages, refused = compose(settings, plan, now)
    return CycleReport(
        as_of=today,
        documents=len(result.documents),
        outstanding=_outstanding(result),
        plan=plan,
        messages=messages,
        refused=refused,
    )


async def run_cycle(
    settings: Settings,
    cwd: Path,
    today: date,
    clock: Clock,
    store: StateStore,
    channel: Channel,
    stop: asyncio.Event | None = None,
) -> CycleReport:
    """One reminder cycle: compute, decide, enqueue (one transaction), deliver over
    ``channel``.

    The run is recorded in the run history, whether it succeeds or fails.
    """
    now = clock()
    outbox = Outbox(store)
    run_id = store.runs.start(CYCLE, today, now)
    try:
        result, plan = plan_cycle(settings, cwd, today, outbox.ledger(), snoozed(store, today))
        messages, refused = compose(settings, plan, now)
        queued, skipped = outbox.enqueue(plan, messages, now)
        delivery = await deliver_pending(
            outbox,
            channel,
            settings.delivery,
            settings.smtp.message_deadline_seconds,
            clock,
            stop=stop,
        )
    except BaseException as exc:
        error = {"error": f"{type(exc).__name__}: {exc}"}
        store.runs.finish(run_id, RunOutcome.FAILED, error, clock())
        raise
    report = CycleReport(
        as_of=today,
        documents=len(result.documents),
        outstanding=_outstanding(result),
        plan=plan,
        messages=messages,
        refused=refused,
        queued=tuple(queued),
        skipped=tuple(skipped),
        delivery=delivery,
        destination=channel.description,
    )
    store.runs.finish(run_id, RunOutcome.OK, report.summary(), clock())
    return report
