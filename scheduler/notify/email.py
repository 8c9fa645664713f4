"""Email: notifications built as MIME (pure) and delivered over SMTP, or written as ``.eml``
files to a folder when no server is configured.

The message is built when it is delivered, from the notification alone: the same notification
always gives the same bytes (Message-ID, boundary and headers included), so a retried message is
the same message. TLS fails closed, and the SMTP password never leaves the client: whatever the
server says is scrubbed of it before it is logged or stored.
"""

from __future__ import annotations

import asyncio
import base64
import email.policy
import hashlib
import logging
import os
import re
import ssl
from collections.abc import Callable, Sequence
from email.headerregistry import Address
from email.message import EmailMessage
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scheduler.config import Settings, SmtpSettings
from scheduler.errors import ConfigError, HeaderInjectionError
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
    always verified. The password is only ever handed to the SMTP client; of what the server
    says only the reply code, the enhanced status code and a sanitised, length-limited remainder
    are kept, scrubbed of the password in any case and escaping (:func:`redactor`).

    A deadline that runs out once the message data is on its way leaves the outcome unknown:
    that is :attr:`Outcome.UNCONFIRMED`, not a temporary failure, so the outbox does not send a
    message the server may have stored again and again. A problem no retry can solve (an
    untrusted certificate, no STARTTLS, the login refused) carries its cause in the result.
    """

    name = CHANNEL

    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings
        self._password = settings.password.get_secret_value() if settings.password else ""
        self._client: aiosmtplib.SMTP | None = None
        self.redact = redactor(settings.username, self._password)

    @property
    def description(self) -> str:
        return f"{self._settings.host}:{self._settings.effective_port}"

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self._settings.ca_file is not None:
            context.load_verify_locations(cafile=str(self._settings.ca_file))
        return context

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self._settings
        client = _client_class()(
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

    def _clean(self, text: str) -> str:
        return sanitise_reply(text, self.redact)

    def _cause(self, exc: BaseException) -> str | None:
        """The settings problem ``exc``, raised while connecting, shows; None for one a retry
        may solve (the server down, busy, slow)."""
        import aiosmtplib

        s = self._settings
        if isinstance(exc, ssl.SSLCertVerificationError):
            return (
                f"the certificate of {self.description} is not trusted: "
                f"{self._clean(exc.verify_message or str(exc))} (see [smtp] ca_file)"
            )
        if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
            return (
                f"{self.description} refused the login of [smtp] username {s.username!r}: "
                f"{self._clean(f'{exc.code} {exc.message}')} (check SCHEDULER_SMTP__PASSWORD)"
            )
        if isinstance(exc, aiosmtplib.SMTPException) and "STARTTLS" in str(exc):
            return (
                f'{self.description} does not offer STARTTLS, which [smtp] security = "starttls"'
                ' requires (use "tls" for a server that speaks TLS from the start)'
            )
        if isinstance(exc, aiosmtplib.SMTPException) and "authentication method" in str(exc):
            return (
                f"{self.description} offers no login method this client supports for [smtp] "
                "username"
            )
        return None

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            _abort(client)

    async def send(
        self, notification: Notification, recipients: Sequence[str]
    ) -> dict[str, Result]:
        import aiosmtplib

        data = _wire(notification, recipients)
        if isinstance(data, dict):
            return data
        connecting = False
        client = None
        try:
            async with asyncio.timeout(self._settings.message_deadline_seconds):
                if self._client is None or not self._client.is_connected:
                    await self._drop()
                    connecting = True
                    self._client = await self._connect()
                    connecting = False
                client = self._client
                client.data_started = False  # type: ignore[attr-defined]
                refused, reply = await client.sendmail(notification.sender, list(recipients), data)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            return {
                e.recipient: Result(classify(e.code), e.code, self._clean(e.message))
                for e in exc.recipients
            }
        except aiosmtplib.SMTPResponseException as exc:
            cause = self._cause(exc) if connecting else None
            if exc.code == 421 or cause is not None:
                await self._drop()
            outcome = classify(exc.code)
            if cause is not None:
                outcome = Outcome.TEMPORARY  # a settings problem: keep the message for later
            text = self._clean(f"{exc.code} {exc.message}")
            return {r: Result(outcome, exc.code, text, cause) for r in recipients}
        except (TimeoutError, aiosmtplib.SMTPTimeoutError) as exc:
            await self._drop()
            reason = self._clean(str(exc)) or "no answer within the deadline"
            if client is not None and getattr(client, "data_started", False):
                # Perhaps delivered, perhaps not: the outbox sends it once more at most.
                text = f"timed out after the message data was sent: {reason}"
                return {r: Result(Outcome.UNCONFIRMED, None, text) for r in recipients}
            return {r: Result(Outcome.TEMPORARY, None, f"timed out: {reason}") for r in recipients}
        except (aiosmtplib.SMTPException, OSError) as exc:
            await self._drop()
            cause = self._cause(exc) if connecting else None
            reason = self._clean(f"{type(exc).__name__}: {exc}")
            return {r: Result(Outcome.TEMPORARY, None, reason, cause) for r in recipients}
        results = {r: Result(Outcome.DELIVERED, 250, self._clean(reply)) for r in recipients}
        for address, response in refused.items():
            results[address] = Result(
                classify(response.code), response.code, self._clean(response.message)
            )
        return results

    async def close(self) -> None:
        """Say QUIT, waiting a few seconds at most (a stalled server must not hold up a
        shutdown), else drop the connection; when the sending task is being cancelled (a
        shutdown past its grace period), drop it at once."""
        client, self._client = self._client, None
        task = asyncio.current_task()
        if client is not None and task is not None and task.cancelling():
            _abort(client)
            return
        if client is not None and client.is_connected:
            transport = client.transport
            try:
                async with asyncio.timeout(min(QUIT_SECONDS, self._settings.timeout_seconds)):
                    await client.quit()
            except Exception:  # the deadline among them
                _abort(client)
            except BaseException:  # cancelled: drop the connection, then stop
                _abort(client)
                raise
            if isinstance(transport, asyncio.Transport):
                # QUIT was answered: end a TLS connection without waiting for the server's side
                # of the TLS shutdown, which would keep the socket open after the run ends.
                transport.abort()


@cache
def _client_class() -> type[aiosmtplib.SMTP]:
    """aiosmtplib's client, noting when a transaction reaches DATA: a deadline that runs out
    after that may have delivered the message."""
    import aiosmtplib  # imported when mail is sent, not when documents are checked

    class Client(aiosmtplib.SMTP):
        data_started = False

        async def data(self, *args: Any, **kwargs: Any) -> aiosmtplib.SMTPResponse:
            self.data_started = True
            return await super().data(*args, **kwargs)

    return Client


REPLY_LIMIT = 200  # characters of a server's reply kept, after its codes

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def sanitise_reply(text: str, redact: Callable[[str], str]) -> str:
    """A server's reply as it is logged and stored: secrets redacted, control characters and
    line breaks collapsed to spaces, cut to :data:`REPLY_LIMIT` characters."""
    text = _CONTROL.sub(" ", redact(text))
    text = " ".join(text.split())
    if len(text) > REPLY_LIMIT:
        text = text[: REPLY_LIMIT - 1].rstrip() + "\u2026"
    return text


def _char_pattern(char: str) -> str:
    """A character as a server might echo it: as it is (in any case), or escaped with a
    backslash, as %XX, =XX, \\xXX, \\uXXXX or an HTML character reference."""
    code = ord(char)
    forms = [re.escape(char)]
    if code < 0x100:
        forms += [f"%{code:02x}", f"={code:02x}", rf"\\x{code:02x}"]
    else:
        utf8 = "".join(f"%{b:02x}" for b in char.encode())
        forms += [re.escape(utf8), re.escape(utf8.replace("%", "="))]
    forms += [rf"\\u{code:04x}", rf"\\U{code:08x}", rf"&\#0*{code};", rf"&\#x0*{code:x};"]
    return r"\\?(?:" + "|".join(forms) + ")"


def redactor(username: str, password: str) -> Callable[[str], str]:
    """A function replacing the password in a text by ``***``: plain, in any case, with
    characters escaped in the usual ways, base64-encoded, or inside AUTH PLAIN data."""
    if not password:
        return lambda text: text
    encoded = {
        base64.b64encode(password.encode()).decode(),
        base64.b64encode(f"\0{username}\0{password}".encode()).decode(),
    }
    patterns = ["".join(_char_pattern(c) for c in password)]
    patterns += [re.escape(e.rstrip("=")) + "=*" for e in sorted(encoded, key=len, reverse=True)]
    compiled = re.compile("|".join(patterns), re.IGNORECASE)
    return lambda text: compiled.sub("***", text)


def check_smtp_settings(smtp: SmtpSettings) -> None:
    """Refuse, with a :class:`ConfigError` naming the setting, [smtp] settings that make every
    delivery fail: a ``ca_file`` that cannot be read, a username without a password."""
    if not smtp.host:
        return
    if smtp.ca_file is not None and smtp.security != "none":
        try:
            ssl.create_default_context().load_verify_locations(cafile=str(smtp.ca_file))
        except (OSError, ssl.SSLError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ConfigError(
                f"[smtp] ca_file: cannot load certificate authorities from {smtp.ca_file}: {why}"
            ) from None
    if smtp.username and smtp.password is None:
        raise ConfigError(
            f"[smtp] username is {smtp.username!r} but no password is set: set the environment "
            "variable SCHEDULER_SMTP__PASSWORD, or leave username empty for a server without "
            "login"
        )


def check_delivery_settings(settings: Settings) -> None:
    """Refuse, with a :class:`ConfigError` naming the setting, settings that make delivery
    impossible or unsafe; checked before anything is queued or sent."""
    check_smtp_settings(settings.smtp)
    lease, deadline = settings.delivery.lease_seconds, settings.smtp.message_deadline_seconds
    if lease < 2 * deadline:
        raise ConfigError(
            f"[delivery] lease_seconds ({lease:g}) must be at least twice [smtp] "
            f"message_deadline_seconds ({deadline:g}), or a message still being sent could be "
            "claimed and sent by another process"
        )


def make_channel(smtp: SmtpSettings, outbox_dir: Path) -> Channel:
    """SMTP when a host is configured, else the on-disk outbox folder. Settings that make
    every delivery fail are refused (:func:`check_smtp_settings`)."""
    check_smtp_settings(smtp)
    if smtp.host:
        return SmtpChannel(smtp)
    return FileChannel(outbox_dir)


def _abort(client: aiosmtplib.SMTP) -> None:
    """Drop a broken (or no longer wanted) connection at once. ``close`` alone would leave a
    TLS connection's socket open until the TLS shutdown ends, which a stalled server may never
    answer, and a stopping event loop never waits for."""
    try:
        transport = client.transport
        if isinstance(transport, asyncio.Transport):
            transport.abort()
        client.close()
    except Exception:
        log.debug("closing a broken SMTP connection failed", exc_info=True)
