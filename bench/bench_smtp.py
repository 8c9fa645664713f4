"""Delivery throughput: the product's sender against a sender that connects per message.

Run by hand from the repository root, with the test extras installed:

    pip install -e '.[test]' && python bench/bench_smtp.py [--messages 1000]

Starts a real SMTP server on loopback (aiosmtpd, STARTTLS with a throwaway CA, AUTH), queues the
same N rendered digests twice, and delivers them through the product's delivery loop: once with
SmtpChannel (one connection reused for the batch) and once with a channel that opens, upgrades,
authenticates and closes a connection for every message. Prints messages per second and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scheduler.config import DeliverySettings, SmtpSettings, StoreSettings
from scheduler.config_schema import Secret
from scheduler.notify.channel import Notification, Result, compose
from scheduler.notify.delivery import deliver_pending
from scheduler.notify.digest import DigestRenderer, digest_context
from scheduler.notify.email import SmtpChannel, build_message
from scheduler.notify.outbox import Outbox
from scheduler.notify.reminders import Digest, DigestItem, Plan
from scheduler.results import DocumentReport
from scheduler.review.state import State
from scheduler.store import open_store
from tests.smtp_server import PASSWORD, running_server


class ConnectionPerMessage(SmtpChannel):
    """The baseline: what a script calling aiosmtplib.send() for each message does."""

    async def send(
        self, notification: Notification, recipients: Sequence[str]
    ) -> dict[str, Result]:
        try:
            return await super().send(notification, recipients)
        finally:
            await self.close()


def digests(count: int) -> tuple[Plan, dict[str, Notification]]:
    renderer = DigestRenderer()
    plan_digests: list[Digest] = []
    messages: dict[str, Notification] = {}
    for i in range(count):
        items = tuple(
            DigestItem(
                DocumentReport(
                    f"docs/page-{i}-{j}.md",
                    f"Patient page {j} about topic {i}",
                    State.OVERDUE,
                    "active",
                    date(2026, 1, 1),
                    "quarterly",
                    date(2026, 4, 1),
                    -30 - j,
                    (f"editor{i}@example.org",),
                    (),
                    3,
                    f"https://example.org/{i}/{j}",
                ),
                j == 0,
                False,
            )
            for j in range(5)
        )
        digest = Digest(f"editor{i}@example.org", date(2026, 5, 1), items)
        rendered = renderer.render(
            digest_context(digest, escalate_after_days=30, last_reviewed_key="lastReviewed")
        )
        plan_digests.append(digest)
        messages[digest.key] = compose(
            key=digest.key,
            channel="email",
            from_address="reviews@example.org",
            from_name="Reviews",
            to=(digest.recipient,),
            cc=(),
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            date=datetime(2026, 5, 1, 9, tzinfo=UTC),
        )
    return Plan(tuple(plan_digests), (), ()), messages


def run(
    label: str,
    channel_class: type[SmtpChannel],
    settings: SmtpSettings,
    plan: Plan,
    messages: dict[str, Notification],
    folder: Path,
) -> float:
    store_settings = StoreSettings(url=f"sqlite:///{folder / label}.sqlite3")
    with open_store(store_settings, folder) as store:
        outbox = Outbox(store)
        outbox.enqueue(plan, messages, datetime.now(UTC) - timedelta(seconds=1))
        started = time.perf_counter()
        report = asyncio.run(
            deliver_pending(
                outbox, channel_class(settings), DeliverySettings(), 30, lambda: datetime.now(UTC)
            )
        )
        elapsed = time.perf_counter() - started
    assert report.delivered == len(plan.digests), report
    rate = report.delivered / elapsed
    print(f"{label:<24} {report.delivered:>6} messages  {elapsed:8.2f} s  {rate:9.1f} msg/s")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    args = parser.parse_args()
    logging.getLogger("mail.log").setLevel(logging.ERROR)  # the test server's chatter
    plan, messages = digests(args.messages)
    size = sum(len(build_message(m)) for m in messages.values()) / len(messages)
    print(f"{args.messages} digests of {size / 1024:.1f} KiB each, STARTTLS + AUTH on loopback")
    with tempfile.TemporaryDirectory() as tmp, running_server(Path(tmp)) as server:
        settings = SmtpSettings(
            **server.settings(timeout_seconds=30, message_deadline_seconds=30),
            password=Secret(PASSWORD),
        )
        baseline = run(
            "connection per message", ConnectionPerMessage, settings, plan, messages, Path(tmp)
        )
        ours = run("review-scheduler", SmtpChannel, settings, plan, messages, Path(tmp))
        assert len(server.handler.received) == 2 * args.messages
    print(f"ratio: review-scheduler delivers {ours / baseline:.1f}x the messages per second")


if __name__ == "__main__":
    main()
