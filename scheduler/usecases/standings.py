"""Where every document stands on a day, as a reminder cycle needs it: cheaply for all of them,
in full only for the few a digest lists.

A cycle decides from each document's state, due date, editors and snooze, and notices dates
changed by hand from its last-reviewed date; the rest of a report (title, problems, links,
further fields) only shows in the documents a digest lists, at most ``[reminders]
max_documents_per_digest`` of them. So a cycle surveys the library into :class:`Standing`
records, worked out from the facts as :func:`~scheduler.usecases.check.build_report` works them
out, and builds the full report (:meth:`Survey.report`) of a document only when a digest lists
it. What the cycle decides, queues, records and sends is what it would be from full reports
(``tests/test_standings.py`` proves it on edited libraries).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import NamedTuple

from scheduler.config import Settings
from scheduler.content.loader import SourceFile
from scheduler.notify.reminders import OUTSTANDING, DigestItem, Listed, Plan
from scheduler.results import DocumentReport, Evidence, Problem, Snoozed, State
from scheduler.review.links import document_links
from scheduler.review.state import ReviewPolicy
from scheduler.text import without_surrogates
from scheduler.usecases.check import (
    CheckStopped,
    Examined,
    build_report,
    examine,
    rule_selection,
    scanning,
    urgency_number,
    with_evidence,
)


def urgency(state: State, due: date | None) -> int:
    """:attr:`DocumentReport.urgency` less the path, as one number: they order alike."""
    return urgency_number(state, due.toordinal() if due is not None else 0)


class Standing(NamedTuple):
    """One document on the cycle's day: what deciding its reminders and noticing a date
    changed by hand needs. (A named tuple: one is made per document per cycle; ``order`` and
    ``path`` first, so that a list of them sorts in report order as it is.)"""

    order: int  # see urgency()
    path: str
    state: State
    due: date | None
    days_until_due: int | None
    editors: tuple[str, ...]
    last_reviewed: date | None
    snoozed: Snoozed | None
    # To build its full report from: kept for outstanding documents only, the only ones a
    # digest can list.
    examined: Examined | None


@dataclass(frozen=True, slots=True)
class Survey:
    """Every document the cycle's report would hold (the unscheduled ones of ``[content] scope
    = "declared"`` left out, as reports leave them), in report order, and how to build the
    full report of any of them."""

    documents: list[Standing]
    outstanding: int  # overdue, invalid or due soon
    report: Callable[[Listed], DocumentReport]


@contextmanager
def few_collections() -> Iterator[None]:
    """Collect cyclic garbage rarely meanwhile (as :func:`~scheduler.usecases.check.scanning`
    does while walking): a cycle keeps a few objects per document and reads tens of thousands
    of ledger and review-log rows, none of them in reference cycles, and with Python's
    defaults (a collection every 700 allocations) the collector would walk them all, again
    and again, for as long as the planning itself takes."""
    thresholds = gc.get_threshold()
    gc.set_threshold(100_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


def survey(
    settings: Settings,
    cwd: Path,
    today: date,
    evidence: Evidence,
    *,
    use_cache: bool,
    stop: threading.Event | None = None,
    files: Iterable[SourceFile | Problem] | None = None,
    read_only: bool = False,
) -> Survey:
    """Where every document under the content root stands on ``today``, its snooze as
    ``evidence`` says; with ``files``, those of a walk of the content root made already.
    ``read_only``: the parse cache is looked at, never written. When
    ``stop`` is set (from another thread), it ends early with
    :class:`~scheduler.usecases.check.CheckStopped`."""
    policy = ReviewPolicy(
        settings.review.due_soon_days, frozenset(settings.metadata.review_statuses)
    )
    names = settings.fields
    rules = rule_selection(settings)
    declared_only = settings.content.scope == "declared"
    linked = settings.links.edit_url is not None or settings.links.view_url is not None
    review_statuses = policy.review_statuses
    window = policy.due_soon_days
    today_ordinal = today.toordinal()
    snoozes = evidence.snoozes
    invalid, exempt = State.INVALID, State.EXEMPT
    overdue, due_soon, ok = State.OVERDUE, State.DUE_SOON, State.OK
    standings: list[Standing] = []
    outstanding = 0
    add = standings.append
    new = tuple.__new__  # a named tuple's own __new__ is a Python function: twice the cost
    with scanning(settings, cwd, use_cache, read_only=read_only) as cache:
        for doc in examine(settings, [], cwd, cache=cache, files=files):
            if stop is not None and stop.is_set():
                raise CheckStopped("the check was stopped before it ended")
            facts = doc.facts
            if declared_only and not facts.declared:
                continue  # unscheduled: counted by reports, never reminded of
            # review.state.state_on, with build_report's errors (a review after today is one)
            status, due, last = facts.status, facts.due, facts.last_reviewed
            days = due.toordinal() - today_ordinal if due is not None else None
            if status is not None and status not in review_statuses:
                state = exempt
            elif (
                days is None
                or (facts.problems and facts.has_errors)
                or (last is not None and last > today)
            ):
                state = invalid
            elif days < 0:
                state = overdue
            elif days <= window:
                state = due_soon
            else:
                state = ok
            if state in OUTSTANDING:
                outstanding += 1
                kept: Examined | None = doc
            else:
                kept = None
            path = doc.path
            snoozed = snoozes.get(without_surrogates(path)) if snoozes else None
            order = urgency(state, due)
            add(new(Standing, (order, path, state, due, days, doc.editors, last, snoozed, kept)))
        standings.sort()  # report order; paths are unique, so no two compare further

    def report(doc: Listed) -> DocumentReport:
        """The document's full report, as check() makes it."""
        if isinstance(doc, DocumentReport):
            return doc
        assert isinstance(doc, Standing)
        if doc.examined is None:
            raise ValueError(f"{doc.path!r} is not outstanding: no digest lists it")
        full = with_evidence(
            build_report(doc.examined, policy, names, today, rules, declared_only), evidence
        )
        if linked:
            full = replace(full, links=document_links(settings.links, full.path, cwd))
        return full

    return Survey(standings, outstanding, report)


def in_full(plan: Plan, report: Callable[[Listed], DocumentReport], listed: int) -> Plan:
    """``plan`` with the first ``listed`` documents of each digest (those it lists; the others
    it only counts) as full reports."""
    built: dict[str, DocumentReport] = {}

    def full(item: DigestItem) -> DigestItem:
        doc = item.document
        found = built.get(doc.path)
        if found is None:
            found = built[doc.path] = report(doc)
        return replace(item, document=found)

    digests = tuple(
        replace(digest, items=(*map(full, digest.items[:listed]), *digest.items[listed:]))
        for digest in plan.digests
    )
    return replace(plan, digests=digests)
