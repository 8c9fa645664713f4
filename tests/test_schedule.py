"""The cycle schedule through daylight-saving changes: exactly once per scheduled local day."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.runtime.schedule import LocalCronTrigger, ScheduleError, missed_cycle, parse_schedule


def transitions(zone: ZoneInfo, year: int) -> list[date]:
    """Local dates on which the zone's UTC offset changes."""
    days = []
    day = date(year, 1, 1)
    while day.year == year:
        before = datetime.combine(day, time(0), zone).utcoffset()
        after = datetime.combine(day + timedelta(days=1), time(0), zone).utcoffset()
        if before != after or (datetime.combine(day, time(23, 59), zone).utcoffset() != before):
            days.append(day)
        day += timedelta(days=1)
    return days


def fires(trigger: LocalCronTrigger, start: datetime, end: datetime) -> list[datetime]:
    out: list[datetime] = []
    previous = None
    now = start
    while True:
        fire = trigger.get_next_fire_time(previous, now)
        assert fire is not None
        if fire > end:
            return out
        assert previous is None or fire > previous
        out.append(fire)
        previous, now = fire, fire


ZONES = ["Europe/London", "America/New_York", "Australia/Sydney", "America/Havana", "Europe/Madrid"]
TIMES = ["0 0", "30 0", "30 1", "30 2", "59 2", "0 3", "30 3", "0 9", "45 23"]


@pytest.mark.parametrize("zone_name", ZONES)
@pytest.mark.parametrize("minute_hour", TIMES)
def test_daily_schedule_fires_once_per_local_day_across_changes(
    zone_name: str, minute_hour: str
) -> None:
    zone = ZoneInfo(zone_name)
    changes = transitions(zone, 2026)
    assert len(changes) >= 2, f"{zone_name} should change twice in 2026"
    trigger = LocalCronTrigger(f"{minute_hour} * * *", zone)
    minute, hour = (int(x) for x in minute_hour.split())
    for change in changes:
        start = datetime.combine(change - timedelta(days=3), time(0), zone)
        end = datetime.combine(change + timedelta(days=4), time(0), zone)
        got = fires(trigger, start, end)
        per_day = Counter(f.astimezone(zone).date() for f in got)
        expected_days = [change + timedelta(days=d) for d in range(-3, 4)]
        assert [per_day[d] for d in expected_days] == [1] * 7, (zone_name, minute_hour, got)
        for fire in got:
            local = fire.astimezone(zone)
            wanted = datetime.combine(local.date(), time(hour, minute))
            shift = local.replace(tzinfo=None) - wanted
            # on time, or (in a spring gap) pushed past the gap by its length, never earlier
            assert timedelta(0) <= shift <= timedelta(hours=1), (local, wanted)
            if shift:
                assert local.date() in changes


def test_the_madrid_case_that_plain_apscheduler_skips() -> None:
    # CronTrigger(hour=0, minute=30) in Europe/Madrid skipped 2024-04-01 in APScheduler 3.11.
    zone = ZoneInfo("Europe/Madrid")
    trigger = LocalCronTrigger("30 0 * * *", zone)
    got = fires(trigger, datetime(2024, 3, 29, tzinfo=zone), datetime(2024, 4, 3, tzinfo=zone))
    assert [f.astimezone(zone).strftime("%m-%d %H:%M %z") for f in got] == [
        "03-29 00:30 +0100",
        "03-30 00:30 +0100",
        "03-31 00:30 +0100",
        "04-01 00:30 +0200",
        "04-02 00:30 +0200",
    ]


@pytest.mark.parametrize(
    ("zone_name", "day", "expr", "expected"),
    [
        # spring: 02:30 does not exist in Madrid on 2024-03-31; it fires once, at 03:30
        ("Europe/Madrid", date(2024, 3, 31), "30 2 * * *", ["03:30 +0200"]),
        # autumn: 02:30 happens twice in Madrid on 2024-10-27; it fires once, the first time
        ("Europe/Madrid", date(2024, 10, 27), "30 2 * * *", ["02:30 +0200"]),
        # a zone that changes at midnight: 00:30 does not exist in Havana on 2026-03-08
        ("America/Havana", date(2026, 3, 8), "30 0 * * *", ["01:30 -0400"]),
        # ...and happens twice on 2026-11-01
        ("America/Havana", date(2026, 11, 1), "30 0 * * *", ["00:30 -0400"]),
        # Sydney's autumn is in April: 02:30 twice on 2026-04-05
        ("Australia/Sydney", date(2026, 4, 5), "30 2 * * *", ["02:30 +1100"]),
        ("Australia/Sydney", date(2026, 10, 4), "30 2 * * *", ["03:30 +1100"]),
        # hourly through the autumn fold: each wall-clock hour once
        (
            "Europe/London",
            date(2026, 10, 25),
            "0 * * * *",
            [f"{h:02d}:00 {'+0100' if h < 2 else '+0000'}" for h in range(24)],
        ),
        # hourly through the spring gap: the missing hour is not invented twice
        (
            "America/New_York",
            date(2026, 3, 8),
            "0 * * * *",
            [f"{h:02d}:00 {'-0500' if h < 2 else '-0400'}" for h in range(24) if h != 2],
        ),
    ],
)
def test_gap_and_fold_days(zone_name: str, day: date, expr: str, expected: list[str]) -> None:
    zone = ZoneInfo(zone_name)
    trigger = LocalCronTrigger(expr, zone)
    got = [
        f.astimezone(zone)
        for f in fires(
            trigger, datetime.combine(day, time(0), zone), datetime.combine(day, time(23, 59), zone)
        )
    ]
    assert [f.strftime("%H:%M %z") for f in got if f.date() == day] == expected


def test_weekdays_only_by_default_and_in_standard_cron_numbers() -> None:
    zone = ZoneInfo("Europe/London")
    start = datetime(2026, 11, 23, tzinfo=zone)  # a Monday
    end = start + timedelta(days=14)
    by_name = fires(LocalCronTrigger("0 9 * * mon-fri", zone), start, end)
    by_number = fires(LocalCronTrigger("0 9 * * 1-5", zone), start, end)
    assert by_name == by_number
    assert [f.strftime("%a") for f in by_name] == ["Mon", "Tue", "Wed", "Thu", "Fri"] * 2
    sundays = fires(LocalCronTrigger("0 9 * * 0", zone), start, end)
    assert [f.strftime("%a %d") for f in sundays] == ["Sun 29", "Sun 06"]
    assert fires(LocalCronTrigger("0 9 * * 7", zone), start, end) == sundays


def test_seconds_field() -> None:
    trigger = LocalCronTrigger("*/15 * * * * *", ZoneInfo("UTC"))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert [f.second for f in fires(trigger, start, start + timedelta(seconds=59))] == [
        0,
        15,
        30,
        45,
    ]


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("0 9 * *", "expected 5 fields"),
        ("0 25 * * *", "not a valid cron schedule"),
        ("0 9 * * 8", "day of week 8 is not 0-7"),
        ("every day", "expected 5 fields"),
    ],
)
def test_bad_schedules(expr: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        parse_schedule(expr)


def test_missed_cycles_coalesce_into_one() -> None:
    zone = ZoneInfo("Europe/London")
    trigger = LocalCronTrigger("0 9 * * mon-fri", zone)
    friday_run = datetime(2026, 11, 20, 9, 0, 2, tzinfo=zone)
    # down over the weekend, back on Monday 08:00: nothing missed
    assert missed_cycle(trigger, friday_run, datetime(2026, 11, 23, 8, tzinfo=zone)) is None
    # back on Wednesday 10:00: Monday, Tuesday and Wednesday missed; one catch-up, the latest
    assert missed_cycle(trigger, friday_run, datetime(2026, 11, 25, 10, tzinfo=zone)) == datetime(
        2026, 11, 25, 9, tzinfo=zone
    )
    # exactly at the slot counts as due
    assert missed_cycle(trigger, friday_run, datetime(2026, 11, 23, 9, tzinfo=zone)) == datetime(
        2026, 11, 23, 9, tzinfo=zone
    )
    assert missed_cycle(trigger, None, datetime(2026, 11, 25, 10, tzinfo=zone)) is None


# ----- standard cron meaning, against an independent implementation

CRON_TABLE = [
    "0 9 * * 1-5/2",  # Mon, Wed, Fri
    "0 9 * * */2",  # Sun, Tue, Thu, Sat
    "0 9 * * 0-6",
    "0 9 * * 0-3",
    "0 9 * * sun-tue",
    "0 9 * * 5-7",
    "0 9 * * 7",
    "0 9 * * 0,7",
    "0 9 * * mon,wed-fri",
    "0 9 * * 1/3",  # Mon, Thu, Sun
    "0 9 * * MON-FRI",
    "*/15 * * * *",
    "5/15 * * * *",  # 5, 20, 35, 50
    "10-50/20 8-18/5 * * *",
    "0 */7 * * *",
    "0 9 */10 * *",
    "0 9 1,15 * *",
    "0 9 31 * *",
    "0 9 29 2 *",
    "0 9 * jan-mar/2 *",
    "0 9 * */5 *",
    "0 9 1 * mon",  # day 1 or any Monday, as in standard cron
    "0 9 13 * 5",  # Friday or the 13th
    "0 9 1-7 * 0",
    "0 0 * 12 sat,sun",
    "59 23 28-31 * *",
]


@pytest.mark.parametrize("expr", CRON_TABLE)
def test_fields_have_standard_cron_meaning(expr: str) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    trigger = LocalCronTrigger(expr, ZoneInfo("UTC"))
    reference = croniter(expr, start - timedelta(seconds=1))
    ours: list[datetime] = []
    previous = None
    for _ in range(60):
        fire = trigger.get_next_fire_time(previous, start)
        assert fire is not None
        ours.append(fire)
        previous = fire
    assert ours == [reference.get_next(datetime) for _ in ours], expr


def test_weekday_steps_and_ranges_name_the_right_days() -> None:
    zone = ZoneInfo("UTC")
    start = datetime(2026, 11, 22, tzinfo=zone)  # a Sunday

    def days(expr: str) -> list[str]:
        return [
            f.strftime("%a")
            for f in fires(LocalCronTrigger(expr, zone), start, start + timedelta(days=6, hours=23))
        ]

    assert days("0 9 * * 1-5/2") == ["Mon", "Wed", "Fri"]
    assert days("0 9 * * */2") == ["Sun", "Tue", "Thu", "Sat"]
    assert days("0 9 * * 0-3") == ["Sun", "Mon", "Tue", "Wed"]
    assert days("0 9 * * sun-tue") == ["Sun", "Mon", "Tue"]
    assert days("0 9 * * 0-6") == ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        (
            "0 \u0663 * * *",
            "hour '\u0663' is not a cron field: only ASCII digits",
        ),  # ARABIC-INDIC DIGIT THREE
        ("\uff10 9 * * *", "only ASCII digits"),  # FULLWIDTH DIGIT ZERO
        ("0 9 * * \u0661-5", "only ASCII digits"),
        ("0 9 * * tue-sun", "runs backwards"),
        ("0 9 * * */0", "step 0"),
        ("0 9 0 * *", "day of month 0 is not 1-31"),
        ("0 9 * 13 *", "month 13 is not 1-12"),
        ("0 9 * * funday", "is not a number or name"),
        ("0 9 L * *", "is not a number or name"),
        ("60 9 * * *", "minute 60 is not 0-59"),
    ],
)
def test_schedules_outside_standard_cron_are_refused(expr: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        parse_schedule(expr)


def test_cron_table_covers_the_reported_failures() -> None:
    for expr in ("0 9 * * 1-5/2", "0 9 * * */2", "0 9 * * 0-6", "0 9 * * 0-3", "0 9 * * sun-tue"):
        assert expr in CRON_TABLE


# ----- every scheduled local time fires once, whatever moment the computation starts from

PROPERTY_ZONES = [
    "Europe/Madrid",
    "Europe/London",
    "America/New_York",
    "America/Havana",  # changes at midnight
    "America/Santiago",  # changes at midnight, southern hemisphere
    "Australia/Sydney",
    "Australia/Lord_Howe",  # a half-hour change
]


def reference_instants(
    zone: ZoneInfo, walls: list[datetime], start: datetime, end: datetime
) -> set[datetime]:
    """Where each wall-clock time in ``walls`` falls, found by walking UTC minute by minute over
    [start - 1 day, end + 1 day]: the first instant that reads it, or, in a spring gap, the
    instant as far past the gap as the time is into it. Independent of the production code."""
    first: dict[datetime, datetime] = {}
    readings: list[tuple[datetime, datetime]] = []  # (local reading, instant), in UTC order
    t = (start - timedelta(days=1)).astimezone(UTC).replace(second=0, microsecond=0)
    stop = end + timedelta(days=1)
    while t <= stop:
        reading = t.astimezone(zone).replace(tzinfo=None)
        first.setdefault(reading, t)
        readings.append((reading, t))
        t += timedelta(minutes=1)
    out = set()
    for wall in walls:
        if wall in first:
            out.add(first[wall])
            continue
        # a gap: the last instant reading earlier than ``wall`` before the jump past it
        for (r0, t0), (r1, _) in itertools.pairwise(readings):
            if r0 < wall < r1 and r1 - r0 > timedelta(minutes=1):
                out.add(t0 + (wall - r0))
                break
    return out


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    zone_name=st.sampled_from(PROPERTY_ZONES),
    which=st.integers(0, 1),
    offset_minutes=st.integers(-36 * 60, 36 * 60),
    offset_seconds=st.integers(0, 59),
    minutes=st.sets(st.sampled_from([0, 1, 15, 29, 30, 31, 45, 59]), min_size=1, max_size=3),
    hours=st.sets(st.integers(0, 23), min_size=1, max_size=4),
)
def test_each_local_time_fires_once_from_any_start(
    zone_name: str,
    which: int,
    offset_minutes: int,
    offset_seconds: int,
    minutes: set[int],
    hours: set[int],
) -> None:
    zone = ZoneInfo(zone_name)
    change = transitions(zone, 2026)[which]
    start = datetime.combine(change, time(12), zone).astimezone(UTC) + timedelta(
        minutes=offset_minutes, seconds=offset_seconds
    )
    end = start + timedelta(hours=48)
    expr = f"{','.join(map(str, sorted(minutes)))} {','.join(map(str, sorted(hours)))} * * *"
    trigger = LocalCronTrigger(expr, zone)
    first_day = start.astimezone(zone).date() - timedelta(days=2)
    walls = [
        datetime.combine(first_day + timedelta(days=d), time(h, m))
        for d in range(6)
        for h in hours
        for m in minutes
    ]
    expected = sorted(i for i in reference_instants(zone, walls, start, end) if start <= i <= end)
    # (in UTC: datetimes in a repeated hour of a zone never compare equal to other zones')
    got = [f.astimezone(UTC) for f in fires(trigger, start, end)]
    assert got == expected, (expr, start)
    # and started from any fire time itself, that fire is the first
    if expected:
        again = trigger.get_next_fire_time(None, expected[0])
        assert again is not None and again.astimezone(UTC) == expected[0]


def test_a_start_inside_the_shifted_hour_keeps_that_days_slot() -> None:
    madrid = LocalCronTrigger("30 2 * * *", ZoneInfo("Europe/Madrid"))
    fire = madrid.get_next_fire_time(None, datetime(2026, 3, 29, 1, 10, tzinfo=UTC))
    assert fire == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # 03:30 CEST, that same day
    london = LocalCronTrigger("0,30 1 * * *", ZoneInfo("Europe/London"))
    got = fires(
        london, datetime(2026, 3, 29, 0, 40, tzinfo=UTC), datetime(2026, 3, 29, 23, tzinfo=UTC)
    )
    assert [f.strftime("%H:%M %z") for f in got] == ["02:00 +0100", "02:30 +0100"]


# ----- review-scheduler schedule


def _configure(root: Path, zone: str, schedule: str) -> None:
    (root / "config").mkdir()
    (root / "config" / "scheduler.toml").write_text(
        f'[review]\ntimezone = "{zone}"\n[daemon]\nschedule = "{schedule}"\n'
    )


def test_schedule_command_lists_fire_times_in_local_time_and_utc(
    tmp_path: Path, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure(tmp_path, "Europe/Madrid", "30 2 * * *")
    monkeypatch.chdir(tmp_path)
    result = run("schedule", "--from", "2026-03-29T01:10Z", "--count", "3")
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        "Schedule: '30 2 * * *' in Europe/Madrid",
        "From: Sun 2026-03-29 03:10:00 CEST +0200",
        # the spring change skips 02:30: that day's slot fires an hour later, not the next day
        "1. Sun 2026-03-29 03:30:00 CEST +0200  (Sun 2026-03-29 01:30:00 UTC)",
        "2. Mon 2026-03-30 02:30:00 CEST +0200  (Mon 2026-03-30 00:30:00 UTC)",
        "3. Tue 2026-03-31 02:30:00 CEST +0200  (Tue 2026-03-31 00:30:00 UTC)",
    ]
    # a time without an offset is in the [review] time zone; the daemon's trigger is used
    local = run("schedule", "--from", "2026-11-27 10:00", "--count", "2")
    trigger = LocalCronTrigger("30 2 * * *", ZoneInfo("Europe/Madrid"))
    first = trigger.next_after(datetime(2026, 11, 27, 10, tzinfo=ZoneInfo("Europe/Madrid")))
    assert first is not None
    assert local.out.splitlines()[2].startswith(f"1. {first.strftime('%a %Y-%m-%d %H:%M:%S')}")
    assert local.out.splitlines()[2].startswith("1. Sat 2026-11-28 02:30:00 CET +0100")


def test_schedule_command_shows_standard_weekday_meaning(
    tmp_path: Path, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure(tmp_path, "UTC", "0 9 * * 1-5/2")
    monkeypatch.chdir(tmp_path)
    result = run("schedule", "--from", "2026-11-22T00:00Z", "--count", "4")
    assert result.code == 0, result.err
    assert [line.split()[1] for line in result.out.splitlines()[2:]] == ["Mon", "Wed", "Fri", "Mon"]
    assert "Mon 2026-11-23 09:00:00 UTC  (Mon 2026-11-23 09:00:00 UTC)" in result.out


def test_schedule_command_refuses_bad_input(
    tmp_path: Path, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure(tmp_path, "UTC", "0 9 * * tue-sun")
    monkeypatch.chdir(tmp_path)
    bad_schedule = run("schedule")
    assert bad_schedule.code == 2
    assert "range 'tue-sun' runs backwards" in bad_schedule.err
    (tmp_path / "config" / "scheduler.toml").write_text('[daemon]\nschedule = "0 9 * * *"\n')
    bad_from = run("schedule", "--from", "next tuesday")
    assert bad_from.code == 2
    assert "'next tuesday' is not a date and time" in bad_from.err
    assert run("schedule", "--count", "0").code == 2
