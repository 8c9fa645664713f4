"""The reminder policy, pure: who gets a digest today, what it lists, and what to remember.

A document enters an editor's reminders when it becomes due soon, again when it becomes overdue
(or invalid), then every ``remind_every_days`` while it stays that way. An editor gets at most
one digest per cycle, only when at least one of their documents is due a reminder; it lists
everything outstanding for them. What was said is remembered per (editor, document) in the
ledger, keyed by the episode (the due date), so a re-reviewed document starts afresh.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple, Protocol

from scheduler.results import Snoozed
from scheduler.review.state import State
from scheduler.text import without_surrogates

OUTSTANDING = (State.OVERDUE, State.INVALID, State.DUE_SOON)


class Listed(Protocol):
    """What deciding a document's reminders needs of it: a :class:`DocumentReport` has it,
    and so has the lighter record a cycle plans from (``usecases.standings.Standing``), whose
    full report is built only for the documents a digest lists."""

    @property
    def path(self) -> str: ...
    @property
    def state(self) -> State: ...
    @property
    def due(self) -> date | None: ...
    @property
    def days_until_due(self) -> int | None: ...
    @property
    def editors(self) -> tuple[str, ...]: ...
    @property
    def snoozed(self) -> Snoozed | None: ...


@dataclass(frozen=True, slots=True)
class ReminderPolicy:
    remind_every_days: int
    escalate_after_days: int
    escalate_to: tuple[str, ...] = ()  # addresses, aliases already expanded


class LedgerEntry(NamedTuple):
    """The last reminder an editor had about a document. (A named tuple: a cycle reads one
    per outstanding document and editor.)"""

    recipient: str
    path: str
    due: date | None  # the episode: a new due date means a new review cycle
    state: State
    notified_on: date


@dataclass(frozen=True, slots=True)
class DigestItem:
    document: Listed  # a DocumentReport for every document the digest lists
    new: bool  # not in this editor's previous digest in this state
    escalated: bool  # overdue for at least escalate_after_days

    @property
    def days_overdue(self) -> int | None:
        days = self.document.days_until_due
        return -days if days is not None and days < 0 else None


@dataclass(frozen=True, slots=True)
class Digest:
    """One recipient's reminder for one cycle: an editor's digest, or an escalation digest
    listing every escalated document for an escalation contact."""

    recipient: str
    cycle: date
    items: tuple[DigestItem, ...]
    cc: tuple[str, ...] = ()  # copied recipients (the policy copies nobody)
    escalation: bool = False

    def count(self, state: State) -> int:
        return sum(item.document.state is state for item in self.items)

    @property
    def summary(self) -> str:
        """Counts only, never titles: ``3 overdue, 2 due soon``."""
        parts = [f"{self.count(s)} {s.label}" for s in OUTSTANDING if self.count(s)]
        return ", ".join(parts)

    @property
    def ledger_recipient(self) -> str:
        """Whom the ledger remembers this digest's documents for."""
        return ledger_recipient(self.recipient, escalation=self.escalation)

    @property
    def key(self) -> str:
        """Idempotency key: one digest, and one escalation digest, per recipient per cycle."""
        kind = "escalation" if self.escalation else "digest"
        return f"{kind}:{self.recipient.casefold()}:{self.cycle.isoformat()}"


def ledger_recipient(recipient: str, *, escalation: bool = False) -> str:
    """How the ledger names a recipient: casefolded; escalation digests apart from the same
    person's own digest."""
    folded = recipient.casefold()
    return f"escalation:{folded}" if escalation else folded


@dataclass(frozen=True, slots=True)
class Plan:
    digests: tuple[Digest, ...]
    remember: tuple[LedgerEntry, ...]  # entries to write, per digest recipient and document
    forget: tuple[tuple[str, str], ...]  # (recipient, path) no longer outstanding


def _order(item: DigestItem) -> tuple[int, int, str]:
    doc = item.document
    rank = {State.OVERDUE: 0, State.INVALID: 1, State.DUE_SOON: 2}[doc.state]
    return (rank, doc.days_until_due if doc.days_until_due is not None else 0, doc.path)


def ledger_path(doc: Listed) -> str:
    """How the ledger names a document: its path, storable as UTF-8 text even when the file
    system gave it a name that is not."""
    return without_surrogates(doc.path)


def recipients_of(doc: Listed, policy: ReminderPolicy) -> tuple[str, ...]:
    """Its editors; documents nobody owns go to the escalation contacts."""
    return doc.editors or policy.escalate_to


def is_due_reminder(
    entry: LedgerEntry | None, doc: Listed, today: date, policy: ReminderPolicy
) -> bool:
    if entry is None or entry.due != doc.due or entry.state is not doc.state:
        return True  # new to this editor, a new review cycle, or a change of state
    if doc.state is State.DUE_SOON:
        return False  # said once per cycle
    if is_escalated(doc, policy) and not was_escalated_on(entry.notified_on, doc, policy):
        return True  # escalated since: its editors hear so the day it happens
    return (today - entry.notified_on).days >= policy.remind_every_days


def is_escalated(doc: Listed, policy: ReminderPolicy) -> bool:
    """Overdue for ``escalate_after_days``, with somebody to escalate to."""
    return (
        bool(policy.escalate_to)
        and doc.state is State.OVERDUE
        and doc.days_until_due is not None
        and -doc.days_until_due >= policy.escalate_after_days
    )


def was_escalated_on(day: date, doc: Listed, policy: ReminderPolicy) -> bool:
    return doc.due is not None and (day - doc.due).days >= policy.escalate_after_days


def plan_reminders(
    documents: Iterable[Listed],
    ledger: Mapping[tuple[str, str], LedgerEntry],
    today: date,
    policy: ReminderPolicy,
    recipients: Sequence[str] | None = None,
) -> Plan:
    """Decide today's digests. ``recipients`` limits the plan to those recipients (for
    previews), and makes their digests whether or not a reminder is due.

    Each editor gets a digest listing everything outstanding for them, with the escalated
    documents marked; each escalation contact gets one escalation digest listing every escalated
    document that has editors (grouped by editor when rendered). Documents nobody is responsible
    for go to the escalation contacts' own digests. Snoozed documents are in neither.

    ``ledger`` maps (recipient as :func:`ledger_recipient` names it, path) to the last entry.
    """
    # Each document's ledger path, and each recipient's ledger name, worked out once: a cycle
    # over a large library plans for tens of thousands of documents.
    audiences: dict[str, list[tuple[Listed, str]]] = defaultdict(list)
    display: dict[str, tuple[str, bool]] = {}
    named: dict[str, str] = {}  # recipient -> ledger_recipient(recipient)
    contacts = [(ledger_recipient(c, escalation=True), c) for c in policy.escalate_to]
    outstanding_keys: set[tuple[str, str]] = set()
    for doc in documents:
        if doc.state not in OUTSTANDING or doc.snoozed is not None:
            continue  # a snoozed document comes back, as new, when its snooze ends
        where = ledger_path(doc)
        for recipient in recipients_of(doc, policy):
            key = named.get(recipient)
            if key is None:  # the first time this spelling is met: so is its key, if ever
                key = named[recipient] = ledger_recipient(recipient)
                display.setdefault(key, (recipient, False))
            audiences[key].append((doc, where))
            outstanding_keys.add((key, where))
        if doc.editors and is_escalated(doc, policy):
            for key, contact in contacts:
                display.setdefault(key, (contact, True))
                audiences[key].append((doc, where))
                outstanding_keys.add((key, where))
    wanted = {r.casefold() for r in recipients} if recipients is not None else None

    digests: list[Digest] = []
    remember: list[LedgerEntry] = []
    get = ledger.get
    for key in sorted(audiences, key=lambda k: (display[k][0].casefold(), display[k][1])):
        recipient, escalation = display[key]
        if wanted is not None and recipient.casefold() not in wanted:
            continue
        docs = audiences[key]
        if wanted is None and not any(
            is_due_reminder(get((key, where)), doc, today, policy) for doc, where in docs
        ):
            continue
        entries = [get((key, where)) for _, where in docs]
        items = sorted(
            (
                DigestItem(
                    doc,
                    new=entry is None or entry.due != doc.due or entry.state is not doc.state,
                    escalated=is_escalated(doc, policy),
                )
                for entry, (doc, _) in zip(entries, docs, strict=True)
            ),
            key=_order,
        )
        digests.append(Digest(recipient, today, tuple(items), escalation=escalation))
        remember.extend(LedgerEntry(key, where, doc.due, doc.state, today) for doc, where in docs)

    forget = tuple(sorted(key for key in ledger if key not in outstanding_keys))
    return Plan(tuple(digests), tuple(remember), forget if wanted is None else ())
