"""Where a document's due date comes from.

A page is scheduled in one of two ways: by its last review plus a review frequency (its own, or
the default ``[review]`` gives its path), or by an explicit next-review date (the ``review_by``
field). When a page has both and they disagree, the earlier date is the due date, and the page
gets a warning: a reminder is never later than either says.

Pure: no files, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import NamedTuple

from wcmatch import glob as wcglob

from scheduler.config import ReviewSettings
from scheduler.content.cadence import Cadence, due_date, parse_cadence

_GLOB_FLAGS = wcglob.GLOBSTAR | wcglob.BRACE  # as [[routing.rules]] paths


class DefaultFrequency(NamedTuple):
    """The review frequency a page without one of its own gets, as configured."""

    cadence: Cadence
    written: str


class Frequencies:
    """The ``[review]`` default frequencies, matched against paths relative to the content root:
    the first ``[[review.frequencies]]`` entry whose globs match, else ``default_frequency``."""

    def __init__(self, review: ReviewSettings) -> None:
        self._rules: list[tuple[Callable[[str], re.Match[str] | None], DefaultFrequency]] = []
        for rule in review.frequencies:
            patterns = wcglob.translate(list(rule.paths), flags=_GLOB_FLAGS)[0]
            matcher = re.compile("|".join(f"(?:{p})" for p in patterns)).fullmatch
            self._rules.append((matcher, _default(rule.frequency)))
        self._default = (
            _default(review.default_frequency) if review.default_frequency is not None else None
        )

    def __bool__(self) -> bool:
        return bool(self._rules) or self._default is not None

    def for_path(self, rel: str) -> DefaultFrequency | None:
        for matches, frequency in self._rules:
            if matches(rel) is not None:
                return frequency
        return self._default


def _default(written: str) -> DefaultFrequency:
    return DefaultFrequency(parse_cadence(written), written)


class Due(NamedTuple):
    """A page's due date and, when its two schedules disagree, the date each gives."""

    due: date | None
    from_frequency: date | None = None
    disagrees: bool = False


def due_of(last_reviewed: date | None, cadence: Cadence | None, review_by: date | None) -> Due:
    """The due date: ``review_by``, or ``last_reviewed`` plus ``cadence``; the earlier of the two
    when a page has both (``disagrees`` then says whether they differ)."""
    computed = due_date(last_reviewed, cadence)
    if review_by is None:
        return Due(computed, computed)
    if computed is None:
        return Due(review_by, None)
    return Due(min(review_by, computed), computed, review_by != computed)
