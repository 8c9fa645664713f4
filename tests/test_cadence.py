from __future__ import annotations

from datetime import date

import pytest

from scheduler.content.cadence import Cadence, CadenceError, parse_cadence


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("weekly", Cadence(weeks=1)),
        ("fortnightly", Cadence(weeks=2)),
        ("monthly", Cadence(months=1)),
        ("quarterly", Cadence(months=3)),
        ("Quarterly", Cadence(months=3)),
        ("semiannually", Cadence(months=6)),
        ("semi-annually", Cadence(months=6)),
        ("half-yearly", Cadence(months=6)),
        ("annually", Cadence(years=1)),
        ("YEARLY", Cadence(years=1)),
        ("biennially", Cadence(years=2)),
        ("triennially", Cadence(years=3)),
        ("6 months", Cadence(months=6)),
        ("6 month", Cadence(months=6)),
        ("6months", Cadence(months=6)),
        ("  6   Months ", Cadence(months=6)),
        ("every 6 months", Cadence(months=6)),
        ("90 days", Cadence(days=90)),
        ("1 day", Cadence(days=1)),
        ("2 weeks", Cadence(weeks=2)),
        ("1 year", Cadence(years=1)),
        ("P90D", Cadence(days=90)),
        ("P3M", Cadence(months=3)),
        ("P1Y", Cadence(years=1)),
        ("P2W", Cadence(weeks=2)),
        ("P1Y6M", Cadence(years=1, months=6)),
        ("p3m", Cadence(months=3)),
        ("10 years", Cadence(years=10)),
        ("120 months", Cadence(months=120)),
    ],
)
def test_accepted_forms(text: str, expected: Cadence) -> None:
    assert parse_cadence(text) == expected


@pytest.mark.parametrize(
    ("value", "message", "hint"),
    [
        (
            "biannually",
            "'biannually' is ambiguous: it can mean twice a year or every two years",
            "write 'semiannually' for every 6 months or 'biennially' for every 2 years",
        ),
        (
            "Biweekly",
            "'Biweekly' is ambiguous: it can mean twice a week or every two weeks",
            "write 'fortnightly' or '2 weeks' for every two weeks",
        ),
        (
            "bimonthly",
            "'bimonthly' is ambiguous: it can mean twice a month or every two months",
            "write '2 months' for every two months, or '2 weeks' for twice a month",
        ),
        ("quartely", "'quartely' is not a review frequency", "did you mean 'quarterly'?"),
        ("sometimes", "'sometimes' is not a review frequency", None),
        ("0 days", "'0 days' is a zero interval", "a review frequency must be positive"),
        ("P0D", "'P0D' is a zero interval", "a review frequency must be positive"),
        ("11 years", "'11 years' is longer than 10 years", None),
        ("PT12H", "'PT12H' has a time part; reviews are scheduled in whole days", None),
        ("P", "'P' is not a review frequency", None),
        ("", "is empty", None),
        (90, "expected a review frequency, got a number (90)", "write '90 days'"),
        (True, "expected a review frequency, got a bool (True)", None),
        (None, "expected a review frequency, got a NoneType (None)", None),
        (["quarterly"], "expected a review frequency, got a list (['quarterly'])", None),
    ],
)
def test_rejected_forms(value: object, message: str, hint: str | None) -> None:
    with pytest.raises(CadenceError) as caught:
        parse_cadence(value)
    assert caught.value.message == message
    if hint is not None:
        assert caught.value.hint == hint
    else:
        assert caught.value.hint  # every rejection says what to write instead


def test_labels() -> None:
    assert Cadence(months=3).label == "3 months"
    assert Cadence(years=1, months=6).label == "1 year 6 months"
    assert Cadence(days=1).label == "1 day"


def test_after_is_one_step_not_repeated_addition() -> None:
    # Six single months from 31 May would drift to the 30th; one six-month step clips once.
    assert Cadence(months=6).after(date(2026, 5, 31)) == date(2026, 11, 30)
