"""Pieces of text several renderers share: counts, problem lines, escaping for each target."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from scheduler.results import Problem, ValidationResult
from scheduler.text import json_safe, shown, shown_lines

__all__ = ["json_safe", "shown", "shown_lines"]


def json_document(document: Any) -> str:
    """A JSON document as the commands print it: indented, UTF-8, one newline at the end."""
    return json_safe(json.dumps(document, ensure_ascii=False, indent=2)) + "\n"


def csv_cell(text: str) -> str:
    """Text shown safely (controls escaped, as in every report for people), and neutralised
    where a spreadsheet would run it as a formula."""
    text = shown(text)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def iso(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def problem_line(problem: Problem) -> str:
    """``path:line: severity: field: message (hint)``, the format editors' tools understand."""
    where = f"{problem.path}:{problem.line}" if problem.line else problem.path
    return shown(f"{where}: {problem.severity.value}: {problem.describe()}")


def validation_summary(result: ValidationResult) -> str:
    t = result.totals()
    return (
        f"{plural(t['files'], 'file')} checked: {t['valid']} valid, {t['invalid']} with errors; "
        f"{plural(t['errors'], 'error')}, {plural(t['warnings'], 'warning')}"
        + (f"; {t['unscheduled']} unscheduled" if "unscheduled" in t else "")
    )


# GitHub Actions workflow commands: https://docs.github.com/actions/reference/workflow-commands


def _gh_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_prop(text: str) -> str:
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotation(level: str, path: str, line: int | None, title: str, message: str) -> str:
    props = f"file={_gh_prop(shown(path))}"
    if line:
        props += f",line={line}"
    return f"::{level} {props},title={_gh_prop(shown(title))}::{_gh_data(shown(message))}"


def problem_annotation(problem: Problem) -> str:
    level, title = (
        ("error", "Invalid metadata") if problem.is_error else ("warning", "Metadata warning")
    )
    return github_annotation(level, problem.path, problem.line, title, problem.describe())


# GitHub shows at most this many annotations of each level (error, warning, notice) per step,
# and drops the rest without a word.
ANNOTATIONS_SHOWN = 10
_LEVEL_NOUNS = {"error": "errors", "warning": "warnings", "notice": "notices"}


def capped_annotations(annotations: list[str]) -> list[str]:
    """``annotations`` (workflow command lines) within GitHub's per-step limits: where a level
    has more than it shows, the first ones and then a closing line of that level saying how
    many more there are (``::error::… and 25 more errors not shown; ...``)."""
    totals: dict[str, int] = {}
    for line in annotations:
        level = _level(line)
        totals[level] = totals.get(level, 0) + 1
    kept, seen = [], dict.fromkeys(totals, 0)
    for line in annotations:
        level = _level(line)
        seen[level] += 1
        if totals[level] <= ANNOTATIONS_SHOWN or seen[level] < ANNOTATIONS_SHOWN:
            kept.append(line)
    for level, total in totals.items():
        if total > ANNOTATIONS_SHOWN:
            more = total - (ANNOTATIONS_SHOWN - 1)
            kept.append(
                f"::{level} title=More {_LEVEL_NOUNS[level]}::… and {more} more "
                f"{_LEVEL_NOUNS[level]} not shown (GitHub shows {ANNOTATIONS_SHOWN} of each kind "
                "per step); see the job summary or the report"
            )
    return kept


def _level(line: str) -> str:
    return line[2:].split(" ", 1)[0].split("::", 1)[0]
