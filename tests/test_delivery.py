"""Delivery against a real SMTP server on loopback (aiosmtpd, STARTTLS with a test CA, AUTH),
with the faults real servers produce. Every reminder ends delivered or failed and reported."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sqlite3
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme

from scheduler.config import DeliverySettings, SmtpSettings, StoreSettings
from scheduler.config_schema import Secret
from scheduler.notify.channel import Channel, Notification, compose
from scheduler.notify.delivery import DeliveryReport, deliver_pending
from scheduler.notify.email import FileChannel, SmtpChannel, build_message
from scheduler.notify.outbox import Outbox
from scheduler.notify.reminders import Digest, Plan
from scheduler.store import Queued, StateStore, open_store

from .smtp_server import PASSWORD, SmtpServer, running_server

FAST_RETRY = DeliverySettings(retry_initial_seconds=0, retry_max_seconds=0)


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def server(tmp_path: Path) -> Any:
    with running_server(tmp_path) as smtp:
        yield smtp


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    with open_store(StoreSettings(url=f"sqlite:///{tmp_path}/state.sqlite3"), tmp_path) as opened:
        yield opened


@pytest.fixture
def outbox(store: StateStore) -> Outbox:
    return Outbox(store)


def queue(outbox: Outbox, *recipients: str | tuple[str, ...]) -> list[Notification]:
    """Put one digest per entry in the outbox; a tuple is (to, cc...)."""
    digests, messages = [], {}
    for entry in recipients:
        to, *cc = (entry,) if isinstance(entry, str) else entry
        digest = Digest(to, date(2026, 5, 1), (), tuple(cc))
        digests.append(digest)
        messages[digest.key] = compose(
            key=digest.key,
            channel="email",
            from_address="reviews@example.org",
            from_name="Reviews",
            to=(to,),
            cc=cc,
            subject="Review reminder: 1 overdue",
            text="text\n",
            html="<p>html</p>\n",
            date=datetime(2026, 5, 1, 9, tzinfo=UTC),
        )
    outbox.enqueue(Plan(tuple(digests), (), ()), messages, now())
    return list(messages.values())


def smtp_channel(server: SmtpServer, **overrides: Any) -> SmtpChannel:
    return SmtpChannel(SmtpSettings(**server.settings(**overrides), password=Secret(PASSWORD)))


def deliver(
    outbox: Outbox,
    channel: Channel,
    settings: DeliverySettings = FAST_RETRY,
    deadline: float = 5,
) -> DeliveryReport:
    return asyncio.run(deliver_pending(outbox, channel, settings, deadline, now))


def delivered_to(server: SmtpServer) -> Counter[tuple[str, str]]:
    """(recipient, Message-ID) -> how many times the server accepted it."""
    return Counter(
        (rcpt, r.message["Message-ID"]) for r in server.handler.received for rcpt in r.recipients
    )


def statuses(outbox: Outbox) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    return [(row.status, tuple((a, s) for a, s, _, _ in row.recipients)) for row in outbox.rows()]


def test_batch_over_one_starttls_connection(server: SmtpServer, outbox: Outbox) -> None:
    messages = queue(outbox, "a@example.org", "b@example.org", "c@example.org")
    report = deliver(outbox, smtp_channel(server))
    assert (report.delivered, report.retrying, report.failed) == (3, 0, 0)
    assert delivered_to(server) == Counter({(m.recipients[0], m.message_id): 1 for m in messages})
    assert len(set(server.handler.sessions)) == 1  # one connection reused for the batch
    received = server.handler.received[0]
    assert received.sender == "reviews@example.org"
    assert received.message["Subject"] == "Review reminder: 1 overdue"
    assert statuses(outbox) == [("sent", ((m.recipients[0], "sent"),)) for m in messages]
    assert deliver(outbox, smtp_channel(server)).delivered == 0  # nothing left to send


def test_421_reconnects_and_the_message_is_retried(server: SmtpServer, outbox: Outbox) -> None:
    messages = queue(outbox, "a@example.org", "b@example.org")
    server.handler.faults.mail_replies = ["421 4.3.2 Service shutting down"]
    first = deliver(outbox, smtp_channel(server))
    assert (first.delivered, first.retrying) == (1, 1)
    assert len(set(server.handler.sessions)) == 2  # reconnected after the 421
    second = deliver(outbox, smtp_channel(server))
    assert (second.delivered, second.retrying) == (1, 0)
    assert delivered_to(server) == Counter({(m.recipients[0], m.message_id): 1 for m in messages})


@pytest.mark.parametrize(
    "fault",
    [
        {"rcpt_replies": {"a@example.org": ["450 4.2.1 Mailbox busy"]}},
        {"data_replies": ["451 4.3.0 Local error, try again"]},
        {"mail_replies": ["452 4.3.1 Insufficient storage"]},
        {"drop_in_data": 1},
    ],
    ids=["450-rcpt", "451-data", "452-mail", "dropped-in-data"],
)
def test_temporary_failures_are_retried_until_delivered_once(
    server: SmtpServer, outbox: Outbox, fault: dict[str, Any]
) -> None:
    (message,) = queue(outbox, "a@example.org")
    for name, value in fault.items():
        setattr(server.handler.faults, name, value)
    first = deliver(outbox, smtp_channel(server))
    assert (first.delivered, first.retrying, first.failed) == (0, 1, 0)
    assert statuses(outbox) == [("pending", (("a@example.org", "pending"),))]
    second = deliver(outbox, smtp_channel(server))
    assert (second.delivered, second.retrying, second.failed) == (1, 0, 0)
    assert delivered_to(server) == Counter({("a@example.org", message.message_id): 1})
    assert outbox.rows()[0].attempts == 2


def test_550_fails_permanently_and_is_reported(server: SmtpServer, outbox: Outbox) -> None:
    queue(outbox, "gone@example.org")
    server.handler.faults.rcpt_replies = {"gone@example.org": ["550 5.1.1 No such user"]}
    report = deliver(outbox, smtp_channel(server))
    assert (report.delivered, report.retrying, report.failed) == (0, 0, 1)
    assert report.failures == [
        ("digest:gone@example.org:2026-05-01", "gone@example.org", "5.1.1 No such user")
    ]
    row = outbox.rows()[0]
    assert (row.status, row.recipients) == (
        "failed",
        (("gone@example.org", "failed", 550, "5.1.1 No such user"),),
    )
    assert deliver(outbox, smtp_channel(server)).failed == 0  # not tried again by itself
    assert server.handler.received == []


def test_some_recipients_refused_others_accepted(server: SmtpServer, outbox: Outbox) -> None:
    (message,) = queue(outbox, ("editor@example.org", "gone@example.org", "busy@example.org"))
    server.handler.faults.rcpt_replies = {
        "gone@example.org": ["550 5.1.1 No such user"],
        "busy@example.org": ["450 4.2.1 Mailbox busy"],
    }
    first = deliver(outbox, smtp_channel(server))
    # this run failed a recipient for good, and another waits
    assert (first.delivered, first.retrying, first.failed) == (0, 1, 1)
    assert [(f[1], f[2]) for f in first.failures] == [("gone@example.org", "5.1.1 No such user")]
    assert statuses(outbox) == [
        (
            "pending",
            (
                ("editor@example.org", "sent"),
                ("gone@example.org", "failed"),
                ("busy@example.org", "pending"),
            ),
        )
    ]
    second = deliver(outbox, smtp_channel(server))
    # this run delivered to everyone it tried; the earlier failure is not counted again
    assert (second.delivered, second.retrying, second.failed) == (1, 0, 0)
    assert second.failures == []
    # the retry went to the busy recipient only
    assert [r.recipients for r in server.handler.received] == [
        ["editor@example.org"],
        ["busy@example.org"],
    ]
    assert delivered_to(server) == Counter(
        {("editor@example.org", message.message_id): 1, ("busy@example.org", message.message_id): 1}
    )
    assert statuses(outbox) == [
        (
            "failed",
            (
                ("editor@example.org", "sent"),
                ("gone@example.org", "failed"),
                ("busy@example.org", "sent"),
            ),
        )
    ]


def test_server_slower_than_the_deadline_is_retried_with_the_same_message_id(
    server: SmtpServer, outbox: Outbox
) -> None:
    warm, slow = queue(outbox, "a@example.org", "b@example.org")
    # The first message opens the connection; the second is stored by the server, which then
    # answers too late: the sender cannot know whether it arrived. The deadline leaves a loaded
    # machine seconds to connect and send the first one; the late answer comes well after it.
    server.handler.faults.slow_data = [0.0, 8.0]
    first = deliver(outbox, smtp_channel(server, message_deadline_seconds=4), deadline=4)
    assert (first.delivered, first.retrying) == (1, 1)
    row = outbox.rows()[1]
    assert row.recipients[0][3] is not None and row.recipients[0][3].startswith("timed out")
    second = deliver(outbox, smtp_channel(server))
    assert second.delivered == 1
    # At-least-once: the ambiguous attempt arrived too, with the same Message-ID.
    assert delivered_to(server) == Counter(
        {("a@example.org", warm.message_id): 1, ("b@example.org", slow.message_id): 2}
    )


def test_giving_up_after_the_window_fails_and_reports(server: SmtpServer, outbox: Outbox) -> None:
    queue(outbox, "a@example.org")
    server.handler.faults.data_replies = ["451 4.3.0 try later"]
    settings = DeliverySettings(retry_initial_seconds=0, give_up_after_hours=1e-9)
    report = deliver(outbox, smtp_channel(server), settings)
    assert (report.delivered, report.retrying, report.failed) == (0, 0, 1)
    assert report.failures[0][2] == "gave up after 1 attempts: 451 4.3.0 try later"


def test_backoff_schedules_the_next_attempt(server: SmtpServer, outbox: Outbox) -> None:
    queue(outbox, "a@example.org")
    server.handler.faults.data_replies = ["451 4.3.0 try later"] * 2
    settings = DeliverySettings(retry_initial_seconds=60, retry_max_seconds=90)
    before = now()
    deliver(outbox, smtp_channel(server), settings)
    assert outbox.rows()[0].next_attempt_at >= before + timedelta(seconds=60)
    assert deliver(outbox, smtp_channel(server), settings).retrying == 0  # not due yet
    t1 = now() + timedelta(seconds=61)
    asyncio.run(deliver_pending(outbox, smtp_channel(server), settings, 5, lambda: t1))
    row = outbox.rows()[0]
    assert row.attempts == 2
    assert timedelta(seconds=90) <= row.next_attempt_at - t1 < timedelta(seconds=91)  # capped


def test_a_crashed_holders_lease_expires(server: SmtpServer, outbox: Outbox) -> None:
    (message,) = queue(outbox, "a@example.org")
    t0 = now()
    lease = timedelta(seconds=600)
    claimed = outbox.claim(t0, "crashed:1:0123456789abcdef", lease, 10, channel="email")
    assert [c.key for c in claimed] == [message.key]
    # held: nobody else may take it
    assert outbox.claim(t0 + timedelta(seconds=599), "other:2:x", lease, 10, channel="email") == []
    later = t0 + timedelta(seconds=601)
    report = asyncio.run(
        deliver_pending(
            outbox, smtp_channel(server), FAST_RETRY, 5, lambda: later, owner="other:2:x"
        )
    )
    assert report.delivered == 1
    assert delivered_to(server) == Counter({("a@example.org", message.message_id): 1})


def test_starttls_fails_closed_without_starttls(tmp_path: Path, outbox: Outbox) -> None:
    queue(outbox, "a@example.org")
    with running_server(tmp_path, tls="none", auth=False) as plain:
        report = deliver(outbox, SmtpChannel(SmtpSettings(**plain.settings(username=""))))
        assert (report.delivered, report.retrying) == (0, 1)
        assert "STARTTLS" in (outbox.rows()[0].recipients[0][3] or "")
        assert plain.handler.received == []


def test_certificates_are_verified(tmp_path: Path, outbox: Outbox) -> None:
    queue(outbox, "a@example.org")
    with running_server(tmp_path, ca=trustme.CA()) as impostor:
        # trust a different CA than the one that signed the server's certificate
        trustme.CA().cert_pem.write_to_path(str(tmp_path / "other-ca.pem"))
        settings = impostor.settings(ca_file=str(tmp_path / "other-ca.pem"))
        report = deliver(outbox, SmtpChannel(SmtpSettings(**settings, password=Secret(PASSWORD))))
        assert (report.delivered, report.retrying) == (0, 1)
        assert "CERTIFICATE_VERIFY_FAILED" in (outbox.rows()[0].recipients[0][3] or "")
        assert impostor.handler.received == []


def test_implicit_tls(tmp_path: Path, outbox: Outbox) -> None:
    queue(outbox, "a@example.org")
    with running_server(tmp_path, tls="implicit") as tls:
        report = deliver(outbox, smtp_channel(tls, security="tls"))
        assert report.delivered == 1 and len(tls.handler.received) == 1


def test_plaintext_to_loopback(tmp_path: Path, outbox: Outbox) -> None:
    queue(outbox, "a@example.org")
    with running_server(tmp_path, tls="none", auth=False) as plain:
        settings = SmtpSettings(**plain.settings(security="none", username="", ca_file=None))
        assert deliver(outbox, SmtpChannel(settings)).delivered == 1


def test_password_never_appears_even_when_the_server_echoes_it(
    server: SmtpServer, outbox: Outbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    queue(outbox, "a@example.org")
    server.handler.faults.auth_reply = f"535 5.7.8 Bad credentials for password {PASSWORD}"
    caplog.set_level(logging.DEBUG)
    report = deliver(outbox, smtp_channel(server))
    assert report.retrying == 1  # a settings problem: kept for later, not dropped
    reply = outbox.rows()[0].recipients[0][3] or ""
    assert "535" in reply and "***" in reply
    assert PASSWORD not in reply
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("scheduler"))
    assert "deferred" in ours  # the failure was logged...
    assert PASSWORD not in ours  # ...without the secret (the test server's own log has it)
    with sqlite3.connect(tmp_path / "state.sqlite3") as db:
        db.execute("PRAGMA wal_checkpoint(FULL)")
    for path in tmp_path.glob("state.sqlite3*"):
        assert PASSWORD.encode() not in path.read_bytes()
    assert PASSWORD not in repr(SmtpSettings(**server.settings(), password=Secret(PASSWORD)))


def test_file_channel_writes_each_message_once(tmp_path: Path, outbox: Outbox) -> None:
    messages = queue(outbox, "a@example.org", ("b@example.org", "boss@example.org"))
    folder = tmp_path / "outbox"
    report = deliver(outbox, FileChannel(folder))
    assert report.delivered == 2
    files = sorted(folder.glob("*.eml"))
    assert len(files) == 2
    contents = b"".join(f.read_bytes() for f in files)
    for message in messages:
        assert build_message(message) in contents
    assert b"X-Envelope-To: b@example.org, boss@example.org" in contents
    assert not list(folder.glob("*.tmp"))


def test_the_message_sent_is_the_one_composed(server: SmtpServer, outbox: Outbox) -> None:
    (message,) = queue(outbox, ("a@example.org", "boss@example.org"))
    assert deliver(outbox, smtp_channel(server)).delivered == 1
    (received,) = server.handler.received
    assert received.data == build_message(message)
    assert received.recipients == ["a@example.org", "boss@example.org"]


def test_a_message_queued_by_version_0_1_is_sent_as_it_was(
    server: SmtpServer, store: StateStore, outbox: Outbox
) -> None:
    """Version 0.1 kept MIME bytes in the outbox (see test_state.py for the upgrade)."""
    (message,) = queue(outbox, "a@example.org")
    old = b"From: reviews@example.org\r\nTo: a@example.org\r\nSubject: old\r\n\r\nold body\r\n"
    store.outbox.enqueue([Queued(dataclasses.replace(message, key="old", prebuilt=old))], (), now())
    assert deliver(outbox, smtp_channel(server)).delivered == 2
    assert server.handler.received[1].data == old
