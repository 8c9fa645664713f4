"""Mail: build messages (pure) and hand them to a sender (SMTP, or files in an outbox folder).

Header values that come from data are refused when they hold CR, LF, other control characters
or encoded-word openers (``=?``): Python's email package on this platform would otherwise let
a value such as ``=?UTF-8?Q?=0A?=Bcc: x`` smuggle in a header.
"""

from __future__ import annotations

import asyncio
import email.policy
import hashlib
import logging
import os
import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from scheduler.config import SmtpSettings, is_email_address
from scheduler.errors import HeaderInjectionError

if TYPE_CHECKING:
    import aiosmtplib

log = logging.getLogger(__name__)

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


def _address(name: str, addr: str, display_name: str = "") -> Address:
    check_header(name, addr)
    check_header(name, display_name)
    if not is_email_address(addr):
        raise HeaderInjectionError(f"refusing a {name} header: {addr!r} is not an email address")
    username, domain = addr.rsplit("@", 1)
    return Address(display_name=display_name, username=username, domain=domain)


def message_id_for(key: str, domain: str) -> str:
    """A stable Message-ID: the same key always gives the same id, so a retried message is
    recognisably the same message."""
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:40]}@{domain}>"


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A rendered message with its envelope, ready for the outbox."""

    key: str
    message_id: str
    sender: str
    recipients: tuple[str, ...]
    subject: str
    data: bytes


def build_message(
    *,
    key: str,
    from_address: str,
    from_name: str,
    to: str,
    cc: Sequence[str],
    subject: str,
    text: str,
    html: str,
    date: datetime,
) -> OutgoingMessage:
    """The reminder as a multipart/alternative message (text and HTML). Pure."""
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = _address("From", from_address, from_name)
    msg["To"] = _address("To", to)
    if cc:
        msg["Cc"] = [_address("Cc", c) for c in cc]
    msg["Subject"] = check_header("Subject", subject)
    msg["Date"] = format_datetime(date)
    message_id = message_id_for(key, from_address.rsplit("@", 1)[1])
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
    msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    # A boundary derived from the key keeps the function pure: same input, same bytes.
    msg.set_boundary(f"=_review-scheduler_{hashlib.sha256(key.encode()).hexdigest()[:32]}")
    recipients = tuple(dict.fromkeys([to, *cc]))
    return OutgoingMessage(key, message_id, from_address, recipients, subject, msg.as_bytes())


# --------------------------------------------------------------------------- senders


class Outcome(StrEnum):
    DELIVERED = "delivered"
    TEMPORARY = "temporary"  # try again later
    PERMANENT = "permanent"  # the server refused for good


@dataclass(frozen=True, slots=True)
class Result:
    outcome: Outcome
    code: int | None = None
    reply: str = ""


class Sender(Protocol):
    """Sends one message to some of its recipients and says what happened to each."""

    async def send(
        self, sender: str, recipients: Sequence[str], data: bytes
    ) -> dict[str, Result]: ...

    async def close(self) -> None: ...

    @property
    def description(self) -> str: ...


class FileSender:
    """The embedded default: each message becomes a ``.eml`` file in a folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @property
    def description(self) -> str:
        return f"the outbox folder {self.folder}"

    async def send(self, sender: str, recipients: Sequence[str], data: bytes) -> dict[str, Result]:
        name = hashlib.sha256(data).hexdigest()[:24] + ".eml"
        target = self.folder / name
        temporary = target.with_suffix(".tmp")
        envelope = f"X-Envelope-From: {sender}\r\nX-Envelope-To: {', '.join(recipients)}\r\n"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with temporary.open("wb") as out:
                out.write(envelope.encode() + data)
                out.flush()
                os.fsync(out.fileno())
            temporary.replace(target)  # atomic: a reader never sees half a message
        except OSError as exc:
            reason = f"cannot write to {self.folder}: {exc.strerror or exc}"
            return {r: Result(Outcome.TEMPORARY, None, reason) for r in recipients}
        log.info("wrote a message for %s to %s", ", ".join(recipients), target)
        return {r: Result(Outcome.DELIVERED, None, f"written to {target}") for r in recipients}

    async def close(self) -> None:
        return None


def classify(code: int | None) -> Outcome:
    if code is not None and 200 <= code < 300:
        return Outcome.DELIVERED
    if code is not None and 500 <= code < 600:
        return Outcome.PERMANENT
    return Outcome.TEMPORARY


class SmtpSender:
    """Sends over SMTP with aiosmtplib, reusing one connection for a batch.

    TLS fails closed: with ``starttls`` the server must offer STARTTLS, and certificates are
    always verified. The password is only ever handed to the SMTP client; anything the server
    says is scrubbed of it before it is logged or stored.
    """

    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings
        self._password = settings.password.get_secret_value() if settings.password else ""
        self._client: aiosmtplib.SMTP | None = None
        self._secrets = _secret_forms(settings.username, self._password)

    @property
    def description(self) -> str:
        return f"{self._settings.host}:{self._settings.effective_port}"

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self._settings.ca_file is not None:
            context.load_verify_locations(cafile=str(self._settings.ca_file))
        return context

    async def _connect(self) -> aiosmtplib.SMTP:
        import aiosmtplib  # imported when mail is sent, not when documents are checked

        s = self._settings
        client = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.effective_port,
            use_tls=s.security == "tls",
            start_tls=s.security == "starttls",
            validate_certs=True,
            tls_context=self._tls_context() if s.security != "none" else None,
            timeout=s.timeout_seconds,
        )
        try:
            await client.connect()
            if s.username:
                await client.login(s.username, self._password)
        except BaseException:
            client.close()
            raise
        return client

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:
                log.debug("closing a broken SMTP connection failed", exc_info=True)

    async def send(self, sender: str, recipients: Sequence[str], data: bytes) -> dict[str, Result]:
        import aiosmtplib

        try:
            async with asyncio.timeout(self._settings.message_deadline_seconds):
                if self._client is None or not self._client.is_connected:
                    await self._drop()
                    self._client = await self._connect()
                refused, reply = await self._client.sendmail(sender, list(recipients), data)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            return {
                e.recipient: Result(classify(e.code), e.code, self.redact(e.message))
                for e in exc.recipients
            }
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code == 421 or isinstance(exc, aiosmtplib.SMTPAuthenticationError):
                await self._drop()
            outcome = classify(exc.code)
            if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
                outcome = Outcome.TEMPORARY  # a settings problem: keep the message for later
            text = self.redact(f"{exc.code} {exc.message}")
            return {r: Result(outcome, exc.code, text) for r in recipients}
        except (TimeoutError, aiosmtplib.SMTPTimeoutError) as exc:
            # Perhaps delivered, perhaps not: send again later with the same Message-ID.
            await self._drop()
            reason = self.redact(str(exc)) or "no answer within the deadline"
            return {r: Result(Outcome.TEMPORARY, None, f"timed out: {reason}") for r in recipients}
        except (aiosmtplib.SMTPException, OSError) as exc:
            await self._drop()
            reason = self.redact(f"{type(exc).__name__}: {exc}")
            return {r: Result(Outcome.TEMPORARY, None, reason) for r in recipients}
        results = {r: Result(Outcome.DELIVERED, 250, self.redact(reply)) for r in recipients}
        for address, response in refused.items():
            results[address] = Result(
                classify(response.code), response.code, self.redact(response.message)
            )
        return results

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and client.is_connected:
            try:
                await client.quit()
            except Exception:
                client.close()


def _secret_forms(username: str, password: str) -> list[str]:
    """The password as it could appear in a server's reply: plain, or inside AUTH data."""
    import base64

    if not password:
        return []
    forms = {
        password,
        base64.b64encode(password.encode()).decode(),
        base64.b64encode(f"\0{username}\0{password}".encode()).decode(),
    }
    return sorted(forms, key=len, reverse=True)


def make_sender(smtp: SmtpSettings, outbox_dir: Path) -> Sender:
    """SMTP when a host is configured, else the on-disk outbox folder."""
    if smtp.host:
        return SmtpSender(smtp)
    return FileSender(outbox_dir)
