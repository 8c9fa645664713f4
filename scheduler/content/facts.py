"""What reading and validating one document established, whatever the date.

A document's facts are everything the freshness report and ``validate`` need from its file: the
metadata they show, the due date (``lastReviewed`` plus the review frequency) and the problems
found. They depend on the file and the settings, never on the date, so the parse cache
(:mod:`scheduler.content.cache`) can keep them. What depends on the date (a review recorded after today,
days until due, the state) is worked out from them on every run.

Facts travel as a row of plain values (text, numbers, ``None``): from worker processes to the
main one, and into the cache's columns. Fresh and cached facts alike are decoded from a row, so a
report never depends on where its facts came from. Paths are not part of a row: they are attached
when decoding, as they depend on the directory the tool runs from.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any, NamedTuple

from scheduler.config import FieldNames
from scheduler.content.metadata import ValidatedDocument
from scheduler.results import Problem, Severity
from scheduler.review.state import due_date

# Part of the cache's fingerprint: change it whenever rows change shape or meaning.
FORMAT_VERSION = 1

_encode = json.JSONEncoder(separators=(",", ":")).encode  # ASCII: any text survives storage
_decode = json.JSONDecoder().decode

# title, status, last_reviewed, review_frequency, due, last_reviewed_line, url, problems
FactsRow = tuple[
    str | None, str | None, str | None, str | None, str | None, int | None, str | None, str | None
]


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

    @property
    def has_errors(self) -> bool:
        return any(p.is_error for p in self.problems)


def establish(doc: ValidatedDocument, names: FieldNames) -> DocumentFacts:
    """The facts of a validated document."""
    meta = doc.metadata
    frequency = doc.fields.get(names.review_frequency)
    return DocumentFacts(
        title=meta.title if meta else None,
        status=meta.status if meta else None,
        last_reviewed=meta.last_reviewed if meta else None,
        review_frequency=None if frequency is None else str(frequency),
        due=due_date(meta.last_reviewed, meta.review_frequency) if meta else None,
        last_reviewed_line=doc.lines.get("last_reviewed"),
        url=meta.url if meta else None,
        problems=doc.problems,
    )


def facts_row(facts: DocumentFacts) -> FactsRow:
    return (
        facts.title,
        facts.status,
        _iso(facts.last_reviewed),
        facts.review_frequency,
        _iso(facts.due),
        facts.last_reviewed_line,
        facts.url,
        encode_problems(facts.problems),
    )


def route_text(editors: tuple[str, ...], problems: tuple[Problem, ...]) -> str:
    """A document's editors and the problems with its owner field, as stored."""
    return _encode([list(editors), [_problem_row(p) for p in problems]])


def encode_problems(problems: tuple[Problem, ...]) -> str | None:
    return _encode([_problem_row(p) for p in problems]) if problems else None


class FactsDecoder:
    """Decodes rows for one run, sharing the values many documents have in common (statuses,
    frequencies, dates, editor lists) so that a large report stays small in memory."""

    def __init__(self) -> None:
        self._texts: dict[str | None, str | None] = {None: None}
        self._dates: dict[str | None, date | None] = {None: None}
        self._routes: dict[str, tuple[str, ...]] = {}

    def facts(self, row: FactsRow, path: str) -> DocumentFacts:
        title, status, last, frequency, due, line, url, problems = row
        texts, dates = self._texts, self._dates
        return DocumentFacts(
            title,
            texts.setdefault(status, status),
            dates[last] if last in dates else self._date(last),
            texts.setdefault(frequency, frequency),
            dates[due] if due in dates else self._date(due),
            line,
            url,
            () if problems is None else _problems(problems, path),
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
    return [problem.line, problem.field, problem.severity.value, problem.message, problem.hint]


def _problems(text: str, path: str) -> tuple[Problem, ...]:
    return tuple(_problem(path, row) for row in _decode(text))


def _problem(path: str, row: list[Any]) -> Problem:
    line, field, severity, message, hint = row
    return Problem(path, line, field, Severity(severity), message, hint)
