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
from scheduler.store.interfaces import Claimed, OutboxStatus

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
    delivered: int = 0  # messages fully delivered
    retrying: int = 0  # messages waiting for another attempt
    failed: int = 0  # messages with a recipient that failed for good
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # key, address, reply
    interrupted: bool = False


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
                if stop is not None and stop.is_set():
                    break
                attempted.add(message.id)
                await _deliver_one(outbox, channel, message, clock, policy, report)
                held.remove(message.id)
    finally:
        if held:  # stopped or cancelled: what was not finished is free for the next run
            outbox.release(held, owner)
        await channel.close()
    if stop is not None and stop.is_set():
        report.interrupted = True
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
    if recorded.status is OutboxStatus.SENT:
        report.delivered += 1
        log.info(
            "delivered %s to %s via %s",
            message.key,
            ", ".join(recorded.delivered),
            channel.description,
        )
    elif recorded.status is OutboxStatus.FAILED:
        report.failed += 1
    else:
        report.retrying += 1
