"""Every rule the tool checks, with a stable code and a short name.

A problem is made by calling its rule: ``EMPTY_FILE(path, None, None, "is empty", hint)``. The
code (``RS106``) and name (``empty-file``) travel with the problem into reports, so editors and
CI can look a finding up, and ``[metadata] ignore`` can switch a rule off by either. Codes are
never reused: a retired rule keeps its number. ``RS1xx`` are about files and their frontmatter,
``RS2xx`` about the metadata (``RS210`` onwards: one per field of the registry in
:mod:`scheduler.content.fields`), ``RS3xx`` about who is responsible for a document.
"""

from __future__ import annotations

from dataclasses import dataclass

from scheduler.content.fields import FIELDS
from scheduler.results import Problem, Severity

ERROR, WARNING = Severity.ERROR, Severity.WARNING


@dataclass(frozen=True, slots=True)
class Rule:
    code: str
    name: str
    severity: Severity  # the usual one; a call may say otherwise (an empty optional field)
    summary: str
    can_warn: bool = False  # gives warnings: [metadata] ignore may switch it off

    def __call__(
        self,
        path: str,
        line: int | None,
        field: str | None,
        message: str,
        hint: str | None = None,
        *,
        column: int | None = None,
        severity: Severity | None = None,
    ) -> Problem:
        return Problem(
            path,
            line,
            field,
            severity or self.severity,
            message,
            hint,
            self.code,
            self.name,
            column,
        )


RULES: dict[str, Rule] = {}


def _rule(code: str, name: str, severity: Severity, summary: str, can_warn: bool = False) -> Rule:
    rule = Rule(code, name, severity, summary, can_warn or severity is WARNING)
    assert code not in RULES and all(r.name != name for r in RULES.values()), code
    RULES[code] = rule
    return rule


# --------------------------------------------------------------------------- files

INTERNAL_ERROR = _rule("RS100", "internal-error", ERROR, "the file could not be checked (a bug)")
NO_SUCH_PATH = _rule("RS101", "no-such-path", ERROR, "a path named on the command line is missing")
UNREADABLE = _rule("RS102", "unreadable", ERROR, "a file or folder cannot be read")
BROKEN_LINK = _rule("RS103", "broken-link", ERROR, "a symbolic link points nowhere")
LINK_OUTSIDE_ROOT = _rule(
    "RS104", "link-outside-root", ERROR, "a symbolic link leads out of the content root"
)
TOO_LARGE = _rule("RS105", "too-large", ERROR, "the file is over [content] max_file_bytes")
EMPTY_FILE = _rule("RS106", "empty-file", ERROR, "the file is empty")
NOT_UTF8 = _rule("RS107", "not-utf8", ERROR, "the frontmatter is not UTF-8 text")
NO_FRONTMATTER = _rule("RS108", "no-frontmatter", ERROR, "the file does not start with '---'")
UNCLOSED_FRONTMATTER = _rule(
    "RS109", "unclosed-frontmatter", ERROR, "the frontmatter is never closed"
)
EMPTY_FRONTMATTER = _rule("RS110", "empty-frontmatter", ERROR, "the frontmatter holds nothing")
NOT_A_MAPPING = _rule("RS111", "not-a-mapping", ERROR, "the frontmatter is not 'key: value' lines")
YAML_SYNTAX = _rule("RS112", "yaml-syntax", ERROR, "the frontmatter is not valid YAML")
TOO_DEEP = _rule("RS113", "too-deep", ERROR, "the frontmatter nests more than 64 levels")
ANCHOR_OR_ALIAS = _rule("RS114", "anchor-or-alias", ERROR, "YAML anchors and aliases are refused")
DUPLICATE_KEY = _rule("RS115", "duplicate-key", ERROR, "a key appears twice")
KEY_NOT_TEXT = _rule("RS116", "key-not-text", ERROR, "a key is not plain text")
VALUE_UNREADABLE = _rule("RS117", "value-unreadable", ERROR, "a YAML value cannot be built")
LINK_LOOP = _rule("RS118", "link-loop", ERROR, "a symbolic link leads round in a loop")
NOT_REGULAR = _rule(
    "RS119", "not-a-regular-file", ERROR, "a FIFO, device or socket has a document's name"
)
VANISHED = _rule("RS120", "vanished", ERROR, "a file was deleted while the run read it")
NAME_NOT_UTF8 = _rule("RS121", "name-not-utf8", WARNING, "a file name is not UTF-8")
WORKER_DIED = _rule("RS122", "worker-died", ERROR, "the process reading the file died, twice")

# --------------------------------------------------------------------------- YAML and dates

YAML_TAG = _rule(
    "RS130", "yaml-tag", ERROR, "an explicit YAML tag is unsupported or does not fit its value"
)
DUE_OUT_OF_RANGE = _rule(
    "RS206", "due-out-of-range", ERROR, "the next review would fall after 9999-12-31"
)

# --------------------------------------------------------------------------- rule selection

BAD_FILE_IGNORE = _rule(
    "RS140",
    "invalid-ignore",
    WARNING,
    "the document's review-scheduler-ignore names no warning rule",
)

# --------------------------------------------------------------------------- metadata

MISSING_FIELD = _rule("RS201", "missing-field", ERROR, "a required field is missing")
MISSING_RECOMMENDED = _rule(
    "RS202", "missing-recommended", WARNING, "a recommended field is missing"
)
EMPTY_VALUE = _rule(
    "RS203", "empty-value", ERROR, "a field has no value (a warning if optional)", can_warn=True
)
UNKNOWN_KEY = _rule("RS204", "unknown-key", WARNING, "a key that is not a known field")
FUTURE_REVIEW = _rule("RS205", "future-review", ERROR, "the last review is after the as-of date")
DUE_DATES_DISAGREE = _rule(
    "RS207",
    "due-dates-disagree",
    WARNING,
    "the next-review date and last reviewed plus frequency differ (the earlier counts)",
)
INVALID = {
    field.name: _rule(
        field.code,
        "invalid-" + field.name.replace("_", "-"),
        ERROR,
        f"the {field.name.replace('_', ' ')} value cannot be read",
    )
    for field in FIELDS
}

# --------------------------------------------------------------------------- routing

UNKNOWN_OWNER = _rule(
    "RS301", "unknown-owner", WARNING, "an owner is neither an email address nor an alias"
)
NOBODY_RESPONSIBLE = _rule(
    "RS302",
    "nobody-responsible",
    WARNING,
    "no editor is responsible for a document that needs review",
)


def find(code_or_name: str) -> Rule | None:
    """The rule with this code (``RS204``) or name (``unknown-key``)."""
    wanted = code_or_name.strip()
    return RULES.get(wanted.upper()) or next(
        (rule for rule in RULES.values() if rule.name == wanted.lower()), None
    )
