"""``review-scheduler schedule``: the next fire times of ``[daemon] schedule``, to check a cron
expression before the daemon runs it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from scheduler.commands.options import config_option, now, settings_for


def _parse_from(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise click.BadParameter(
                f"{value!r} is not a date and time: write YYYY-MM-DD HH:MM[:SS], with an "
                "offset such as +02:00 or Z for a moment not in the [review] time zone"
            ) from None
    return value


@click.command(
    "schedule",
    epilog="Exit codes: 0 listed; 2 configuration error (an invalid schedule among them).",
)
@config_option
@click.option(
    "--from",
    "start",
    callback=_parse_from,
    metavar="DATETIME",
    help="List fire times at or after this moment (YYYY-MM-DD HH:MM[:SS], in the [review] "
    "time zone unless an offset is given). Default: now.",
)
@click.option(
    "--count",
    type=click.IntRange(1, 1000),
    default=5,
    show_default=True,
    help="How many fire times to list.",
)
def command(config_path: Path | None, start: str | None, count: int) -> int:
    """List the next fire times of the [daemon] schedule, in local time and in UTC.

    Computed by the daemon's own trigger, daylight-saving changes included: a time skipped by
    a spring change fires as far past the gap as it was into it, a repeated time once.
    """
    from scheduler.runtime.daemon import cycle_trigger  # imports APScheduler: only here

    settings = settings_for(config_path)
    zone = settings.review.zone
    if start is None:
        moment = now()
    else:
        given = datetime.fromisoformat(start)
        moment = given if given.tzinfo is not None else given.replace(tzinfo=zone)
    trigger = cycle_trigger(settings)
    click.echo(f"Schedule: {settings.daemon.schedule!r} in {zone.key}")
    click.echo(f"From: {_shown(moment.astimezone(zone))}")
    fire = trigger.next_after(moment)
    if fire is None:
        click.echo("Never fires.")
        return 0
    width = len(str(count))
    for number in range(1, count + 1):
        if fire is None:
            click.echo("No more fire times.")
            break
        click.echo(
            f"{number:>{width}}. {_shown(fire.astimezone(zone))}  ({_shown(fire.astimezone(UTC))})"
        )
        fire = trigger.next_after(fire, strictly_after=fire)
    return 0


def _shown(moment: datetime) -> str:
    """``Mon 2026-03-30 09:00:00 CEST +0200``."""
    return moment.strftime("%a %Y-%m-%d %H:%M:%S %Z %z").replace("UTC +0000", "UTC")
