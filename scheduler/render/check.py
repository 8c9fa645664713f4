"""Renderers: results in, strings out. The command line decides where the strings go.

Two registries: ``CHECK_RENDERERS`` for the freshness report (``check-reviews``) and
``VALIDATE_RENDERERS`` for ``review-scheduler validate``.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from json.encoder import encode_basestring
from typing import Any

from scheduler.problems import Problem
from scheduler.review.state import State

SCHEMA_VERSION = 1
SUMMARY_ORDER = (State.OVERDUE, State.DUE_SOON, State.OK, State.EXEMPT, State.INVALID)


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

    @property
    def urgency(self) -> tuple[int, int, date, str]:
        """Invalid first, then by due date; exempt documents last."""
        rank = 0 if self.state is State.INVALID else 2 if self.state is State.EXEMPT else 1
        return (rank, 0 if self.due else 1, self.due or date.max, self.path)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "title": self.title,
            "state": self.state.value,
            "status": self.status,
            "last_reviewed": _iso(self.last_reviewed),
            "review_frequency": self.review_frequency,
            "due": _iso(self.due),
            "days_until_due": self.days_until_due,
            "editors": list(self.editors),
            "problems": [p.to_json() for p in self.problems],
        }


@dataclass(frozen=True, slots=True)
class CheckResult:
    as_of: date
    timezone: str
    due_soon_days: int
    documents: Sequence[DocumentReport]

    def counts(self) -> dict[str, int]:
        tally = Counter(doc.state for doc in self.documents)
        return {"documents": len(self.documents)} | {s.value: tally[s] for s in SUMMARY_ORDER}


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

    def totals(self) -> dict[str, int]:
        problems = [p for f in self.files for p in f.problems]
        errors = sum(p.is_error for p in problems)
        return {
            "files": len(self.files),
            "valid": sum(f.valid for f in self.files),
            "invalid": sum(not f.valid for f in self.files),
            "errors": errors,
            "warnings": len(problems) - errors,
        }


@dataclass(frozen=True, slots=True)
class RenderOptions:
    color: bool = False
    width: int | None = None  # terminal width; None renders without wrapping


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def summary_line(result: CheckResult) -> str:
    counts = result.counts()
    parts = ", ".join(f"{counts[s.value]} {s.label}" for s in SUMMARY_ORDER)
    return (
        f"Review status on {result.as_of.isoformat()} ({result.timezone}): "
        f"{_plural(counts['documents'], 'document')}: {parts}"
    )


def problem_line(problem: Problem) -> str:
    """``path:line: severity: field: message (hint)``, the format editors' tools understand."""
    where = f"{problem.path}:{problem.line}" if problem.line else problem.path
    return f"{where}: {problem.severity.value}: {problem.describe()}"


# --------------------------------------------------------------------------- check renderers

_STYLES = {
    State.INVALID: "bold magenta",
    State.OVERDUE: "bold red",
    State.DUE_SOON: "yellow",
    State.OK: "green",
    State.EXEMPT: "dim",
}


def render_check_text(result: CheckResult, options: RenderOptions) -> str:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=options.width or 10_000,
        force_terminal=options.color,
        no_color=not options.color,
        color_system="standard" if options.color else None,
        highlight=False,
        emoji=False,
        markup=False,
    )
    console.print(summary_line(result), soft_wrap=options.width is None)
    if result.documents:
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, expand=False)
        for name, justify in (
            ("State", "left"),
            ("Due", "left"),
            ("Days", "right"),
            ("Title", "left"),
            ("Path", "left"),
            ("Editors", "left"),
        ):
            table.add_column(name, justify=justify, no_wrap=name != "Title")  # type: ignore[arg-type]
        for doc in result.documents:
            table.add_row(
                doc.state.label,
                _iso(doc.due) or "-",
                "" if doc.days_until_due is None else str(doc.days_until_due),
                doc.title or "(no title)",
                doc.path,
                ", ".join(doc.editors) or "(nobody)",
                style=_STYLES[doc.state] if options.color else None,
            )
        console.print(table)
    problems = [p for doc in result.documents for p in doc.problems]
    if problems:
        console.print("Problems:")
        for problem in problems:
            console.print(f"  {problem_line(problem)}", soft_wrap=True)
    text = buffer.getvalue()
    return "\n".join(line.rstrip() for line in text.splitlines()) + "\n"


def render_check_json(result: CheckResult, options: RenderOptions) -> str:
    return "".join(stream_check_json(result, options))


def stream_check_json(result: CheckResult, options: RenderOptions) -> Iterator[str]:
    """The JSON report in pieces, so that a large one is never held whole in memory."""
    head = {
        "schema_version": SCHEMA_VERSION,
        "as_of": result.as_of.isoformat(),
        "timezone": result.timezone,
        "due_soon_days": result.due_soon_days,
        "summary": result.counts(),
    }
    # One document per line: valid JSON, readable, and fast to write for large libraries.
    encode = json.JSONEncoder(ensure_ascii=False).encode
    if not result.documents:
        yield encode(head)[:-1] + ', "documents": []}\n'
        return
    piece = [encode(head)[:-1] + ', "documents": [\n  ']
    separator = ""
    for doc in result.documents:
        piece.append(separator + document_json(doc))
        separator = ",\n  "
        if len(piece) >= _PIECE:
            yield "".join(piece)
            piece = []
    piece.append("\n]}\n")
    yield "".join(piece)


_PIECE = 500  # documents per piece of a streamed report
_encode_problem = json.JSONEncoder(ensure_ascii=False).encode


def document_json(doc: DocumentReport) -> str:
    """``json.dumps(doc.to_json(), ensure_ascii=False)``, written out directly: the report
    writes one per document, and this takes a third of the time."""
    text = encode_basestring
    return (
        f'{{"path": {text(doc.path)}, '
        f'"title": {"null" if doc.title is None else text(doc.title)}, '
        f'"state": "{doc.state.value}", '
        f'"status": {"null" if doc.status is None else text(doc.status)}, '
        f'"last_reviewed": {_json_date(doc.last_reviewed)}, '
        f'"review_frequency": '
        f"{'null' if doc.review_frequency is None else text(doc.review_frequency)}, "
        f'"due": {_json_date(doc.due)}, '
        f'"days_until_due": {"null" if doc.days_until_due is None else doc.days_until_due}, '
        f'"editors": [{", ".join(map(text, doc.editors))}], '
        f'"problems": [{", ".join(_encode_problem(p.to_json()) for p in doc.problems)}]}}'
    )


def _json_date(value: date | None) -> str:
    return "null" if value is None else f'"{value.isoformat()}"'


_MD_ESCAPE = str.maketrans(
    {
        "|": "\\|",
        "\\": "\\\\",
        "*": "\\*",
        "_": "\\_",
        "`": "\\`",
        "[": "\\[",
        "]": "\\]",
        "<": "&lt;",
        ">": "&gt;",
        "\n": " ",
        "\r": " ",
    }
)


def _md(text: str) -> str:
    return text.translate(_MD_ESCAPE)


def render_check_markdown(result: CheckResult, options: RenderOptions) -> str:
    lines = [f"**{_md(summary_line(result))}**", ""]
    if result.documents:
        lines += ["| State | Due | Days | Title | Path | Editors |", "|---|---|---:|---|---|---|"]
        for doc in result.documents:
            cells = [
                doc.state.label,
                _iso(doc.due) or "",
                "" if doc.days_until_due is None else str(doc.days_until_due),
                _md(doc.title or ""),
                f"`{doc.path.replace('`', '')}`",
                _md(", ".join(doc.editors)),
            ]
            lines.append("| " + " | ".join(cells) + " |")
    problems = [p for doc in result.documents for p in doc.problems]
    if problems:
        lines += ["", "**Problems**", ""]
        lines += [f"- {_md(problem_line(p))}" for p in problems]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    """Neutralise text a spreadsheet would run as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def render_check_csv(result: CheckResult, options: RenderOptions) -> str:
    return "".join(stream_check_csv(result, options))


def stream_check_csv(result: CheckResult, options: RenderOptions) -> Iterator[str]:
    """The CSV report in pieces, so that a large one is never held whole in memory."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        [
            "path",
            "title",
            "state",
            "status",
            "last_reviewed",
            "review_frequency",
            "due",
            "days_until_due",
            "editors",
            "errors",
            "warnings",
        ]
    )
    for index, doc in enumerate(result.documents, 1):
        errors = sum(p.is_error for p in doc.problems)
        writer.writerow(
            [
                _cell(doc.path),
                _cell(doc.title or ""),
                doc.state.value,
                _cell(doc.status or ""),
                _iso(doc.last_reviewed) or "",
                _cell(doc.review_frequency or ""),
                _iso(doc.due) or "",
                "" if doc.days_until_due is None else doc.days_until_due,
                _cell(";".join(doc.editors)),
                errors,
                len(doc.problems) - errors,
            ]
        )
        if index % _PIECE == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _gh_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_prop(text: str) -> str:
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotation(level: str, path: str, line: int | None, title: str, message: str) -> str:
    props = f"file={_gh_prop(path)}"
    if line:
        props += f",line={line}"
    return f"::{level} {props},title={_gh_prop(title)}::{_gh_data(message)}"


def problem_annotation(problem: Problem) -> str:
    if problem.is_error:
        return github_annotation(
            "error", problem.path, problem.line, "Invalid metadata", problem.describe()
        )
    return github_annotation(
        "warning", problem.path, problem.line, "Metadata warning", problem.describe()
    )


def render_check_github(result: CheckResult, options: RenderOptions) -> str:
    lines = []
    for doc in result.documents:
        if doc.state is State.OVERDUE and doc.due is not None and doc.days_until_due is not None:
            late = -doc.days_until_due
            editors = ", ".join(doc.editors) or "nobody"
            lines.append(
                github_annotation(
                    "error",
                    doc.path,
                    doc.line,
                    "Review overdue",
                    f"{doc.title or doc.path} was due for review on {doc.due.isoformat()} "
                    f"({_plural(late, 'day')} ago); editors: {editors}",
                )
            )
        elif doc.state is State.INVALID:
            lines.extend(problem_annotation(p) for p in doc.problems if p.is_error)
    lines.append(summary_line(result))
    return "\n".join(lines) + "\n"


Renderer = Callable[[CheckResult, RenderOptions], str]

CHECK_RENDERERS: dict[str, Renderer] = {
    "text": render_check_text,
    "json": render_check_json,
    "markdown": render_check_markdown,
    "csv": render_check_csv,
    "github": render_check_github,
}


# Renderers that can hand over a large report piece by piece; the others give one string.
CHECK_STREAMS: dict[str, Callable[[CheckResult, RenderOptions], Iterator[str]]] = {
    "json": stream_check_json,
    "csv": stream_check_csv,
}


def stream_check(fmt: str, result: CheckResult, options: RenderOptions) -> Iterable[str]:
    """The report in format ``fmt``, as pieces whose concatenation is the whole report."""
    stream = CHECK_STREAMS.get(fmt)
    return (
        stream(result, options) if stream is not None else [CHECK_RENDERERS[fmt](result, options)]
    )


# --------------------------------------------------------------------------- validate renderers


def _validation_summary(result: ValidationResult) -> str:
    t = result.totals()
    return (
        f"{_plural(t['files'], 'file')} checked: {t['valid']} valid, {t['invalid']} with errors; "
        f"{_plural(t['errors'], 'error')}, {_plural(t['warnings'], 'warning')}"
    )


def render_validate_text(result: ValidationResult, options: RenderOptions) -> str:
    lines = [problem_line(p) for f in result.files for p in f.problems]
    lines.append(_validation_summary(result))
    return "\n".join(lines) + "\n"


def render_validate_json(result: ValidationResult, options: RenderOptions) -> str:
    document = {
        "schema_version": SCHEMA_VERSION,
        "as_of": result.as_of.isoformat(),
        "summary": result.totals(),
        "files": [
            {"path": f.path, "valid": f.valid, "problems": [p.to_json() for p in f.problems]}
            for f in result.files
        ],
    }
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def render_validate_github(result: ValidationResult, options: RenderOptions) -> str:
    lines = [problem_annotation(p) for f in result.files for p in f.problems]
    lines.append(_validation_summary(result))
    return "\n".join(lines) + "\n"


ValidateRenderer = Callable[[ValidationResult, RenderOptions], str]

VALIDATE_RENDERERS: dict[str, ValidateRenderer] = {
    "text": render_validate_text,
    "json": render_validate_json,
    "github": render_validate_github,
}
