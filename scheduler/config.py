"""All settings, as frozen dataclasses that pydantic validates.

Sources, strongest first: environment variables ``SCHEDULER_<SECTION>__<KEY>``, the TOML config
file, the built-in defaults. The file is ``--config FILE``, else ``$SCHEDULER_CONFIG``, else the
first ``review-scheduler.toml``, ``.review-scheduler.toml`` or ``pyproject.toml`` with a
``[tool.review-scheduler]`` table found in the current folder or above it, else
``config/scheduler.toml`` in the current folder; with none of them the defaults apply alone.
Unknown keys are rejected, and every error names the key and where its value came from.

Relative paths written in a file are taken from the file's folder (for ``config/scheduler.toml``,
the folder holding ``config/``), and so are the content root and the state store when the file
leaves them out; relative paths from the environment, and the defaults with no file, from the
current folder.

The settings are plain frozen dataclasses, so that a command can use them without importing
pydantic; pydantic is still their one schema and validator (``pydantic.TypeAdapter(Settings)``),
reading the limits and checks written as ``Annotated`` metadata (:mod:`scheduler.config_schema`).
A config that validated is kept, validated, in ``.review-scheduler/settings-cache.json`` beside
it (:mod:`scheduler.settings_cache`); a later run with the same file, folder and code reads that
instead, unless a ``SCHEDULER_`` variable is set. Checks that depend on the machine rather than
on the file (the time zone existing in tzdata) are also made in ``__post_init__``, which runs
when the cached settings are rebuilt, so they hold on a cache hit too. Every other check depends
only on the file and on code the cache's key covers: e-mail addresses and host names (no DNS
lookup: "loopback" means a loopback name or address as written), store URLs (the backends'
schemes), cron schedules (APScheduler's parser), review frequencies, rule codes and field names.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import json
import os
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from scheduler.config_schema import Before, Check, Limits, Secret
from scheduler.content.fields import FIELDS, NAMES, unknown_names
from scheduler.errors import ConfigError
from scheduler.rule_selection import normalised as normalised_selectors

if TYPE_CHECKING:
    from pydantic import TypeAdapter

ENV_PREFIX = "SCHEDULER_"
CONFIG_ENV_VAR = "SCHEDULER_CONFIG"
DEFAULT_CONFIG_PATH = Path("config/scheduler.toml")
# Searched for in the current folder and each folder above it, in this order in each folder.
CONFIG_NAMES = ("review-scheduler.toml", ".review-scheduler.toml", "pyproject.toml")
PYPROJECT_TABLE = "review-scheduler"  # [tool.review-scheduler]
# Beside the config file when there is one, else in the current folder.
DEFAULT_STORE_FILE = ".review-scheduler/state.sqlite3"
DEFAULT_OUTBOX_DIR = ".review-scheduler/outbox"

# An address we are willing to put in an envelope and a header: no spaces, quotes, angle
# brackets or control characters, one "@", a dotted domain of letters, digits and hyphens.
_EMAIL_RE = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")


def is_email_address(value: str) -> bool:
    return _EMAIL_RE.fullmatch(value) is not None


def _check_email(value: str) -> str:
    if not is_email_address(value):
        raise ValueError(f"{value!r} is not an email address")
    return value


@dataclass(frozen=True)
class _Section:
    # pydantic's config for these dataclasses: unknown keys are errors
    __pydantic_config__: ClassVar[dict[str, object]] = {"extra": "forbid"}


@dataclass(frozen=True)
class ContentSettings(_Section):
    """[content]: where the documents are and which files count as documents."""

    root: Path = Path()  # with a config file: the file's folder
    include: tuple[str, ...] = ("**/*.md", "**/*.markdown", "**/*.txt")
    exclude: tuple[str, ...] = ()
    max_file_bytes: Annotated[int, Limits(gt=0)] = 1024 * 1024
    # "all": every matching file must declare its review fields; "declared": only those that
    # declare a field they are scheduled by (last reviewed, ...) are, the rest are unscheduled.
    scope: Literal["all", "declared"] = "all"
    # Pass over what the .gitignore files of the repository holding the folder searched ignore.
    respect_gitignore: bool = True
    # Skip files named on the command line that exclude (or a .gitignore) leaves out.
    force_exclude: bool = True


class _FieldNamesBase:
    """[fields]: the frontmatter key that holds each piece of metadata (see
    :mod:`scheduler.content.fields`, which declares the names and their default keys)."""

    def __post_init__(self) -> None:
        seen: dict[str, str] = {}
        for name, key in dataclasses.asdict(self).items():  # type: ignore[call-overload]
            if not key.strip() or "" in key.split("."):
                raise ValueError(
                    f"{name}: {key!r} is not a key; nested keys are written with dots between "
                    "non-empty names, such as 'last_update.date'"
                )
            if key in seen:
                raise ValueError(f"{name} and {seen[key]} both read the key {key!r}")
            seen[key] = name

    if TYPE_CHECKING:  # the fields come from the registry: type checkers accept any of them

        def __init__(self, **data: str) -> None: ...

        def __getattr__(self, name: str) -> str: ...

    def key(self, name: str) -> str:
        """The frontmatter key of the field ``name``."""
        value: str = getattr(self, name)
        return value


if TYPE_CHECKING:
    FieldNames = _FieldNamesBase
else:
    FieldNames = dataclasses.make_dataclass(
        "FieldNames",
        [(item.name, str, item.key) for item in FIELDS],
        bases=(_FieldNamesBase,),
        namespace={"__pydantic_config__": _Section.__pydantic_config__},
        frozen=True,
    )
    FieldNames.__module__, FieldNames.__doc__ = __name__, _FieldNamesBase.__doc__


DEFAULT_LICENSES = (
    "public_domain",
    "CC0-1.0",
    "CC-BY-4.0",
    "CC-BY-SA-4.0",
    "CC-BY-NC-4.0",
    "CC-BY-NC-SA-4.0",
    "CC-BY-ND-4.0",
    "CC-BY-NC-ND-4.0",
)


def _known_fields(value: tuple[str, ...]) -> tuple[str, ...]:
    unknown = unknown_names(value)
    if unknown:
        raise ValueError(f"not a field: {', '.join(unknown)}; fields are {', '.join(NAMES)}")
    return value


def _per_path_warnings_only(value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    return {glob: normalised_selectors(codes) for glob, codes in value.items()}


@dataclass(frozen=True)
class MetadataRules(_Section):
    """[metadata]: what a document's frontmatter must hold."""

    required: Annotated[tuple[str, ...], Check(_known_fields)] = (
        "title",
        "last_reviewed",
        "review_frequency",
        "status",
        "license",
    )
    recommended: Annotated[tuple[str, ...], Check(_known_fields)] = ("url", "source", "language")
    statuses: tuple[str, ...] = ("active", "draft", "archived", "retired")
    review_statuses: tuple[str, ...] = ("active",)
    licenses: tuple[str, ...] = DEFAULT_LICENSES
    extra_keys: tuple[str, ...] = ()
    warn_unknown_keys: bool = True
    # Warnings to switch off, by code, name or prefix (RS204, unknown-key, RS2); stored as codes
    # and prefixes.
    ignore: Annotated[tuple[str, ...], Check(normalised_selectors)] = ()
    # Rule selection (see scheduler.rule_selection): the warnings reported (empty: all), and
    # warnings switched off under globs relative to the content root. Codes, names, prefixes.
    select: Annotated[tuple[str, ...], Check(normalised_selectors)] = ()
    per_path_ignores: Annotated[dict[str, tuple[str, ...]], Check(_per_path_warnings_only)] = field(
        default_factory=dict
    )

    def __post_init__(self) -> None:
        missing = [f for f in ("last_reviewed", "review_frequency") if f not in self.required]
        if missing:
            raise ValueError(f"required must include {missing}: no due date without them")
        unknown = [s for s in self.review_statuses if s not in self.statuses]
        if unknown:
            raise ValueError(f"review_statuses {unknown} are not in statuses {list(self.statuses)}")
        if not self.statuses:
            raise ValueError("statuses must not be empty")


def _check_frequency(value: str) -> str:
    from scheduler.content.cadence import CadenceError, parse_cadence

    try:
        parse_cadence(value)
    except CadenceError as exc:
        raise ValueError(f"{exc.message}" + (f" ({exc.hint})" if exc.hint else "")) from None
    return value


@dataclass(frozen=True)
class FrequencyRule(_Section):
    """One [[review.frequencies]] entry: pages matching ``paths`` (globs relative to the content
    root) that name no review frequency are reviewed this often."""

    paths: Annotated[tuple[str, ...], Limits(min_length=1)]
    frequency: Annotated[str, Check(_check_frequency)]


def _known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: "America", a folder
        raise ValueError(f"unknown IANA time zone {value!r}") from exc
    return value


@dataclass(frozen=True)
class ReviewSettings(_Section):
    """[review]: how due dates become states."""

    timezone: Annotated[str, Check(_known_zone)] = "UTC"
    due_soon_days: Annotated[int, Limits(ge=0, le=3660)] = 30
    # The review frequency of a page that names none: the first [[review.frequencies]] entry
    # whose paths match it, else default_frequency; with neither, a page must name its own.
    default_frequency: Annotated[str, Check(_check_frequency)] | None = None
    frequencies: tuple[FrequencyRule, ...] = ()

    def __post_init__(self) -> None:
        # Depends on the machine (tzdata), not only on the file: checked again on a cache hit.
        _known_zone(self.timezone)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True, kw_only=True)
class RoutingRule(_Section):
    """One [[routing.rules]] entry: documents matching every condition go to ``editors``."""

    name: str = ""
    match: dict[str, str | tuple[str, ...]] = field(default_factory=dict)
    paths: tuple[str, ...] = ()
    editors: Annotated[tuple[str, ...], Limits(min_length=1)]

    def __post_init__(self) -> None:
        if not self.match and not self.paths:
            raise ValueError("a rule needs a match table, a paths list, or both")


@dataclass(frozen=True)
class RoutingSettings(_Section):
    """[routing]: who is responsible for which document."""

    default: tuple[str, ...] = ()
    aliases: dict[str, tuple[Annotated[str, Check(_check_email)], ...]] = field(
        default_factory=dict
    )
    rules: tuple[RoutingRule, ...] = ()
    # Owners a document may name; those after the first max_owners are ignored, with a warning.
    max_owners: Annotated[int, Limits(ge=1)] = 10

    def __post_init__(self) -> None:
        for where, editors in [("default", self.default)] + [
            (f"rules[{i}]", rule.editors) for i, rule in enumerate(self.rules)
        ]:
            for editor in editors:
                if editor not in self.aliases and not is_email_address(editor):
                    raise ValueError(
                        f"{where}: {editor!r} is neither an email address nor a defined alias"
                    )


@dataclass(frozen=True)
class RemindersSettings(_Section):
    """[reminders]: when editors hear about their documents."""

    remind_every_days: Annotated[int, Limits(ge=1)] = 7
    escalate_after_days: Annotated[int, Limits(ge=0)] = 30
    # Copied on digests with documents overdue for escalate_after_days, and sent the documents
    # nobody else is responsible for. Addresses or aliases.
    escalate_to: tuple[str, ...] = ()
    # How far ahead `snooze --until` may postpone a document's reminders.
    max_snooze_days: Annotated[int, Limits(ge=1)] = 90
    # A digest lists this many of its documents, the most urgent first; its counts cover all.
    max_documents_per_digest: Annotated[int, Limits(ge=1, le=10_000)] = 100


_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def is_loopback_host(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class SmtpSettings(_Section):
    """[smtp]: the mail server. With no host, messages are written to [mail] outbox_dir."""

    host: str = ""
    # default by security: 587/465/25
    port: Annotated[int | None, Limits(ge=1, le=65535)] = None
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str = ""
    password: Secret | None = None  # only from SCHEDULER_SMTP__PASSWORD
    ca_file: Path | None = None  # extra certificate authorities to trust, PEM
    timeout_seconds: Annotated[float, Limits(gt=0)] = 30.0
    message_deadline_seconds: Annotated[float, Limits(gt=0)] = 120.0

    def __post_init__(self) -> None:
        if self.host and self.security == "none" and not is_loopback_host(self.host):
            raise ValueError(
                f'security = "none" sends mail unencrypted and is only allowed to a loopback '
                f'host, not {self.host!r}; use "starttls" or "tls"'
            )

    @property
    def effective_port(self) -> int:
        if self.port is not None:
            return self.port
        return {"starttls": 587, "tls": 465, "none": 25}[self.security]


def _plain_name(value: str) -> str:
    if re.search(r"[\x00-\x1f\x7f]|=\?", value):
        raise ValueError("must not contain control characters or '=?'")
    return value


def _domains(value: tuple[str, ...]) -> tuple[str, ...]:
    cleaned = tuple(d.strip().lstrip("@").rstrip(".").casefold() for d in value)
    for domain in cleaned:
        if not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)*", domain):
            raise ValueError(f"{domain!r} is not a domain name such as 'example.org'")
    return cleaned


@dataclass(frozen=True)
class MailSettings(_Section):
    """[mail]: what reminder digests look like and who they come from."""

    from_address: Annotated[str, Check(_check_email)] = "review-scheduler@localhost"
    from_name: Annotated[str, Check(_plain_name)] = "Review Scheduler"

    # The only domains an owner's address written in a document may have (example.org matches
    # only example.org); empty: any. Other owners are never mailed: their documents' reminders
    # go to [routing] default, with a warning. Aliases and [routing] addresses are not limited.
    allowed_domains: Annotated[tuple[str, ...], Check(_domains)] = ()

    # A folder of templates overriding the built-in ones (subject.txt, digest.txt, digest.html).
    templates: Path | None = None
    # Where messages go when [smtp] host is empty: one .eml file per message.
    outbox_dir: Path = Path(DEFAULT_OUTBOX_DIR)


@dataclass(frozen=True)
class DeliverySettings(_Section):
    """[delivery]: retrying messages the server did not accept."""

    retry_initial_seconds: Annotated[float, Limits(ge=0)] = 60.0
    retry_max_seconds: Annotated[float, Limits(ge=0)] = 3600.0
    give_up_after_hours: Annotated[float, Limits(gt=0)] = 48.0
    lease_seconds: Annotated[float, Limits(gt=0)] = 600.0


def _valid_schedule(value: str) -> str:
    from scheduler.runtime.schedule import parse_schedule  # imports APScheduler: only when set

    parse_schedule(value)
    return value


@dataclass(frozen=True)
class DaemonSettings(_Section):
    """[daemon]: when the background service runs its jobs."""

    # Cron schedule of reminder cycles, in the [review] time zone: minute hour day month
    # weekday (a sixth field in front, if present, is seconds). Default: weekdays at 09:00.
    schedule: Annotated[str, Check(_valid_schedule)] = "0 9 * * mon-fri"
    # How often the outbox is drained of messages waiting for a retry.
    drain_interval_seconds: Annotated[float, Limits(gt=0)] = 300.0
    # On SIGTERM/SIGINT, how long to let the message being sent (or the check) finish before
    # giving up on it; with the 10 s a cancelled job may take, well inside the systemd unit's
    # TimeoutStopSec=90.
    shutdown_grace_seconds: Annotated[float, Limits(gt=0)] = 30.0
    # Daemons sharing a PostgreSQL store: one holds the cycle lease and runs the cycles; it
    # renews it (and each daemon reports itself) every third of this. A replica that dies is
    # replaced when its lease runs out.
    cycle_lease_seconds: Annotated[float, Limits(ge=3)] = 30.0


@dataclass(frozen=True)
class HealthSettings(_Section):
    """[health]: when ``review-scheduler status`` calls the service unhealthy."""

    # How long delivery may keep failing before it is unhealthy; default: three drain intervals.
    delivery_failing_seconds: Annotated[float | None, Limits(gt=0)] = None
    # How many scheduled cycles may be missed in a row before it is unhealthy.
    missed_cycles: Annotated[int, Limits(ge=1)] = 2


@dataclass(frozen=True)
class DashboardSettings(_Section):
    """[dashboard]: the HTML freshness dashboard (its edit links come from [links])."""

    # The folder the daemon writes the dashboard to after each cycle; none: it writes none.
    out: Path | None = None


def _path_is_a_sqlite_url(data: Any) -> Any:
    """[store] path, the older form of url, as url (before the section is validated)."""
    if not (isinstance(data, Mapping) and "path" in data):
        return data
    rest = {k: v for k, v in data.items() if k != "path"}
    if "url" in data:
        # One from the environment overrides the other from the file, as for any key.
        names = {k.upper() for k in os.environ}
        from_env = {k for k in ("url", "path") if f"{ENV_PREFIX}STORE__{k.upper()}" in names}
        if len(from_env) != 1:
            raise ValueError(
                "url and path are both set; keep url (path is its older form, for a SQLite file)"
            )
        if from_env == {"url"}:
            return rest
    return rest | {"url": f"sqlite:///{data['path']}"}


def _supported(value: str | None) -> str | None:
    from scheduler.store import check_url  # the backends know their URLs

    return check_url(value) if value is not None else None


@dataclass(frozen=True)
class StoreSettings(_Section):
    """[store]: where the reminder ledger, the outbox, the run history and the parse cache are
    kept. ``url`` names a backend and its place: ``sqlite:///relative/path`` (from the config
    file's folder) or ``sqlite:////absolute/path``, or ``postgresql://...``. ``path`` (a SQLite
    file) is its older form."""

    url: Annotated[str, Check(_supported)] = f"sqlite:///{DEFAULT_STORE_FILE}"
    # PostgreSQL: the password, only from SCHEDULER_STORE__PASSWORD (else libpq's PGPASSWORD or
    # ~/.pgpass apply); never in the file or the URL.
    password: Secret | None = None
    # Where the parse cache is kept, as a store URL. Unset: in the store itself for SQLite; for
    # PostgreSQL in a local SQLite file (LOCAL_CACHE_URL), as each host reads its own files.
    cache_url: Annotated[str | None, Check(_supported)] = None

    def for_cache(self) -> StoreSettings:
        """The store that keeps the parse cache."""
        if self.cache_url is not None:
            return StoreSettings(url=self.cache_url, password=self.password)
        if self.url.startswith(("postgresql://", "postgres://")):
            return StoreSettings(url=LOCAL_CACHE_URL)
        return self


LOCAL_CACHE_URL = "sqlite:///.review-scheduler/parse-cache.sqlite3"


@dataclass(frozen=True)
class PerformanceSettings(_Section):
    """[performance]: how large libraries are read."""

    workers: Annotated[int, Limits(ge=0)] = 0  # 0: one per core
    parallel_threshold: Annotated[int, Limits(ge=1)] = 1000


def _template(value: str | None) -> str | None:
    if value is None:
        return None
    if not value.startswith(("https://", "http://")) or "{path}" not in value:
        raise ValueError("must be an http(s) URL containing {path}")
    try:
        value.format(path="x")
    except (KeyError, IndexError, ValueError):
        raise ValueError("may hold no braces but {path}") from None
    return value


@dataclass(frozen=True)
class LinksSettings(_Section):
    """[links]: where editors edit and read a document, as URL templates with ``{path}``."""

    # e.g. https://github.com/org/repo/edit/main/{path}
    edit_url: Annotated[str | None, Check(_template)] = None
    # e.g. https://github.com/org/repo/blob/main/{path}
    view_url: Annotated[str | None, Check(_template)] = None
    # The folder {path} is relative to, as the repository's URLs name files: with a config file,
    # the file's folder unless set (relative to it); with none, the current folder.
    base: Path = Path()


@dataclass(frozen=True)
class Settings:
    """Every setting of the tool. Loaded once per command, then frozen."""

    # validate_default as pydantic-settings' BaseSettings has it (see _environment_model)
    __pydantic_config__: ClassVar[dict[str, object]] = {"extra": "forbid", "validate_default": True}

    content: ContentSettings = field(default_factory=ContentSettings)
    fields: FieldNames = field(default_factory=FieldNames)
    metadata: MetadataRules = field(default_factory=MetadataRules)
    review: ReviewSettings = field(default_factory=ReviewSettings)
    routing: RoutingSettings = field(default_factory=RoutingSettings)
    reminders: RemindersSettings = field(default_factory=RemindersSettings)
    mail: MailSettings = field(default_factory=MailSettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    health: HealthSettings = field(default_factory=HealthSettings)
    dashboard: DashboardSettings = field(default_factory=DashboardSettings)
    store: Annotated[StoreSettings, Before(_path_is_a_sqlite_url)] = field(
        default_factory=StoreSettings
    )
    performance: PerformanceSettings = field(default_factory=PerformanceSettings)
    links: LinksSettings = field(default_factory=LinksSettings)

    def __post_init__(self) -> None:
        for contact in self.reminders.escalate_to:
            if contact not in self.routing.aliases and not is_email_address(contact):
                raise ValueError(
                    f"[reminders] escalate_to: {contact!r} is neither an email address nor an "
                    "alias from [routing] aliases"
                )


# The dataclasses of the settings by name, for the settings cache's decoder.
SECTION_CLASSES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        Settings,
        ContentSettings,
        FieldNames,
        MetadataRules,
        FrequencyRule,
        ReviewSettings,
        RoutingRule,
        RoutingSettings,
        RemindersSettings,
        SmtpSettings,
        MailSettings,
        DeliverySettings,
        DaemonSettings,
        HealthSettings,
        DashboardSettings,
        StoreSettings,
        PerformanceSettings,
        LinksSettings,
    )
}

_T = TypeVar("_T")
_adapters: dict[type, Any] = {}


def _adapter(cls: type[_T]) -> TypeAdapter[_T]:
    """pydantic's validator of the dataclass ``cls``, built once (pydantic is imported here)."""
    if cls not in _adapters:
        from pydantic import TypeAdapter

        _adapters[cls] = TypeAdapter(cls)
    adapter: TypeAdapter[_T] = _adapters[cls]
    return adapter


def validated(cls: type[_T], data: Mapping[str, Any]) -> _T:
    """The settings section ``cls`` (or the whole :class:`Settings`) made from ``data`` as a
    config file's table would hold it, validated; raises pydantic's ``ValidationError``."""
    return _adapter(cls).validate_python(data)


def _hints(cls: type) -> dict[str, Any]:
    """The types of the dataclass ``cls``'s fields, without their ``Annotated`` metadata."""
    return typing.get_type_hints(cls)


_environment_models: list[Any] = []


def _environment_model() -> Any:
    """A pydantic-settings model reading ``SCHEDULER_<SECTION>__<KEY>`` over its init arguments,
    made on first use: pydantic-settings costs a command's start-up some 20 ms to import, so it
    is imported only when such a variable is set. Its sections are pydantic models made from
    the dataclasses, with the same fields, types and checks (pydantic-settings looks into models
    only to find a nested variable's type, such as a JSON list); what it returns is validated
    again as :class:`Settings`, which makes the checks of whole sections."""
    if _environment_models:
        return _environment_models[0]
    from pydantic import ConfigDict, Field, create_model
    from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

    def mirror(cls: type) -> Any:
        hints = typing.get_type_hints(cls, include_extras=True)
        fields: dict[str, Any] = {}
        for item in dataclasses.fields(cls):
            if item.default_factory is not dataclasses.MISSING:
                fields[item.name] = (hints[item.name], Field(default_factory=item.default_factory))
            else:
                fields[item.name] = (hints[item.name], item.default)
        return create_model(cls.__name__, __config__=ConfigDict(extra="forbid"), **fields)

    hints = typing.get_type_hints(Settings, include_extras=True)
    sections: dict[str, Any] = {}
    for item in dataclasses.fields(Settings):
        hint = hints[item.name]
        extras: tuple[Any, ...] = ()
        if typing.get_origin(hint) is Annotated:
            hint, *rest = typing.get_args(hint)
            extras = tuple(rest)
        model = mirror(hint)
        annotation = Annotated[(model, *extras)] if extras else model
        sections[item.name] = (annotation, Field(default_factory=model))

    class EnvironmentSettings(BaseSettings):
        model_config = SettingsConfigDict(
            env_prefix=ENV_PREFIX,
            env_nested_delimiter="__",
            extra="forbid",
            frozen=True,
        )

        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            # The file's contents arrive as init arguments; the environment overrides them.
            return (env_settings, init_settings)

    model = create_model("Settings", __base__=EnvironmentSettings, **sections)
    _environment_models.append(model)
    return model


def _from_environment(data: dict[str, Any]) -> Settings:
    """The settings from the file's ``data`` with the environment variables over it."""
    model = _environment_model()
    loaded = model(**data)
    raw = {
        name: {key: getattr(section, key) for key in type(section).model_fields}
        for name, section in ((name, getattr(loaded, name)) for name in model.model_fields)
    }
    return validated(Settings, raw)


def _uses_environment(environ: Mapping[str, str]) -> bool:
    """Whether a variable the settings read is set (``$SCHEDULER_CONFIG`` names the file)."""
    names = (name.upper() for name in environ)
    return any(n.startswith(ENV_PREFIX) and n != CONFIG_ENV_VAR for n in names)


# Keys whose values never come from the file and are never shown in messages.
_SECRET_KEYS = {("smtp", "password"), ("store", "password")}


def find_config(
    explicit: Path | None, environ: Mapping[str, str], cwd: Path | None = None
) -> Path | None:
    """The config file to read: ``--config``, then ``$SCHEDULER_CONFIG``, then the nearest
    ``review-scheduler.toml``, ``.review-scheduler.toml`` or ``pyproject.toml`` with a
    ``[tool.review-scheduler]`` table from ``cwd`` upwards, then ``config/scheduler.toml``
    in ``cwd``."""
    here = Path.cwd() if cwd is None else cwd
    if explicit is not None:
        candidate, origin = explicit, "--config"
    elif environ.get(CONFIG_ENV_VAR):
        candidate, origin = Path(environ[CONFIG_ENV_VAR]), CONFIG_ENV_VAR
    else:
        return _search_upwards(here) or (
            DEFAULT_CONFIG_PATH if (here / DEFAULT_CONFIG_PATH).is_file() else None
        )
    if not (here / candidate).is_file():
        raise ConfigError(f"config file {candidate} (from {origin}) does not exist")
    return candidate


def _search_upwards(start: Path) -> Path | None:
    folder = _absolute(start)
    for parent in (folder, *folder.parents):
        for name in CONFIG_NAMES:
            candidate = parent / name
            if not candidate.is_file():
                continue
            if name != "pyproject.toml" or _pyproject_table(candidate) is not None:
                return _shown(candidate, start)
    return None


def _absolute(path: Path) -> Path:
    """``path`` made absolute, with ``..`` folded but symbolic links kept (a config file linked
    into a project takes its paths from the project)."""
    return Path(os.path.normpath(path.absolute()))


def _pyproject_table(path: Path) -> Any:
    """The ``[tool.review-scheduler]`` table of the pyproject.toml at ``path``, or None."""
    tool = _read_toml(path).get("tool")
    return tool.get(PYPROJECT_TABLE) if isinstance(tool, dict) else None


def _shown(path: Path, cwd: Path) -> Path:
    """``path`` relative to ``cwd`` when it is inside it (as messages show it), else absolute."""
    try:
        return path.relative_to(_absolute(cwd))
    except ValueError:
        return path


def config_base(path: Path) -> Path:
    """The folder relative paths in the config file ``path`` are taken from: its own folder,
    or for ``config/scheduler.toml`` the folder that holds ``config/`` (this layout's project
    folder, as cargo takes ``.cargo/config.toml`` from the folder above ``.cargo``)."""
    folder = _absolute(path).parent
    if path.name == DEFAULT_CONFIG_PATH.name and folder.name == DEFAULT_CONFIG_PATH.parent.name:
        return folder.parent
    return folder


def _read_toml(path: Path) -> dict[str, Any]:
    import tomllib  # here: a run whose settings come from the settings cache parses no TOML

    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:  # TOML is UTF-8; tomllib lets the decoding error through
        line = exc.object[: exc.start].count(b"\n") + 1
        byte = exc.object[exc.start]
        raise ConfigError(
            f"{path}: not valid TOML: line {line} is not UTF-8 (byte 0x{byte:02x}); "
            "save the file as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from exc


# Settings that are paths, as (section, key): relative ones written in a file are taken from
# the file's folder. ([store] url and path are handled apart: the path is inside the URL.)
PATH_KEYS = (
    ("content", "root"),
    ("mail", "templates"),
    ("mail", "outbox_dir"),
    ("smtp", "ca_file"),
    ("dashboard", "out"),
    ("store", "path"),
    ("links", "base"),
)
_SQLITE_PREFIX = "sqlite:///"


def _anchor(data: dict[str, Any], folder: Path, cwd: Path) -> dict[str, Any]:
    """The file's ``data`` with its relative paths taken from ``folder``, and the content root,
    the store and the outbox (when the file leaves them out) placed in ``folder``. Each path is
    then written as messages show it: relative to ``cwd`` when below it, else absolute."""
    here = os.path.normpath(_absolute(cwd))

    def base(path: str) -> str:
        if Path(path).is_absolute():
            return path  # as written
        placed = os.path.normpath(folder / path)
        if placed == here:
            return "."
        below = here if here.endswith(os.sep) else here + os.sep
        return placed[len(below) :] if placed.startswith(below) else placed

    anchored = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}

    def section(name: str) -> dict[str, Any] | None:
        value = anchored.setdefault(name, {})
        return value if isinstance(value, dict) else None  # not a table: validation says so

    for name, key in PATH_KEYS:
        table = section(name)
        if table is not None and isinstance(table.get(key), str):
            table[key] = base(table[key])
    store = section("store")
    for key in ("url", "cache_url"):
        if store is not None and isinstance(store.get(key), str):
            url: str = store[key]
            rest = url.removeprefix(_SQLITE_PREFIX)
            if url.startswith(_SQLITE_PREFIX) and rest and not rest.startswith("/"):
                store[key] = _SQLITE_PREFIX + base(rest)
    if (
        store is not None
        and isinstance(store.get("url"), str)
        and not store["url"].startswith(_SQLITE_PREFIX)
        and "cache_url" not in store
    ):
        # A shared store's parse cache stays on this host, beside the file too.
        store["cache_url"] = _SQLITE_PREFIX + base(LOCAL_CACHE_URL.removeprefix(_SQLITE_PREFIX))
    defaults = (
        ("content", "root", base(".")),
        ("mail", "outbox_dir", base(DEFAULT_OUTBOX_DIR)),
        ("links", "base", base(".")),
    )
    for name, key, value in defaults:
        table = section(name)
        if table is not None:
            table.setdefault(key, value)
    if store is not None and "url" not in store and "path" not in store:
        store["url"] = _SQLITE_PREFIX + base(DEFAULT_STORE_FILE)
    return {k: v for k, v in anchored.items() if v != {} or k in data}


def load_settings(path: Path | None, cwd: Path | None = None) -> Settings:
    """Read the TOML file at ``path`` (or nothing), apply the environment, validate everything.

    A ``pyproject.toml`` is read from its ``[tool.review-scheduler]`` table. Relative paths in
    the file are taken from :func:`config_base`, and held relative to ``cwd`` (default: the
    current folder) when they lie below it, else absolute.

    With no ``SCHEDULER_`` variable set, settings that validated before (the same file, read
    from the same folder by the same code) come from the validated-settings cache
    (:mod:`scheduler.settings_cache`), and with no file at all the defaults are used as they
    are (they validate: tests/test_config.py checks it); neither imports pydantic."""
    here = Path.cwd() if cwd is None else cwd
    if _uses_environment(os.environ):
        return _validate(path, here)
    if path is None:
        return Settings()
    from scheduler import settings_cache

    source = _cache_source(path)
    if source is None:
        return _validate(path, here)
    try:
        wanted = settings_cache.key(path, source, here)
    except (OSError, ValueError, ImportError):  # a file gone, a library with no usable spec
        return _validate(path, here)
    where = settings_cache.cache_file(config_base(path))
    cached = settings_cache.read(where, wanted, SECTION_CLASSES)
    if isinstance(cached, Settings):
        return cached
    settings = _validate(path, here)
    settings_cache.write(where, wanted, settings)
    return settings


def _cache_source(path: Path) -> bytes | None:
    """What of the config file at ``path`` its settings depend on, for the settings cache's
    key: its bytes, or for a ``pyproject.toml`` its table. None when it cannot be read (the
    validation that follows says why)."""
    try:
        if path.name != "pyproject.toml":
            return path.read_bytes()
        return json.dumps(_pyproject_table(path), sort_keys=True, default=str).encode()
    except (OSError, ConfigError, ValueError):
        return None


def _validate(path: Path | None, cwd: Path) -> Settings:
    """The settings from the file at ``path`` (or the defaults) and the environment,
    validated by pydantic."""
    from pydantic import ValidationError

    data: dict[str, Any] = {}
    if path is not None:
        data = _read_toml(path)
        if path.name == "pyproject.toml":
            table = _pyproject_table(path)
            table = {} if table is None else table
            if not isinstance(table, dict):
                raise ConfigError(f"{path}: [tool.{PYPROJECT_TABLE}] must be a table")
            data = table
        for section, key in _SECRET_KEYS:
            if isinstance(data.get(section), dict) and key in data[section]:
                env_name = f"{ENV_PREFIX}{section.upper()}__{key.upper()}"
                raise ConfigError(
                    f"{path}: [{section}] {key} must not be written in a config file; "
                    f"set the environment variable {env_name} instead"
                )
        data = _anchor(data, config_base(path), cwd)
    try:
        if not _uses_environment(os.environ):
            return validated(Settings, data)
        from pydantic_settings import SettingsError

        try:
            return _from_environment(data)
        except SettingsError as exc:
            raise ConfigError(_describe_unparsable(exc, os.environ)) from None
    except ValidationError as exc:
        where = str(path) if path is not None else "the built-in defaults"
        lines = [_describe_error(err, where, os.environ) for err in exc.errors()]
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None


def _describe_unparsable(exc: Exception, environ: Mapping[str, str]) -> str:
    """An environment variable pydantic-settings could not even parse (a list or table that
    is not JSON), named, with what to write instead."""
    match = re.search(r'field "(\w+)"', str(exc))
    section = match.group(1) if match else ""
    model: Any = _hints(Settings).get(section)
    is_section = isinstance(model, type) and dataclasses.is_dataclass(model)
    subfields: dict[str, Any] = _hints(model) if is_section else {}
    whole, prefix = f"{ENV_PREFIX}{section.upper()}", f"{ENV_PREFIX}{section.upper()}__"
    unparsable = []
    for name, value in sorted(environ.items()):
        upper = name.upper()
        if upper != whole and not upper.startswith(prefix):
            continue
        try:
            json.loads(value)
        except ValueError:
            sub = subfields.get(upper.removeprefix(prefix).lower())
            simple = sub in (str, int, float, bool, Path)
            unparsable.append((simple, name, value))
    if not unparsable:
        return f"an environment variable {prefix}...: {exc}; check its value"
    _, name, value = min(unparsable)  # a list or table before a plain value
    return (
        f"environment variable {name}: cannot parse {value[:60]!r}: a list or table is "
        'written as JSON there, e.g. ["a@example.org"] or {"key": "value"}'
    )


def _env_source(loc: tuple[str, ...], where: str, environ: Mapping[str, str]) -> str:
    """Where the value at ``loc`` came from: the environment variable set for it
    (SCHEDULER_SMTP__PORT, else SCHEDULER_SMTP as a JSON table), else the file. An error about
    a whole section names the section's variables that are set, with the file."""
    names = {k.upper() for k in environ}
    candidates = [ENV_PREFIX + "__".join(part.upper() for part in loc[:2])] if len(loc) > 1 else []
    candidates += [ENV_PREFIX + loc[0].upper()] if loc else []
    for env_name in candidates:
        if env_name in names:
            return env_name
    if len(loc) == 1:
        set_here = sorted(n for n in names if n.startswith(f"{ENV_PREFIX}{loc[0].upper()}__"))
        if set_here:
            return f"{where} with {', '.join(set_here)}"
    return where


def _describe_error(err: Mapping[str, Any], where: str, environ: Mapping[str, str]) -> str:
    loc = tuple(str(part) for part in err["loc"])
    key = _format_key(loc)
    source = _env_source(loc, where, environ)
    if err["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
        message = f"unknown key {key}"
        suggestion = _suggest_key(loc)
        if suggestion:
            message += f" (did you mean {suggestion!r}?)"
        return f"{source}: {message}"
    text = err["msg"].removeprefix("Value error, ")
    return f"{source}: {key}: {text}"


def _format_key(loc: tuple[str, ...]) -> str:
    if not loc:
        return "(top level)"
    if len(loc) == 1:
        return f"[{loc[0]}]" if loc[0] in _hints(Settings) else repr(loc[0])
    return f"[{loc[0]}] " + ".".join(loc[1:])


def _suggest_key(loc: tuple[str, ...]) -> str | None:
    model: Any = Settings
    for part in loc[:-1]:
        annotation = _hints(model).get(part)
        if not dataclasses.is_dataclass(annotation):
            return None
        model = annotation
    matches = difflib.get_close_matches(loc[-1], list(_hints(model)), n=1, cutoff=0.6)
    return matches[0] if matches else None
