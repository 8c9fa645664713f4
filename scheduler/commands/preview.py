"""``review-scheduler preview``: the digest an editor would get today."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click

from scheduler.commands.options import (
    as_of_option,
    config_option,
    emit,
    format_option,
    settings_for,
    today_for,
)
from scheduler.errors import UsageError
from scheduler.render.common import shown
from scheduler.render.digest import PREVIEW_FORMATS
from scheduler.usecases import reminders


@click.command("preview")
@config_option
@as_of_option
@click.option(
    "--editor",
    required=True,
    metavar="EMAIL",
    help="Whose digest to show: an address or an alias; for an escalation contact, their "
    "escalation digest too.",
)
@format_option(PREVIEW_FORMATS)
def command(config_path: Path | None, as_of: date | None, editor: str, fmt: str) -> int:
    """Show the digest an editor would get today, listing all they have outstanding.

    Nothing is written or sent. Documents the editor has not been told about yet are marked new.
    """
    settings = settings_for(config_path)
    today = today_for(settings, as_of)
    found = reminders.preview(settings, Path.cwd(), today, editor)
    if not found.known:
        hint = f"; did you mean {' or '.join(found.suggestions)}?" if found.suggestions else ""
        raise UsageError(
            f"no document routes to {shown(', '.join(found.addresses))} and it is not an "
            f"escalation contact{hint}"
        )
    if found.addresses != (editor,):
        click.echo(f"{shown(editor)} stands for {shown(', '.join(found.addresses))}.", err=True)
    if not found.digests:
        click.echo(f"Nothing outstanding for {shown(editor)} on {today.isoformat()}.", err=True)
    for index, (digest, rendered) in enumerate(found.digests):
        if index:
            click.echo("-" * 72)
        if len(found.digests) > 1 or digest.escalation:
            kind = "escalation digest" if digest.escalation else "digest"
            click.echo(f"{kind.capitalize()} for {shown(digest.recipient)}:", err=True)
        emit(PREVIEW_FORMATS, fmt, rendered)
    return 0
