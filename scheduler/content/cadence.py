"""Review frequencies: parse what editors write, and add the interval to a date.

Accepted forms, case-insensitive:

* named cadences: weekly, fortnightly, monthly, quarterly, semiannually (semi-annually,
  half-yearly), annually (yearly), biennially, triennially;
* ``N day(s)|week(s)|month(s)|year(s)``, e.g. ``6 months``, ``90 days``;
* ISO 8601 durations of whole days, weeks, months and years: ``P90D``, ``P2W``, ``P3M``, ``P1Y6M``.

Months and years are calendar units clipped to the end of the month (python-dateutil's
relativedelta): 2026-05-31 + 6 months = 2026-11-30.
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass
from datetime import date

from dateutil.relativedelta import relativedelta


@functools.lru_cache(maxsize=1024)
def _interval(years: int, months: int, weeks: int, days: int) -> relativedelta:
    """The interval as a relativedelta, built once per distinct cadence: a library has few."""
    return relativedelta(years=years, months=months, weeks=weeks, days=days)


class CadenceError(ValueError):
    """A review frequency that cannot be understood; ``hint`` says what to write instead."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True, slots=True)
class Cadence:
    """How often a document must be reviewed, as calendar units."""

    years: int = 0
    months: int = 0
    weeks: int = 0
    days: int = 0

    def after(self, start: date) -> date:
        """The date one interval after ``start``, computed in one step."""
        result: date = start + _interval(self.years, self.months, self.weeks, self.days)
        return result

    @property
    def label(self) -> str:
        parts = [
            f"{n} {unit}{'' if n == 1 else 's'}"
            for n, unit in (
                (self.years, "year"),
                (self.months, "month"),
                (self.weeks, "week"),
                (self.days, "day"),
            )
            if n
        ]
        return " ".join(parts)


NAMED: dict[str, Cadence] = {
    "weekly": Cadence(weeks=1),
    "fortnightly": Cadence(weeks=2),
    "monthly": Cadence(months=1),
    "quarterly": Cadence(months=3),
    "semiannually": Cadence(months=6),
    "semi-annually": Cadence(months=6),
    "half-yearly": Cadence(months=6),
    "annually": Cadence(years=1),
    "yearly": Cadence(years=1),
    "biennially": Cadence(years=2),
    "triennially": Cadence(years=3),
}

AMBIGUOUS: dict[str, tuple[str, str]] = {
    "biannually": (
        "can mean twice a year or every two years",
        "write 'semiannually' for every 6 months or 'biennially' for every 2 years",
    ),
    "biannual": (
        "can mean twice a year or every two years",
        "write 'semiannually' for every 6 months or 'biennially' for every 2 years",
    ),
    "biweekly": (
        "can mean twice a week or every two weeks",
        "write 'fortnightly' or '2 weeks' for every two weeks",
    ),
    "bimonthly": (
        "can mean twice a month or every two months",
        "write '2 months' for every two months, or '2 weeks' for twice a month",
    ),
}

# Digits are 0-9 only (re.ASCII): Python's int() would read fullwidth and other digits too.
_UNIT_RE = re.compile(r"(?:every )?(\d{1,4}) ?(day|week|month|year)s?", re.IGNORECASE | re.ASCII)
_ISO_RE = re.compile(
    r"P(?!$)(?:(\d{1,4})Y)?(?:(\d{1,4})M)?(?:(\d{1,4})W)?(?:(\d{1,4})D)?",
    re.IGNORECASE | re.ASCII,
)
_FORMS = "a named cadence such as 'quarterly', 'N months' such as '6 months', or ISO 8601 'P3M'"

# Longest accepted interval: anything longer is almost certainly a typo in a health library.
MAX_YEARS = 10


def parse_cadence(value: object) -> Cadence:
    """Parse a frontmatter value into a :class:`Cadence`, or raise :class:`CadenceError`."""
    if isinstance(value, bool) or not isinstance(value, str):
        kind = (
            "a number"
            if isinstance(value, int | float) and not isinstance(value, bool)
            else (f"a {type(value).__name__}")
        )
        hint = f"write '{value} days'" if isinstance(value, int) and value > 0 else None
        raise CadenceError(
            f"expected a review frequency, got {kind} ({value!r})", hint or f"use {_FORMS}"
        )
    text = " ".join(value.split()).lower()
    if not text:
        raise CadenceError("is empty", f"use {_FORMS}")
    if text in NAMED:
        return NAMED[text]
    if text in AMBIGUOUS:
        why, hint = AMBIGUOUS[text]
        raise CadenceError(f"{value.strip()!r} is ambiguous: it {why}", hint)
    if (match := _UNIT_RE.fullmatch(text)) is not None:
        count, unit = int(match.group(1)), match.group(2).lower()
        cadence = Cadence(**{f"{unit}s": count})
    elif (match := _ISO_RE.fullmatch(text)) is not None:
        years, months, weeks, days = (int(g) if g else 0 for g in match.groups())
        cadence = Cadence(years=years, months=months, weeks=weeks, days=days)
    elif text.startswith("p") and "t" in text:
        raise CadenceError(
            f"{value.strip()!r} has a time part; reviews are scheduled in whole days",
            "use days, weeks, months or years, such as 'P90D'",
        )
    else:
        close = difflib.get_close_matches(text, list(NAMED) + list(AMBIGUOUS), n=1, cutoff=0.75)
        hint = f"did you mean {close[0]!r}?" if close else f"use {_FORMS}"
        raise CadenceError(f"{value.strip()!r} is not a review frequency", hint)
    _check_length(value.strip(), cadence)
    return cadence


def _check_length(text: str, cadence: Cadence) -> None:
    months = cadence.years * 12 + cadence.months + (cadence.weeks * 7 + cadence.days) / 30.4375
    if months == 0:
        raise CadenceError(f"{text!r} is a zero interval", "a review frequency must be positive")
    if months > MAX_YEARS * 12:
        raise CadenceError(
            f"{text!r} is longer than {MAX_YEARS} years",
            "patient information needs reviewing more often than that",
        )


@functools.lru_cache(maxsize=8192)  # dates and cadences recur across a library
def due_date(last_reviewed: date | None, cadence: Cadence | None) -> date | None:
    """``last_reviewed + interval`` in one step, or ``None`` when either is unknown."""
    if last_reviewed is None or cadence is None:
        return None
    try:
        return cadence.after(last_reviewed)
    except (OverflowError, ValueError):
        return None
