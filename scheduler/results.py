"""The result model: what a run found, apart from how it is shown.

Problems with input are data (where, how bad, what, how to fix it); each document's report
line, the freshness report (:class:`CheckResult`) and the validation result are plain values
that renderers (:mod:`scheduler.render`) turn into text and reminders turn into digests.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


_SEVERITY_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1}


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding about one file.

    ``line`` is 1-based and ``None`` when the problem concerns the file as a whole (empty, too
    large). ``field`` is the frontmatter key as the editor wrote it, or ``None``. Problems are
    made by calling their rule in :mod:`scheduler.rules`.
    """

    path: str
    line: int | None
    field: str | None
    severity: Severity
    message: str
    hint: str | None = None
    code: str = ""  # the rule's stable code, RS101 (see scheduler.rules)
    rule: str = ""  # and its short name, empty-file
    column: int | None = None  # 1-based, where known

    @property
    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (
            self.path,
            self.line or 0,
            _SEVERITY_ORDER[self.severity],
            self.field or "",
            self.message,
        )

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def describe(self) -> str:
        """``field: message (hint)``: the part of a report line after the location."""
        text = f"{self.field}: {self.message}" if self.field else self.message
        return f"{text} ({self.hint})" if self.hint else text

    def to_json(self) -> dict[str, Any]:
        return {
            "severity": self.severity.value,
            "field": self.field,
            "line": self.line,
            "message": self.message,
            "hint": self.hint,
            "code": self.code,
            "rule": self.rule,
            "column": self.column,
        }


def has_errors(problems: tuple[Problem, ...] | list[Problem]) -> bool:
    return any(p.severity is Severity.ERROR for p in problems)


class State(StrEnum):
    """Where a document stands. Declaration order is urgency order."""

    INVALID = "invalid"
    OVERDUE = "overdue"
    DUE_SOON = "due_soon"
    OK = "ok"
    EXEMPT = "exempt"
    # With [content] scope = "declared": declares no field it is scheduled by. Counted, and
    # listed only when asked for.
    UNSCHEDULED = "unscheduled"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


STATES: tuple[State, ...] = tuple(State)
# The states of documents that are scheduled: the ones reports, digests and the dashboard show.
SCHEDULED: tuple[State, ...] = tuple(s for s in State if s is not State.UNSCHEDULED)


SUMMARY_ORDER = (State.OVERDUE, State.DUE_SOON, State.OK, State.EXEMPT, State.INVALID)


@dataclass(frozen=True, slots=True)
class Snoozed:
    """A document whose reminders are postponed until (not including) ``until``."""

    until: date
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"until": self.until.isoformat(), "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the review log says of documents, for reports, by path: the snoozes in force, and
    the last-reviewed dates moved with nothing else changed and no outcome recorded."""

    snoozes: Mapping[str, Snoozed] = field(default_factory=dict)
    rubber_stamped: Mapping[str, date] = field(default_factory=dict)


_RANKS = {State.INVALID: 0, State.EXEMPT: 2, State.UNSCHEDULED: 3}


@dataclass(frozen=True, slots=True)
class DocumentReport:
    """One document's line in the freshness report."""

    path: str
    title: str | None
    state: State
    status: str | None
    last_reviewed: date | None
    review_frequency: str | None
    due: date | None
    days_until_due: int | None
    editors: tuple[str, ...]
    problems: tuple[Problem, ...]
    line: int | None = None  # where lastReviewed is written, for annotations
    url: str | None = None  # the published page, for links in digests
    shown: tuple[tuple[str, Any], ...] = ()  # further fields the registry reports: (name, value)
    source: str | None = None  # the publisher (not in the reports: the dashboard groups by it)
    snoozed: Snoozed | None = None
    rubber_stamped: bool = False  # the date moved, nothing else changed, no outcome recorded
    links: tuple[tuple[str, str], ...] = ()  # ("edit_url" | "view_url", the link)

    @property
    def urgency(self) -> tuple[int, int, date, str]:
        """Invalid first, then by due date; exempt documents last."""
        rank = _RANKS.get(self.state, 1)
        return (rank, 0 if self.due else 1, self.due or date.max, self.path)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "title": self.title,
            "state": self.state.value,
            "status": self.status,
            "last_reviewed": _iso(self.last_reviewed),
            "review_frequency": self.review_frequency,
            **dict(self.shown),
            "due": _iso(self.due),
            "days_until_due": self.days_until_due,
            "editors": list(self.editors),
            "problems": [p.to_json() for p in self.problems],
            **self.additions(),
        }

    def additions(self) -> dict[str, Any]:
        """The report's keys that only documents they apply to have: a snooze, links."""
        extra: dict[str, Any] = dict(self.links)
        if self.snoozed is not None:
            extra["snoozed"] = self.snoozed.to_json()
        if self.rubber_stamped:
            extra["rubber_stamped"] = True
        return extra


@dataclass(frozen=True, slots=True)
class EncodedEntries:
    """The freshness report's entries, already written as the JSON report's entries
    (``check(..., encoder=...)``), as strict UTF-8 (:func:`scheduler.text.json_safe`): the state
    of each, in report order, for the summary and the exit code; their text, in pieces of one
    or more whole entries, the pieces joined as the entries within them are; and how many of
    them are marked snoozed and rubber-stamped, for the summary."""

    states: list[State]
    pieces: Iterable[str]  # iterated anew each time the report is written
    snoozed: int = 0
    rubber_stamped: int = 0


@dataclass(frozen=True, slots=True)
class CheckResult:
    as_of: date
    timezone: str
    due_soon_days: int
    documents: Sequence[DocumentReport]
    # With [content] scope = "declared": the unscheduled documents selected but not listed
    # (they are listed when --state asks for them); None with scope "all".
    unscheduled: int | None = None
    # The report as JSON entries, in report order, when the use case was asked for them: then
    # ``documents`` is empty, and only the JSON renderer can show it.
    encoded: EncodedEntries | None = None

    @property
    def states(self) -> list[State]:
        """Every listed document's state, in report order."""
        if self.encoded is not None:
            return self.encoded.states
        return [doc.state for doc in self.documents]

    def counts(self) -> dict[str, int]:
        states = self.states
        tally = Counter(states)
        counts = {"documents": len(states)} | {s.value: tally[s] for s in SUMMARY_ORDER}
        if self.unscheduled is not None:
            counts["unscheduled"] = self.unscheduled + tally[State.UNSCHEDULED]
        if self.encoded is not None:
            snoozed, stamped = self.encoded.snoozed, self.encoded.rubber_stamped
        else:
            snoozed = sum(doc.snoozed is not None for doc in self.documents)
            stamped = sum(doc.rubber_stamped for doc in self.documents)
        return (
            counts
            | ({"snoozed": snoozed} if snoozed else {})
            | ({"rubber_stamped": stamped} if stamped else {})
        )


@dataclass(frozen=True, slots=True)
class FileProblems:
    path: str
    problems: tuple[Problem, ...]

    @property
    def valid(self) -> bool:
        return not any(p.is_error for p in self.problems)


@dataclass(frozen=True, slots=True)
class ValidationResult:
    as_of: date
    files: Sequence[FileProblems] = field(default_factory=list)
    timezone: str | None = None  # the one the as-of date is in, when the settings gave it
    # With [content] scope = "declared": the files left out as unscheduled; None with "all".
    unscheduled: int | None = None

    def totals(self) -> dict[str, int]:
        problems = [p for f in self.files for p in f.problems]
        errors = sum(p.is_error for p in problems)
        return {
            "files": len(self.files),
            "valid": sum(f.valid for f in self.files),
            "invalid": sum(not f.valid for f in self.files),
            "errors": errors,
            "warnings": len(problems) - errors,
        } | ({} if self.unscheduled is None else {"unscheduled": self.unscheduled})


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True, slots=True)
class RuleCount:
    """How often one rule found a problem in a run (``--statistics``)."""

    code: str
    rule: str
    errors: int
    warnings: int
    files: int  # how many files it found them in

    @property
    def count(self) -> int:
        return self.errors + self.warnings

    @property
    def severity(self) -> str:
        """``error``, ``warning``, or ``error, warning`` for a rule that gave both."""
        kinds = [k for k, n in (("error", self.errors), ("warning", self.warnings)) if n]
        return ", ".join(kinds)

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "rule": self.rule,
            "severity": self.severity,
            "count": self.count,
            "errors": self.errors,
            "warnings": self.warnings,
            "files": self.files,
        }


@dataclass(frozen=True, slots=True)
class Statistics:
    """The problems of a run counted by rule, most frequent first."""

    as_of: date
    timezone: str | None
    files: int  # files (documents) the run looked at
    rules: tuple[RuleCount, ...]

    @classmethod
    def of(
        cls,
        as_of: date,
        timezone: str | None,
        files: Sequence[tuple[str, Sequence[Problem]]],
    ) -> Statistics:
        """From each file's path and problems."""
        errors: Counter[str] = Counter()
        warnings: Counter[str] = Counter()
        where: dict[str, set[str]] = {}
        names: dict[str, str] = {}
        for path, problems in files:
            for problem in problems:
                (errors if problem.is_error else warnings)[problem.code] += 1
                where.setdefault(problem.code, set()).add(path)
                names.setdefault(problem.code, problem.rule)
        counts = [
            RuleCount(code, names[code], errors[code], warnings[code], len(paths))
            for code, paths in where.items()
        ]
        counts.sort(key=lambda c: (-c.count, c.code))
        return cls(as_of, timezone, len(files), tuple(counts))

    def totals(self) -> dict[str, int]:
        errors = sum(c.errors for c in self.rules)
        warnings = sum(c.warnings for c in self.rules)
        return {
            "files": self.files,
            "problems": errors + warnings,
            "errors": errors,
            "warnings": warnings,
        }
