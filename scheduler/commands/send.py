"""``review-scheduler send``: one reminder cycle, or with ``--dry-run`` what it would send."""

from __future__ import annotations

from datetime import date
from email import message_from_bytes, policy
from pathlib import Path

import click

from scheduler.commands.options import as_of_option, config_option, now, settings_for, today_for
from scheduler.notify.channel import Notification
from scheduler.notify.email import build_message
from scheduler.render.common import shown_lines
from scheduler.runtime.cycle import CycleReport, UndeliveredDigests
from scheduler.usecases import reminders


def _print_digest(message: Notification) -> None:
    parsed = message_from_bytes(build_message(message), policy=policy.default)
    lines = [f"To: {parsed['To']}"]
    if parsed["Cc"]:
        lines.append(f"Cc: {parsed['Cc']}")
    lines.append(f"Subject: {parsed['Subject']}")
    body = parsed.get_body(preferencelist=("plain",))
    lines += ["", body.get_content() if body is not None else ""]
    click.echo(shown_lines("\n".join(lines)))


def _skipped(keys: tuple[str, ...]) -> str:
    return f" ({len(keys)} already queued earlier this cycle)" if keys else ""


@click.command(
    "send",
    epilog="Exit codes: 0 cycle done (deliveries may wait for a retry); 1 a delivery "
    "failed for good in this run, a message was held as unconfirmed, a digest was refused, or "
    "nothing could be delivered (untrusted certificate, no STARTTLS, login refused: the cause "
    "is logged and shown by 'status'); 2 usage or configuration error (checked before anything "
    "is sent: [smtp] ca_file, a username without SCHEDULER_SMTP__PASSWORD, [delivery] "
    "lease_seconds), or a digest template failed (what already waited in the outbox is "
    "delivered first; no new digest is queued); 3 unexpected failure.",
)
@config_option
@as_of_option
@click.option(
    "--dry-run",
    is_flag=True,
    help="Render and print the digests that would be sent; write and send nothing.",
)
def command(config_path: Path | None, as_of: date | None, dry_run: bool) -> int:
    """Run one reminder cycle: check, decide, queue the digests, deliver them.

    Each editor gets at most one digest per day, listing everything outstanding for them; a
    second run on the same day sends nothing new. With no [smtp] host configured, messages are
    written as .eml files to [mail] outbox_dir.
    """
    settings = settings_for(config_path)
    today = today_for(settings, as_of)
    if dry_run:
        report = reminders.dry_run(settings, Path.cwd(), today, now())
        for message in report.messages.values():
            _print_digest(message)
            click.echo("-" * 72)
        click.echo(
            f"Dry run for {today.isoformat()}: {report.documents} documents, "
            f"{report.outstanding} outstanding; {len(report.queued)} digests would be queued"
            f"{_skipped(report.skipped)}."
        )
        return 0
    try:
        report = reminders.send(settings, Path.cwd(), today, now)
    except UndeliveredDigests as exc:
        _summarise(exc.report, today)  # what waited was delivered all the same
        raise
    return _summarise(report, today)


def _summarise(report: CycleReport, today: date) -> int:
    delivery = report.delivery
    assert delivery is not None
    click.echo(
        f"Reminder cycle for {today.isoformat()}: {report.documents} documents, "
        f"{report.outstanding} outstanding."
    )
    click.echo(f"Queued {len(report.queued)} digests{_skipped(report.skipped)}.")
    click.echo(
        f"Delivered via {report.destination}: {delivery.delivered} delivered, "
        f"{delivery.retrying} waiting for a retry, {delivery.failed} failed"
        + (f", {delivery.unconfirmed} unconfirmed" if delivery.unconfirmed else "")
        + "."
    )
    # Failed deliveries, held messages, the cause of a delivery problem and refused digests
    # have already been logged, one line each.
    problem = delivery.failed or delivery.unconfirmed or delivery.cause
    return 1 if problem or report.refused else 0
