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
from scheduler.content.cadence import Cadence
from scheduler.content.fields import REPORTED, SCHEDULING, SHOWN
from scheduler.content.loader import value_at
from scheduler.content.metadata import ValidatedDocument, due_out_of_range_problem
from scheduler.content.schedule import due_of
from scheduler.results import Problem, Severity
from scheduler.rules import DUE_DATES_DISAGREE, RULES

# Part of the cache's fingerprint: change it whenever rows change shape or meaning.
FORMAT_VERSION = "8:" + ",".join(field.name for field in REPORTED)

_encode = json.JSONEncoder(separators=(",", ":")).encode  # ASCII: any text survives storage
# The decoder's C scanner itself (an attribute the type stubs leave out): a record is one JSON
# array, and calling the scanner directly skips two Python-level wrappers that cost as much as
# the rest of decoding a record.
_scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]

# [title, status, last_reviewed, review_frequency, due, line, url, problems, shown, source,
#  declared]
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
    source: str | None = None  # the publisher, for the dashboard's breakdown
    # It declares a field it is scheduled by (fields.SCHEDULING), or might: [content] scope.
    declared: bool = True

    @property
    def has_errors(self) -> bool:
        return any(p.is_error for p in self.problems)


def establish(doc: ValidatedDocument, names: FieldNames) -> DocumentFacts:
    """The facts of a validated document."""
    meta = doc.metadata
    frequency = value_at(doc.fields, names.key("review_frequency"))
    if meta is None:
        return DocumentFacts(problems=doc.problems, declared=not _holds_no_metadata(doc.problems))
    last_reviewed = meta.value("last_reviewed")
    cadence = meta.value("review_frequency")
    if cadence is None and doc.default_frequency is not None:
        cadence, frequency = doc.default_frequency
    review_by = meta.value("review_by")
    due, computed, disagrees = due_of(last_reviewed, cadence, review_by)
    line = doc.lines.get("last_reviewed")
    problems = doc.problems
    added: list[Problem] = []
    if computed is None and review_by is None and last_reviewed is not None and cadence is not None:
        added.append(
            due_out_of_range_problem(
                doc.path, last_reviewed, cadence, line, names.key("last_reviewed")
            )
        )
    if disagrees:
        assert computed is not None and review_by is not None and cadence is not None
        added.append(
            DUE_DATES_DISAGREE(
                doc.path,
                doc.lines.get("review_by"),
                names.key("review_by"),
                f"the next review is set for {review_by.isoformat()}, but the last review "
                f"({last_reviewed.isoformat() if last_reviewed else '?'}) plus "
                f"{cadence.label} gives {computed.isoformat()}; the earlier, "
                f"{min(review_by, computed).isoformat()}, is the due date",
                f"correct one of them, or remove {names.key('review_by')!r}",
            )
        )
    if added:
        problems = tuple(sorted((*problems, *added), key=lambda p: p.sort_key))
    return DocumentFacts(
        title=meta.value("title"),
        status=meta.value("status"),
        last_reviewed=last_reviewed,
        review_frequency=None if frequency is None else str(frequency),
        due=due,
        last_reviewed_line=line if line is not None else doc.lines.get("review_by"),
        url=meta.value("url"),
        problems=problems,
        shown=tuple(
            (field.name, _shown(meta.value(field.name)))
            for field in SHOWN
            if meta.value(field.name) is not None
        ),
        source=meta.value("source"),
        declared=any(name in doc.lines for name in SCHEDULING),
    )


# What a file holding no metadata at all gets: it declares nothing. (Other reasons for having
# no metadata, such as a YAML error, might hide a declared field: those files are reported.)
_NO_METADATA = frozenset({"RS106", "RS108", "RS110"})  # empty file, no or empty frontmatter


def _holds_no_metadata(problems: tuple[Problem, ...]) -> bool:
    return all(p.code in _NO_METADATA for p in problems if p.is_error)


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
            facts.source,
            facts.declared,
        ]
    )


def route_text(editors: tuple[str, ...], problems: tuple[Problem, ...]) -> str:
    """A document's editors and the problems with its owner field, as stored."""
    return _encode([list(editors), [_problem_row(p) for p in problems]])


class MalformedRecord(ValueError):
    """A record or route that is not one the encoder writes: it holds no facts."""


_OPTIONAL_TEXT = (str, type(None))
_SEVERITIES = {severity.value: severity for severity in Severity}


class FactsDecoder:
    """Decodes rows for one run, sharing the values many documents have in common (statuses,
    frequencies, dates, editor lists) so that a large report stays small in memory.

    Whatever it is given, it returns facts of the types :class:`DocumentFacts` declares or
    raises :class:`MalformedRecord`: a record from a damaged store is refused, never passed on.
    """

    def __init__(self) -> None:
        self._texts: dict[str | None, str | None] = {None: None}
        self._dates: dict[str | None, date | None] = {None: None}
        self._routes: dict[str, tuple[str, ...]] = {}

    def facts(self, record: FactsRecord, path: str) -> DocumentFacts:
        fields = _array(record, 11)
        title, status, last, frequency, due, line, url, problems, shown, source, declared = fields
        if not (
            isinstance(title, _OPTIONAL_TEXT)
            and isinstance(status, _OPTIONAL_TEXT)
            and isinstance(last, _OPTIONAL_TEXT)
            and isinstance(frequency, _OPTIONAL_TEXT)
            and isinstance(due, _OPTIONAL_TEXT)
            and _is_line(line)
            and isinstance(url, _OPTIONAL_TEXT)
            and (shown == 0 or type(shown) is dict)
            and isinstance(source, _OPTIONAL_TEXT)
            and type(declared) is bool
        ):
            raise MalformedRecord("a field of the wrong type")
        texts, dates = self._texts, self._dates
        return DocumentFacts(
            title,
            texts.setdefault(status, status),
            dates[last] if last in dates else self._date(last),
            texts.setdefault(frequency, frequency),
            dates[due] if due in dates else self._date(due),
            line,
            url,
            () if problems == 0 else _problems(path, problems),
            tuple(shown.items()) if shown else (),
            texts.setdefault(source, source),
            declared,
        )

    def route(self, text: str, path: str) -> tuple[tuple[str, ...], tuple[Problem, ...]]:
        editors = self._routes.get(text)
        if editors is not None:
            return editors, ()
        names, rows = _array(text, 2)
        if type(names) is not list or not all(type(name) is str for name in names):
            raise MalformedRecord("editors that are not a list of addresses")
        problems = _problems(path, rows)
        if problems:
            return tuple(names), problems
        editors = self._routes[text] = tuple(names)
        return editors, ()

    def _date(self, text: str | None) -> date | None:
        assert text is not None
        try:
            value = self._dates[text] = date.fromisoformat(text)
        except ValueError:
            raise MalformedRecord(f"not a date: {text!r}") from None
        return value


def _array(text: str, length: int) -> list[Any]:
    """``text`` as the JSON array of ``length`` items it must be, whole."""
    try:
        value, end = _scan(text, 0)
    except (StopIteration, ValueError, TypeError, RecursionError):  # StopIteration: no JSON
        raise MalformedRecord("not JSON") from None
    if end != len(text) or type(value) is not list or len(value) != length:
        raise MalformedRecord(f"not a JSON array of {length} items")
    return value


def _is_line(value: object) -> bool:
    return value is None or type(value) is int


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


def _problems(path: str, rows: object) -> tuple[Problem, ...]:
    if type(rows) is not list:
        raise MalformedRecord("problems that are not a list")
    return tuple(_problem(path, row) for row in rows)


def _problem(path: str, row: object) -> Problem:
    if type(row) is not list or len(row) != 7:
        raise MalformedRecord("a problem that is not a list of 7 items")
    line, field, severity, message, hint, code, column = row
    rule = RULES.get(code) if type(code) is str else None
    if not (
        rule is not None
        and _is_line(line)
        and isinstance(field, _OPTIONAL_TEXT)
        and type(severity) is str
        and severity in _SEVERITIES
        and type(message) is str
        and isinstance(hint, _OPTIONAL_TEXT)
        and _is_line(column)
    ):
        raise MalformedRecord("a problem of the wrong shape")
    return Problem(path, line, field, _SEVERITIES[severity], message, hint, code, rule.name, column)
