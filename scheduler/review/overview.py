"""The library at a glance, for the dashboard: headline figures, the forecast of reviews falling
due month by month, and breakdowns by editor and by source. Pure: a report and a day in, figures
out."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from scheduler.results import SCHEDULED, CheckResult, DocumentReport, State

FORECAST_MONTHS = 12
NEEDS_REVIEW = (State.OVERDUE, State.DUE_SOON, State.OK)  # active and valid documents
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
NOBODY = "(nobody)"
NO_SOURCE = "(no source)"


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar of the forecast: the overdue documents, or those falling due in a month."""

    key: str  # "overdue" or "YYYY-MM"
    label: str  # "Overdue", "Dec 2026"
    count: int


@dataclass(frozen=True, slots=True)
class Group:
    """The documents of one editor or one source, by state."""

    name: str
    counts: dict[str, int]  # state -> documents
    total: int
    most_days_overdue: int  # of its most overdue document; 0 when none is overdue


@dataclass(frozen=True, slots=True)
class Overview:
    counts: dict[str, int]  # as in the JSON report's summary
    needing_review: int  # overdue, due soon or ok
    on_time: float | None  # the share of those not overdue; None when there are none
    oldest_overdue: DocumentReport | None
    forecast: tuple[Bar, ...]  # overdue first, then the next FORECAST_MONTHS months
    later: int  # documents falling due after the forecast's last month
    by_editor: tuple[Group, ...]
    by_source: tuple[Group, ...]


def _months(today: date, count: int) -> list[tuple[int, int]]:
    first = today.year * 12 + today.month - 1
    return [divmod(m, 12) for m in range(first, first + count)]


def forecast(documents: Iterable[DocumentReport], today: date) -> tuple[tuple[Bar, ...], int]:
    """Overdue documents, and documents falling due in each of the next months (this month
    first), with how many fall due later."""
    months = _months(today, FORECAST_MONTHS)
    due: Counter[tuple[int, int]] = Counter()
    overdue = 0
    for doc in documents:
        if doc.state is State.OVERDUE:
            overdue += 1
        elif doc.state in NEEDS_REVIEW and doc.due is not None:
            due[(doc.due.year, doc.due.month - 1)] += 1
    bars = [Bar("overdue", "Overdue", overdue)]
    for year, month in months:
        label = f"{MONTHS[month]} {year}"
        bars.append(Bar(f"{year:04d}-{month + 1:02d}", label, due.pop((year, month), 0)))
    return tuple(bars), sum(due.values())


def groups(named: dict[str, list[DocumentReport]]) -> tuple[Group, ...]:
    """One group per name, most overdue first: most overdue documents, then the longest
    overdue, then by name."""
    result = []
    for name, docs in named.items():
        tally = Counter(doc.state.value for doc in docs)
        late = [-(doc.days_until_due or 0) for doc in docs if doc.state is State.OVERDUE]
        counts = {s.value: tally[s.value] for s in SCHEDULED}
        result.append(Group(name, counts, len(docs), max(late, default=0)))
    result.sort(key=lambda g: (-g.counts[State.OVERDUE.value], -g.most_days_overdue, g.name))
    return tuple(result)


def overview(result: CheckResult) -> Overview:
    documents: Sequence[DocumentReport] = result.documents
    counts = result.counts()
    needing = sum(counts[s.value] for s in NEEDS_REVIEW)
    overdue = [doc for doc in documents if doc.state is State.OVERDUE]
    oldest = min(overdue, key=lambda d: (d.due or date.max, d.path), default=None)
    by_editor: defaultdict[str, list[DocumentReport]] = defaultdict(list)
    by_source: defaultdict[str, list[DocumentReport]] = defaultdict(list)
    for doc in documents:
        for editor in doc.editors or (NOBODY,):
            by_editor[editor].append(doc)
        by_source[doc.source or NO_SOURCE].append(doc)
    bars, later = forecast(documents, result.as_of)
    return Overview(
        counts=counts,
        needing_review=needing,
        on_time=(needing - len(overdue)) / needing if needing else None,
        oldest_overdue=oldest,
        forecast=bars,
        later=later,
        by_editor=groups(by_editor),
        by_source=groups(by_source),
    )
