"""``review-scheduler validate``: every problem in the documents' metadata."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

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
from scheduler.render.statistics import STATISTICS_FORMATS
from scheduler.render.validate import VALIDATE_FORMATS
from scheduler.results import Statistics
from scheduler.usecases.check import validate_files


@click.command(
    "validate",
    epilog="Exit codes: 0 no errors (warnings allowed); 1 errors found, or warnings "
    "with --strict; 2 usage or configuration error; 3 unexpected failure.",
)
@paths_argument
@config_option
@as_of_option
@format_option(VALIDATE_FORMATS)
@click.option("--strict", is_flag=True, help="Treat warnings as errors for the exit code.")
@no_cache_option
@rule_options
@discovery_options
def command(
    paths: tuple[Path, ...],
    config_path: Path | None,
    as_of: date | None,
    fmt: str,
    strict: bool,
    no_cache: bool,
    select: tuple[str, ...] | None,
    ignore: tuple[str, ...] | None,
    statistics: bool,
    no_gitignore: bool,
    no_force_exclude: bool,
) -> int:
    """Check the metadata of every document and report each problem with file and line.

    PATHS are files and folders to check; by default the content root from the config.
    Warnings are the same as in the freshness report (check-reviews).
    """
    if statistics:
        statistics_format(fmt)
    settings = with_discovery(settings_for(config_path), no_gitignore, no_force_exclude)
    rules = rule_selection_for(settings, select, ignore)
    today = today_for(settings, as_of)
    threshold = settings.performance.parallel_threshold
    with (
        stage("finding and reading documents"),
        terminal_progress(sys.stderr.isatty(), threshold) as progress,
    ):
        result = validate_files(
            settings,
            paths,
            Path.cwd(),
            today,
            use_cache=not no_cache,
            progress=progress,
            rules=rules,
        )
    if statistics:
        files = [(f.path, f.problems) for f in result.files]
        emit(STATISTICS_FORMATS, fmt, Statistics.of(result.as_of, result.timezone, files))
    else:
        emit(VALIDATE_FORMATS, fmt, result)
    totals = result.totals()
    return 1 if totals["errors"] or (strict and totals["warnings"]) else 0
