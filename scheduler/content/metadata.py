"""The metadata model: what a document's frontmatter means, and every way it can be wrong.

``validate`` maps the frontmatter keys a team uses (``[fields]``) onto canonical names, checks
them with a pydantic model built from the field registry (:mod:`scheduler.content.fields`;
the model is in :mod:`scheduler.content.metadata_model`, imported when a document is read),
and returns the metadata that could be read together with every problem found. Checks that
depend on the date (a review recorded in the future) are separate, in
:func:`future_review_problem`, so the rest can be cached.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, tzinfo
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from scheduler import rules as rule
from scheduler.config import FieldNames, MetadataRules, ReviewSettings
from scheduler.content.cadence import Cadence
from scheduler.content.fields import BY_NAME as _BY_NAME
from scheduler.content.fields import NAMES, describe
from scheduler.content.loader import UNREAD, Frontmatter, LoadedDocument
from scheduler.content.schedule import DefaultFrequency, Frequencies
from scheduler.results import Problem
from scheduler.rule_selection import FILE_IGNORE_KEY, file_ignores

if TYPE_CHECKING:
    from pydantic import ValidationError

    from scheduler.content.metadata_model import MetadataBase

_DEFAULT_RULES = MetadataRules()
_DEFAULT_REVIEW = ReviewSettings()


@dataclass(frozen=True, slots=True)
class ParsingRules:
    """What the field parsers are given: the ``[metadata]`` lists, and the ``[review]`` time zone
    in which a timestamp's date is taken."""

    statuses: Sequence[str]
    licenses: Sequence[str]
    zone: tzinfo


@dataclass(frozen=True, slots=True)
class ValidatedDocument:
    """What validation made of one file."""

    path: str
    rel: str
    metadata: MetadataBase | None
    lines: dict[str, int]  # canonical name -> line, for the fields present
    problems: tuple[Problem, ...]
    fields: dict[str, Any]  # the frontmatter as written, for routing rules
    silenced: frozenset[str] = frozenset()  # warnings its review-scheduler-ignore switches off
    # The [review] frequency for its path, when it names none of its own.
    default_frequency: DefaultFrequency | None = None

    @property
    def has_errors(self) -> bool:
        return any(p.is_error for p in self.problems)


def validate(
    doc: LoadedDocument,
    rules: MetadataRules,
    names: FieldNames,
    review: ReviewSettings = _DEFAULT_REVIEW,
) -> ValidatedDocument:
    """Check a loaded document against the rules; collect every problem, keep what is valid."""
    path = doc.file.display
    problems = list(doc.problems)
    fm = doc.frontmatter
    if fm is None:
        return ValidatedDocument(path, doc.file.rel, None, {}, tuple(problems), {})

    settings = _settings(names, rules, review)
    key_of, known = settings.key_of, settings.known
    data: dict[str, Any] = {}
    lines: dict[str, int] = {}
    values, key_lines = fm.values, fm.lines
    for name, key in key_of.items():  # once per field per document: keep it lean
        line = key_lines.get(key)
        if line is not None:
            lines[name] = line
            if key in values:
                data[name] = values[key]
        elif "." in key:
            found, value, line = fm.find(key)
            if found:
                assert line is not None
                lines[name] = line
                if value is not UNREAD:
                    data[name] = value

    unknown = [key for key in fm.lines if key not in known]
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
                rule.UNKNOWN_KEY(
                    path,
                    fm.lines.get(key),
                    key,
                    "unknown key",
                    f"did you mean {suggestion!r}?"
                    if suggestion
                    else "remove it, or list it in [metadata] extra_keys",
                )
            )

    # A page names its own frequency, or gets the default for its path; a page with a
    # next-review date needs neither a last review nor a frequency.
    default = None if "review_frequency" in lines else settings.frequencies.for_path(doc.file.rel)
    by_date = "review_by" in lines
    # A key that is written is not missing, even when its value could not be read (a problem
    # the loader has reported).
    for wanted in rules.required:
        if wanted in lines or (by_date and wanted in _WAIVED_BY_DUE_DATE):
            continue
        if wanted == "review_frequency" and default is not None:
            continue
        due_key = key_of["review_by"] if wanted == "last_reviewed" else None
        problems.append(
            _missing(
                path, fm, key_of[wanted], wanted, near_miss, required=True, alternative=due_key
            )
        )
    for wanted in rules.recommended:
        if wanted not in lines and wanted not in rules.required:
            problems.append(_missing(path, fm, key_of[wanted], wanted, near_miss, required=False))

    present: dict[str, Any] = {}
    for name, value in data.items():
        if value is not None:
            present[name] = value
            continue
        problems.append(
            rule.EMPTY_VALUE(
                path,
                lines[name],
                key_of[name],
                "is empty",
                "write a value after the colon, or remove the line",
                severity=None if name in rules.required else rule.WARNING,
            )
        )

    model_for, invalid = _MODEL or _model()
    model = model_for(settings.parsing)
    try:
        metadata = model.model_validate(present)
    except invalid as exc:
        failed: set[str] = set()
        for err in exc.errors():
            name = str(err["loc"][0])
            failed.add(name)
            ctx = err.get("ctx") or {}
            message = ctx.get("message") or err["msg"]
            hint = ctx.get("hint")
            key = key_of[name]
            if key in fm.raw and _BY_NAME[name].text:
                hint = f"YAML read {fm.raw[key]} as {describe(fm.values[key])}; quote it: " + (
                    f"'{fm.raw[key]}'"
                )
            problems.append(rule.INVALID[name](path, lines.get(name), key, message, hint))
        metadata = model.model_validate({k: v for k, v in present.items() if k not in failed})

    title = data.get("title")
    if isinstance(title, str) and _NOT_ONE_LINE.search(title.strip()):
        problems.append(
            rule.MULTI_LINE_TITLE(
                path,
                lines.get("title"),
                key_of["title"],
                "holds line breaks or control characters",
                "write the title on one line; digests and reports show it on one",
            )
        )
    silenced: frozenset[str] = frozenset()
    if FILE_IGNORE_KEY in fm.lines:
        silenced, bad = file_ignores(
            fm.values.get(FILE_IGNORE_KEY), path, fm.lines[FILE_IGNORE_KEY]
        )
        problems += bad
        problems = [p for p in problems if p.is_error or p.code not in silenced]
    problems.sort(key=lambda p: p.sort_key)
    return ValidatedDocument(
        path,
        doc.file.rel,
        metadata,
        lines,
        tuple(problems),
        fm.values,
        silenced,
        default,
    )


_MODEL: tuple[Callable[[ParsingRules], type[MetadataBase]], type[ValidationError]] | None = None


def _model() -> tuple[Callable[[ParsingRules], type[MetadataBase]], type[ValidationError]]:
    """The metadata model's maker and pydantic's error, imported when the first document is
    validated (a run whose documents all come from the parse cache never needs pydantic), then
    kept: an import statement costs a lookup on every document."""
    global _MODEL
    from pydantic import ValidationError

    from scheduler.content.metadata_model import model_for

    _MODEL = (model_for, ValidationError)
    return _MODEL


# Line breaks (of any kind) and other control characters, which a one-line field must not hold.
_NOT_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")

_WAIVED_BY_DUE_DATE = frozenset({"last_reviewed", "review_frequency"})


@dataclass(frozen=True, slots=True)
class _Settings:
    """What validation derives from the settings, once per settings rather than per document."""

    key_of: dict[str, str]  # canonical name -> frontmatter key (or dotted path)
    known: frozenset[str]  # every top-level key the rules accept
    parsing: ParsingRules
    frequencies: Frequencies


_SETTINGS: dict[tuple[int, int, int], tuple[tuple[object, ...], _Settings]] = {}


def _settings(names: FieldNames, rules: MetadataRules, review: ReviewSettings) -> _Settings:
    ids = (id(names), id(rules), id(review))
    cached = _SETTINGS.get(ids)
    if cached is not None:
        held = cached[0]
        if held[0] is names and held[1] is rules and held[2] is review:
            return cached[1]
    key_of = {name: names.key(name) for name in NAMES}
    # The first part of a dotted path is a key of the page too (last_update for
    # last_update.date): never an unknown one.
    parents = {key.split(".", 1)[0] for key in key_of.values() if "." in key}
    known = frozenset(key_of.values()) | frozenset(parents) | frozenset(rules.extra_keys)
    known |= {FILE_IGNORE_KEY}
    parsing = ParsingRules(rules.statuses, rules.licenses, ZoneInfo(review.timezone))
    made = _Settings(key_of, known, parsing, Frequencies(review))
    _SETTINGS[ids] = ((names, rules, review), made)
    return made


def _missing(
    path: str,
    fm: Frontmatter,
    key: str,
    name: str,
    near_miss: dict[str, str],
    *,
    required: bool,
    alternative: str | None = None,
) -> Problem:
    typo = near_miss.get(key)
    if typo is not None:
        hint = f"{typo!r} on line {fm.lines[typo]} looks like a misspelling of {key!r}"
    elif "." in key:
        parent, _, leaf = key.rpartition(".")
        hint = f"add '{leaf}: {_BY_NAME[name].example}' in the mapping {parent!r}"
    else:
        hint = f"add '{key}: {_BY_NAME[name].example}' to the frontmatter"
    if alternative is not None and typo is None:
        hint += f", or '{alternative}: YYYY-MM-DD', the date of the next review"
    make = rule.MISSING_FIELD if required else rule.MISSING_RECOMMENDED
    return make(path, fm.start_line, key, "is missing", hint)


def future_review_problem(
    path: str, last_reviewed: date | None, line: int | None, key: str, today: date
) -> Problem | None:
    """The error for a last review recorded after ``today``, if it is."""
    if last_reviewed is None or last_reviewed <= today:
        return None
    return rule.FUTURE_REVIEW(
        path,
        line,
        key,
        f"{last_reviewed.isoformat()} is after today ({today.isoformat()})",
        "a review cannot be recorded in the future; check the year",
    )


def due_out_of_range_problem(
    path: str, last_reviewed: date, cadence: Cadence, line: int | None, key: str
) -> Problem:
    """The error for a due date past the last date there is (9999-12-31)."""
    return rule.DUE_OUT_OF_RANGE(
        path,
        line,
        key,
        f"{last_reviewed.isoformat()} plus {cadence.label} falls after 9999-12-31, "
        "so no due date can be set",
        "check the year",
    )
