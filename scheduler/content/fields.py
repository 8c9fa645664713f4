"""The field registry: every piece of metadata a document can carry, declared once.

Each :class:`Field` names the metadata (its canonical name, used in settings and reports), the
frontmatter key it is read from by default, how a value is checked and turned into its meaning,
an example for hints, and whether the freshness report shows it. The ``[fields]`` settings, the
metadata model, the facts kept in the parse cache and the report's columns all derive from
:data:`FIELDS`: adding a field is one entry here (and, for a new kind of value, its parser).

Parsers raise :func:`invalid` with a message and a hint an editor can act on; they never see
the file, so the same parser serves every convention a team maps onto these names.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from scheduler.content.cadence import Cadence, CadenceError, parse_cadence

if TYPE_CHECKING:
    from pydantic_core import PydanticCustomError


class Rules(Protocol):
    """What parsers need from the ``[metadata]`` settings."""

    @property
    def statuses(self) -> Sequence[str]: ...

    @property
    def licenses(self) -> Sequence[str]: ...


def invalid(message: str, hint: str | None = None) -> PydanticCustomError:
    """The error a parser raises: shown as the problem's message and hint. (pydantic-core is
    imported here, when a value is wrong, not by every command that imports the registry.)"""
    from pydantic_core import PydanticCustomError

    return PydanticCustomError("metadata", "{message}", {"message": message, "hint": hint})


def explained(exc: ValueError) -> tuple[str, str | None] | None:
    """The message and hint of an error a parser raised with :func:`invalid`; None for any
    other ValueError (a ``PydanticCustomError`` is one)."""
    if type(exc).__name__ != "PydanticCustomError":  # if it is one, pydantic-core is loaded
        return None
    from pydantic_core import PydanticCustomError

    if not isinstance(exc, PydanticCustomError) or exc.type != "metadata":
        return None
    context = exc.context or {}
    return str(context.get("message", exc.message())), context.get("hint")


def describe(value: object) -> str:
    """How an editor would name a YAML value of the wrong type."""
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
    if isinstance(value, bytes):
        return "binary data"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, tuple):
        return "a key: value pair"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


# --------------------------------------------------------------------------- parsers

_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_BCP47_RE = re.compile(
    r"[a-z]{2,3}(?:-[a-z]{3}){0,3}"  # language and extended language subtags
    r"(?:-[a-z]{4})?"  # script
    r"(?:-(?:[a-z]{2}|\d{3}))?"  # region
    r"(?:-(?:[a-z\d]{5,8}|\d[a-z\d]{3}))*"  # variants
    r"(?:-[a-wyz\d](?:-[a-z\d]{2,8})+)*"  # extensions
    r"(?:-x(?:-[a-z\d]{1,8})+)?",  # private use
    re.IGNORECASE | re.ASCII,  # ASCII: no fullwidth digits, no Kelvin sign for k
)


def ascii_digits(written: str) -> str:
    """``written``, if its digits are all 0-9. Other digits (fullwidth, Arabic-Indic, superscript,
    ...) are refused naming the first one: Python would read many of them as
    numbers, but YAML and the tools a library is published with do not, so dates, frequencies
    and language tags accept 0-9 only, everywhere."""
    if written.isascii():
        return written
    for char in written:
        if char.isdigit() and not char.isascii():
            name = unicodedata.name(char, "")
            fixed = "".join(
                str(unicodedata.digit(c, c)) if c.isdigit() and not c.isascii() else c
                for c in written
            )
            raise invalid(
                f"{written!r} contains {char!r} (U+{ord(char):04X}{' ' + name if name else ''}), "
                "not one of the digits 0-9",
                f"write {fixed!r}",
            )
    return written


def text(value: object, rules: Rules | None = None, *, allow_empty: bool = False) -> str:
    """Non-empty text, as written."""
    if not isinstance(value, str):
        raise invalid(f"expected text, got {describe(value)}", "put the value in quotes")
    if not allow_empty and not value.strip():
        raise invalid("is empty", "write a value after the colon")
    return value


def stripped_text(value: object, rules: Rules | None = None) -> str:
    return text(value).strip()


def text_list(value: object, rules: Rules | None = None) -> tuple[str, ...]:
    if isinstance(value, str):
        raise invalid("expected a list of text, got a single text value", f"write it as [{value}]")
    if not isinstance(value, list | tuple):
        raise invalid(f"expected a list of text, got {describe(value)}", "write it as [a, b]")
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            got = "an empty entry" if isinstance(item, str) else describe(item)
            raise invalid(f"entry {index + 1} must be text, got {got}", "quote each entry")
    return tuple(value)


def one_or_more_texts(value: object, rules: Rules | None = None) -> tuple[str, ...]:
    """One text value or a list of them, each stripped."""
    if isinstance(value, str):
        return (stripped_text(value),)
    return tuple(item.strip() for item in text_list(value))


def calendar_date(value: object, rules: Rules | None = None) -> date:
    """A date, or a full timestamp (Hugo's ``lastmod``, Jekyll's ``last_modified_at``) taken as
    the calendar date it falls on in the ``[review]`` time zone (``rules.zone``; UTC without)."""
    zone = getattr(rules, "zone", None) or UTC
    if isinstance(value, datetime):
        return day_in_zone(value, zone)
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise invalid(f"expected a date, got {describe(value)}", "write the date as YYYY-MM-DD")
    written = value.strip()
    if len(written) > 10 and _DATE_RE.match(written):
        return day_in_zone(timestamp(written), zone)
    return iso_date(written)


def day_in_zone(moment: datetime, zone: tzinfo) -> date:
    """The calendar date of ``moment`` in ``zone``. A naive timestamp is a wall-clock time in
    ``zone`` already, so its own date is the answer."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        return moment.date()
    try:
        return moment.astimezone(zone).date()
    except (OverflowError, ValueError):
        raise invalid(
            f"{moment.isoformat(sep=' ')} falls outside the years 1 to 9999 in {zone}",
            "check the year",
        ) from None


_TIMESTAMP_RE = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})"
    r"(?:[Tt]|[ \t]+)(?P<hour>[0-9]{1,2}):(?P<minute>[0-9]{2})(?::(?P<second>[0-9]{2}))?"
    r"(?:\.(?P<fraction>[0-9]+))?"
    r"[ \t]*(?:(?P<utc>[Zz])|(?P<sign>[-+])(?P<tzh>[0-9]{1,2})(?::?(?P<tzm>[0-9]{2}))?)?"
)


def timestamp(written: str) -> datetime:
    """A timestamp as sites write them: ``2025-06-01T10:00:00+02:00``, ``...Z``, a naive
    ``2025-06-01 10:00``, Jekyll's ``2016-03-22 14:00:00 -0500``. Seconds and zone optional."""
    found = _TIMESTAMP_RE.fullmatch(ascii_digits(written))
    if found is None:
        raise invalid(
            f"{written!r} is not a date (YYYY-MM-DD) or a timestamp (YYYY-MM-DDTHH:MM:SS+01:00)",
            "use YYYY-MM-DD",
        )
    day = iso_date(found["date"])
    zone: tzinfo | None = None
    if found["utc"]:
        zone = UTC
    elif found["sign"]:
        hours, minutes = int(found["tzh"]), int(found["tzm"] or 0)
        if hours > 23 or minutes > 59:
            raise invalid(f"{written!r} has an impossible UTC offset", "use an offset like +02:00")
        offset = timedelta(hours=hours, minutes=minutes)
        zone = timezone(-offset if found["sign"] == "-" else offset)
    try:
        return datetime(
            day.year,
            day.month,
            day.day,
            int(found["hour"]),
            int(found["minute"]),
            int(found["second"] or 0),
            tzinfo=zone,
        )
    except ValueError:
        raise invalid(f"{written!r} is not a real time of day", "use HH:MM:SS") from None


def iso_date(written: str) -> date:
    """A date written ``YYYY-MM-DD`` with the digits 0-9, and nothing else: the one form read in
    frontmatter and on the command line (not ``20260601``, not the week date ``2026-W22-1``)."""
    if _DATE_RE.fullmatch(ascii_digits(written)) is None:
        raise invalid(f"{written!r} is not a date in the form YYYY-MM-DD", "use YYYY-MM-DD")
    try:
        return date.fromisoformat(written)
    except ValueError:
        raise invalid(f"{written!r} is not a real date", "use YYYY-MM-DD") from None


def cadence(value: object, rules: Rules | None = None) -> Cadence:
    if isinstance(value, Cadence):
        return value
    if isinstance(value, str):
        ascii_digits(value.strip())
    try:
        return parse_cadence(value)
    except CadenceError as exc:
        raise invalid(exc.message, exc.hint) from None


def _one_of(value: object, allowed: Sequence[str], what: str) -> str:
    written = text(value).strip()
    by_fold = {option.casefold(): option for option in allowed}
    if written.casefold() in by_fold:
        return by_fold[written.casefold()]
    close = difflib.get_close_matches(written.casefold(), list(by_fold), n=1, cutoff=0.75)
    hint = f"did you mean {by_fold[close[0]]!r}? " if close else ""
    raise invalid(
        f"{written!r} is not an accepted {what}", f"{hint}use one of: {', '.join(allowed)}"
    )


def status(value: object, rules: Rules | None = None) -> str:
    assert rules is not None
    return _one_of(value, rules.statuses, "status")


def license_(value: object, rules: Rules | None = None) -> str:
    assert rules is not None
    return _one_of(value, rules.licenses, "license")


# Addresses urlsplit always accepts: a lower-case http(s) scheme, a host of letters, digits,
# dots and hyphens, and printable ASCII after it (no whitespace). Checked first: most are such.
_PLAIN_URL = re.compile(r"https?://[A-Za-z0-9.\-]+(?:[/?#][!-~]*)?")


def web_address(value: object, rules: Rules | None = None) -> str:
    written = stripped_text(value)
    if _PLAIN_URL.fullmatch(written) is not None:
        return written
    parts = urlsplit(written)
    if parts.scheme not in ("http", "https") or not parts.netloc or re.search(r"\s", written):
        raise invalid(
            f"{written!r} is not an absolute http(s) URL", "write the full address, https://..."
        )
    return written


def language_tag(value: object, rules: Rules | None = None) -> str:
    written = ascii_digits(stripped_text(value))
    if _BCP47_RE.fullmatch(written) is None:
        hint = (
            f"use a hyphen: {written.replace('_', '-')}"
            if "_" in written
            else "use a BCP 47 tag such as en, es, es-419 or pt-BR"
        )
        raise invalid(f"{written!r} is not a BCP 47 language tag", hint)
    return written


# --------------------------------------------------------------------------- the registry

Parser = Callable[[object, "Rules | None"], Any]


@dataclass(frozen=True, slots=True)
class Field:
    """One piece of metadata.

    ``text``: the value is text, so a plain YAML scalar read as a number, date or yes/no gets a
    hint to quote it. ``report``: the freshness report shows it (a JSON key and a CSV column,
    after ``state``, in registry order); reported values are kept in the parse cache.
    """

    name: str
    key: str
    code: str  # of the rule "this value cannot be read" (see scheduler.rules)
    type: Any
    parse: Parser
    example: str = "..."
    text: bool = False
    report: bool = False


FIELDS: tuple[Field, ...] = (
    Field("title", "title", "RS210", str, stripped_text, "a title", text=True, report=True),
    Field("last_reviewed", "lastReviewed", "RS211", date, calendar_date, "YYYY-MM-DD", report=True),
    Field(
        "review_frequency", "reviewFrequency", "RS212", Cadence, cadence, "quarterly", report=True
    ),
    Field("status", "status", "RS213", str, status, "active", text=True, report=True),
    Field("license", "license", "RS214", str, license_, "CC-BY-4.0", text=True),
    Field("url", "url", "RS215", str, web_address, "https://...", text=True),
    Field("language", "language", "RS216", str, language_tag, "en", text=True),
    Field("source", "source", "RS217", str, text, "the publisher", text=True),
    Field("source_type", "sourceType", "RS218", str, text, text=True),
    Field("citation", "citation", "RS219", str, text, text=True),
    Field("audience_level", "audienceLevel", "RS220", str, text, text=True),
    Field("version", "version", "RS221", str, text, text=True),
    Field("tags", "tags", "RS222", tuple[str, ...], text_list),
    Field("cancer_types", "cancerTypes", "RS223", tuple[str, ...], text_list),
    Field("owner", "owner", "RS224", tuple[str, ...], one_or_more_texts),
    # The next review, written out: an alternative to last reviewed plus frequency.
    Field("review_by", "reviewBy", "RS225", date, calendar_date, "YYYY-MM-DD"),
)
# What a document's due date is made of (see scheduler.content.schedule).
SCHEDULE = frozenset({"last_reviewed", "review_frequency", "review_by"})

BY_NAME: dict[str, Field] = {field.name: field for field in FIELDS}
# The fields a document is scheduled by: its dates (when it was last reviewed, and any date it
# is due). With [content] scope = "declared", only documents that declare one are scheduled.
SCHEDULING: tuple[str, ...] = tuple(field.name for field in FIELDS if field.type is date)
NAMES: tuple[str, ...] = tuple(BY_NAME)

REPORTED: tuple[Field, ...] = tuple(field for field in FIELDS if field.report)
# Reported fields with a place of their own in every report (the title names the document;
# the others decide its state); the other reported fields follow them, in registry order.
OWN_PLACE = frozenset({"title", "status", "last_reviewed", "review_frequency"})
SHOWN: tuple[Field, ...] = tuple(field for field in REPORTED if field.name not in OWN_PLACE)


def unknown_names(names: Sequence[str]) -> list[str]:
    """``names`` that are not fields, each with a "did you mean" where one is close."""
    messages = []
    for name in names:
        if name in BY_NAME:
            continue
        close = difflib.get_close_matches(name, NAMES, n=1, cutoff=0.6)
        messages.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return messages
