"""A real SMTP server on loopback for tests: aiosmtpd with STARTTLS (a trustme test CA) and AUTH,
plus switches that make it misbehave in the ways real servers do."""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

USERNAME = "scheduler"
PASSWORD = "correct-horse-battery-9d1f"


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes
    peer: Any

    @property
    def message(self) -> Message:
        return message_from_bytes(self.data)


@dataclass
class Faults:
    """What the server does wrong. Each queue is consumed one reply per command."""

    mail_replies: list[str] = field(default_factory=list)  # e.g. "421 4.3.2 closing"
    data_replies: list[str] = field(default_factory=list)  # e.g. "451 4.3.0 try later"
    rcpt_replies: dict[str, list[str]] = field(default_factory=dict)  # per address
    drop_in_data: int = 0  # close the connection during DATA this many times
    slow_data: list[float] = field(default_factory=list)  # accept, then wait before replying
    auth_reply: str | None = None  # refuse AUTH with this text


class Handler:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.faults = Faults()
        self.sessions: list[Any] = []
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)

    def wait_for(self, count: int, timeout: float = 30) -> list[Received]:
        """Block until the server has accepted ``count`` messages (or fail after ``timeout``)."""
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.received) >= count, timeout):
                raise AssertionError(
                    f"only {len(self.received)} of {count} messages arrived within {timeout} s"
                )
            return list(self.received)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        with self.lock:
            self.sessions.append(session.peer)
        return responses

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        with self.lock:
            reply = self.faults.mail_replies.pop(0) if self.faults.mail_replies else None
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        with self.lock:
            queue = self.faults.rcpt_replies.get(address)
            reply = queue.pop(0) if queue else None
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            drop = self.faults.drop_in_data > 0
            if drop:
                self.faults.drop_in_data -= 1
            reply = (
                None
                if drop
                else (self.faults.data_replies.pop(0) if self.faults.data_replies else None)
            )
            delay = self.faults.slow_data.pop(0) if self.faults.slow_data and not drop else 0.0
        if drop:
            server.transport.abort()
            return "421 4.4.2 connection dropped"
        if reply:
            return reply
        with self.arrived:
            self.received.append(
                Received(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    bytes(envelope.original_content or envelope.content),
                    session.peer,
                )
            )
            self.arrived.notify_all()
        if delay:
            await asyncio.sleep(delay)  # the message is stored; the client waits in vain
        return "250 2.0.0 Queued"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if self.faults.auth_reply is not None:
            return AuthResult(success=False, handled=False, message=self.faults.auth_reply)
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode() == USERNAME and auth_data.password.decode() == PASSWORD
        )
        return AuthResult(success=ok)


class LoopbackController(Controller):
    """Listens on a free loopback port chosen by the system, and closes its connections
    before it stops (see :meth:`close_sessions`)."""

    sessions: list[Any]

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)  # what asyncio's create_server returns
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()

    def factory(self) -> Any:
        with warnings.catch_warnings():
            # aiosmtpd cannot tell that an implicit-TLS socket is encrypted and warns about AUTH
            warnings.simplefilter("ignore", UserWarning)
            session = super().factory()
        self.__dict__.setdefault("sessions", []).append(session)
        return session

    def close_sessions(self, timeout: float = 30) -> None:
        """Wait until every connection the server accepted is closed (a client's QUIT or
        disconnection is handled in the server's thread, perhaps after the client has moved
        on), aborting those still open after ``timeout``. Stopping the server with one open
        would leave its socket to be reported unclosed whenever the garbage collector next
        runs, in whichever test is running then."""
        sessions = self.__dict__.get("sessions", [])

        def open_ones() -> list[Any]:
            return [s for s in sessions if s.transport is not None]

        deadline = time.monotonic() + timeout
        while open_ones() and time.monotonic() < deadline:
            time.sleep(0.01)
        for session in open_ones():
            transport = session.transport
            if transport is not None:
                self.loop.call_soon_threadsafe(transport.abort)
        deadline = time.monotonic() + timeout
        while open_ones() and time.monotonic() < deadline:
            time.sleep(0.01)


@dataclass
class SmtpServer:
    handler: Handler
    host: str
    port: int
    ca_file: Path
    controller: LoopbackController

    def settings(self, **overrides: Any) -> dict[str, Any]:
        base = {
            "host": self.host,
            "port": self.port,
            "security": "starttls",
            "username": USERNAME,
            "ca_file": str(self.ca_file),
            "timeout_seconds": 5,
            "message_deadline_seconds": 5,
        }
        return base | overrides


@contextmanager
def running_server(
    tmp_path: Path, *, tls: str = "starttls", auth: bool = True, ca: trustme.CA | None = None
) -> Iterator[SmtpServer]:
    """tls: "starttls" (required), "implicit" (TLS from the first byte) or "none"."""
    ca = ca or trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(server_context)
    ca_file = tmp_path / "test-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    handler = Handler()
    kwargs: dict[str, Any] = {"hostname": "127.0.0.1", "port": 0}
    if tls == "starttls":
        kwargs |= {"tls_context": server_context, "require_starttls": True}
    elif tls == "implicit":
        kwargs |= {"ssl_context": server_context}
    if auth:
        kwargs |= {
            "auth_required": True,
            "auth_require_tls": tls == "starttls",  # aiosmtpd cannot see implicit TLS
            "authenticator": handler.authenticate,
        }
    controller = LoopbackController(handler, **kwargs)
    controller.start()
    try:
        yield SmtpServer(handler, "127.0.0.1", controller.port, ca_file, controller)
    finally:
        controller.close_sessions()
        controller.stop()
