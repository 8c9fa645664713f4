"""Notifications, and the channels that deliver them.

A notification is what the outbox keeps until it is delivered: who it is from and to, its
subject, its text and HTML bodies, and the headers that identify it (Date, Message-ID). It knows
nothing of any wire format; a channel builds one when it delivers (the email channels build MIME).

Values that end up in headers are checked when a notification is composed: CR, LF, other control
characters and encoded-word openers (``=?``) are refused, since Python's email package on this
platform would otherwise let a value such as ``=?UTF-8?Q?=0A?=Bcc: x`` smuggle in a header. A
refused notification is never queued.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from enum import StrEnum
from typing import Protocol

from scheduler.config import is_email_address
from scheduler.errors import HeaderInjectionError

_FORBIDDEN_IN_HEADERS = re.compile(r"[\x00-\x1f\x7f]|=\?")


def check_header(name: str, value: str) -> str:
    """Return ``value`` if it is safe in a header, else raise :class:`HeaderInjectionError`."""
    found = _FORBIDDEN_IN_HEADERS.search(value)
    if found is not None:
        what = (
            "an encoded-word opener '=?'"
            if found.group() == "=?"
            else (f"the control character U+{ord(found.group()):04X}")
        )
        raise HeaderInjectionError(f"refusing a {name} header containing {what}")
    return value


def check_address(name: str, address: str) -> str:
    """Return ``address`` if it is a plain email address, safe in a header."""
    check_header(name, address)
    if not is_email_address(address):
        raise HeaderInjectionError(f"refusing a {name} header: {address!r} is not an email address")
    return address


def message_id_for(key: str, domain: str) -> str:
    """A stable Message-ID: the same key always gives the same id, so a retried notification is
    recognisably the same one."""
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:40]}@{domain}>"


@dataclass(frozen=True, slots=True)
class Notification:
    """One message for some recipients, as the outbox keeps it."""

    key: str  # idempotency key: the outbox holds one notification per key, ever
    channel: str  # the channel that delivers it, e.g. "email"
    sender: str  # an address
    sender_name: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    text: str
    html: str
    headers: tuple[tuple[str, str], ...] = ()  # in order: Date, Message-ID
    # The wire form of a message queued by version 0.1, which kept MIME instead of these fields;
    # email channels send it as it is.
    prebuilt: bytes | None = None

    @property
    def recipients(self) -> tuple[str, ...]:
        """Everyone it goes to, To before Cc, each once."""
        return tuple(dict.fromkeys((*self.to, *self.cc)))

    def header(self, name: str) -> str | None:
        return next((v for n, v in self.headers if n.casefold() == name.casefold()), None)

    @property
    def message_id(self) -> str | None:
        return self.header("Message-ID")


def compose(
    *,
    key: str,
    channel: str,
    from_address: str,
    from_name: str,
    to: Sequence[str],
    cc: Sequence[str],
    subject: str,
    text: str,
    html: str,
    date: datetime,
) -> Notification:
    """A notification, its header values checked (:class:`HeaderInjectionError` when one is
    unsafe). Pure: the same arguments give the same notification."""
    check_address("From", from_address)
    check_header("From", from_name)
    for address in to:
        check_address("To", address)
    for address in cc:
        check_address("Cc", address)
    return Notification(
        key=key,
        channel=channel,
        sender=from_address,
        sender_name=from_name,
        to=tuple(to),
        cc=tuple(cc),
        subject=check_header("Subject", subject),
        text=text,
        html=html,
        headers=(
            ("Date", format_datetime(date)),
            ("Message-ID", message_id_for(key, from_address.rsplit("@", 1)[1])),
        ),
    )


class Outcome(StrEnum):
    DELIVERED = "delivered"
    TEMPORARY = "temporary"  # try again later
    PERMANENT = "permanent"  # refused for good
    # No answer after the message data was sent: the server may have stored it. Sent once more
    # at most, then held for a person to decide (``outbox retry``).
    UNCONFIRMED = "unconfirmed"


@dataclass(frozen=True, slots=True)
class Result:
    outcome: Outcome
    code: int | None = None
    reply: str = ""
    # Why nothing can be delivered until the settings or the server change (an untrusted
    # certificate, no STARTTLS, AUTH refused), or None: a problem with this message only.
    cause: str | None = None


class Channel(Protocol):
    """Delivers notifications, a batch at a time: :meth:`send` for each (reusing whatever
    connection it opened for the one before), then :meth:`close`."""

    @property
    def name(self) -> str:
        """Which notifications it delivers: those whose ``channel`` is this."""
        ...

    @property
    def description(self) -> str:
        """Where it delivers to, for messages."""
        ...

    async def send(
        self, notification: Notification, recipients: Sequence[str]
    ) -> dict[str, Result]:
        """Deliver ``notification`` to ``recipients`` (some of its recipients) and say what
        happened to each. Never raises for a delivery problem: that is a result."""
        ...

    async def close(self) -> None: ...
