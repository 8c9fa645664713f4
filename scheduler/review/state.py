"""Pure review arithmetic: a document's due date and state on a given day.

Nothing here reads the clock; ``today`` is always an argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

from scheduler.content.cadence import Cadence
from scheduler.content.metadata import Metadata
from scheduler.results import STATES, State

__all__ = ["STATES", "Review", "ReviewPolicy", "State", "due_date", "state_on"]


@dataclass(frozen=True, slots=True)
class ReviewPolicy:
    due_soon_days: int
    review_statuses: frozenset[str]

    def needs_review(self, status: str | None) -> bool:
        """A document without a (valid) status is treated as needing review."""
        return status is None or status in self.review_statuses


class Review(NamedTuple):
    """A document's state on a day. (A named tuple: one is made per document per run.)"""

    state: State
    due: date | None
    days_until_due: int | None


def due_date(last_reviewed: date | None, cadence: Cadence | None) -> date | None:
    """``last_reviewed + interval`` in one step, or ``None`` when either is unknown."""
    if last_reviewed is None or cadence is None:
        return None
    try:
        return cadence.after(last_reviewed)
    except (OverflowError, ValueError):
        return None


def assess(
    metadata: Metadata | None, has_errors: bool, today: date, policy: ReviewPolicy
) -> Review:
    """The review state of a document on ``today``.

    exempt: its status needs no review; invalid: it has an error; overdue: ``today`` is after
    the due date; due_soon: ``due - window <= today <= due``; ok: otherwise. The due date is
    given whenever it can be computed, even for invalid and exempt documents.
    """
    due = due_date(metadata.last_reviewed, metadata.review_frequency) if metadata else None
    return state_on(due, metadata.status if metadata else None, has_errors, today, policy)


def state_on(
    due: date | None, status: str | None, has_errors: bool, today: date, policy: ReviewPolicy
) -> Review:
    """The review state on ``today`` of a document with this due date, status and errors:
    :func:`assess` once the due date is known."""
    days = (due - today).days if due is not None else None
    if status is not None and not policy.needs_review(status):
        state = State.EXEMPT
    elif has_errors or due is None or days is None:
        state = State.INVALID
    elif days < 0:
        state = State.OVERDUE
    elif days <= policy.due_soon_days:
        state = State.DUE_SOON
    else:
        state = State.OK
    return Review(state, due, days)
