"""When reminder cycles run: a cron schedule in local wall-clock time, exactly once per
scheduled local time, through daylight-saving changes.

APScheduler's own CronTrigger computes in the target zone and, in 3.11, can skip the day after a
spring change for times before 03:00. Here the cron arithmetic runs on naive wall-clock times (in
UTC, which has no transitions) and each wall-clock time is then placed in the zone: a time that
does not exist (the spring gap) fires at the same offset after the gap, once; a time that occurs
twice (the autumn fold) fires at its first occurrence only.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger


class ScheduleError(ValueError):
    pass


class _Field(NamedTuple):
    name: str
    low: int
    high: int  # the highest value written (7 for days of week, which means Sunday)
    names: tuple[str, ...] = ()  # names for low, low + 1, ...


_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_FIELDS = (
    _Field("second", 0, 59),
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day of month", 1, 31),
    _Field("month", 1, 12, _MONTHS),
    _Field("day of week", 0, 7, _DAYS),
)
_ITEM = re.compile(r"(?P<range>\*|[0-9a-z]+(?:-[0-9a-z]+)?)(?:/(?P<step>[0-9]+))?", re.ASCII)
_APS_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _value(text: str, field: _Field) -> int:
    if text.isascii() and text.isdigit():
        number = int(text)
    elif text in field.names:
        number = field.low + field.names.index(text)
    else:
        raise ScheduleError(f"{field.name} {text!r} is not a number or name")
    if not field.low <= number <= field.high:
        raise ScheduleError(f"{field.name} {number} is not {field.low}-{field.high}")
    return number


def expand_field(text: str, field: _Field) -> frozenset[int]:
    """The values a cron field stands for, with standard cron meaning: ``*``, numbers, names
    (of months and weekdays), ranges ``a-b``, lists ``a,b`` and steps ``/n`` counted from the
    start of their range (``a/n`` runs from ``a`` to the field's end). Days of week are 0-6
    from Sunday; 7 is Sunday too. Only ASCII digits count as digits."""
    values: set[int] = set()
    top = 6 if field.names is _DAYS else field.high
    for item in text.lower().split(","):
        if not item.isascii():
            raise ScheduleError(
                f"{field.name} {item!r} is not a cron field: only ASCII digits and names count"
            )
        match = _ITEM.fullmatch(item)
        if match is None:
            raise ScheduleError(f"{field.name} {item!r} is not a cron field")
        whole, step_text = match.group("range"), match.group("step")
        if whole == "*":
            first, last = field.low, top
        else:
            first_text, _, last_text = whole.partition("-")
            first = _value(first_text, field)
            last = _value(last_text, field) if last_text else (top if step_text else first)
            if last < first:
                raise ScheduleError(f"{field.name} range {whole!r} runs backwards")
        step = int(step_text) if step_text is not None else 1
        if step < 1:
            raise ScheduleError(f"{field.name} step {step} is not 1 or more")
        values.update(range(first, last + 1, step))
    if field.names is _DAYS:
        values = {v % 7 for v in values}
    return frozenset(values)


class CronSchedule(NamedTuple):
    """A cron expression's fields as sets of values. When both day of month and day of week
    are restricted (neither is ``*``), a day matches if either does, as in standard cron."""

    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 is Sunday
    day_or: bool

    def matches(self, wall: datetime) -> bool:
        """Whether the wall-clock time ``wall`` is one of the schedule's (for checks)."""
        weekday = wall.isoweekday() % 7
        day_ok = (
            (wall.day in self.days or weekday in self.weekdays)
            if self.day_or
            else (wall.day in self.days and weekday in self.weekdays)
        )
        return (
            wall.second in self.seconds
            and wall.minute in self.minutes
            and wall.hour in self.hours
            and wall.month in self.months
            and day_ok
        )


def cron_fields(expr: str) -> CronSchedule:
    """Five fields (minute hour day month day-of-week) or six with seconds first."""
    fields = expr.split()
    if len(fields) == 5:
        fields = ["0", *fields]
    if len(fields) != 6:
        raise ScheduleError(
            f"{expr!r} is not a cron schedule: expected 5 fields (minute hour day month "
            "weekday), or 6 with seconds first"
        )
    try:
        sets = [expand_field(text, field) for text, field in zip(fields, _FIELDS, strict=True)]
    except ScheduleError as exc:
        raise ScheduleError(f"{expr!r} is not a valid cron schedule: {exc}") from None
    seconds, minutes, hours, days, months, weekdays = sets
    return CronSchedule(
        seconds,
        minutes,
        hours,
        days,
        months,
        weekdays,
        day_or=fields[3] != "*" and fields[5] != "*",
    )


def _listed(values: frozenset[int]) -> str:
    return ",".join(str(v) for v in sorted(values))


class WallCron:
    """The cron schedule over naive wall-clock time (computed in UTC, which has no
    transitions), by APScheduler's CronTrigger: one trigger, or two when days of month and
    of week each select days (standard cron's "either")."""

    def __init__(self, expr: str) -> None:
        fields = cron_fields(expr)
        self.fields = fields

        def trigger(days: frozenset[int] | None, weekdays: frozenset[int] | None) -> CronTrigger:
            return CronTrigger(
                second=_listed(fields.seconds),
                minute=_listed(fields.minutes),
                hour=_listed(fields.hours),
                day=_listed(days) if days is not None else "*",
                month=_listed(fields.months),
                # APScheduler 3 numbers days from Monday: names say what is meant
                day_of_week=(
                    ",".join(_APS_DAYS[d] for d in sorted(weekdays))
                    if weekdays is not None
                    else "*"
                ),
                timezone=UTC,
            )

        if fields.day_or:
            self._triggers = [trigger(fields.days, None), trigger(None, fields.weekdays)]
        else:
            self._triggers = [trigger(fields.days, fields.weekdays)]

    def next_at_or_after(self, wall: datetime) -> datetime | None:
        """The first scheduled wall-clock time at or after naive ``wall`` (whole seconds)."""
        start = wall.replace(tzinfo=UTC)
        found = [t.get_next_fire_time(None, start) for t in self._triggers]
        times = [f.replace(tzinfo=None) for f in found if f is not None]
        return min(times) if times else None


def parse_schedule(expr: str) -> WallCron:
    """A crontab expression, checked, as a schedule over naive wall-clock time."""
    return WallCron(expr)


def place(wall: datetime, zone: tzinfo) -> datetime:
    """The instant a naive wall-clock time stands for in ``zone``: first occurrence of a
    repeated time; for a skipped time, as far past the gap as the time was into it."""
    local = wall.replace(tzinfo=zone, fold=0)
    return local.astimezone(UTC).astimezone(zone)


_DAY_WINDOW = 26  # hours either side of an instant in which its zone's offsets are looked at


@lru_cache(maxsize=4096)
def _offsets(zone: tzinfo, hour: datetime) -> tuple[timedelta, timedelta]:
    """The lowest and highest UTC offset ``zone`` has within a day or so of ``hour`` (UTC)."""
    seen = []
    for k in range(-_DAY_WINDOW, _DAY_WINDOW + 1):
        offset = (hour + timedelta(hours=k)).astimezone(zone).utcoffset()
        seen.append(offset or timedelta(0))
    return min(seen), max(seen)


def offset_range(zone: tzinfo, instant: datetime) -> tuple[timedelta, timedelta]:
    hour = instant.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return _offsets(zone, hour)


class LocalCronTrigger(BaseTrigger):
    """An APScheduler trigger that fires once per matching local wall-clock time."""

    def __init__(self, expr: str, zone: ZoneInfo) -> None:
        self.expr = expr
        self.zone = zone
        self._wall = parse_schedule(expr)

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        after = now if previous_fire_time is None else max(now, previous_fire_time)
        return self.next_after(after, strictly_after=previous_fire_time)

    def next_after(
        self, moment: datetime, strictly_after: datetime | None = None
    ) -> datetime | None:
        """The first fire time at or after ``moment`` (and after ``strictly_after``).

        Fire times are the scheduled wall-clock times placed in the zone (see :func:`place`),
        whatever moment the computation starts from: a time shifted past a spring gap can fall
        after wall-clock times that come later, so the search starts as far back in wall-clock
        time as the zone's offsets near ``moment`` allow, and ends when no later wall-clock
        time can be placed earlier than the best found.
        """
        target = moment
        if strictly_after is not None and strictly_after >= target:
            target = strictly_after + timedelta(microseconds=1)
        target = target.astimezone(UTC)
        low, _ = offset_range(self.zone, target)
        wall: datetime | None = target.replace(tzinfo=None) + low - timedelta(seconds=1)
        best: datetime | None = None
        for _ in range(100_000):
            assert wall is not None
            candidate = self._wall.next_at_or_after(wall)
            if candidate is None:
                break
            placed = place(candidate, self.zone)
            if placed >= target and (best is None or placed < best):
                best = placed
            if best is not None:
                _, high = offset_range(self.zone, placed)
                if candidate - high > best.astimezone(UTC).replace(tzinfo=None):
                    break
            wall = candidate + timedelta(seconds=1)
        return best

    def last_at_or_before(self, moment: datetime, since: datetime) -> datetime | None:
        """The latest fire time in (since, moment], or None."""
        latest = None
        fire = self.next_after(since, strictly_after=since)
        while fire is not None and fire <= moment:
            latest = fire
            fire = self.next_after(fire, strictly_after=fire)
        return latest

    def __str__(self) -> str:
        return f"cron[{self.expr!r} in {self.zone.key}]"

    def __repr__(self) -> str:
        return f"<LocalCronTrigger {self.expr!r} {self.zone.key}>"


def missed_cycle(
    trigger: LocalCronTrigger, last_started: datetime | None, now: datetime
) -> datetime | None:
    """The scheduled time of a cycle missed since the last one started, if any.

    Several missed slots count as one: a single catch-up cycle covers them all. With no
    recorded cycle at all, nothing was missed.
    """
    if last_started is None:
        return None
    return trigger.last_at_or_before(now, last_started)
