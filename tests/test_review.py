from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.content.cadence import NAMED, Cadence, due_date, parse_cadence
from scheduler.review.state import Review, ReviewPolicy, State, state_on

POLICY = ReviewPolicy(due_soon_days=30, review_statuses=frozenset({"active"}))


@pytest.mark.parametrize(
    ("last_reviewed", "frequency", "due"),
    [
        # month ends clip to the last day of the month
        (date(2026, 5, 31), "6 months", date(2026, 11, 30)),
        (date(2026, 1, 31), "monthly", date(2026, 2, 28)),
        (date(2028, 1, 31), "monthly", date(2028, 2, 29)),
        (date(2026, 8, 31), "quarterly", date(2026, 11, 30)),
        (date(2026, 11, 30), "quarterly", date(2027, 2, 28)),
        (date(2026, 12, 31), "P2M", date(2027, 2, 28)),
        (date(2026, 3, 31), "semiannually", date(2026, 9, 30)),
        # leap days
        (date(2024, 2, 29), "1 year", date(2025, 2, 28)),
        (date(2024, 2, 29), "annually", date(2025, 2, 28)),
        (date(2024, 2, 29), "4 years", date(2028, 2, 29)),
        (date(2024, 2, 29), "biennially", date(2026, 2, 28)),
        (date(2024, 2, 29), "P12M", date(2025, 2, 28)),
        (date(2023, 2, 28), "1 year", date(2024, 2, 28)),
        (date(2024, 1, 30), "1 month", date(2024, 2, 29)),
        # days and weeks are exact, across month, year and leap-day boundaries
        (date(2024, 2, 28), "1 day", date(2024, 2, 29)),
        (date(2024, 2, 28), "2 days", date(2024, 3, 1)),
        (date(2025, 12, 30), "90 days", date(2026, 3, 30)),
        (date(2025, 12, 30), "P90D", date(2026, 3, 30)),
        (date(2026, 12, 25), "weekly", date(2027, 1, 1)),
        (date(2026, 12, 25), "fortnightly", date(2027, 1, 8)),
        (date(2026, 12, 25), "P2W", date(2027, 1, 8)),
        # every named cadence from the seed's date
        (date(2025, 12, 30), "quarterly", date(2026, 3, 30)),
        (date(2025, 12, 30), "monthly", date(2026, 1, 30)),
        (date(2025, 12, 30), "half-yearly", date(2026, 6, 30)),
        (date(2025, 12, 30), "semi-annually", date(2026, 6, 30)),
        (date(2025, 12, 30), "yearly", date(2026, 12, 30)),
        (date(2025, 12, 30), "triennially", date(2028, 12, 30)),
        (date(2025, 12, 30), "P1Y6M", date(2027, 6, 30)),
    ],
)
def test_due_dates(last_reviewed: date, frequency: str, due: date) -> None:
    assert due_date(last_reviewed, parse_cadence(frequency)) == due


def test_due_date_unknown_without_both_parts() -> None:
    assert due_date(None, Cadence(months=3)) is None
    assert due_date(date(2026, 1, 1), None) is None


def test_due_date_past_the_calendar_is_unknown_not_a_crash() -> None:
    assert due_date(date(9999, 12, 1), Cadence(years=1)) is None


def _doc(
    last_reviewed: date = date(2025, 12, 30),
    frequency: str = "quarterly",
    status: str | None = "active",
) -> tuple[date | None, str | None]:
    """A document's due date and status."""
    return due_date(last_reviewed, parse_cadence(frequency)), status


@pytest.mark.parametrize(
    ("today", "state", "days"),
    [
        (date(2026, 3, 31), State.OVERDUE, -1),  # one day late
        (date(2026, 11, 27), State.OVERDUE, -242),  # the seed today
        (date(2026, 3, 30), State.DUE_SOON, 0),  # due today is due soon, not overdue
        (date(2026, 2, 28), State.DUE_SOON, 30),  # window edge, inside
        (date(2026, 2, 27), State.OK, 31),  # window edge, outside
        (date(2025, 12, 30), State.OK, 90),  # reviewed today
    ],
)
def test_state_boundaries(today: date, state: State, days: int) -> None:
    assert state_on(*_doc(), False, today, POLICY) == Review(state, date(2026, 3, 30), days)


def test_window_of_zero_days_only_due_day_is_due_soon() -> None:
    policy = ReviewPolicy(0, frozenset({"active"}))
    assert state_on(*_doc(), False, date(2026, 3, 30), policy).state is State.DUE_SOON
    assert state_on(*_doc(), False, date(2026, 3, 29), policy).state is State.OK


@pytest.mark.parametrize("status", ["draft", "archived", "retired"])
def test_statuses_that_need_no_review_are_exempt_but_keep_their_due_date(status: str) -> None:
    review = state_on(*_doc(status=status), False, date(2026, 11, 27), POLICY)
    assert review == Review(State.EXEMPT, date(2026, 3, 30), -242)


def test_errors_make_a_document_invalid_and_its_due_date_is_still_reported() -> None:
    review = state_on(*_doc(), True, date(2026, 11, 27), POLICY)
    assert review == Review(State.INVALID, date(2026, 3, 30), -242)


def test_missing_due_date_is_invalid() -> None:
    assert state_on(None, None, True, date(2026, 1, 1), POLICY) == Review(State.INVALID, None, None)
    assert state_on(None, "active", False, date(2026, 1, 1), POLICY).state is State.INVALID


def test_document_without_status_is_reviewed() -> None:
    review = state_on(*_doc(status=None), False, date(2026, 11, 27), POLICY)
    assert review.state is State.OVERDUE


cadences = st.one_of(
    st.sampled_from(sorted(set(NAMED.values()), key=repr)),
    st.builds(Cadence, days=st.integers(1, 3000)),
    st.builds(Cadence, weeks=st.integers(1, 500)),
    st.builds(Cadence, months=st.integers(1, 120)),
    st.builds(Cadence, years=st.integers(1, 10)),
    st.builds(Cadence, years=st.integers(0, 5), months=st.integers(1, 11)),
)
dates = st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 12, 31))


@given(dates, cadences)
def test_due_never_precedes_last_review(last_reviewed: date, cadence: Cadence) -> None:
    due = due_date(last_reviewed, cadence)
    assert due is not None and due > last_reviewed


@given(dates, dates, cadences)
def test_due_is_monotonic_in_last_review(a: date, b: date, cadence: Cadence) -> None:
    earlier, later = sorted((a, b))
    due_earlier, due_later = due_date(earlier, cadence), due_date(later, cadence)
    assert due_earlier is not None and due_later is not None
    assert due_earlier <= due_later


@given(dates, cadences, st.integers(-400, 400))
def test_state_agrees_with_days_until_due(
    last_reviewed: date, cadence: Cadence, shift: int
) -> None:
    due = due_date(last_reviewed, cadence)
    assert due is not None
    today = due + timedelta(days=shift)
    review = state_on(due, "active", False, today, POLICY)
    assert review.days_until_due == -shift
    expected = State.OVERDUE if shift > 0 else State.DUE_SOON if -shift <= 30 else State.OK
    assert review.state is expected
