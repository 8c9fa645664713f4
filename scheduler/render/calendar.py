"""Calendar feeds: review dates as an RFC 5545 iCalendar file (icalendar), one all-day event per
upcoming or overdue review.

Each event's UID is derived from the document's path alone, so that importing the feed again
(or subscribing to it) updates the event, moved to the new due date after a review, instead of
adding another. Everything is derived from the report and its as-of date: the same report gives
the same bytes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from icalendar import Calendar, Event

from scheduler.results import CheckResult, DocumentReport, State
from scheduler.text import http_url, shown, without_surrogates

PRODID = "-//review-scheduler//review dates//EN"
UID_DOMAIN = "review-scheduler"
IN_FEEDS = (State.OVERDUE, State.DUE_SOON, State.OK)  # reviews that are scheduled


def event_uid(path: str) -> str:
    """The UID of a document's review event: stable for as long as the path is."""
    digest = hashlib.sha256(without_surrogates(path).encode()).hexdigest()[:32]
    return f"{digest}@{UID_DOMAIN}"


def revision(doc: DocumentReport) -> int:
    """The event's SEQUENCE: days from 2000-01-01 to the last review, so that it rises with
    every review (which moves the event), as calendar apps that check it expect of an update."""
    last = doc.last_reviewed
    return max(0, (last - _EPOCH).days) if last is not None else 0


_EPOCH = date(2000, 1, 1)
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+@-]*")


def feed_name(editor: str) -> str:
    """The file name of an editor's feed: the address when it makes a plain file name, else a
    digest of it."""
    if _SAFE_NAME.fullmatch(editor) and len(editor) <= 200:
        return f"{editor}.ics"
    return f"editor-{hashlib.sha256(editor.encode(errors='surrogateescape')).hexdigest()[:16]}.ics"


def _summary(doc: DocumentReport) -> str:
    title = shown(doc.title or doc.path)
    return f"Overdue review: {title}" if doc.state is State.OVERDUE else f"Review: {title}"


def _description(doc: DocumentReport, edit: str | None) -> str:
    lines = [f"Path: {shown(doc.path)}"]
    url = http_url(doc.url)
    if url:
        lines.append(f"URL: {shown(url)}")
    if edit:
        lines.append(f"Edit: {shown(edit)}")
    if doc.editors:
        lines.append(f"Editors: {shown(', '.join(doc.editors))}")
    if doc.review_frequency:
        lines.append(f"Review frequency: {shown(doc.review_frequency)}")
    return "\n".join(lines)


def calendar_feed(result: CheckResult, name: str = "Reviews") -> bytes:
    """The feed of every scheduled review in ``result`` (one all-day event per document on its
    due date, overdue ones included), as iCalendar bytes."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", shown(name))
    stamp = datetime(result.as_of.year, result.as_of.month, result.as_of.day, tzinfo=UTC)
    for doc in _scheduled(result.documents):
        assert doc.due is not None
        edit = dict(doc.links).get("edit_url")  # from [links] edit_url
        event = Event()
        event.add("uid", event_uid(doc.path))
        event.add("sequence", revision(doc))
        event.add("dtstamp", stamp)
        event.add("dtstart", doc.due)
        event.add("dtend", doc.due + timedelta(days=1))
        event.add("summary", _summary(doc))
        event.add("description", _description(doc, edit))
        event.add("transp", "TRANSPARENT")
        event.add("categories", [doc.state.label])
        url = http_url(doc.url)
        if url:
            event.add("url", url)
        calendar.add_component(event)
    feed: bytes = calendar.to_ical()
    return feed


def _scheduled(documents: Iterable[DocumentReport]) -> list[DocumentReport]:
    return sorted(
        (d for d in documents if d.state in IN_FEEDS and d.due is not None),
        key=lambda d: (d.due, d.path),
    )
