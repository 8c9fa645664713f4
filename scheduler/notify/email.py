"""Email: notifications built as MIME (pure) and delivered over SMTP, or written as ``.eml``
files to a folder when no server is configured.

The message is built when it is delivered, from the notification alone: the same notification
always gives the same bytes (Message-ID, boundary and headers included), so a retried message is
the same message. TLS fails closed, and the SMTP password never leaves the client: whatever the
server says is scrubbed of it before it is logged or stored.
"""

from __future__ import annotations

import asyncio
import email.policy
import hashlib
import logging
import os
import ssl
from collections.abc import Sequence
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING

from scheduler.config import SmtpSettings
from scheduler.errors import HeaderInjectionError
from scheduler.notify.channel import (
    Channel,
    Notification,
    Outcome,
    Result,
    check_address,
    check_header,
)

if TYPE_CHECKING:
    import aiosmtplib

log = logging.getLogger(__name__)

QUIT_SECONDS = 5.0  # the longest a goodbye to the server may take

CHANNEL = "email"


def _address(name: str, addr: str, display_name: str = "") -> Address:
    check_address(name, addr)
    check_header(name, display_name)
    username, domain = addr.rsplit("@", 1)
    return Address(display_name=display_name, username=username, domain=domain)


def build_message(notification: Notification) -> bytes:
    """The notification as a multipart/alternative message (text and HTML). Pure.

    A message queued by version 0.1 is already built: its bytes are returned as they are.
    """
    if notification.prebuilt is not None:
        return notification.prebuilt
    n = notification
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = _address("From", n.sender, n.sender_name)
    msg["To"] = [_address("To", a) for a in n.to]
    if n.cc:
        msg["Cc"] = [_address("Cc", a) for a in n.cc]
    msg["Subject"] = check_header("Subject", n.subject)
    for name, value in n.headers:
        msg[check_header("header name", name)] = check_header(name, value)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
    msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(n.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(n.html, subtype="html", charset="utf-8", cte="quoted-printable")
    # A boundary derived from the key keeps the function pure: same input, same bytes.
    msg.set_boundary(f"=_review-scheduler_{hashlib.sha256(n.key.encode()).hexdigest()[:32]}")
    return msg.as_bytes()


def _wire(notification: Notification, recipients: Sequence[str]) -> bytes | dict[str, Result]:
    """The bytes to send, or, for a notification that cannot be built (one that was altered in
    the store: it was checked when it was composed), a permanent failure for everyone."""
    try:
        return build_message(notification)
    except HeaderInjectionError as exc:
        return {r: Result(Outcome.PERMANENT, None, str(exc)) for r in recipients}


class FileChannel:
    """The embedded default: each message becomes a ``.eml`` file in a folder."""

    name = CHANNEL

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @property
    def description(self) -> str:
        return f"the outbox folder {self.folder}"

    async def send(
        self, notification: Notification, recipients: Sequence[str]
    ) -> dict[str, Result]:
        data = _wire(notification, recipients)
        if isinstance(data, dict):
            return data
        name = hashlib.sha256(data).hexdigest()[:24] + ".eml"
        target = self.folder / name
        temporary = target.with_suffix(".tmp")
        envelope = (
            f"X-Envelope-From: {notification.sender}\r\nX-Envelope-To: {', '.join(recipients)}\r\n"
        )
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


class SmtpChannel:
    """Sends over SMTP with aiosmtplib, reusing one connection for a batch.

    TLS fails closed: with ``starttls`` the server must offer STARTTLS, and certificates are
    always verified. The password is only ever handed to the SMTP client; anything the server
    says is scrubbed of it before it is logged or stored.
    """

    name = CHANNEL

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

    async def send(
        self, notification: Notification, recipients: Sequence[str]
    ) -> dict[str, Result]:
        import aiosmtplib

        data = _wire(notification, recipients)
        if isinstance(data, dict):
            return data
        try:
            async with asyncio.timeout(self._settings.message_deadline_seconds):
                if self._client is None or not self._client.is_connected:
                    await self._drop()
                    self._client = await self._connect()
                refused, reply = await self._client.sendmail(
                    notification.sender, list(recipients), data
                )
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
        """Say QUIT, waiting a few seconds at most (a stalled server must not hold up a
        shutdown), else drop the connection; when the sending task is being cancelled (a
        shutdown past its grace period), drop it at once."""
        client, self._client = self._client, None
        task = asyncio.current_task()
        if client is not None and task is not None and task.cancelling():
            client.close()
            return
        if client is not None and client.is_connected:
            try:
                async with asyncio.timeout(min(QUIT_SECONDS, self._settings.timeout_seconds)):
                    await client.quit()
            except Exception:  # the deadline among them
                client.close()
            except BaseException:  # cancelled: drop the connection, then stop
                client.close()
                raise


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


def make_channel(smtp: SmtpSettings, outbox_dir: Path) -> Channel:
    """SMTP when a host is configured, else the on-disk outbox folder."""
    if smtp.host:
        return SmtpChannel(smtp)
    return FileChannel(outbox_dir)
