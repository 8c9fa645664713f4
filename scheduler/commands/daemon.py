"""``review-scheduler daemon``: the background service, in the foreground."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import click

from scheduler.commands.logs import setup_logging
from scheduler.commands.options import config_option, settings_for
from scheduler.errors import SchedulerError

log = logging.getLogger("scheduler.daemon")


@click.command(
    "daemon",
    epilog="Exit codes: 0 stopped by SIGTERM or SIGINT; 2 configuration error or "
    "another daemon already running on the same state store; 3 unexpected failure.",
)
@config_option
@click.option(
    "--log-format",
    type=click.Choice(["plain", "json"]),
    default="plain",
    show_default=True,
    help="One line per event on stderr, as text or JSON.",
)
@click.pass_context
def command(ctx: click.Context, config_path: Path | None, log_format: str) -> int:
    """Run in the foreground: reminder cycles on the [daemon] schedule, outbox drains between.

    For systemd, containers and terminals alike. Stop it with SIGTERM or Ctrl-C: the message
    being sent is finished and everything else waits in the outbox for the next start.
    """
    from scheduler.runtime.daemon import Daemon  # imports APScheduler: only for the daemon

    verbose = ctx.parent.params.get("verbose", 0) if ctx.parent else 0
    setup_logging(verbose, log_format, base=logging.INFO, service=True)
    if log_format == "plain":
        settings = settings_for(config_path)
        return asyncio.run(Daemon(settings, Path.cwd()).run())
    # every line on stderr is JSON: errors that would end the command are logged too
    try:
        settings = settings_for(config_path)
        return asyncio.run(Daemon(settings, Path.cwd()).run())
    except SchedulerError as exc:
        log.error("%s", exc)
        return exc.exit_code
    except Exception:
        log.critical("unexpected failure; the daemon stops", exc_info=True)
        return 3
