"""The reminder cycle, shared by ``review-scheduler send`` and the daemon: check every document,
decide today's digests, render them, write decisions and messages in one transaction, deliver.
"""

from __future__ import annotations

import asyncio
import difflib
import logging
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from scheduler.config import Settings
from scheduler.content.loader import SourceFile
from scheduler.errors import ConfigError, HeaderInjectionError, TemplateError
from scheduler.notify.channel import Channel, Notification
from scheduler.notify.channel import compose as compose_notification
from scheduler.notify.delivery import Clock, DeliveryReport, deliver_pending
from scheduler.notify.digest import DigestRenderer, RenderedDigest, digest_context
from scheduler.notify.email import CHANNEL as EMAIL
from scheduler.notify.outbox import Outbox
from scheduler.notify.reminders import (
    Digest,
    LedgerEntry,
    Plan,
    ReminderPolicy,
    plan_reminders,
)
from scheduler.results import Evidence, Problem
from scheduler.review.routing import expand
from scheduler.store import LogEntry, RunOutcome, Seen, StateStore
from scheduler.usecases.check import CheckStopped
from scheduler.usecases.reviews import evidence, observed
from scheduler.usecases.settled import found_nothing, walk
from scheduler.usecases.standings import Survey, few_collections, in_full, survey

log = logging.getLogger(__name__)

Ledger = Mapping[tuple[str, str], LedgerEntry]

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
            escalate_to=reminder_policy(settings).escalate_to,
            max_items=settings.reminders.max_documents_per_digest,
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


class UndeliveredDigests(TemplateError):
    """A template failed, so the cycle queued no digests; ``report`` says what it delivered of
    what already waited in the outbox (exit code 2, as for any template error)."""

    def __init__(self, message: str, report: CycleReport) -> None:
        super().__init__(message)
        self.report = report


class CycleStopped(Exception):
    """A cycle ended early, recorded as interrupted, because it was asked to stop."""


async def _mirror(stop: asyncio.Event, halt: threading.Event) -> None:
    """Set ``halt`` (seen by threads) when ``stop`` (seen by the event loop) is set."""
    await stop.wait()
    halt.set()


@dataclass(frozen=True, slots=True, repr=False)
class CycleReport:
    """What a cycle did. Its repr is its summary: Python 3.11's asyncio.run writes out the
    repr of its coroutine's result twice on the way out (restoring the SIGINT handler), and
    the default repr of a cycle over 100,000 documents is hundreds of megabytes, built for
    nothing."""

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

    def __repr__(self) -> str:
        return f"CycleReport(as_of={self.as_of.isoformat()}, {self.summary()})"

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
    evidence: Evidence,
    recipients: Sequence[str] | None = None,
    *,
    write: bool = True,
    stop: threading.Event | None = None,
    files: Iterable[SourceFile | Problem] | None = None,
) -> tuple[Survey, Plan]:
    """Check every document and decide the digests; snoozed documents get none. With ``write``
    false (previews, dry runs) nothing is written: the parse cache is only looked at. A content root
    that cannot be listed is a :class:`ContentRootError`: never a run over a pseudo-document.
    When ``stop`` is set, the check ends early with
    :class:`~scheduler.usecases.check.CheckStopped`. ``files``: those of a walk of the content
    root made already.

    The plan is made from where each document stands (:mod:`scheduler.usecases.standings`);
    the documents a digest lists come as full reports, those it only counts do not."""
    readable_root(settings, cwd)
    with few_collections():
        found = survey(
            settings,
            cwd,
            today,
            evidence,
            use_cache=True,
            stop=stop,
            files=files,
            read_only=not write,
        )
        policy = reminder_policy(settings)
        plan = plan_reminders(found.documents, ledger, today, policy, recipients)
        return found, in_full(plan, found.report, settings.reminders.max_documents_per_digest)


class ContentRootError(ConfigError):
    """The content root is missing or cannot be read: a cycle over it would see nothing."""


def readable_root(settings: Settings, cwd: Path) -> None:
    """Raise :class:`ContentRootError` unless the content root is a folder that can be listed."""
    root = settings.content.root
    try:
        with os.scandir(cwd / root) as entries:
            next(entries, None)
    except FileNotFoundError:
        raise ContentRootError(
            f"the content root {root} does not exist; set [content] root in the config"
        ) from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ContentRootError(
            f"the content root {root} cannot be read: {reason}; check [content] root and the "
            "folder's permissions"
        ) from None


@dataclass(frozen=True, slots=True)
class Preview:
    """The digests recipients would get today, for ``preview --editor``."""

    asked: str
    addresses: tuple[str, ...]  # the addresses ``asked`` stands for (an alias expanded)
    digests: tuple[tuple[Digest, RenderedDigest], ...]
    known: bool  # whether any document routes to them, or they are escalation contacts
    suggestions: tuple[str, ...] = ()  # known addresses close to one that is not


def preview_digest(
    settings: Settings, cwd: Path, today: date, editor: str, ledger: Ledger, evidence: Evidence
) -> Preview:
    """The digests ``editor`` (an address or an alias) would get today, listing all they have
    outstanding, their escalation digest included."""
    addresses = expand([editor], settings.routing.aliases)
    result, plan = plan_cycle(settings, cwd, today, ledger, evidence, addresses, write=False)
    policy = reminder_policy(settings)
    known = {a.casefold(): a for doc in result.documents for a in doc.editors}
    known |= {a.casefold(): a for a in policy.escalate_to}
    is_known = any(a.casefold() in known for a in addresses)
    close = (
        ()
        if is_known
        else difflib.get_close_matches(editor.casefold(), list(known), n=1, cutoff=0.8)
    )
    renderer = DigestRenderer(settings.mail.templates)
    return Preview(
        editor,
        addresses,
        tuple((d, render(settings, renderer, d)) for d in plan.digests),
        is_known,
        tuple(known[c] for c in close),
    )


def dry_run_cycle(
    settings: Settings, cwd: Path, today: date, now: datetime, store: StateStore | None
) -> CycleReport:
    """What a cycle would queue, rendered, with nothing written or sent: the same plan a cycle
    makes from the same ledger and snoozes (none without a store), less the digests it would
    skip as queued already."""
    outbox = Outbox(store) if store is not None else None
    ledger = outbox.ledger() if outbox is not None else {}
    known = evidence(store, today) if store is not None else Evidence()
    result, plan = plan_cycle(settings, cwd, today, ledger, known, write=False)
    skipped = outbox.queued(plan) if outbox is not None else set()
    messages, refused = compose(settings, plan, now)
    return CycleReport(
        as_of=today,
        documents=len(result.documents),
        outstanding=result.outstanding,
        plan=plan,
        messages={k: m for k, m in messages.items() if k not in skipped},
        refused=refused,
        queued=tuple(k for k in messages if k not in skipped),
        skipped=tuple(k for k in messages if k in skipped),
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

    The run is recorded in the run history, whether it succeeds, fails, or is stopped. The
    check runs in a worker thread, so that the event loop (and a SIGTERM) is never kept
    waiting by a large library; when ``stop`` is set before the messages are queued, or the
    cycle is cancelled, it ends as interrupted (detail ``stopped``) and raises
    :class:`CycleStopped` (or the cancellation).
    """
    now = clock()
    outbox = Outbox(store)
    run_id = store.runs.start(CYCLE, today, now)
    template_error: TemplateError | None = None
    queued: list[str] = []
    skipped: list[str] = []
    halt = threading.Event()
    mirror = asyncio.ensure_future(_mirror(stop, halt)) if stop is not None else None
    rarely = ExitStack()  # garbage collected rarely until the digests are queued
    try:
        rarely.enter_context(few_collections())
        # Before anything the cycle decides from is read: see usecases.settled.
        generation, last = store.settled.current()
        readable_root(settings, cwd)
        began_ns = int(now.timestamp() * 1_000_000) * 1000
        walked = await asyncio.to_thread(walk, settings, cwd, today, began_ns, halt)
        if halt.is_set():
            raise CheckStopped("stopped before the digests were queued")
        if walked.answered_by(last, generation):
            assert last is not None
            log.info(
                "nothing changed since the last cycle found nothing to do: %d documents, "
                "none read again",
                last.documents,
            )
            documents, outstanding, plan = last.documents, last.outstanding, Plan((), (), ())
            messages: dict[str, Notification] = {}
            refused: dict[str, str] = {}
        else:
            ledger, known, seen = outbox.ledger(), evidence(store, today), store.reviews.seen()

            def check_and_observe() -> tuple[Survey, Plan, tuple[list[Seen], list[LogEntry]]]:
                result, plan = plan_cycle(
                    settings, cwd, today, ledger, known, stop=halt, files=walked.handed_over()
                )
                return result, plan, observed(seen, result.documents, cwd, settings, now, halt)

            result, plan, (updates, entries) = await asyncio.to_thread(check_and_observe)
            if halt.is_set():
                raise CheckStopped("stopped before the digests were queued")
            documents, outstanding = len(result.documents), result.outstanding
            if updates:
                store.reviews.observe(updates, entries)
            try:
                # Rendered in a worker thread, within time and size limits: a user template
                # that loops cannot hold the daemon's event loop.
                messages, refused = await asyncio.to_thread(compose, settings, plan, now)
            except TemplateError as exc:
                # Nothing new is queued; what already waits in the outbox is still delivered.
                log.error("no digests queued: %s", exc)
                template_error, messages, refused = exc, {}, {}
            else:
                queued, skipped = outbox.enqueue(plan, messages, now)
            if template_error is None and found_nothing(plan, len(updates)):
                settled = walked.settles(documents, outstanding, generation)
                if settled is not None:
                    store.settled.record(settled)
        rarely.close()
        delivery = await deliver_pending(
            outbox,
            channel,
            settings.delivery,
            settings.smtp.message_deadline_seconds,
            clock,
            stop=stop,
        )
    except (CheckStopped, asyncio.CancelledError) as exc:
        halt.set()  # the check thread, if still running, ends at its next document
        why = (
            str(exc)
            if isinstance(exc, CheckStopped)
            else "the job was cancelled after the shutdown grace period"
        )
        stopped = {"stopped": "the daemon was stopping", "error": f"the daemon stopped: {why}"}
        store.runs.finish(run_id, RunOutcome.INTERRUPTED, stopped, clock())
        if isinstance(exc, CheckStopped):
            raise CycleStopped(str(exc)) from None
        raise
    except BaseException as exc:
        halt.set()
        error = {"error": f"{type(exc).__name__}: {exc}"}
        store.runs.finish(run_id, RunOutcome.FAILED, error, clock())
        raise
    finally:
        rarely.close()
        if mirror is not None:
            mirror.cancel()
    report = CycleReport(
        as_of=today,
        documents=documents,
        outstanding=outstanding,
        plan=plan,
        messages=messages,
        refused=refused,
        queued=tuple(queued),
        skipped=tuple(skipped),
        delivery=delivery,
        destination=channel.description,
    )
    if template_error is not None:
        detail = {**report.summary(), "error": f"TemplateError: {template_error}"}
        store.runs.finish(run_id, RunOutcome.FAILED, detail, clock())
        raise UndeliveredDigests(str(template_error), report) from None
    store.runs.finish(run_id, RunOutcome.OK, report.summary(), clock())
    return report
