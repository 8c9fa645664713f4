"""One exception base for the whole tool, one subclass per stage.

Problems with *documents* are never exceptions: they are :class:`~scheduler.problems.Problem`
values. Exceptions are for things that stop a command: a bad config, an unusable state store.
Each carries the exit code the command line should end with.
"""

from __future__ import annotations


class SchedulerError(Exception):
    """Base of every error the tool raises on purpose."""

    exit_code = 3


class UsageError(SchedulerError):
    """The command line asked for something impossible."""

    exit_code = 2


class ConfigError(SchedulerError):
    """The settings could not be loaded; the message names the key and where it came from."""

    exit_code = 2


class StoreError(SchedulerError):
    """The state store could not be opened or is held by another process."""

    exit_code = 2


class TemplateError(SchedulerError):
    """A digest template is missing or failed to render."""

    exit_code = 2


class HeaderInjectionError(SchedulerError):
    """A value that would become a mail header contains line breaks or encoded words."""

    exit_code = 3
