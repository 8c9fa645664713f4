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
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

_DAY_NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class ScheduleError(ValueError):
    pass


def _weekday_names(field: str) -> str:
    """Standard cron numbers weekdays 0-7 from Sunday; APScheduler 3 from Monday. Names are
    unambiguous, so numbers become names."""

    def name(match: re.Match[str]) -> str:
        number = int(match.group(0))
        if number > 7:
            raise ScheduleError(f"day of week {number} is not 0-7")
        return _DAY_NAMES[number]

    return re.sub(r"(?<![/\d])\d+", name, field)


def parse_schedule(expr: str) -> CronTrigger:
    """A crontab expression as a CronTrigger over naive wall-clock time.

    Five fields (minute hour day month day-of-week) or six with seconds first.
    """
    fields = expr.split()
    if len(fields) == 5:
        fields = ["0", *fields]
    if len(fields) != 6:
        raise ScheduleError(
            f"{expr!r} is not a cron schedule: expected 5 fields (minute hour day month "
            "weekday), or 6 with seconds first"
        )
    second, minute, hour, day, month, weekday = fields
    try:
        return CronTrigger(
            second=second,
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=_weekday_names(weekday),
            timezone=UTC,
        )
    except ValueError as exc:
        raise ScheduleError(f"{expr!r} is not a valid cron schedule: {exc}") from None


def place(wall: datetime, zone: tzinfo) -> datetime:
    """The instant a naive wall-clock time stands for in ``zone``: first occurrence of a
    repeated time; for a skipped time, as far past the gap as the time was into it."""
    local = wall.replace(tzinfo=zone, fold=0)
    return local.astimezone(UTC).astimezone(zone)


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
        """The first fire time at or after ``moment`` (and after ``strictly_after``)."""
        wall = moment.astimezone(self.zone).replace(tzinfo=UTC)
        previous = None
        for _ in range(10_000):
            candidate_wall = self._wall.get_next_fire_time(previous, wall)
            if candidate_wall is None:
                return None
            candidate = place(candidate_wall.replace(tzinfo=None), self.zone)
            not_past = candidate >= moment
            new = strictly_after is None or candidate > strictly_after
            if not_past and new:
                return candidate
            previous = candidate_wall
            wall = candidate_wall + timedelta(microseconds=1)
        return None

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
