"""Pieces of text several renderers share: counts, problem lines, escaping for each target."""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

from scheduler.results import Problem, ValidationResult

# What must never reach a terminal or a parser raw: C0 and C1 control characters and DEL (escape
# sequences, BEL, carriage returns, newlines that would forge lines), the bidirectional marks,
# embeddings, overrides and isolates (text that reads in another order than it is stored), the
# line and paragraph separators, and lone surrogates: the bytes of a file name that are not
# UTF-8, as Python's surrogateescape hands them over, which no UTF-8 output can hold.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_SURROGATE = re.compile("[\ud800-\udfff]")
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if char in _SHORT:
        return _SHORT[char]
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte of a file name: the byte itself
        return f"\\x{code - 0xDC00:02x}"
    # ASCII controls as \x00-\x7f, every other character as \u0080-: \x80-\xff are only bytes
    return f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}"


def shown(text: str) -> str:
    """``text`` safe for a terminal and valid UTF-8: every control character, bidirectional
    control and undecodable byte is written as its escape, visibly and without dropping
    anything: ``\\n``, ``\\r``, ``\\t``, other ASCII controls as ``\\x1b``, other characters as
    ``\\u009b`` or ``\\u202e``, and a byte of a file name that is not UTF-8 as ``\\xff``.
    Every renderer of text, Markdown, CSV and GitHub annotations passes what it did not write
    itself through this; JSON escapes controls itself and passes its text through
    :func:`json_safe`."""
    return _UNSAFE.sub(_escape, text)


_LINE_BREAK = re.compile("(\r?\n)")


def shown_lines(text: str) -> str:
    """:func:`shown` for a text of several lines: the line breaks (``\\n``, ``\\r\\n``) stay."""
    parts = _LINE_BREAK.split(text)
    return "".join(part if i % 2 else shown(part) for i, part in enumerate(parts))


def json_safe(encoded: str) -> str:
    """JSON text as strict UTF-8: an undecodable byte of a file name, which the encoder leaves
    as a lone surrogate, becomes the same escape :func:`shown` writes (the string ``\\xff``).
    JSON syntax is ASCII, so the surrogates can only stand inside strings."""
    return _SURROGATE.sub(lambda m: _escape(m).replace("\\", "\\\\"), encoded)


def json_document(document: Any) -> str:
    """A JSON document as the commands print it: indented, UTF-8, one newline at the end."""
    return json_safe(json.dumps(document, ensure_ascii=False, indent=2)) + "\n"


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
