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

from scheduler.results import DocumentReport
from scheduler.review.state import State
from scheduler.text import without_surrogates

OUTSTANDING = (State.OVERDUE, State.INVALID, State.DUE_SOON)


@dataclass(frozen=True, slots=True)
class ReminderPolicy:
    remind_every_days: int
    escalate_after_days: int
    escalate_to: tuple[str, ...] = ()  # addresses, aliases already expanded


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """The last reminder an editor had about a document."""

    recipient: str
    path: str
    due: date | None  # the episode: a new due date means a new review cycle
    state: State
    notified_on: date


@dataclass(frozen=True, slots=True)
class DigestItem:
    document: DocumentReport
    new: bool  # not in this editor's previous digest in this state
    escalated: bool  # overdue for at least escalate_after_days

    @property
    def days_overdue(self) -> int | None:
        days = self.document.days_until_due
        return -days if days is not None and days < 0 else None


@dataclass(frozen=True, slots=True)
class Digest:
    """One editor's reminder for one cycle."""

    recipient: str
    cycle: date
    items: tuple[DigestItem, ...]
    cc: tuple[str, ...] = ()  # escalation contacts

    def count(self, state: State) -> int:
        return sum(item.document.state is state for item in self.items)

    @property
    def summary(self) -> str:
        """Counts only, never titles: ``3 overdue, 2 due soon``."""
        parts = [f"{self.count(s)} {s.label}" for s in OUTSTANDING if self.count(s)]
        return ", ".join(parts)

    @property
    def key(self) -> str:
        """Idempotency key: one digest per recipient per cycle."""
        return f"digest:{self.recipient.casefold()}:{self.cycle.isoformat()}"


@dataclass(frozen=True, slots=True)
class Plan:
    digests: tuple[Digest, ...]
    remember: tuple[LedgerEntry, ...]  # entries to write, per digest recipient and document
    forget: tuple[tuple[str, str], ...]  # (recipient, path) no longer outstanding


def _order(item: DigestItem) -> tuple[int, int, str]:
    doc = item.document
    rank = {State.OVERDUE: 0, State.INVALID: 1, State.DUE_SOON: 2}[doc.state]
    return (rank, doc.days_until_due if doc.days_until_due is not None else 0, doc.path)


def ledger_path(doc: DocumentReport) -> str:
    """How the ledger names a document: its path, storable as UTF-8 text even when the file
    system gave it a name that is not."""
    return without_surrogates(doc.path)


def recipients_of(doc: DocumentReport, policy: ReminderPolicy) -> tuple[str, ...]:
    """Its editors; documents nobody owns go to the escalation contacts."""
    return doc.editors or policy.escalate_to


def is_due_reminder(
    entry: LedgerEntry | None, doc: DocumentReport, today: date, policy: ReminderPolicy
) -> bool:
    if entry is None or entry.due != doc.due or entry.state is not doc.state:
        return True  # new to this editor, a new review cycle, or a change of state
    if doc.state is State.DUE_SOON:
        return False  # said once per cycle
    return (today - entry.notified_on).days >= policy.remind_every_days


def plan_reminders(
    documents: Iterable[DocumentReport],
    ledger: Mapping[tuple[str, str], LedgerEntry],
    today: date,
    policy: ReminderPolicy,
    recipients: Sequence[str] | None = None,
) -> Plan:
    """Decide today's digests. ``recipients`` limits the plan to those editors (for previews).

    ``ledger`` maps (recipient casefolded, path) to the last entry.
    """
    by_recipient: dict[str, list[DocumentReport]] = defaultdict(list)
    display: dict[str, str] = {}
    outstanding_keys: set[tuple[str, str]] = set()
    for doc in documents:
        if doc.state not in OUTSTANDING or doc.snoozed is not None:
            continue  # a snoozed document comes back, as new, when its snooze ends
        for recipient in recipients_of(doc, policy):
            folded = recipient.casefold()
            display.setdefault(folded, recipient)
            by_recipient[folded].append(doc)
            outstanding_keys.add((folded, ledger_path(doc)))
    wanted = {r.casefold() for r in recipients} if recipients is not None else None

    digests: list[Digest] = []
    remember: list[LedgerEntry] = []
    for folded in sorted(by_recipient):
        if wanted is not None and folded not in wanted:
            continue
        docs = by_recipient[folded]
        entries = [ledger.get((folded, ledger_path(doc))) for doc in docs]
        if wanted is None and not any(
            is_due_reminder(entry, doc, today, policy)
            for entry, doc in zip(entries, docs, strict=True)
        ):
            continue
        items = sorted(
            (
                DigestItem(
                    doc,
                    new=entry is None or entry.due != doc.due or entry.state is not doc.state,
                    escalated=doc.state is State.OVERDUE
                    and doc.days_until_due is not None
                    and -doc.days_until_due >= policy.escalate_after_days,
                )
                for entry, doc in zip(entries, docs, strict=True)
            ),
            key=_order,
        )
        recipient = display[folded]
        cc = (
            tuple(c for c in policy.escalate_to if c.casefold() != folded)
            if any(item.escalated for item in items)
            else ()
        )
        digests.append(Digest(recipient, today, tuple(items), cc))
        remember.extend(
            LedgerEntry(folded, ledger_path(doc), doc.due, doc.state, today) for doc in docs
        )

    forget = tuple(sorted(key for key in ledger if key not in outstanding_keys))
    return Plan(tuple(digests), tuple(remember), forget if wanted is None else ())
