"""``review-scheduler outbox`` and ``outbox retry``: the messages and their delivery."""

from __future__ import annotations

from pathlib import Path

import click

from scheduler.commands.options import config_option, emit, format_option, now, settings_for
from scheduler.errors import UsageError
from scheduler.render.outbox import OUTBOX_FORMATS
from scheduler.usecases import reminders


@click.group("outbox", invoke_without_command=True)
@config_option
@click.option(
    "--state",
    "status",
    type=click.Choice(["pending", "failed", "sent"]),
    help="Only messages in this state.",
)
@format_option(OUTBOX_FORMATS)
@click.pass_context
def group(ctx: click.Context, config_path: Path | None, status: str | None, fmt: str) -> int:
    """List the messages in the outbox with each recipient's delivery state.

    Exit code 1 when failed messages wait (see 'outbox retry').
    """
    ctx.obj = config_path
    if ctx.invoked_subcommand is not None:
        return 0
    listing = reminders.outbox(settings_for(config_path), Path.cwd(), status)
    emit(OUTBOX_FORMATS, fmt, listing)
    return 1 if listing.failed else 0


@group.command("retry")
@click.argument("ids", nargs=-1, type=int, metavar="[ID]...")
@click.option("--all", "all_failed", is_flag=True, help="Every failed message.")
@config_option
@click.pass_obj
def retry(
    group_config: Path | None, ids: tuple[int, ...], all_failed: bool, config_path: Path | None
) -> int:
    """Queue failed messages again and deliver them now.

    Only the recipients that failed are tried again; the give-up window starts afresh.
    """
    if not ids and not all_failed:
        raise UsageError("outbox retry: name the messages to retry, or use --all")
    config_path = config_path or group_config  # 'outbox --config F retry' works too
    result = reminders.retry(
        settings_for(config_path), Path.cwd(), None if all_failed else ids, now
    )
    if result.unknown:
        click.echo(f"not failed or not found: {', '.join(map(str, result.unknown))}", err=True)
    report = result.delivery
    click.echo(
        f"Queued {len(result.queued)} again: {report.delivered} delivered, {report.retrying} "
        f"waiting for a retry, {report.failed} failed."
    )
    return 1 if report.failed or result.unknown else 0
