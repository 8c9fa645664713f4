"""Problems with input are data: where, how bad, what, and how to fix it."""

from __future__ import annotations

from dataclasses import dataclass
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
    large). ``field`` is the frontmatter key as the editor wrote it, or ``None``.
    """

    path: str
    line: int | None
    field: str | None
    severity: Severity
    message: str
    hint: str | None = None

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
        }


def error(
    path: str, line: int | None, field: str | None, message: str, hint: str | None = None
) -> Problem:
    return Problem(path, line, field, Severity.ERROR, message, hint)


def warning(
    path: str, line: int | None, field: str | None, message: str, hint: str | None = None
) -> Problem:
    return Problem(path, line, field, Severity.WARNING, message, hint)


def has_errors(problems: tuple[Problem, ...] | list[Problem]) -> bool:
    return any(p.severity is Severity.ERROR for p in problems)
