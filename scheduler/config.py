"""All settings in one frozen pydantic model.

Sources, strongest first: environment variables ``SCHEDULER_<SECTION>__<KEY>``, the TOML config
file, the built-in defaults. The file is ``--config FILE``, else ``$SCHEDULER_CONFIG``, else
``config/scheduler.toml`` when it exists; with none of them the defaults apply alone. Unknown keys
are rejected, and every error names the key and where its value came from. Relative paths are
taken from the current directory.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from scheduler.content.fields import FIELDS, NAMES, unknown_names
from scheduler.errors import ConfigError
from scheduler.rules import find as find_rule

ENV_PREFIX = "SCHEDULER_"
CONFIG_ENV_VAR = "SCHEDULER_CONFIG"
DEFAULT_CONFIG_PATH = Path("config/scheduler.toml")

# An address we are willing to put in an envelope and a header: no spaces, quotes, angle
# brackets or control characters, one "@", a dotted domain of letters, digits and hyphens.
_EMAIL_RE = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")


def is_email_address(value: str) -> bool:
    return _EMAIL_RE.fullmatch(value) is not None


def _check_email(value: str) -> str:
    if not is_email_address(value):
        raise ValueError(f"{value!r} is not an email address")
    return value


EmailAddress = Annotated[str, AfterValidator(_check_email)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ContentSettings(_Section):
    """[content]: where the documents are and which files count as documents."""

    root: Path = Path("seeds")
    include: tuple[str, ...] = ("**/*.md", "**/*.markdown", "**/*.txt")
    exclude: tuple[str, ...] = ()
    max_file_bytes: int = Field(default=1024 * 1024, gt=0)


class _FieldNamesBase(_Section):
    """[fields]: the frontmatter key that holds each piece of metadata (see
    :mod:`scheduler.content.fields`, which declares the names and their default keys)."""

    @model_validator(mode="after")
    def _distinct(self) -> _FieldNamesBase:
        seen: dict[str, str] = {}
        for name, key in self.model_dump().items():
            if key in seen:
                raise ValueError(f"{name} and {seen[key]} both read the key {key!r}")
            seen[key] = name
        return self

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
    FieldNames = create_model(
        "FieldNames",
        __base__=_FieldNamesBase,
        __doc__=_FieldNamesBase.__doc__,
        **{field.name: (str, field.key) for field in FIELDS},
    )


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


class MetadataRules(_Section):
    """[metadata]: what a document's frontmatter must hold."""

    required: tuple[str, ...] = (
        "title",
        "last_reviewed",
        "review_frequency",
        "status",
        "license",
    )
    recommended: tuple[str, ...] = ("url", "source", "language")
    statuses: tuple[str, ...] = ("active", "draft", "archived", "retired")
    review_statuses: tuple[str, ...] = ("active",)
    licenses: tuple[str, ...] = DEFAULT_LICENSES
    extra_keys: tuple[str, ...] = ()
    warn_unknown_keys: bool = True
    # Warnings to switch off, by code or name (RS204 or unknown-key); stored as codes.
    ignore: tuple[str, ...] = ()

    @field_validator("ignore")
    @classmethod
    def _warnings_only(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        codes = []
        for wanted in value:
            rule = find_rule(wanted)
            if rule is None:
                raise ValueError(f"{wanted!r} is not a rule code or name (see the README)")
            if not rule.can_warn:
                raise ValueError(
                    f"{rule.code} {rule.name} is always an error and cannot be switched off"
                )
            codes.append(rule.code)
        return tuple(codes)

    @field_validator("required", "recommended")
    @classmethod
    def _known_fields(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = unknown_names(value)
        if unknown:
            raise ValueError(f"not a field: {', '.join(unknown)}; fields are {', '.join(NAMES)}")
        return value

    @model_validator(mode="after")
    def _review_statuses_known(self) -> MetadataRules:
        missing = [f for f in ("last_reviewed", "review_frequency") if f not in self.required]
        if missing:
            raise ValueError(f"required must include {missing}: no due date without them")
        unknown = [s for s in self.review_statuses if s not in self.statuses]
        if unknown:
            raise ValueError(f"review_statuses {unknown} are not in statuses {list(self.statuses)}")
        if not self.statuses:
            raise ValueError("statuses must not be empty")
        return self


class ReviewSettings(_Section):
    """[review]: how due dates become states."""

    timezone: str = "UTC"
    due_soon_days: int = Field(default=30, ge=0, le=3660)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class RoutingRule(_Section):
    """One [[routing.rules]] entry: documents matching every condition go to ``editors``."""

    name: str = ""
    match: dict[str, str | tuple[str, ...]] = {}
    paths: tuple[str, ...] = ()
    editors: tuple[str, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _has_condition(self) -> RoutingRule:
        if not self.match and not self.paths:
            raise ValueError("a rule needs a match table, a paths list, or both")
        return self


class RoutingSettings(_Section):
    """[routing]: who is responsible for which document."""

    default: tuple[str, ...] = ()
    aliases: dict[str, tuple[EmailAddress, ...]] = {}
    rules: tuple[RoutingRule, ...] = ()

    @model_validator(mode="after")
    def _editors_resolve(self) -> RoutingSettings:
        for where, editors in [("default", self.default)] + [
            (f"rules[{i}]", rule.editors) for i, rule in enumerate(self.rules)
        ]:
            for editor in editors:
                if editor not in self.aliases and not is_email_address(editor):
                    raise ValueError(
                        f"{where}: {editor!r} is neither an email address nor a defined alias"
                    )
        return self


class RemindersSettings(_Section):
    """[reminders]: when editors hear about their documents."""

    remind_every_days: int = Field(default=7, ge=1)
    escalate_after_days: int = Field(default=30, ge=0)
    # Copied on digests with documents overdue for escalate_after_days, and sent the documents
    # nobody else is responsible for. Addresses or aliases.
    escalate_to: tuple[str, ...] = ()
    # How far ahead `snooze --until` may postpone a document's reminders.
    max_snooze_days: int = Field(default=90, ge=1)


_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def is_loopback_host(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class SmtpSettings(_Section):
    """[smtp]: the mail server. With no host, messages are written to [mail] outbox_dir."""

    host: str = ""
    port: int | None = Field(default=None, ge=1, le=65535)  # default by security: 587/465/25
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str = ""
    password: SecretStr | None = None  # only from SCHEDULER_SMTP__PASSWORD
    ca_file: Path | None = None  # extra certificate authorities to trust, PEM
    timeout_seconds: float = Field(default=30, gt=0)
    message_deadline_seconds: float = Field(default=120, gt=0)

    @model_validator(mode="after")
    def _plaintext_only_on_loopback(self) -> SmtpSettings:
        if self.host and self.security == "none" and not is_loopback_host(self.host):
            raise ValueError(
                f'security = "none" sends mail unencrypted and is only allowed to a loopback '
                f'host, not {self.host!r}; use "starttls" or "tls"'
            )
        return self

    @property
    def effective_port(self) -> int:
        if self.port is not None:
            return self.port
        return {"starttls": 587, "tls": 465, "none": 25}[self.security]


class MailSettings(_Section):
    """[mail]: what reminder digests look like and who they come from."""

    from_address: EmailAddress = "review-scheduler@localhost"
    from_name: str = "Review Scheduler"

    @field_validator("from_name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if re.search(r"[\x00-\x1f\x7f]|=\?", value):
            raise ValueError("must not contain control characters or '=?'")
        return value

    # A folder of templates overriding the built-in ones (subject.txt, digest.txt, digest.html).
    templates: Path | None = None
    # Where messages go when [smtp] host is empty: one .eml file per message.
    outbox_dir: Path = Path(".review-scheduler/outbox")


class DeliverySettings(_Section):
    """[delivery]: retrying messages the server did not accept."""

    retry_initial_seconds: float = Field(default=60, ge=0)
    retry_max_seconds: float = Field(default=3600, ge=0)
    give_up_after_hours: float = Field(default=48, gt=0)
    lease_seconds: float = Field(default=600, gt=0)


class DaemonSettings(_Section):
    """[daemon]: when the background service runs its jobs."""

    # Cron schedule of reminder cycles, in the [review] time zone: minute hour day month
    # weekday (a sixth field in front, if present, is seconds). Default: weekdays at 09:00.
    schedule: str = "0 9 * * mon-fri"
    # How often the outbox is drained of messages waiting for a retry.
    drain_interval_seconds: float = Field(default=300, gt=0)
    # On SIGTERM/SIGINT, how long to let the message being sent (or the check) finish before
    # giving up on it; with the 10 s a cancelled job may take, well inside the systemd unit's
    # TimeoutStopSec=90.
    shutdown_grace_seconds: float = Field(default=30, gt=0)

    @field_validator("schedule")
    @classmethod
    def _valid_schedule(cls, value: str) -> str:
        from scheduler.runtime.schedule import parse_schedule  # imports APScheduler: only when set

        parse_schedule(value)
        return value


class DashboardSettings(_Section):
    """[dashboard]: the HTML freshness dashboard (its edit links come from [links])."""

    # The folder the daemon writes the dashboard to after each cycle; none: it writes none.
    out: Path | None = None


class StoreSettings(_Section):
    """[store]: where the reminder ledger, the outbox, the run history and the parse cache are
    kept. ``url`` names a backend and its place: ``sqlite:///relative/path`` (from the current
    folder) or ``sqlite:////absolute/path``. ``path`` (a SQLite file) is its older form."""

    url: str = "sqlite:///.review-scheduler/state.sqlite3"

    @model_validator(mode="before")
    @classmethod
    def _path_is_a_sqlite_url(cls, data: Any) -> Any:
        if not (isinstance(data, Mapping) and "path" in data):
            return data
        rest = {k: v for k, v in data.items() if k != "path"}
        if "url" in data:
            # One from the environment overrides the other from the file, as for any key.
            names = {k.upper() for k in os.environ}
            from_env = {k for k in ("url", "path") if f"{ENV_PREFIX}STORE__{k.upper()}" in names}
            if len(from_env) != 1:
                raise ValueError(
                    "url and path are both set; keep url (path is its older form, "
                    "for a SQLite file)"
                )
            if from_env == {"url"}:
                return rest
        return rest | {"url": f"sqlite:///{data['path']}"}

    @field_validator("url")
    @classmethod
    def _supported(cls, value: str) -> str:
        from scheduler.store import check_url  # the backends know their URLs

        return check_url(value)


class PerformanceSettings(_Section):
    """[performance]: how large libraries are read."""

    workers: int = Field(default=0, ge=0)  # 0: one per core
    parallel_threshold: int = Field(default=1000, ge=1)


class LinksSettings(_Section):
    """[links]: where editors edit and read a document, as URL templates with ``{path}``."""

    edit_url: str | None = None  # e.g. https://github.com/org/repo/edit/main/{path}
    view_url: str | None = None  # e.g. https://github.com/org/repo/blob/main/{path}

    @field_validator("edit_url", "view_url")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("https://", "http://")) or "{path}" not in value:
            raise ValueError("must be an http(s) URL containing {path}")
        try:
            value.format(path="x")
        except (KeyError, IndexError, ValueError):
            raise ValueError("may hold no braces but {path}") from None
        return value


class Settings(BaseSettings):
    """Every setting of the tool. Loaded once per command, then frozen."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    content: ContentSettings = ContentSettings()
    fields: FieldNames = FieldNames()
    metadata: MetadataRules = MetadataRules()
    review: ReviewSettings = ReviewSettings()
    routing: RoutingSettings = RoutingSettings()
    reminders: RemindersSettings = RemindersSettings()
    mail: MailSettings = MailSettings()
    smtp: SmtpSettings = SmtpSettings()
    delivery: DeliverySettings = DeliverySettings()
    daemon: DaemonSettings = DaemonSettings()
    dashboard: DashboardSettings = DashboardSettings()
    store: StoreSettings = StoreSettings()
    performance: PerformanceSettings = PerformanceSettings()
    links: LinksSettings = LinksSettings()

    @model_validator(mode="after")
    def _escalation_contacts_resolve(self) -> Settings:
        for contact in self.reminders.escalate_to:
            if contact not in self.routing.aliases and not is_email_address(contact):
                raise ValueError(
                    f"[reminders] escalate_to: {contact!r} is neither an email address nor an "
                    "alias from [routing] aliases"
                )
        return self

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


# Keys whose values never come from the file and are never shown in messages.
_SECRET_KEYS = {("smtp", "password")}


def find_config(explicit: Path | None, environ: Mapping[str, str]) -> Path | None:
    """The config file to read: ``--config``, then ``$SCHEDULER_CONFIG``, then the default."""
    if explicit is not None:
        candidate, origin = explicit, "--config"
    elif environ.get(CONFIG_ENV_VAR):
        candidate, origin = Path(environ[CONFIG_ENV_VAR]), CONFIG_ENV_VAR
    elif DEFAULT_CONFIG_PATH.is_file():
        return DEFAULT_CONFIG_PATH
    else:
        return None
    if not candidate.is_file():
        raise ConfigError(f"config file {candidate} (from {origin}) does not exist")
    return candidate


def load_settings(path: Path | None) -> Settings:
    """Read the TOML file at ``path`` (or nothing), apply the environment, validate everything."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with path.open("rb") as handle:
                data = tomllib.load(handle)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from exc
        for section, key in _SECRET_KEYS:
            if isinstance(data.get(section), dict) and key in data[section]:
                env_name = f"{ENV_PREFIX}{section.upper()}__{key.upper()}"
                raise ConfigError(
                    f"{path}: [{section}] {key} must not be written in a config file; "
                    f"set the environment variable {env_name} instead"
                )
    try:
        return Settings(**data)
    except ValidationError as exc:
        where = str(path) if path is not None else "the built-in defaults"
        lines = [_describe_error(err, where, os.environ) for err in exc.errors()]
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None


def _describe_error(err: Mapping[str, Any], where: str, environ: Mapping[str, str]) -> str:
    loc = tuple(str(part) for part in err["loc"])
    key = _format_key(loc)
    env_name = ENV_PREFIX + "__".join(part.upper() for part in loc[:2])
    source = env_name if env_name in {k.upper() for k in environ} else where
    if err["type"] == "extra_forbidden":
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
        return f"[{loc[0]}]" if loc[0] in Settings.model_fields else repr(loc[0])
    return f"[{loc[0]}] " + ".".join(loc[1:])


def _suggest_key(loc: tuple[str, ...]) -> str | None:
    model: Any = Settings
    for part in loc[:-1]:
        field = model.model_fields.get(part)
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    matches = difflib.get_close_matches(loc[-1], list(model.model_fields), n=1, cutoff=0.6)
    return matches[0] if matches else None
