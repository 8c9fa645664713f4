"""``check-reviews`` and ``review-scheduler check``: the freshness report."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import click

from scheduler.commands.options import (
    as_of_option,
    config_option,
    discovery_options,
    emit,
    format_option,
    no_cache_option,
    paths_argument,
    rule_options,
    rule_selection_for,
    settings_for,
    stage,
    statistics_format,
    today_for,
    with_discovery,
)
from scheduler.commands.progress import terminal_progress
from scheduler.render.check import CHECK_FORMATS, JsonEntries
from scheduler.render.statistics import STATISTICS_FORMATS
from scheduler.results import STATES, State, Statistics
from scheduler.usecases.check import Selection, check
from scheduler.usecases.reviews import stored_evidence

HELP = """Report which documents are overdue, due soon, ok, exempt or invalid.

PATHS are files and folders to check; by default the content root from the config.
Filters (--state, --editor) select the documents that are listed, counted in the summary and
considered for the exit code."""

EPILOG = (
    "Exit codes: 0 nothing matched --fail-on; 1 something did (default: any overdue or invalid "
    "document); 2 usage or configuration error; 3 unexpected failure."
)

FAILING = {"overdue": {State.OVERDUE, State.INVALID}, "invalid": {State.INVALID}, "never": set()}


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


def check_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for decorator in reversed(
        [
            paths_argument,
            config_option,
            as_of_option,
            format_option(CHECK_FORMATS),
            click.option(
                "--state",
                "states",
                callback=_parse_states,
                metavar="STATE,...",
                help="Only these states: overdue, due_soon, ok, exempt, invalid, unscheduled "
                '(with [content] scope = "declared"; listed only when asked for).',
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
                type=click.Choice(list(FAILING)),
                default="overdue",
                show_default=True,
                help="Exit 1 when a selected document is overdue or invalid (overdue), "
                "invalid (invalid), or never.",
            ),
            no_cache_option,
            rule_options,
            discovery_options,
        ]
    ):
        func = decorator(func)
    return func


def run_check(
    paths: tuple[Path, ...],
    config_path: Path | None,
    as_of: date | None,
    fmt: str,
    states: frozenset[State],
    editors: tuple[str, ...],
    fail_on: str,
    no_cache: bool,
    select: tuple[str, ...] | None = None,
    ignore: tuple[str, ...] | None = None,
    statistics: bool = False,
    no_gitignore: bool = False,
    no_force_exclude: bool = False,
) -> int:
    if statistics:
        statistics_format(fmt)
    settings = with_discovery(settings_for(config_path), no_gitignore, no_force_exclude)
    rules = rule_selection_for(settings, select, ignore)
    selection = Selection(states, frozenset(e.casefold() for e in editors))
    today = today_for(settings, as_of)
    threshold = settings.performance.parallel_threshold
    with (
        stage("finding, reading and judging documents"),
        terminal_progress(sys.stderr.isatty(), threshold) as progress,
    ):
        result = check(
            settings,
            paths,
            Path.cwd(),
            today,
            selection,
            use_cache=not no_cache,
            progress=progress,
            evidence=stored_evidence(settings, Path.cwd(), today),
            rules=rules,
            encoder=JsonEntries() if fmt == "json" and not statistics else None,
        )
    if statistics:
        files = [(doc.path, doc.problems) for doc in result.documents]
        emit(STATISTICS_FORMATS, fmt, Statistics.of(result.as_of, result.timezone, files))
    else:
        emit(CHECK_FORMATS, fmt, result)
    return 1 if any(state in FAILING[fail_on] for state in result.states) else 0


@click.command("check", help=HELP, epilog=EPILOG)
@check_options
def command(**options: Any) -> int:
    return run_check(**options)
