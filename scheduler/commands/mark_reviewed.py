"""``review-scheduler mark-reviewed``: record a review in the documents and the review log."""

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
from scheduler.render.common import shown, shown_lines
from scheduler.usecases import reviews


@click.command(
    "mark-reviewed",
    epilog="Exit codes: 0 every document recorded; 1 a document was refused (the others are "
    "changed), or git did not commit them; 2 usage or configuration error (nothing is "
    "changed); 3 unexpected failure.",
)
@click.argument("names", nargs=-1, required=True, metavar="PATH...")
@config_option
@as_of_option
@date_option("--date", "day", "The date of the review. Default: today.")
@click.option("--by", "editor", metavar="EDITOR", help="Who reviewed the documents.")
@click.option(
    "--outcome",
    type=click.Choice(reviews.OUTCOMES),
    help="What the review found: no change needed, a minor or a major update.",
)
@click.option("--note", metavar="TEXT", help="A note kept with the review in the history.")
@click.option(
    "--force", is_flag=True, help="Allow a date earlier than the last-reviewed date written."
)
@click.option("--dry-run", is_flag=True, help="Print the change as a unified diff; write nothing.")
@click.option(
    "--commit", is_flag=True, help="Commit the changed documents in their git working tree."
)
def command(
    names: tuple[str, ...],
    config_path: Path | None,
    as_of: date | None,
    day: date | None,
    editor: str | None,
    outcome: str | None,
    note: str | None,
    force: bool,
    dry_run: bool,
    commit: bool,
) -> int:
    """Record that documents were reviewed: set their last-reviewed date and log the review.

    PATH may be a file or a glob ('docs/**/*.md'). Only the date's characters change in each file;
    a file without the field gets it as the last line of its frontmatter. A page with a
    next-review date (review_by) gets it moved to the review date plus the page's frequency.
    """
    settings = settings_for(config_path)
    result = reviews.mark_reviewed(
        settings,
        Path.cwd(),
        names,
        today_for(settings, as_of),
        now(),
        day=day,
        editor=editor,
        outcome=outcome,
        note=note,
        force=force,
        dry_run=dry_run,
        commit=commit,
    )
    for change in result.changes:
        if dry_run:
            click.echo(shown_lines(change.diff), nl=False)
        else:
            old = change.old_date.isoformat() if change.old_date else "(none)"
            due = f"; next review {change.next_due}" if change.next_due else ""
            click.echo(f"{shown(change.shown)}: last reviewed {old} -> {change.new_date}{due}")
    for refusal in result.refused:
        click.echo(f"{shown(refusal.shown)}: not changed: {refusal.reason}", err=True)
    if result.commit:
        click.echo(f"Committed as {result.commit}.")
    return 1 if result.refused else 0
