"""Command line: parse arguments, build collaborators, call the service, print, return a code.

Exit codes: 0 clean, 1 findings (errors, overdue documents, failed deliveries), 2 usage or
configuration error, 3 unexpected failure (the traceback is written to a log file whose path is
printed).
"""

from __future__ import annotations

import gc
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from scheduler import __version__
from scheduler.config import Settings, find_config, load_settings
from scheduler.errors import SchedulerError
from scheduler.render.check import CHECK_RENDERERS, VALIDATE_RENDERERS, RenderOptions, stream_check
from scheduler.review.state import STATES, State

if TYPE_CHECKING:
    from scheduler.content.cache import ParseCache
    from scheduler.content.reading import Progress

EXIT_CODES_HELP = (
    "Exit codes: 0 clean; 1 findings; 2 usage or configuration error; 3 unexpected failure."
)


# --------------------------------------------------------------------------- shared plumbing


def _parse_date(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date in the form YYYY-MM-DD") from None


def config_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Config file (TOML). Default: $SCHEDULER_CONFIG, else config/scheduler.toml if "
        "present, else built-in defaults.",
    )(func)


def as_of_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--as-of",
        "as_of",
        callback=_parse_date,
        metavar="YYYY-MM-DD",
        help="Evaluate as if today were this date. Default: today in the configured time zone.",
    )(func)


def paths_argument(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.argument("paths", nargs=-1, type=click.Path(path_type=Path), metavar="[PATHS]...")(
        func
    )


no_cache_option = click.option(
    "--no-cache",
    is_flag=True,
    help="Read every document anew; the parse cache is neither used nor updated.",
)


@contextmanager
def reading(
    settings: Settings, no_cache: bool
) -> Iterator[tuple[ParseCache | None, Progress | None]]:
    """The parse cache (unless ``no_cache``) and, on a terminal, a progress bar for long runs.

    Meanwhile, cyclic garbage is collected rarely: a run keeps a few small objects per document,
    none in cycles, and with Python's defaults (a collection every 700 allocations) the
    collector would re-examine them over and over, costing more than building them.
    """
    from scheduler.commands.progress import terminal_progress
    from scheduler.usecases.check import parse_cache

    thresholds = gc.get_threshold()
    gc.freeze()  # what is loaded so far is never garbage
    gc.set_threshold(100_000, 50, 100)
    with ExitStack() as stack:
        stack.callback(gc.unfreeze)
        stack.callback(gc.set_threshold, *thresholds)
        cache = (
            None
            if no_cache
            else stack.enter_context(parse_cache(settings, Path.cwd(), time.time_ns()))
        )
        progress = stack.enter_context(
            terminal_progress(sys.stderr.isatty(), settings.performance.parallel_threshold)
        )
        yield cache, progress


def settings_for(config_path: Path | None) -> Settings:
    return load_settings(find_config(config_path, os.environ))


def today_for(settings: Settings, as_of: date | None) -> date:
    """The as-of date: given, or today's date in the configured time zone."""
    if as_of is not None:
        return as_of
    return datetime.now(settings.review.zone).date()


def output_options() -> RenderOptions:
    tty = sys.stdout.isatty()
    color = tty and "NO_COLOR" not in os.environ
    width = shutil.get_terminal_size().columns if tty else None
    return RenderOptions(color=color, width=width)


_LOG_HANDLER_NAME = "review-scheduler"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and the error, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class OneLineFormatter(logging.Formatter):
    """``LEVEL logger: message``, one line per event; an error is named on the same line, and
    its traceback follows only when asked for (-v)."""

    def __init__(self, traceback: bool = False) -> None:
        super().__init__()
        self.traceback = traceback

    def format(self, record: logging.LogRecord) -> str:
        line = f"{record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            line += f": {type(error).__name__}: " + " ".join(str(error).split())
            if self.traceback:
                line += "\n" + self.formatException(record.exc_info)
        return line


def _setup_logging(verbose: int, fmt: str = "plain", base: int = logging.WARNING) -> None:
    """Log lines go to stderr through one handler on the package logger."""
    logger = logging.getLogger("scheduler")
    for handler in list(logger.handlers):
        if handler.get_name() == _LOG_HANDLER_NAME:
            logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_LOG_HANDLER_NAME)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(OneLineFormatter(traceback=verbose > 0))
    logger.addHandler(handler)
    logger.setLevel(max(logging.DEBUG, base - 10 * verbose))


# --------------------------------------------------------------------------- commands


@click.group(
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=EXIT_CODES_HELP,
)
@click.version_option(__version__, prog_name="review-scheduler")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (repeatable).")
def cli(verbose: int) -> None:
    """Keep patient-facing health information reviewed on time.

    Validates document metadata, reports which documents are overdue or due soon, and reminds
    the responsible editors.
    """
    _setup_logging(verbose)


@cli.command(
    epilog="Exit codes: 0 no errors (warnings allowed); 1 errors found, or warnings "
    "with --strict; 2 usage or configuration error; 3 unexpected failure."
)
@paths_argument
@config_option
@as_of_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(sorted(VALIDATE_RENDERERS)),
    default="text",
    show_default=True,
    help="text: one line per problem; json: every file and its problems; github: annotations.",
)
@click.option("--strict", is_flag=True, help="Treat warnings as errors for the exit code.")
@no_cache_option
def validate(
    paths: tuple[Path, ...],
    config_path: Path | None,
    as_of: date | None,
    fmt: str,
    strict: bool,
    no_cache: bool,
) -> int:
    """Check the metadata of every document and report each problem with file and line.

    PATHS are files and folders to check; by default the content root from the config.
    """
    from scheduler.usecases.check import validate_files

    settings = settings_for(config_path)
    today = today_for(settings, as_of)
    with reading(settings, no_cache) as (cache, progress):
        result = validate_files(settings, paths, Path.cwd(), today, cache=cache, progress=progress)
    click.echo(VALIDATE_RENDERERS[fmt](result, output_options()), nl=False)
    totals = result.totals()
    return 1 if totals["errors"] or (strict and totals["warnings"]) else 0


def _parse_states(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> frozenset[State]:
    if not value:
        return frozenset()
    states = set()
    for part in value.split(","):
        name = part.strip().lower().replace("-", "_").replace(" ", "_")
        try:
            states.add(State(name))
        except ValueError:
            choices = ", ".join(s.value for s in STATES)
            raise click.BadParameter(f"{part.strip()!r} is not one of {choices}") from None
    return frozenset(states)


_CHECK_HELP = """Report which documents are overdue, due soon, ok, exempt or invalid.

PATHS are files and folders to check; by default the content root from the config.
Filters (--state, --editor) select the documents that are listed, counted in the summary and
considered for the exit code."""

_CHECK_EPILOG = (
    "Exit codes: 0 nothing matched --fail-on; 1 something did (default: any overdue or invalid "
    "document); 2 usage or configuration error; 3 unexpected failure."
)


def _check_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for decorator in reversed(
        [
            paths_argument,
            config_option,
            as_of_option,
            click.option(
                "--format",
                "fmt",
                type=click.Choice(list(CHECK_RENDERERS)),
                default="text",
                show_default=True,
                help="text: summary and table; json: machine-readable (schema_version 1); "
                "markdown: a table for pull requests or wikis; csv: one row per document; "
                "github: annotations for overdue and invalid documents.",
            ),
            click.option(
                "--state",
                "states",
                callback=_parse_states,
                metavar="STATE,...",
                help="Only these states: overdue, due_soon, ok, exempt, invalid.",
            ),
            click.option(
                "--editor",
                "editors",
                multiple=True,
                metavar="EMAIL",
                help="Only documents this editor is responsible for (repeatable).",
            ),
            click.option(
                "--fail-on",
                type=click.Choice(["overdue", "invalid", "never"]),
                default="overdue",
                show_default=True,
                help="Exit 1 when a selected document is overdue or invalid (overdue), "
                "invalid (invalid), or never.",
            ),
            no_cache_option,
        ]
    ):
        func = decorator(func)
    return func


def _run_check(
    paths: tuple[Path, ...],
    config_path: Path | None,
    as_of: date | None,
    fmt: str,
    states: frozenset[State],
    editors: tuple[str, ...],
    fail_on: str,
    no_cache: bool,
) -> int:
    from scheduler.usecases.check import Selection, check

    settings = settings_for(config_path)
    selection = Selection(states, frozenset(e.casefold() for e in editors))
    today = today_for(settings, as_of)
    with reading(settings, no_cache) as (cache, progress):
        result = check(
            settings, paths, Path.cwd(), today, selection, cache=cache, progress=progress
        )
    for chunk in stream_check(fmt, result, output_options()):  # large reports: piece by piece
        click.echo(chunk, nl=False)
    failing = {"overdue": {State.OVERDUE, State.INVALID}, "invalid": {State.INVALID}}.get(
        fail_on, set()
    )
    return 1 if any(doc.state in failing for doc in result.documents) else 0


@cli.command("check", help=_CHECK_HELP, epilog=_CHECK_EPILOG)
@_check_options
def check_command(**kwargs: Any) -> int:
    return _run_check(**kwargs)


@click.command(
    "check-reviews",
    help=_CHECK_HELP,
    epilog=_CHECK_EPILOG,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="check-reviews")
@_check_options
def check_reviews(**kwargs: Any) -> int:
    _setup_logging(0)
    return _run_check(**kwargs)


@cli.group("cache")
def cache_group() -> None:
    """The parse cache: what was read from each document, kept in the state store so that a
    run reads only the documents that changed."""


@cache_group.command("clear")
@config_option
def cache_clear(config_path: Path | None) -> int:
    """Forget everything the parse cache holds: the next run reads every document."""
    from scheduler.usecases.check import clear_cache

    settings = settings_for(config_path)
    removed = clear_cache(settings, Path.cwd())
    if removed is None:
        click.echo(f"No state store at {settings.store.path}: nothing to clear.")
    else:
        what = "1 document" if removed == 1 else f"{removed} documents"
        click.echo(f"Cleared the parse cache in {settings.store.path} ({what}).")
    return 0


# --------------------------------------------------------------------------- reminders


def _now() -> datetime:
    return datetime.now(UTC)


def _print_digest(message: Any) -> None:
    from email import message_from_bytes, policy

    parsed = message_from_bytes(message.data, policy=policy.default)
    click.echo(f"To: {parsed['To']}")
    if parsed["Cc"]:
        click.echo(f"Cc: {parsed['Cc']}")
    click.echo(f"Subject: {parsed['Subject']}")
    body = parsed.get_body(preferencelist=("plain",))
    click.echo("")
    click.echo(body.get_content() if body is not None else "")


@cli.command(
    epilog="Exit codes: 0 cycle done (deliveries may wait for a retry); 1 a delivery "
    "failed for good; 2 usage or configuration error; 3 unexpected failure."
)
@config_option
@as_of_option
@click.option(
    "--dry-run",
    is_flag=True,
    help="Render and print the digests that would be sent; write and send nothing.",
)
def send(config_path: Path | None, as_of: date | None, dry_run: bool) -> int:
    """Run one reminder cycle: check, decide, queue the digests, deliver them.

    Each editor gets at most one digest per day, listing everything outstanding for them; a
    second run on the same day sends nothing new. With no [smtp] host configured, messages are
    written as .eml files to [mail] outbox_dir.
    """
    import asyncio

    from scheduler.runtime.cycle import dry_run_cycle, run_cycle
    from scheduler.notify.email import make_sender
    from scheduler.notify.outbox import Reminders
    from scheduler.store.sqlite import Store

    settings = settings_for(config_path)
    today = today_for(settings, as_of)
    if dry_run:
        ledger = {}
        if settings.store.path.exists():
            with Store(settings.store.path) as store:
                ledger = Reminders(store).ledger()
        report = dry_run_cycle(settings, Path.cwd(), today, _now(), ledger)
        for message in report.messages.values():
            _print_digest(message)
            click.echo("-" * 72)
        click.echo(
            f"Dry run for {today.isoformat()}: {report.documents} documents, "
            f"{report.outstanding} outstanding; {len(report.messages)} digests would be sent."
        )
        return 0
    with Store(settings.store.path) as store:
        reminders = Reminders(store)
        sender = make_sender(settings.smtp, settings.mail.outbox_dir)
        report = asyncio.run(run_cycle(settings, Path.cwd(), today, _now, reminders, sender))
    delivery = report.delivery
    assert delivery is not None
    click.echo(
        f"Reminder cycle for {today.isoformat()}: {report.documents} documents, "
        f"{report.outstanding} outstanding."
    )
    skipped = (
        f" ({len(report.skipped)} already queued earlier this cycle)" if report.skipped else ""
    )
    click.echo(f"Queued {len(report.queued)} digests{skipped}.")
    click.echo(
        f"Delivered via {report.destination}: {delivery.delivered} delivered, "
        f"{delivery.retrying} waiting for a retry, {delivery.failed} failed."
    )
    # Failed deliveries and refused digests have already been logged, one line each.
    return 1 if delivery.failed or report.refused else 0


@cli.command()
@config_option
@as_of_option
@click.option("--editor", required=True, metavar="EMAIL", help="Whose digest to show.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "html"]),
    default="text",
    show_default=True,
    help="The plain-text part (with its subject) or the HTML part.",
)
def preview(config_path: Path | None, as_of: date | None, editor: str, fmt: str) -> int:
    """Show the digest an editor would get today, listing all they have outstanding.

    Nothing is written or sent. Documents the editor has not been told about yet are marked new.
    """
    from scheduler.runtime.cycle import preview_digest
    from scheduler.notify.outbox import Reminders
    from scheduler.store.sqlite import Store

    settings = settings_for(config_path)
    today = today_for(settings, as_of)
    ledger = {}
    if settings.store.path.exists():
        with Store(settings.store.path) as store:
            ledger = Reminders(store).ledger()
    rendered = preview_digest(settings, Path.cwd(), today, editor, ledger)
    if rendered is None:
        click.echo(f"Nothing outstanding for {editor} on {today.isoformat()}.", err=True)
        return 0
    if fmt == "html":
        click.echo(rendered.html, nl=False)
    else:
        click.echo(f"Subject: {rendered.subject}\n\n{rendered.text}", nl=False)
    return 0


@cli.group(invoke_without_command=True)
@config_option
@click.option(
    "--state",
    "status",
    type=click.Choice(["pending", "failed", "sent"]),
    help="Only messages in this state.",
)
@click.pass_context
def outbox(ctx: click.Context, config_path: Path | None, status: str | None) -> int:
    """List the messages in the outbox with each recipient's delivery state.

    Exit code 1 when failed messages wait (see 'outbox retry').
    """
    ctx.obj = config_path
    if ctx.invoked_subcommand is not None:
        return 0
    from scheduler.notify.outbox import Reminders
    from scheduler.store.sqlite import Store

    settings = settings_for(config_path)
    with Store(settings.store.path) as store:
        reminders = Reminders(store)
        rows = reminders.rows(status)
        counts = reminders.counts()
    for row in rows:
        click.echo(
            f"#{row.id} {row.status} {row.created_at.isoformat(timespec='seconds')} "
            f"attempts={row.attempts} {row.subject}"
        )
        for address, state, code, reply in row.recipients:
            detail = "" if state == "sent" else " ".join(str(x) for x in (code, reply) if x)
            click.echo(f"    {address}: {state}{' ' + detail if detail else ''}")
    click.echo(f"{counts['pending']} pending, {counts['failed']} failed, {counts['sent']} sent.")
    return 1 if counts["failed"] else 0


@outbox.command("retry")
@click.argument("ids", nargs=-1, type=int, metavar="[ID]...")
@click.option("--all", "all_failed", is_flag=True, help="Every failed message.")
@click.pass_obj
def outbox_retry(config_path: Path | None, ids: tuple[int, ...], all_failed: bool) -> int:
    """Queue failed messages again and deliver them now.

    Only the recipients that failed are tried again; the give-up window starts afresh.
    """
    import asyncio

    from scheduler.notify.delivery import deliver_pending
    from scheduler.notify.email import make_sender
    from scheduler.notify.outbox import Reminders
    from scheduler.store.sqlite import Store

    if not ids and not all_failed:
        raise click.UsageError("name the messages to retry, or use --all")
    settings = settings_for(config_path)
    with Store(settings.store.path) as store:
        reminders = Reminders(store)
        chosen = reminders.requeue(None if all_failed else ids, _now())
        unknown = sorted(set(ids) - set(chosen))
        if unknown:
            click.echo(f"not failed or not found: {', '.join(map(str, unknown))}", err=True)
        sender = make_sender(settings.smtp, settings.mail.outbox_dir)
        report = asyncio.run(
            deliver_pending(
                reminders, sender, settings.delivery, settings.smtp.message_deadline_seconds, _now
            )
        )
    click.echo(
        f"Queued {len(chosen)} again: {report.delivered} delivered, {report.retrying} waiting "
        f"for a retry, {report.failed} failed."
    )
    return 1 if report.failed or unknown else 0


# --------------------------------------------------------------------------- daemon


@cli.command(
    epilog="Exit codes: 0 stopped by SIGTERM or SIGINT; 2 configuration error or "
    "another daemon already running on the same state store; 3 unexpected failure."
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
def daemon(ctx: click.Context, config_path: Path | None, log_format: str) -> int:
    """Run in the foreground: reminder cycles on the [daemon] schedule, outbox drains between.

    For systemd, containers and terminals alike. Stop it with SIGTERM or Ctrl-C: the message
    being sent is finished and everything else waits in the outbox for the next start.
    """
    import asyncio

    from scheduler.runtime.daemon import Daemon

    verbose = ctx.parent.params.get("verbose", 0) if ctx.parent else 0
    _setup_logging(verbose, log_format, base=logging.INFO)
    settings = settings_for(config_path)
    return asyncio.run(Daemon(settings, Path.cwd()).run())


@cli.command(
    epilog="Exit codes: 0 healthy; 1 the last cycle failed or was interrupted, or "
    "failed deliveries wait; 2 configuration error."
)
@config_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Human-readable lines, or one JSON object.",
)
def status(config_path: Path | None, fmt: str) -> int:
    """Show the last cycle, the next scheduled one, the outbox, and whether a daemon runs.

    Usable as a health check: the exit code is non-zero when something needs attention.
    """
    from scheduler.runtime.daemon import cycle_trigger
    from scheduler.notify.outbox import Reminders
    from scheduler.store.sqlite import Store, StoreLock

    settings = settings_for(config_path)
    now = _now()
    holder = StoreLock(settings.store.path).holder()
    last = None
    counts = {"pending": 0, "failed": 0, "sent": 0}
    if settings.store.path.exists():
        with Store(settings.store.path) as store:
            reminders = Reminders(store)
            last = reminders.last_run("cycle")
            counts = reminders.counts()
    outcome = None
    if last is not None:
        outcome = last.outcome or ("running" if holder else "interrupted")
    next_cycle = cycle_trigger(settings).next_after(now)
    zone = settings.review.zone
    healthy = outcome not in ("failed", "interrupted") and not counts["failed"]
    if fmt == "json":
        click.echo(
            json.dumps(
                {
                    "healthy": healthy,
                    "daemon": {
                        "running": holder is not None,
                        "pid": holder if holder != -1 else None,
                    },
                    "last_cycle": None
                    if last is None
                    else {
                        "started_at": last.started_at.isoformat(),
                        "finished_at": last.finished_at.isoformat() if last.finished_at else None,
                        "as_of": last.as_of.isoformat() if last.as_of else None,
                        "outcome": outcome,
                        "counts": last.detail,
                    },
                    "next_cycle": next_cycle.isoformat() if next_cycle else None,
                    "schedule": settings.daemon.schedule,
                    "timezone": zone.key,
                    "outbox": counts,
                },
                indent=2,
            )
        )
        return 0 if healthy else 1
    if last is None:
        click.echo("Last cycle: none recorded")
    else:
        when = last.started_at.astimezone(zone).isoformat(sep=" ", timespec="seconds")
        detail = last.detail
        if outcome == "ok":
            numbers = (
                f"{detail.get('documents', 0)} documents, {detail.get('outstanding', 0)} "
                f"outstanding, {detail.get('queued', 0)} digests queued, "
                f"{detail.get('delivered', 0)} delivered, {detail.get('retrying', 0)} "
                f"waiting for a retry, {detail.get('failed', 0)} failed"
            )
        else:
            numbers = str(detail.get("error", "")) or "no counts"
        click.echo(f"Last cycle: {when} {zone.key}: {outcome}: {numbers}")
    click.echo(
        "Next cycle: "
        + (next_cycle.isoformat(sep=" ", timespec="minutes") if next_cycle else "never")
        + f" {zone.key} (schedule {settings.daemon.schedule!r})"
    )
    click.echo(
        f"Outbox: {counts['pending']} pending, {counts['failed']} failed, {counts['sent']} sent"
    )
    if holder is None:
        click.echo("Daemon: not running")
    else:
        click.echo("Daemon: running" + (f" (pid {holder})" if holder > 0 else ""))
    return 0 if healthy else 1


# --------------------------------------------------------------------------- entry points


def run(command: click.Command, argv: Sequence[str] | None, prog_name: str) -> int:
    """Run ``command`` and turn every outcome into an exit code. Never raises."""
    try:
        result = command.main(
            args=list(argv) if argv is not None else None,
            prog_name=prog_name,
            standalone_mode=False,
        )
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except SchedulerError as exc:
        click.echo(f"{prog_name}: error: {exc}", err=True)
        return exc.exit_code
    except Exception:
        log_path = _write_crash_log(prog_name)
        click.echo(
            f"{prog_name}: unexpected error: {sys.exc_info()[1]!r}; details in {log_path}",
            err=True,
        )
        return 3
    return result if isinstance(result, int) else 0


def _write_crash_log(prog_name: str) -> str:
    handle, name = tempfile.mkstemp(prefix=f"{prog_name}-crash-", suffix=".log")
    with os.fdopen(handle, "w") as out:
        out.write(traceback.format_exc())
    return name


def main(argv: Sequence[str] | None = None) -> None:
    sys.exit(run(cli, argv, "review-scheduler"))


def check_reviews_main(argv: Sequence[str] | None = None) -> None:
    sys.exit(run(check_reviews, argv, "check-reviews"))
