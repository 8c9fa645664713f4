"""``review-scheduler calendar``: review dates as an iCalendar (.ics) feed."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import click

from scheduler.commands.options import as_of_option, config_option, settings_for, today_for
from scheduler.errors import UsageError
from scheduler.usecases.publish import calendar, write_file


@click.command("calendar")
@config_option
@as_of_option
@click.option("--editor", metavar="EMAIL", help="Only the reviews this editor is responsible for.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The .ics file to write. Default: standard output.",
)
def command(
    config_path: Path | None, as_of: date | None, editor: str | None, out: Path | None
) -> int:
    """Write an iCalendar feed with one all-day event per upcoming or overdue review.

    Events keep their UID from run to run, so importing the feed again updates them.
    """
    settings = settings_for(config_path)
    feed = calendar(settings, Path.cwd(), today_for(settings, as_of), editor)
    if out is None:
        sys.stdout.buffer.write(feed)
        sys.stdout.flush()
    else:
        try:
            write_file(out, feed)
        except OSError as exc:
            raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
    return 0
