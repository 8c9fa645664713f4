"""Deliver what waits in the outbox over a channel: claim under a lease, send, record, back off.

Used by ``review-scheduler send``, ``outbox retry`` and the daemon's drain job alike.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache

from scheduler.config import DeliverySettings
from scheduler.notify.channel import Channel
from scheduler.notify.outbox import Outbox, RetryPolicy
from scheduler.store.interfaces import Claimed

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


@cache
def _token(pid: int) -> str:
    return secrets.token_hex(8)


def worker_id() -> str:
    """Who holds a lease: ``host:pid:token``. Host and process say which process it was (and
    let :meth:`Outbox.release_dead` free the leases of dead ones); the random token, new in each
    process, makes the owner unique even across hosts of the same name, so no process releases
    or records another's claims as its own."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_token(pid)}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def retry_policy(settings: DeliverySettings) -> RetryPolicy:
    return RetryPolicy(
        initial_seconds=settings.retry_initial_seconds,
        max_seconds=settings.retry_max_seconds,
        give_up_after=timedelta(hours=settings.give_up_after_hours),
    )


@dataclass
class DeliveryReport:
    """What one delivery run did to the messages it attempted. A message counts as failed when
    a recipient failed for good in this run, as waiting for a retry when a recipient still
    waits, as unconfirmed when one is held, as delivered when every recipient this run tried
    has it; one with a recipient failed and another waiting counts in both. Recipients that
    failed in earlier runs count in none of these."""

    delivered: int = 0  # messages delivered to everyone this run tried
    retrying: int = 0  # messages waiting for another attempt
    failed: int = 0  # messages with a recipient that failed for good in this run
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # key, address, reply
    interrupted: bool = False
    unconfirmed: int = 0  # messages held: no answer after their data, perhaps delivered
    # why nothing could be delivered (settings or server: certificate, STARTTLS, login)
    cause: str | None = None


async def deliver_pending(
    outbox: Outbox,
    channel: Channel,
    settings: DeliverySettings,
    message_deadline: float,
    clock: Clock,
    owner: str | None = None,
    stop: asyncio.Event | None = None,
) -> DeliveryReport:
    """Send every notification for ``channel`` that is due now, once each, over one reused
    connection; ``channel`` is closed at the end.

    Notifications are claimed a few at a time, so a lease never expires while its holder is still
    working within the per-message deadline. When ``stop`` is set, the message being sent is
    finished and the rest are released for the next run.
    """
    owner = owner or worker_id()
    freed = outbox.release_dead(socket.gethostname(), _alive)
    if freed:
        log.info("took over %d messages from processes that are gone", freed)
    lease = timedelta(seconds=settings.lease_seconds)
    per_claim = max(1, int(settings.lease_seconds // message_deadline) - 1)
    policy = retry_policy(settings)
    report = DeliveryReport()
    attempted: set[int] = set()
    held: list[int] = []  # claimed and not yet recorded
    try:
        while not (stop is not None and stop.is_set()):
            claimed = outbox.claim(
                clock(), owner, lease, per_claim, channel=channel.name, exclude=attempted
            )
            if not claimed:
                break
            held = [m.id for m in claimed]
            for message in claimed:
                if (stop is not None and stop.is_set()) or report.cause is not None:
                    break
                attempted.add(message.id)
                await _deliver_one(outbox, channel, message, clock, policy, report)
                held.remove(message.id)
            if report.cause is not None:
                # Nothing can be delivered until the settings or the server change: the rest
                # wait for the next run rather than fail the same way one by one.
                break
    finally:
        if held:  # stopped or cancelled: what was not finished is free for the next run
            outbox.release(held, owner)
        await channel.close()
    if stop is not None and stop.is_set():
        report.interrupted = True
    if report.cause is not None:
        outbox.note_delivery(report.cause, clock())  # recorded before it is announced
        log.error("nothing can be delivered via %s: %s", channel.description, report.cause)
    elif report.delivered or report.failed or report.retrying or report.unconfirmed:
        outbox.note_delivery(None, clock())
    return report


async def _deliver_one(
    outbox: Outbox,
    channel: Channel,
    message: Claimed,
    clock: Clock,
    policy: RetryPolicy,
    report: DeliveryReport,
) -> None:
    results = await channel.send(message.notification, message.pending)
    report.cause = next((r.cause for r in results.values() if r.cause), report.cause)
    recorded = outbox.record(message, results, clock(), policy)
    for address, reply in recorded.failed:
        log.error("delivery failed for good: %s to %s: %s", message.key, address, reply)
        report.failures.append((message.key, address, reply))
    if recorded.retrying:
        log.warning(
            "delivery to %s deferred, next attempt at %s: %s",
            ", ".join(recorded.retrying),
            recorded.next_attempt_at.isoformat(timespec="seconds")
            if recorded.next_attempt_at
            else "-",
            "; ".join(results[a].reply for a in recorded.retrying if a in results),
        )
    for address in recorded.unconfirmed:
        log.error(
            "delivery of %s to %s unconfirmed: the server did not answer after the message "
            "was sent, twice; perhaps it was delivered. Held: resend it with 'outbox retry %d'",
            message.key,
            address,
            message.id,
        )
    if recorded.delivered:
        log.info(
            "delivered %s to %s via %s",
            message.key,
            ", ".join(recorded.delivered),
            channel.description,
        )
    report.failed += bool(recorded.failed)
    report.retrying += bool(recorded.retrying)
    report.unconfirmed += bool(recorded.unconfirmed)
    report.delivered += not (recorded.failed or recorded.retrying or recorded.unconfirmed)
