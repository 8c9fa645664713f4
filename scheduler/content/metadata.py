"""The metadata model: what a document's frontmatter means, and every way it can be wrong.

``validate`` maps the frontmatter keys a team uses (``[fields]``) onto canonical names, checks
them with a pydantic model whose validators explain each failure, and returns the metadata that
could be read together with every problem found. Checks that depend on the date (a review
recorded in the future) are separate, in :func:`future_review_problem`, so the rest can be
cached.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from scheduler.config import FieldNames, MetadataRules
from scheduler.content.cadence import Cadence, CadenceError, parse_cadence
from scheduler.content.loader import LoadedDocument
from scheduler.results import Problem, error, warning

_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_BCP47_RE = re.compile(
    r"[a-z]{2,3}(?:-[a-z]{3}){0,3}"  # language and extended language subtags
    r"(?:-[a-z]{4})?"  # script
    r"(?:-(?:[a-z]{2}|\d{3}))?"  # region
    r"(?:-(?:[a-z\d]{5,8}|\d[a-z\d]{3}))*"  # variants
    r"(?:-[a-wyz\d](?:-[a-z\d]{2,8})+)*"  # extensions
    r"(?:-x(?:-[a-z\d]{1,8})+)?",  # private use
    re.IGNORECASE,
)


def _fail(message: str, hint: str | None = None) -> PydanticCustomError:
    return PydanticCustomError("metadata", "{message}", {"message": message, "hint": hint})


def _describe(value: object) -> str:
    """How an editor would name a wrongly typed YAML value."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"the yes/no value {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, datetime):
        return f"the date and time {value.isoformat(sep=' ')}"
    if isinstance(value, date):
        return f"the date {value.isoformat()}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _text(value: object, *, allow_empty: bool = True) -> str:
    if not isinstance(value, str):
        raise _fail(f"expected text, got {_describe(value)}", "put the value in quotes")
    if not allow_empty and not value.strip():
        raise _fail("is empty", "write a value after the colon")
    return value


def _text_list(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        raise _fail("expected a list of text, got a single text value", f"write it as [{value}]")
    if not isinstance(value, list | tuple):
        raise _fail(f"expected a list of text, got {_describe(value)}", "write it as [a, b]")
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            got = "an empty entry" if isinstance(item, str) else _describe(item)
            raise _fail(f"entry {index + 1} must be text, got {got}", "quote each entry")
    return tuple(value)


def _one_of(value: object, allowed: tuple[str, ...], what: str) -> str:
    text = _text(value, allow_empty=False).strip()
    by_fold = {option.casefold(): option for option in allowed}
    if text.casefold() in by_fold:
        return by_fold[text.casefold()]
    close = difflib.get_close_matches(text.casefold(), list(by_fold), n=1, cutoff=0.75)
    hint = f"did you mean {by_fold[close[0]]!r}? " if close else ""
    raise _fail(f"{text!r} is not an accepted {what}", f"{hint}use one of: {', '.join(allowed)}")


_DEFAULT_RULES = MetadataRules()


def _rules(info: ValidationInfo) -> MetadataRules:
    rules: MetadataRules = (info.context or {}).get("rules", _DEFAULT_RULES)
    return rules


class Metadata(BaseModel):
    """A document's metadata under canonical names. Every field is optional here: which ones
    are required is a setting, checked by :func:`validate`."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    title: str | None = None
    last_reviewed: date | None = None
    review_frequency: Cadence | None = None
    status: str | None = None
    license: str | None = None
    url: str | None = None
    language: str | None = None
    source: str | None = None
    source_type: str | None = None
    citation: str | None = None
    audience_level: str | None = None
    version: str | None = None
    tags: tuple[str, ...] | None = None
    cancer_types: tuple[str, ...] | None = None
    owner: tuple[str, ...] | None = None

    @field_validator("title", mode="before")
    @classmethod
    def _title(cls, value: object) -> str:
        return _text(value, allow_empty=False).strip()

    @field_validator(
        "source", "source_type", "citation", "audience_level", "version", mode="before"
    )
    @classmethod
    def _plain_text(cls, value: object) -> str:
        return _text(value, allow_empty=False)

    @field_validator("last_reviewed", mode="before")
    @classmethod
    def _date(cls, value: object) -> date:
        if isinstance(value, datetime):
            raise _fail(
                f"{value.isoformat(sep=' ')} has a time of day", "write the date only: YYYY-MM-DD"
            )
        if isinstance(value, date):
            return value
        if not isinstance(value, str):
            raise _fail(f"expected a date, got {_describe(value)}", "write the date as YYYY-MM-DD")
        text = value.strip()
        if _DATE_RE.fullmatch(text) is None:
            raise _fail(f"{text!r} is not a date in the form YYYY-MM-DD", "use YYYY-MM-DD")
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise _fail(f"{text!r} is not a real date", "use YYYY-MM-DD") from None

    @field_validator("review_frequency", mode="before")
    @classmethod
    def _cadence(cls, value: object) -> Cadence:
        if isinstance(value, Cadence):
            return value
        try:
            return parse_cadence(value)
        except CadenceError as exc:
            raise _fail(exc.message, exc.hint) from None

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: object, info: ValidationInfo) -> str:
        return _one_of(value, _rules(info).statuses, "status")

    @field_validator("license", mode="before")
    @classmethod
    def _license(cls, value: object, info: ValidationInfo) -> str:
        return _one_of(value, _rules(info).licenses, "license")

    @field_validator("url", mode="before")
    @classmethod
    def _url(cls, value: object) -> str:
        text = _text(value, allow_empty=False).strip()
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.netloc or re.search(r"\s", text):
            raise _fail(
                f"{text!r} is not an absolute http(s) URL", "write the full address, https://..."
            )
        return text

    @field_validator("language", mode="before")
    @classmethod
    def _language(cls, value: object) -> str:
        text = _text(value, allow_empty=False).strip()
        if _BCP47_RE.fullmatch(text) is None:
            hint = (
                f"use a hyphen: {text.replace('_', '-')}"
                if "_" in text
                else "use a BCP 47 tag such as en, es, es-419 or pt-BR"
            )
            raise _fail(f"{text!r} is not a BCP 47 language tag", hint)
        return text

    @field_validator("tags", "cancer_types", mode="before")
    @classmethod
    def _lists(cls, value: object) -> tuple[str, ...]:
        return _text_list(value)

    @field_validator("owner", mode="before")
    @classmethod
    def _owner(cls, value: object) -> tuple[str, ...]:
        if isinstance(value, str):
            return (_text(value, allow_empty=False).strip(),)
        return tuple(item.strip() for item in _text_list(value))


CANONICAL_FIELDS: tuple[str, ...] = tuple(Metadata.model_fields)


@dataclass(frozen=True, slots=True)
class ValidatedDocument:
    """What validation made of one file."""

    path: str
    rel: str
    metadata: Metadata | None
    lines: dict[str, int]  # canonical name -> line, for the fields present
    problems: tuple[Problem, ...]
    fields: dict[str, Any]  # the frontmatter as written, for routing rules

    @property
    def has_errors(self) -> bool:
        return any(p.is_error for p in self.problems)


_TEXT_FIELDS = frozenset(
    {
        "title",
        "status",
        "license",
        "url",
        "language",
        "source",
        "source_type",
        "citation",
        "audience_level",
        "version",
    }
)

_EXAMPLES = {
    "title": "a title",
    "last_reviewed": "YYYY-MM-DD",
    "review_frequency": "quarterly",
    "status": "active",
    "license": "CC-BY-4.0",
    "url": "https://...",
    "language": "en",
    "source": "the publisher",
}


def validate(doc: LoadedDocument, rules: MetadataRules, names: FieldNames) -> ValidatedDocument:
    """Check a loaded document against the rules; collect every problem, keep what is valid."""
    path = doc.file.display
    problems = list(doc.problems)
    fm = doc.frontmatter
    if fm is None:
        return ValidatedDocument(path, doc.file.rel, None, {}, tuple(problems), {})

    key_of, known = _keys(names, rules)
    data = {name: fm.values[key] for name, key in key_of.items() if key in fm.values}
    lines = {name: fm.lines[key] for name, key in key_of.items() if key in fm.lines}

    unknown = [key for key in fm.values if key not in known]
    near_miss: dict[str, str] = {}  # known key -> the unknown key that looks like it
    for key in unknown:
        close = difflib.get_close_matches(
            key.casefold(), [k.casefold() for k in known], n=1, cutoff=0.75
        )
        suggestion = next((k for k in known if close and k.casefold() == close[0]), None)
        if suggestion is not None:
            near_miss.setdefault(suggestion, key)
        if rules.warn_unknown_keys or suggestion is not None:
            problems.append(
                warning(
                    path,
                    fm.lines.get(key),
                    key,
                    "unknown key",
                    f"did you mean {suggestion!r}?"
                    if suggestion
                    else "remove it, or list it in [metadata] extra_keys",
                )
            )

    for wanted in rules.required:
        if wanted not in data:
            problems.append(_missing(path, fm, key_of[wanted], wanted, near_miss, error))
    for wanted in rules.recommended:
        if wanted not in data and wanted not in rules.required:
            problems.append(_missing(path, fm, key_of[wanted], wanted, near_miss, warning))

    present = {name: value for name, value in data.items() if value is not None}
    for name, value in data.items():
        if value is None:
            make = error if name in rules.required else warning
            problems.append(
                make(
                    path,
                    lines[name],
                    key_of[name],
                    "is empty",
                    "write a value after the colon, or remove the line",
                )
            )

    context = {"rules": rules}
    try:
        metadata = Metadata.model_validate(present, context=context)
    except ValidationError as exc:
        failed: set[str] = set()
        for err in exc.errors():
            name = str(err["loc"][0])
            failed.add(name)
            ctx = err.get("ctx") or {}
            message = ctx.get("message") or err["msg"]
            hint = ctx.get("hint")
            key = key_of[name]
            if key in fm.raw and name in _TEXT_FIELDS:
                hint = f"YAML read {fm.raw[key]} as {_describe(fm.values[key])}; quote it: " + (
                    f"'{fm.raw[key]}'"
                )
            problems.append(error(path, lines.get(name), key_of[name], message, hint))
        metadata = Metadata.model_validate(
            {k: v for k, v in present.items() if k not in failed}, context=context
        )

    problems.sort(key=lambda p: p.sort_key)
    return ValidatedDocument(path, doc.file.rel, metadata, lines, tuple(problems), fm.values)


_KEYS: dict[tuple[int, int], tuple[FieldNames, MetadataRules, dict[str, str], frozenset[str]]] = {}


def _keys(names: FieldNames, rules: MetadataRules) -> tuple[dict[str, str], frozenset[str]]:
    """The frontmatter key of each canonical field, and every key the rules accept; worked out
    once per settings, not once per document."""
    cached = _KEYS.get((id(names), id(rules)))
    if cached is not None and cached[0] is names and cached[1] is rules:
        return cached[2], cached[3]
    key_of = {name: names.key(name) for name in CANONICAL_FIELDS}
    known = frozenset(key_of.values()) | frozenset(rules.extra_keys)
    _KEYS[(id(names), id(rules))] = (names, rules, key_of, known)
    return key_of, known


def _missing(
    path: str, fm: Any, key: str, name: str, near_miss: dict[str, str], make: Any
) -> Problem:
    typo = near_miss.get(key)
    if typo is not None:
        hint = f"{typo!r} on line {fm.lines[typo]} looks like a misspelling of {key!r}"
    else:
        hint = f"add '{key}: {_EXAMPLES.get(name, '...')}' to the frontmatter"
    problem: Problem = make(path, fm.start_line, key, "is missing", hint)
    return problem


def future_review_problem(
    path: str, last_reviewed: date | None, line: int | None, key: str, today: date
) -> Problem | None:
    """The error for a last review recorded after ``today``, if it is."""
    if last_reviewed is None or last_reviewed <= today:
        return None
    return error(
        path,
        line,
        key,
        f"{last_reviewed.isoformat()} is after today ({today.isoformat()})",
        "a review cannot be recorded in the future; check the year",
    )
