"""The outbox's guarantees and the delivery loop, over any channel: a fake in-memory channel
and a real state store in tmp_path. (Email end to end: tests/test_delivery.py.)"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import socket
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from scheduler.config import DeliverySettings, StoreSettings
from scheduler.notify.channel import Notification, Outcome, Result
from scheduler.notify.delivery import DeliveryReport, deliver_pending, worker_id
from scheduler.notify.outbox import Outbox, RetryPolicy, lease_holder
from scheduler.notify.reminders import Digest, LedgerEntry, Plan
from scheduler.review.state import State
from scheduler.store import StateStore, open_store

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
DAY = date(2026, 5, 1)
RETRY = DeliverySettings(retry_initial_seconds=60, retry_max_seconds=240, give_up_after_hours=1)

DELIVERED = Result(Outcome.DELIVERED, 250, "2.0.0 ok")
BUSY = Result(Outcome.TEMPORARY, 450, "4.2.1 busy")
GONE = Result(Outcome.PERMANENT, 550, "5.1.1 no such user")


class FakeChannel:
    """Delivers to a list in memory. ``script`` gives each address its results in turn (then
    delivered). ``sending`` is set when a send begins; with ``hold``, sends wait for it."""

    name = "email"
    description = "the fake channel"

    def __init__(self, script: dict[str, list[Result]] | None = None) -> None:
        self.script = script or {}
        self.sent: list[tuple[str, tuple[str, ...]]] = []
        self.closed = 0
        self.sending = asyncio.Event()
        self.hold: asyncio.Event | None = None

    async def send(
        self, notification: Notification, recipients: Sequence[str]
    ) -> dict[str, Result]:
        self.sending.set()
        if self.hold is not None:
            await self.hold.wait()
        self.sent.append((notification.key, tuple(recipients)))
        return {r: (self.script.get(r) or [DELIVERED]).pop(0) for r in recipients}

    async def close(self) -> None:
        self.closed += 1


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    with open_store(StoreSettings(url=f"sqlite:///{tmp_path}/state.sqlite3"), tmp_path) as opened:
        yield opened


def digest(recipient: str, *cc: str) -> Digest:
    return Digest(recipient, DAY, (), cc)


def notification(d: Digest) -> Notification:
    return Notification(
        key=d.key,
        channel="email",
        sender="reviews@example.org",
        sender_name="Reviews",
        to=(d.recipient,),
        cc=d.cc,
        subject="Review reminder",
        text="text\n",
        html="<p>html</p>\n",
    )


def entry(recipient: str, path: str) -> LedgerEntry:
    return LedgerEntry(recipient.casefold(), path, DAY, State.OVERDUE, DAY)


def queue(outbox: Outbox, *digests: Digest, now: datetime = T0) -> tuple[list[str], list[str]]:
    plan = Plan(digests, tuple(entry(d.recipient, f"{d.recipient}.md") for d in digests), ())
    return outbox.enqueue(plan, {d.key: notification(d) for d in digests}, now)


def deliver(
    outbox: Outbox,
    channel: FakeChannel,
    at: datetime = T0,
    settings: DeliverySettings = RETRY,
    stop: asyncio.Event | None = None,
) -> DeliveryReport:
    return asyncio.run(deliver_pending(outbox, channel, settings, 5, lambda: at, stop=stop))


def states(outbox: Outbox) -> list[tuple[str, list[tuple[str, str]]]]:
    return [(r.status, [(a, s) for a, s, _, _ in r.recipients]) for r in outbox.rows()]


# --------------------------------------------------------------------------- enqueue


def test_one_digest_per_recipient_per_day(store: StateStore) -> None:
    outbox = Outbox(store)
    assert queue(outbox, digest("Ed@example.org"), digest("jo@example.org")) == (
        ["digest:ed@example.org:2026-05-01", "digest:jo@example.org:2026-05-01"],
        [],
    )
    assert queue(outbox, digest("ed@example.org")) == ([], ["digest:ed@example.org:2026-05-01"])
    assert len(outbox.rows()) == 2
    channel = FakeChannel()
    assert deliver(outbox, channel).delivered == 2
    assert deliver(outbox, channel).delivered == 0
    assert len(channel.sent) == 2


def test_ledger_entries_go_with_their_digest_only(store: StateStore) -> None:
    outbox = Outbox(store)
    ed, jo = digest("Ed@example.org"), digest("jo@example.org")
    plan = Plan(
        (ed, jo),
        (entry("ed@example.org", "a.md"), entry("jo@example.org", "b.md")),
        (("gone@example.org", "c.md"),),
    )
    # jo's digest was refused while composing: neither queued nor remembered
    assert outbox.enqueue(plan, {ed.key: notification(ed)}, T0) == ([ed.key], [])
    assert list(outbox.ledger()) == [("ed@example.org", "a.md")]


def test_a_skipped_digest_changes_no_ledger_entry(store: StateStore) -> None:
    outbox = Outbox(store)
    queue(outbox, digest("ed@example.org"))
    before = outbox.ledger()
    later = LedgerEntry("ed@example.org", "ed@example.org.md", DAY, State.INVALID, DAY)
    ed = digest("ed@example.org")
    assert outbox.enqueue(Plan((ed,), (later,), ()), {ed.key: notification(ed)}, T0)[1] == [ed.key]
    assert outbox.ledger() == before


# --------------------------------------------------------------------------- delivery outcomes


def test_temporary_failures_back_off_exponentially_then_deliver(store: StateStore) -> None:
    outbox = Outbox(store)
    queue(outbox, digest("ed@example.org"))
    channel = FakeChannel({"ed@example.org": [BUSY, BUSY, BUSY]})
    at = T0
    for wait in (60, 120, 240):
        report = deliver(outbox, channel, at)
        assert (report.delivered, report.retrying) == (0, 1)
        (row,) = outbox.rows()
        assert row.next_attempt_at == at + timedelta(seconds=wait)
        assert deliver(outbox, channel, row.next_attempt_at - timedelta(seconds=1)).retrying == 0
        at = row.next_attempt_at
    report = deliver(outbox, channel, at)
    assert report.delivered == 1
    assert [r.attempts for r in outbox.rows()] == [4]
    assert states(outbox) == [("sent", [("ed@example.org", "sent")])]


def test_backoff_is_capped() -> None:
    policy = RetryPolicy(initial_seconds=60, max_seconds=240, give_up_after=timedelta(hours=1))
    assert [policy.delay(n).total_seconds() for n in range(1, 6)] == [60, 120, 240, 240, 240]


def test_permanent_failures_fail_at_once_and_are_reported(store: StateStore) -> None:
    outbox = Outbox(store)
    (key,), _ = queue(outbox, digest("ed@example.org"))
    report = deliver(outbox, FakeChannel({"ed@example.org": [GONE]}))
    assert (report.delivered, report.retrying, report.failed) == (0, 0, 1)
    assert report.failures == [(key, "ed@example.org", "5.1.1 no such user")]
    assert outbox.rows()[0].recipients[0] == ("ed@example.org", "failed", 550, "5.1.1 no such user")
    assert deliver(outbox, FakeChannel(), T0 + timedelta(days=1)).failed == 0  # not retried alone


def test_recipients_are_settled_one_by_one(store: StateStore) -> None:
    outbox = Outbox(store)
    queue(outbox, digest("ed@example.org", "gone@example.org", "busy@example.org"))
    channel = FakeChannel({"gone@example.org": [GONE], "busy@example.org": [BUSY]})
    first = deliver(outbox, channel)
    # this run failed gone@ for good (counted, so the run reports it) and busy@ waits
    assert (first.delivered, first.retrying, first.failed) == (0, 1, 1)
    assert states(outbox) == [
        (
            "pending",
            [
                ("ed@example.org", "sent"),
                ("gone@example.org", "failed"),
                ("busy@example.org", "pending"),
            ],
        )
    ]
    second = deliver(outbox, channel, T0 + timedelta(minutes=1))
    # delivered to the one it tried: gone@'s failure belongs to the first run
    assert (second.delivered, second.retrying, second.failed) == (1, 0, 0)
    assert [recipients for _, recipients in channel.sent] == [
        ("ed@example.org", "gone@example.org", "busy@example.org"),
        ("busy@example.org",),  # the retry went to the one still pending
    ]
    assert outbox.rows()[0].status == "failed"


def test_giving_up_after_the_window(store: StateStore) -> None:
    outbox = Outbox(store)
    queue(outbox, digest("ed@example.org"))
    channel = FakeChannel({"ed@example.org": [BUSY] * 10})
    assert deliver(outbox, channel, T0 + timedelta(minutes=59)).retrying == 1
    report = deliver(outbox, channel, T0 + timedelta(hours=1))
    assert (report.retrying, report.failed) == (0, 1)
    assert report.failures[0][2] == "gave up after 2 attempts: 4.2.1 busy"


LATE = Result(Outcome.UNCONFIRMED, None, "timed out after the message data was sent")


def test_an_unconfirmed_recipient_gets_one_more_attempt_then_is_held(store: StateStore) -> None:
    outbox = Outbox(store)
    queue(outbox, digest("ed@example.org", "boss@example.org"))
    channel = FakeChannel({"ed@example.org": [LATE, LATE], "boss@example.org": [BUSY, BUSY]})
    first = deliver(outbox, channel)
    assert (first.retrying, first.unconfirmed) == (1, 0)
    second = deliver(outbox, channel, T0 + timedelta(minutes=1))
    assert (second.retrying, second.unconfirmed) == (1, 1)  # boss@ still waits
    assert states(outbox) == [
        ("pending", [("ed@example.org", "unconfirmed"), ("boss@example.org", "pending")])
    ]
    third = deliver(outbox, channel, T0 + timedelta(minutes=5))  # boss@ delivered now
    assert (third.delivered, third.unconfirmed) == (1, 0)
    assert channel.sent[2] == (digest("ed@example.org").key, ("boss@example.org",))  # not ed@
    assert states(outbox) == [
        ("unconfirmed", [("ed@example.org", "unconfirmed"), ("boss@example.org", "sent")])
    ]
    assert deliver(outbox, channel, T0 + timedelta(days=3)).delivered == 0  # held for good


def test_giving_up_after_an_unconfirmed_attempt_holds_instead_of_failing(
    store: StateStore,
) -> None:
    outbox = Outbox(store)
    queue(outbox, digest("ed@example.org"))
    channel = FakeChannel({"ed@example.org": [LATE, BUSY]})
    assert deliver(outbox, channel).retrying == 1
    report = deliver(outbox, channel, T0 + timedelta(hours=1))  # the window ends with a 4xx
    assert (report.failed, report.unconfirmed) == (0, 1)
    assert states(outbox) == [("unconfirmed", [("ed@example.org", "unconfirmed")])]
    reply = outbox.rows()[0].recipients[0].reply or ""
    assert reply == "unconfirmed after 2 attempts, perhaps delivered: 4.2.1 busy"


def test_a_recipient_without_a_result_is_tried_again(store: StateStore) -> None:
    class Silent(FakeChannel):
        async def send(self, n: Notification, recipients: Sequence[str]) -> dict[str, Result]:
            return {}

    outbox = Outbox(store)
    queue(outbox, digest("ed@example.org"))
    assert deliver(outbox, Silent()).retrying == 1
    assert outbox.rows()[0].recipients[0][3] == "no result"


def test_failed_recipients_can_be_queued_again(store: StateStore) -> None:
    outbox = Outbox(store)
    queue(outbox, digest("ed@example.org", "gone@example.org"), digest("jo@example.org"))
    deliver(outbox, FakeChannel({"gone@example.org": [GONE], "jo@example.org": [GONE]}))
    ed_id, jo_id = (row.id for row in outbox.rows())
    later = T0 + timedelta(days=2)
    assert outbox.requeue([ed_id, 12345], later) == [ed_id]
    channel = FakeChannel()
    assert deliver(outbox, channel, later).delivered == 1
    assert channel.sent == [("digest:ed@example.org:2026-05-01", ("gone@example.org",))]
    assert outbox.counts() == {"pending": 0, "sent": 1, "failed": 1, "unconfirmed": 0}
    assert outbox.requeue(None, later) == [jo_id]


# --------------------------------------------------------------------------- leases and stopping


def test_a_stop_finishes_the_notification_in_flight_and_releases_the_rest(
    store: StateStore,
) -> None:
    outbox = Outbox(store)
    queue(outbox, *(digest(f"e{i}@example.org") for i in range(4)))
    stop = asyncio.Event()
    channel = FakeChannel()

    class Stopping(FakeChannel):
        async def send(self, n: Notification, recipients: Sequence[str]) -> dict[str, Result]:
            stop.set()  # the stop arrives while the first notification is being sent
            return await channel.send(n, recipients)

    report = deliver(outbox, Stopping(), stop=stop)
    assert (report.delivered, report.interrupted) == (1, True)
    assert outbox.counts() == {"pending": 3, "sent": 1, "failed": 0, "unconfirmed": 0}
    assert store.outbox.lease_owners() == []  # the rest are free for the next run
    assert deliver(outbox, channel).delivered == 3


def test_a_cancelled_delivery_releases_what_it_held(store: StateStore) -> None:
    outbox = Outbox(store)
    queue(outbox, digest("a@example.org"), digest("b@example.org"))
    channel = FakeChannel()

    async def cancel_mid_send() -> None:
        channel.hold = asyncio.Event()  # never set: the first send waits until cancelled
        task = asyncio.create_task(
            deliver_pending(outbox, channel, RETRY, 5, lambda: T0, owner="me:1:x")
        )
        await channel.sending.wait()
        assert store.outbox.lease_owners() == ["me:1:x"]
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_mid_send())
    assert store.outbox.lease_owners() == []
    assert channel.closed == 1
    channel.hold = None
    assert deliver(outbox, channel).delivered == 2


def test_leases_of_dead_processes_on_this_host_are_freed(store: StateStore) -> None:
    outbox = Outbox(store)
    queue(outbox, *(digest(f"e{i}@example.org") for i in range(4)))
    host = socket.gethostname()
    dead, alive = 2**22 + 1, os.getpid()
    owners = (
        f"{host}:{dead}:0123456789abcdef",
        f"{host}:{alive}:fedcba9876543210",
        f"other-host:{dead}:0123456789abcdef",
        f"{host}:{dead}",  # as version 0.1 wrote them
    )
    for owner in owners:
        outbox.claim(T0, owner, timedelta(hours=1), 1, channel="email")
    assert outbox.release_dead(host, lambda pid: pid == alive) == 2  # both forms of owner
    assert sorted(store.outbox.lease_owners()) == [
        f"other-host:{dead}:0123456789abcdef",
        f"{host}:{alive}:fedcba9876543210",
    ]
    report = asyncio.run(deliver_pending(outbox, FakeChannel(), RETRY, 5, lambda: T0))
    assert report.delivered == 2  # the dead ones' notifications, at once


def test_lease_owners_are_host_pid_and_a_token_of_this_process() -> None:
    owner = worker_id()
    assert re.fullmatch(rf"{re.escape(socket.gethostname())}:{os.getpid()}:[0-9a-f]{{16}}", owner)
    assert worker_id() == owner
    assert lease_holder(owner) == (socket.gethostname(), os.getpid())
    assert lease_holder("host:12") == ("host", 12)
    assert lease_holder("nonsense") is None


def test_notifications_for_other_channels_are_left_alone(store: StateStore) -> None:
    outbox = Outbox(store)
    ed = digest("ed@example.org")
    chat = dataclasses.replace(notification(ed), channel="chat")
    outbox.enqueue(Plan((ed,), (), ()), {ed.key: chat}, T0)
    channel = FakeChannel()
    assert deliver(outbox, channel).delivered == 0
    assert channel.sent == [] and channel.closed == 1
