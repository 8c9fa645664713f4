"""``review-scheduler snooze``: postpone a document's reminders, with a reason."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click

from scheduler.commands.options import (
    as_of_option,
    config_option,
    date_option,
    now,
    settings_for,
    today_for,
)
from scheduler.errors import UsageError
from scheduler.render.common import shown
from scheduler.usecases import reviews


@click.command(
    "snooze",
    epilog="Exit codes: 0 done; 1 a document was refused; 2 usage or configuration error; "
    "3 unexpected failure.",
)
@click.argument("names", nargs=-1, metavar="PATH...")
@config_option
@as_of_option
@date_option("--until", "until", "Postpone reminders until this date (they resume on it).")
@click.option("--reason", metavar="TEXT", help="Why the review is postponed (required).")
@click.option("--by", "editor", metavar="EDITOR", help="Who postponed it.")
@click.option("--list", "listing", is_flag=True, help="List the documents snoozed now.")
@click.option("--cancel", is_flag=True, help="Remove the snoozes of the documents named.")
def command(
    names: tuple[str, ...],
    config_path: Path | None,
    as_of: date | None,
    until: date | None,
    reason: str | None,
    editor: str | None,
    listing: bool,
    cancel: bool,
) -> int:
    """Postpone the reminders for documents until a date, at most [reminders] max_snooze_days
    ahead. Snoozed documents stay in every report, marked snoozed, and are left out of digests
    until the date; then they come back by themselves.
    """
    settings = settings_for(config_path)
    today = today_for(settings, as_of)
    cwd = Path.cwd()
    if listing:
        result = reviews.list_snoozes(settings, cwd, today)
        for item in result.listed:
            by = f" by {item.editor}" if item.editor else ""
            click.echo(f"{shown(item.path)}: snoozed until {item.until}{by}: {shown(item.reason)}")
        if not result.listed:
            click.echo("No documents are snoozed.")
        return 0
    if not names:
        raise UsageError("name the documents to snooze (or use --list)")
    if cancel:
        result = reviews.cancel_snoozes(settings, cwd, names, now(), editor)
        for path in result.cancelled:
            click.echo(f"{shown(path)}: snooze cancelled")
    else:
        if until is None or reason is None:
            raise UsageError("snooze needs --until DATE and --reason TEXT")
        result = reviews.snooze(
            settings, cwd, names, today, now(), until=until, reason=reason, editor=editor
        )
        for item in result.snoozed:
            click.echo(f"{shown(item.path)}: snoozed until {item.until}")
    for refusal in result.refused:
        click.echo(f"{shown(refusal.shown)}: not changed: {refusal.reason}", err=True)
    return 1 if result.refused else 0
