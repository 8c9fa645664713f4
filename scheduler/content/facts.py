"""What reading and validating one document established, whatever the date.

A document's facts are everything the freshness report and ``validate`` need from its file: the
metadata they show, the due date (``lastReviewed`` plus the review frequency) and the problems
found. They depend on the file and the settings, never on the date, so the parse cache
(:mod:`scheduler.content.cache`) can keep them. What depends on the date (a review recorded after
today, days until due, the state) is worked out from them on every run.

Facts travel as one encoded record per document (:data:`FactsRecord`, compact JSON text): from
worker processes to the main one, and into the cache. Fresh and cached facts alike are decoded
from a record, so a report never depends on where its facts came from. Paths are not part of a
record: they are attached when decoding, as they depend on the directory the tool runs from.
Fields the registry marks as reported beyond the ones every report shows (title, status, last
reviewed, review frequency) travel in the record's ``shown`` part, so a new reported field needs
no change here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from typing import Any, NamedTuple

from scheduler.config import FieldNames
from scheduler.content.cadence import Cadence, due_date
from scheduler.content.fields import REPORTED, SHOWN
from scheduler.content.metadata import ValidatedDocument, due_out_of_range_problem
from scheduler.results import Problem, Severity
from scheduler.rules import RULES

# Part of the cache's fingerprint: change it whenever rows change shape or meaning.
FORMAT_VERSION = "2:" + ",".join(field.name for field in REPORTED)

_encode = json.JSONEncoder(separators=(",", ":")).encode  # ASCII: any text survives storage
_decode = json.JSONDecoder().decode
# The decoder's C scanner itself (an attribute the type stubs leave out): a record is one JSON
# array, and calling the scanner directly skips two Python-level wrappers that cost as much as
# the rest of decoding a record.
_scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]

# [title, status, last_reviewed, review_frequency, due, last_reviewed_line, url, problems, shown]
FactsRecord = str


class DocumentFacts(NamedTuple):
    """The date-independent result of reading and validating one document. (A named tuple:
    one is decoded for every document on every run.)"""

    title: str | None = None
    status: str | None = None
    last_reviewed: date | None = None
    review_frequency: str | None = None  # as written, for the report
    due: date | None = None
    last_reviewed_line: int | None = None
    url: str | None = None  # the published page
    problems: tuple[Problem, ...] = ()
    shown: tuple[tuple[str, Any], ...] = ()  # further reported fields: (name, JSON value)

    @property
    def has_errors(self) -> bool:
        return any(p.is_error for p in self.problems)


def establish(doc: ValidatedDocument, names: FieldNames) -> DocumentFacts:
    """The facts of a validated document."""
    meta = doc.metadata
    frequency = doc.fields.get(names.key("review_frequency"))
    if meta is None:
        return DocumentFacts(problems=doc.problems)
    last_reviewed = meta.value("last_reviewed")
    cadence = meta.value("review_frequency")
    due = due_date(last_reviewed, cadence)
    line = doc.lines.get("last_reviewed")
    problems = doc.problems
    if due is None and last_reviewed is not None and cadence is not None:
        late = due_out_of_range_problem(
            doc.path, last_reviewed, cadence, line, names.key("last_reviewed")
        )
        problems = tuple(sorted((*problems, late), key=lambda p: p.sort_key))
    return DocumentFacts(
        title=meta.value("title"),
        status=meta.value("status"),
        last_reviewed=last_reviewed,
        review_frequency=None if frequency is None else str(frequency),
        due=due,
        last_reviewed_line=line,
        url=meta.value("url"),
        problems=problems,
        shown=tuple(
            (field.name, _shown(meta.value(field.name)))
            for field in SHOWN
            if meta.value(field.name) is not None
        ),
    )


def _shown(value: object) -> Any:
    """A reported value as JSON would hold it."""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Cadence):
        return value.label
    return value


def encode_facts(facts: DocumentFacts) -> FactsRecord:
    return _encode(
        [
            facts.title,
            facts.status,
            _iso(facts.last_reviewed),
            facts.review_frequency,
            _iso(facts.due),
            facts.last_reviewed_line,
            facts.url,
            [_problem_row(p) for p in facts.problems] if facts.problems else 0,
            dict(facts.shown) if facts.shown else 0,
        ]
    )


def route_text(editors: tuple[str, ...], problems: tuple[Problem, ...]) -> str:
    """A document's editors and the problems with its owner field, as stored."""
    return _encode([list(editors), [_problem_row(p) for p in problems]])


class FactsDecoder:
    """Decodes rows for one run, sharing the values many documents have in common (statuses,
    frequencies, dates, editor lists) so that a large report stays small in memory."""

    def __init__(self) -> None:
        self._texts: dict[str | None, str | None] = {None: None}
        self._dates: dict[str | None, date | None] = {None: None}
        self._routes: dict[str, tuple[str, ...]] = {}

    def facts(self, record: FactsRecord, path: str) -> DocumentFacts:
        title, status, last, frequency, due, line, url, problems, shown = _scan(record, 0)[0]
        texts, dates = self._texts, self._dates
        return DocumentFacts(
            title,
            texts.setdefault(status, status),
            dates[last] if last in dates else self._date(last),
            texts.setdefault(frequency, frequency),
            dates[due] if due in dates else self._date(due),
            line,
            url,
            tuple(_problem(path, row) for row in problems) if problems else (),
            tuple(shown.items()) if shown else (),
        )

    def route(self, text: str, path: str) -> tuple[tuple[str, ...], tuple[Problem, ...]]:
        editors = self._routes.get(text)
        if editors is not None:
            return editors, ()
        names, problems = _decode(text)
        if problems:
            return tuple(names), tuple(_problem(path, row) for row in problems)
        editors = self._routes[text] = tuple(names)
        return editors, ()

    def _date(self, text: str | None) -> date | None:
        assert text is not None
        value = self._dates[text] = date.fromisoformat(text)
        return value


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _problem_row(problem: Problem) -> list[Any]:
    return [
        problem.line,
        problem.field,
        problem.severity.value,
        problem.message,
        problem.hint,
        problem.code,
        problem.column,
    ]


def _problem(path: str, row: list[Any]) -> Problem:
    line, field, severity, message, hint, code, column = row
    rule = RULES.get(code)
    return Problem(
        path,
        line,
        field,
        Severity(severity),
        message,
        hint,
        code,
        rule.name if rule else "",
        column,
    )
