"""Pure review arithmetic: a document's due date and state on a given day.

Nothing here reads the clock; ``today`` is always an argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

from scheduler.results import STATES, State

__all__ = ["STATES", "Review", "ReviewPolicy", "State", "state_on"]


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


def state_on(
    due: date | None, status: str | None, has_errors: bool, today: date, policy: ReviewPolicy
) -> Review:
    """The review state on ``today`` of a document with this due date, status and errors.

    exempt: its status needs no review; invalid: it has an error; overdue: ``today`` is after
    the due date; due_soon: ``due - window <= today <= due``; ok: otherwise. The due date is
    given whenever it can be computed, even for invalid and exempt documents.
    """
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
