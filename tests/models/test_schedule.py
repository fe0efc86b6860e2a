"""Table-driven tests of models.schedule: parsing, fire times across DST, texts and errors (pure, no I/O)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from models.errors import DefinitionError
from models.schedule import Schedule, parse_schedule

# Thursday 2026-05-14 10:00 UTC: the moment the definitions below were "stored".
ANCHOR = datetime(2026, 5, 14, 10, 0, tzinfo=UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """An aware UTC datetime, for short tables."""
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def local_strings(fires: list[datetime], tz: str) -> list[str]:
    """Fires as local wall-clock with offset, the form a person checks a schedule by."""
    return [f.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S%z") for f in fires]


def cases(table: Sequence[tuple[Any, ...]]) -> list[Any]:
    """Table rows as pytest params, the first column being the case id."""
    return [pytest.param(*row[1:], id=str(row[0])) for row in table]


def schedule(
    check_on: str,
    day: str | None = None,
    time: str | None = None,
    tz: str | None = None,
    anchor: datetime = ANCHOR,
) -> Schedule:
    """parse_schedule with the table's shorthand."""
    return parse_schedule(check_on, day, time, tz, anchor)


# fmt: off
NEXT_CASES = [
    # (id, check_on, custom_day, custom_time, time_zone, anchor, t, expected local fires)
    ("seed-8h-phase", "8 hours", "thursday", "06:45:23", None, ANCHOR, utc(2026, 5, 14),
     ["2026-05-14 06:45:23+0000", "2026-05-14 14:45:23+0000", "2026-05-14 22:45:23+0000"]),
    ("8h-midnight-phase", "8 hours", None, None, None, ANCHOR, utc(2026, 5, 13, 23, 59),
     ["2026-05-14 00:00:00+0000", "2026-05-14 08:00:00+0000", "2026-05-14 16:00:00+0000"]),
    ("8h-before-anchor", "8 hours", None, "06:45:23", None, ANCHOR, utc(2026, 5, 1),
     ["2026-05-01 06:45:23+0000", "2026-05-01 14:45:23+0000"]),
    ("15-minutes", "15 minutes", None, None, None, ANCHOR, utc(2026, 5, 14, 10, 7),
     ["2026-05-14 10:15:00+0000", "2026-05-14 10:30:00+0000", "2026-05-14 10:45:00+0000"]),
    ("8h-london-winter-anchor-in-summer", "8 hours", None, "06:45:23", "Europe/London", utc(2026, 1, 15),
     utc(2026, 6, 1), ["2026-06-01 07:45:23+0100", "2026-06-01 15:45:23+0100", "2026-06-01 23:45:23+0100"]),
    ("8h-london-summer-anchor-in-winter", "8 hours", None, "06:45:23", "Europe/London", ANCHOR,
     utc(2026, 12, 1), ["2026-12-01 05:45:23+0000", "2026-12-01 13:45:23+0000"]),
    ("hourly-london-spring", "hourly", None, None, "Europe/London", ANCHOR, utc(2026, 3, 28, 23, 30),
     ["2026-03-29 00:00:00+0000", "2026-03-29 02:00:00+0100", "2026-03-29 03:00:00+0100"]),
    ("hourly-london-autumn", "1 hour", None, None, "Europe/London", ANCHOR, utc(2026, 10, 24, 23, 30),
     ["2026-10-25 01:00:00+0100", "2026-10-25 01:00:00+0000", "2026-10-25 02:00:00+0000"]),
    ("hourly-ny-spring", "hourly", None, None, "America/New_York", ANCHOR, utc(2026, 3, 8, 5, 30),
     ["2026-03-08 01:00:00-0500", "2026-03-08 03:00:00-0400", "2026-03-08 04:00:00-0400"]),
    ("hourly-ny-autumn", "hourly", None, None, "America/New_York", ANCHOR, utc(2026, 11, 1, 4, 30),
     ["2026-11-01 01:00:00-0400", "2026-11-01 01:00:00-0500", "2026-11-01 02:00:00-0500"]),
    ("daily-0230-ny-spring-gap", "daily", None, "02:30", "America/New_York", ANCHOR, utc(2026, 3, 7),
     ["2026-03-07 02:30:00-0500", "2026-03-08 03:30:00-0400", "2026-03-09 02:30:00-0400"]),
    ("daily-0130-london-spring-gap", "daily", None, "01:30", "Europe/London", ANCHOR, utc(2026, 3, 28),
     ["2026-03-28 01:30:00+0000", "2026-03-29 02:30:00+0100", "2026-03-30 01:30:00+0100"]),
    ("daily-0230-london-spring-exists", "daily", None, "02:30", "Europe/London", ANCHOR, utc(2026, 3, 28, 12),
     ["2026-03-29 02:30:00+0100", "2026-03-30 02:30:00+0100"]),
    ("daily-0130-ny-autumn-once", "daily", None, "01:30", "America/New_York", ANCHOR, utc(2026, 10, 31),
     ["2026-10-31 01:30:00-0400", "2026-11-01 01:30:00-0400", "2026-11-02 01:30:00-0500"]),
    ("daily-0130-london-autumn-once", "1 day", None, "01:30", "Europe/London", ANCHOR, utc(2026, 10, 24),
     ["2026-10-24 01:30:00+0100", "2026-10-25 01:30:00+0100", "2026-10-26 01:30:00+0000"]),
    ("daily-midnight-utc", "daily", "thursday", "", None, ANCHOR, utc(2026, 5, 14, 10),
     ["2026-05-15 00:00:00+0000", "2026-05-16 00:00:00+0000"]),
    ("daily-kolkata", "DAILY", None, "09:15", "Asia/Kolkata", ANCHOR, utc(2026, 5, 14, 10),
     ["2026-05-15 09:15:00+0530", "2026-05-16 09:15:00+0530"]),
    ("3-days-from-anchor-date", "3 days", None, "09:00", None, ANCHOR, utc(2026, 5, 14),
     ["2026-05-14 09:00:00+0000", "2026-05-17 09:00:00+0000", "2026-05-20 09:00:00+0000"]),
    ("weekly-thursday-london", "weekly", "thursday", "06:45:23", "Europe/London", ANCHOR, ANCHOR,
     ["2026-05-21 06:45:23+0100", "2026-05-28 06:45:23+0100", "2026-06-04 06:45:23+0100"]),
    ("weekly-default-anchor-weekday", "weekly", None, None, None, ANCHOR, ANCHOR,
     ["2026-05-21 00:00:00+0000", "2026-05-28 00:00:00+0000"]),
    ("customDayTime-monday-ny", "customDayTime", "monday", "09:00", "America/New_York", ANCHOR, ANCHOR,
     ["2026-05-18 09:00:00-0400", "2026-05-25 09:00:00-0400", "2026-06-01 09:00:00-0400"]),
    ("customDayTime-sun-short-name", "customdaytime", "Sun", "18:30", None, ANCHOR, ANCHOR,
     ["2026-05-17 18:30:00+0000", "2026-05-24 18:30:00+0000"]),
    ("2-weeks-friday-from-anchor-week", "2 weeks", "friday", "07:00", None, ANCHOR, utc(2026, 5, 11),
     ["2026-05-15 07:00:00+0000", "2026-05-29 07:00:00+0000", "2026-06-12 07:00:00+0000"]),
    ("monthly-31-short-months", "monthly", "31", None, None, ANCHOR, utc(2026, 3, 30),
     ["2026-03-31 00:00:00+0000", "2026-04-30 00:00:00+0000", "2026-05-31 00:00:00+0000",
      "2026-06-30 00:00:00+0000"]),
    ("monthly-31-feb", "monthly", "31", None, None, ANCHOR, utc(2026, 1, 31, 12),
     ["2026-02-28 00:00:00+0000", "2026-03-31 00:00:00+0000"]),
    ("monthly-31-leap-feb", "monthly", "31", None, None, ANCHOR, utc(2028, 1, 31, 12),
     ["2028-02-29 00:00:00+0000", "2028-03-31 00:00:00+0000"]),
    ("monthly-30-feb", "Monthly", " 30 ", "23:59:59", None, ANCHOR, utc(2027, 2, 1),
     ["2027-02-28 23:59:59+0000", "2027-03-30 23:59:59+0000"]),
    ("monthly-default-day-1-london", "monthly", "", "09:00", "Europe/London", ANCHOR, ANCHOR,
     ["2026-06-01 09:00:00+0100", "2026-07-01 09:00:00+0100"]),
    ("cron-business-quarter-hours", "*/15 9-17 * * 1-5", None, None, None, ANCHOR, utc(2026, 5, 15, 17, 40),
     ["2026-05-15 17:45:00+0000", "2026-05-18 09:00:00+0000", "2026-05-18 09:15:00+0000"]),
    ("cron-weekdays-london-spring", "0 9 * * 1-5", None, None, "Europe/London", ANCHOR, utc(2026, 3, 26, 12),
     ["2026-03-27 09:00:00+0000", "2026-03-30 09:00:00+0100"]),
    ("cron-hourly-ny-autumn-once", "30 * * * *", None, None, "America/New_York", ANCHOR, utc(2026, 11, 1, 3),
     ["2026-10-31 23:30:00-0400", "2026-11-01 00:30:00-0400", "2026-11-01 01:30:00-0400",
      "2026-11-01 02:30:00-0500"]),
    ("cron-hourly-ny-spring-merged", "30 * * * *", "thursday", None, "America/New_York", ANCHOR,
     utc(2026, 3, 8, 5), ["2026-03-08 00:30:00-0500", "2026-03-08 01:30:00-0500", "2026-03-08 03:30:00-0400",
                          "2026-03-08 04:30:00-0400"]),
    ("cron-half-hours-london-spring", "*/30 * * * *", None, None, "Europe/London", ANCHOR, utc(2026, 3, 29),
     ["2026-03-29 00:30:00+0000", "2026-03-29 02:00:00+0100", "2026-03-29 02:30:00+0100",
      "2026-03-29 03:00:00+0100"]),
    ("cron-daily-0130-london-autumn", "30 1 * * *", None, None, "Europe/London", ANCHOR,
     utc(2026, 10, 24, 12), ["2026-10-25 01:30:00+0100", "2026-10-26 01:30:00+0000"]),
]
# fmt: on


@pytest.mark.parametrize(("check_on", "day", "time", "tz", "anchor", "t", "expected"), cases(NEXT_CASES))
def test_next_n(
    check_on: str,
    day: str | None,
    time: str | None,
    tz: str | None,
    anchor: datetime,
    t: datetime,
    expected: list[str],
) -> None:
    """Fires land on the expected local wall-clock, are aware UTC and strictly increasing."""
    s = parse_schedule(check_on, day, time, tz, anchor)
    fires = s.next_n(t, len(expected))
    assert local_strings(fires, s.time_zone) == expected
    assert all(f.tzinfo == UTC for f in fires)
    assert all(a < b for a, b in zip([t, *fires], fires, strict=False))


@pytest.mark.parametrize(
    ("check_on", "day", "tz"),
    [
        ("weekly", "thursday", "Europe/London"),
        ("customDayTime", "THU", "America/New_York"),
        ("weekly", None, "UTC"),
    ],
)
def test_weekly_fires_on_thursday(check_on: str, day: str | None, tz: str) -> None:
    """A Thursday schedule (or one anchored on a Thursday) fires on local Thursdays all year round."""
    s = schedule(check_on, day, "06:45:23", tz)
    for fire in s.next_n(ANCHOR, 60):
        local = fire.astimezone(ZoneInfo(tz))
        assert (local.strftime("%A"), local.strftime("%H:%M:%S")) == ("Thursday", "06:45:23")


# fmt: off
BETWEEN_CASES = [
    # (id, check_on, custom_time, time_zone, start, end, limit, expected count, first fire, last fire)
    ("8h-one-day", "8 hours", "06:45:23", None, utc(2026, 5, 14), utc(2026, 5, 15), 10, 3,
     utc(2026, 5, 14, 6, 45, 23), utc(2026, 5, 14, 22, 45, 23)),
    ("limit-keeps-earliest", "8 hours", None, None, utc(2026, 5, 1), utc(2026, 5, 11), 5, 5,
     utc(2026, 5, 1, 8), utc(2026, 5, 2, 16)),
    ("start-excluded-end-included", "hourly", None, None, utc(2026, 5, 14, 10), utc(2026, 5, 14, 12), 10, 2,
     utc(2026, 5, 14, 11), utc(2026, 5, 14, 12)),
    ("limit-zero", "daily", None, None, utc(2026, 5, 1), utc(2026, 6, 1), 0, 0, None, None),
    ("empty-range", "daily", None, None, utc(2026, 5, 1), utc(2026, 5, 1), 10, 0, None, None),
    ("cron-business-day", "*/15 9-17 * * 1-5", None, None, utc(2026, 5, 18), utc(2026, 5, 19), 100, 36,
     utc(2026, 5, 18, 9), utc(2026, 5, 18, 17, 45)),
    ("monthly-year", "monthly", "10:00", "Europe/London", utc(2026, 1, 1), utc(2027, 1, 1), 100, 12,
     utc(2026, 1, 1, 10), utc(2026, 12, 1, 10)),
    ("hourly-elapsed-across-spring", "hourly", None, "Europe/London", utc(2026, 3, 29), utc(2026, 3, 30),
     100, 24, utc(2026, 3, 29, 1), utc(2026, 3, 30)),
    ("daily-fall-back-week", "daily", "01:30", "America/New_York", utc(2026, 10, 29), utc(2026, 11, 5),
     100, 7, utc(2026, 10, 29, 5, 30), utc(2026, 11, 4, 6, 30)),
    ("cron-hourly-25h-day", "30 * * * *", None, "America/New_York", utc(2026, 11, 1, 4), utc(2026, 11, 2, 5),
     100, 24, utc(2026, 11, 1, 4, 30), utc(2026, 11, 2, 4, 30)),
    ("cron-hourly-23h-day", "30 * * * *", None, "America/New_York", utc(2026, 3, 8, 5), utc(2026, 3, 9, 4),
     100, 23, utc(2026, 3, 8, 5, 30), utc(2026, 3, 9, 3, 30)),
]
# fmt: on


@pytest.mark.parametrize(
    ("check_on", "time", "tz", "start", "end", "limit", "count", "first", "last"), cases(BETWEEN_CASES)
)
def test_fires_between(
    check_on: str,
    time: str | None,
    tz: str | None,
    start: datetime,
    end: datetime,
    limit: int,
    count: int,
    first: datetime | None,
    last: datetime | None,
) -> None:
    """Fires in (start, end], at most limit, earliest first, strictly increasing."""
    fires = schedule(check_on, None, time, tz).fires_between(start, end, limit)
    assert len(fires) == count
    assert all(start < f <= end for f in fires)
    assert all(a < b for a, b in zip(fires, fires[1:], strict=False))
    if count:
        assert (fires[0], fires[-1]) == (first, last)


@pytest.mark.parametrize(
    ("check_on", "day", "expected"),
    [
        ("1 minute", None, 1),
        ("15 minutes", None, 15),
        ("8 hours", "thursday", 480),
        ("hourly", None, 60),
        ("daily", None, 1440),
        ("2 days", None, 2880),
        ("weekly", None, 10080),
        ("3 weeks", "mon", 30240),
        ("customDayTime", "friday", 10080),
        ("monthly", "31", 43200),
        ("*/15 9-17 * * 1-5", None, 15),
        ("0 9 * * *", None, 1440),
        ("0 9 * * 1-5", None, 4320),  # anchor is a Thursday: next two fires are Friday and Monday
    ],
)
def test_check_on_minutes(check_on: str, day: str | None, expected: int) -> None:
    """The nominal interval reported to the API."""
    assert schedule(check_on, day, "06:45:23", "Europe/London").check_on_minutes == expected


@pytest.mark.parametrize(
    ("check_on", "day", "time", "tz", "expected"),
    [
        ("8 hours", "thursday", "06:45:23", None, "Every 8 hours from 06:45:23 UTC"),
        ("hourly", None, None, "Europe/London", "Every hour from 00:00:00 Europe/London"),
        ("weekly", "thursday", "06:45:23", "Europe/London", "Every Thursday at 06:45:23 Europe/London"),
        ("customDayTime", "mon", "9:30", None, "Every Monday at 09:30:00 UTC"),
        ("daily", None, "", None, "Every day at 00:00:00 UTC"),
        ("3 days", None, "12:00", None, "Every 3 days at 12:00:00 UTC from 2026-05-14"),
        ("2 weeks", "friday", None, None, "Every 2 weeks on Friday at 00:00:00 UTC from 2026-05-15"),
        ("monthly", "31", "08:00", None, "Every month on day 31 (or the month's last day) at 08:00:00 UTC"),
        ("monthly", "", None, None, "Every month on day 1 at 00:00:00 UTC"),
        ("0 9 * * 1-5", None, None, "Europe/London", "Cron '0 9 * * 1-5' (Europe/London)"),
    ],
)
def test_text(check_on: str, day: str | None, time: str | None, tz: str | None, expected: str) -> None:
    """checkOnText is plain English naming the time and zone."""
    assert schedule(check_on, day, time, tz).text == expected


@pytest.mark.parametrize(
    ("check_on", "day", "time", "tz"),
    [
        ("8 hours", "thursday", "06:45:23", "Europe/London"),
        ("daily", None, "02:30", "America/New_York"),
        ("2 weeks", "fri", "07:00", "Asia/Tokyo"),
        ("customDayTime", "sunday", "18:30", None),
        ("monthly", "31", None, None),
        ("*/15 9-17 * * 1-5", None, None, "Europe/London"),
    ],
)
def test_dict_round_trip(check_on: str, day: str | None, time: str | None, tz: str | None) -> None:
    """to_dict survives JSON and from_dict rebuilds an equal schedule with the same fires."""
    s = schedule(check_on, day, time, tz)
    stored = json.loads(json.dumps(s.to_dict()))
    again = Schedule.from_dict(stored)
    assert again == s
    assert again.next_n(ANCHOR, 5) == s.next_n(ANCHOR, 5)


@pytest.mark.parametrize(
    ("check_on", "day", "time", "kind", "every", "unit", "weekday", "stored_time"),
    [
        ("8 HOURS", "funday", "6:45", "interval", 8, "hour", None, "06:45:00"),  # custom_day ignored
        ("  1 minute ", None, None, "interval", 1, "minute", None, "00:00:00"),
        ("Hourly", "thursday", "", "interval", 1, "hour", None, "00:00:00"),
        ("daily", "funday", None, "days", 1, "day", None, "00:00:00"),
        ("1 Week", "SUNDAY", "23:59:59", "weeks", 1, "week", 6, "23:59:59"),
        ("WEEKLY", "wed", None, "weeks", 1, "week", 2, "00:00:00"),
        ("0 9 * * MON-FRI", "thursday", None, "cron", 1, "", None, "00:00:00"),
        ("1 days", None, "00:00", "days", 1, "day", None, "00:00:00"),
    ],
)
def test_accepted_forms(
    check_on: str,
    day: str | None,
    time: str | None,
    kind: str,
    every: int,
    unit: str,
    weekday: int | None,
    stored_time: str,
) -> None:
    """Case, whitespace, singular/plural and ignored custom_day are all accepted."""
    s = schedule(check_on, day, time)
    assert (s.kind, s.every, s.unit, s.weekday, s.time) == (kind, every, unit, weekday, stored_time)


@pytest.mark.parametrize(
    ("check_on", "day", "time", "tz", "field", "why"),
    [
        ("0 hours", None, None, None, "check_on", "not 0"),
        ("8 fortnights", None, None, None, "check_on", "unknown unit"),
        ("-1 days", None, None, None, "check_on", "negative"),
        ("1.5 hours", None, None, None, "check_on", "whole number"),
        ("", None, None, None, "check_on", "empty"),
        ("   ", None, None, None, "check_on", "empty"),
        ("eight hours", None, None, None, "check_on", "not a schedule"),
        ("3 months", None, None, None, "check_on", "monthly"),
        ("400 days", None, None, None, "check_on", "at most one year"),
        ("0 0 * * * *", None, None, None, "check_on", "five-field"),
        ("61 * * * *", None, None, None, "check_on", "out of range"),
        ("0 0 30 2 *", None, None, None, "check_on", "never fires"),
        ("daily", None, "25:00", None, "custom_time", "out of range"),
        ("daily", None, "12:60", None, "custom_time", "out of range"),
        ("8 hours", None, "ab", None, "custom_time", "not a time"),
        ("daily", None, "12:00:61", None, "custom_time", "out of range"),
        ("weekly", "funday", None, None, "custom_day", "not a weekday"),
        ("customDayTime", "", "09:00", None, "custom_day", "needs a weekday"),
        ("customDayTime", "funday", "09:00", None, "custom_day", "not a weekday"),
        ("2 weeks", "5", None, None, "custom_day", "not a weekday"),
        ("monthly", "32", None, None, "custom_day", "1-31"),
        ("monthly", "0", None, None, "custom_day", "1-31"),
        ("monthly", "friday", None, None, "custom_day", "monthly needs a day of month 1-31"),
        ("daily", None, None, "Mars/Olympus", "time_zone", "not a known IANA time zone"),
        ("daily", None, None, "../etc/passwd", "time_zone", "not a known IANA time zone"),
    ],
)
def test_invalid_inputs(
    check_on: str, day: str | None, time: str | None, tz: str | None, field: str, why: str
) -> None:
    """Every bad input is a DefinitionError naming the request field and saying why."""
    with pytest.raises(DefinitionError) as caught:
        schedule(check_on, day, time, tz)
    assert caught.value.field == field
    assert caught.value.message.strip()
    assert why in caught.value.message
    prefix = "integration.automation_details"
    assert caught.value.prefixed(prefix).field == f"{prefix}.{field}"


@pytest.mark.parametrize(
    ("tz", "default", "expected"),
    [
        (None, "Europe/London", "Europe/London"),
        ("", "America/New_York", "America/New_York"),
        ("Asia/Tokyo", "UTC", "Asia/Tokyo"),
    ],
)
def test_default_time_zone(tz: str | None, default: str, expected: str) -> None:
    """An empty time_zone falls back to the configured default."""
    assert parse_schedule("daily", None, None, tz, ANCHOR, default_timezone=default).time_zone == expected


def test_bad_default_time_zone_names_time_zone() -> None:
    """A broken default zone is reported on time_zone too, not as a crash."""
    with pytest.raises(DefinitionError) as caught:
        parse_schedule("daily", None, None, None, ANCHOR, default_timezone="Nowhere/Land")
    assert caught.value.field == "time_zone"


NAIVE = datetime(2026, 5, 14, 10, 0)


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda s: s.next_fire_after(NAIVE), id="next_fire_after"),
        pytest.param(lambda s: s.next_n(NAIVE, 2), id="next_n"),
        pytest.param(lambda s: s.fires_between(NAIVE, ANCHOR, 5), id="fires_between-start"),
        pytest.param(lambda s: s.fires_between(ANCHOR, NAIVE, 5), id="fires_between-end"),
        pytest.param(lambda s: parse_schedule("daily", None, None, None, NAIVE), id="parse-anchor"),
    ],
)
@pytest.mark.parametrize("check_on", ["8 hours", "daily", "*/5 * * * *"])
def test_naive_datetimes_are_programming_errors(call: object, check_on: str) -> None:
    """Naive datetimes raise ValueError, not DefinitionError."""
    with pytest.raises(ValueError, match="timezone-aware"):
        call(schedule(check_on))  # type: ignore[operator]


@pytest.mark.parametrize(
    ("check_on", "t", "expected"),
    [
        ("8 hours", utc(2099, 12, 31, 23), utc(2100, 1, 1, 6, 45, 23)),
        ("8 hours", datetime(2026, 5, 14, 9, tzinfo=ZoneInfo("Europe/London")), utc(2026, 5, 14, 14, 45, 23)),
        ("15 minutes", utc(1990, 1, 1, 0, 0, 1), utc(1990, 1, 1, 0, 15)),
    ],
)
def test_interval_far_from_anchor_and_non_utc_input(check_on: str, t: datetime, expected: datetime) -> None:
    """Interval arithmetic works far from the anchor and with any aware input zone."""
    s = schedule(check_on, None, "06:45:23" if check_on == "8 hours" else None)
    assert s.next_fire_after(t) == expected


GOOD_ROW = {
    "kind": "days",
    "every": 1,
    "unit": "day",
    "time": "00:00:00",
    "time_zone": "UTC",
    "anchor": "2026-05-14T10:00:00+00:00",
    "weekday": None,
    "day_of_month": None,
    "cron": None,
}


@pytest.mark.parametrize(
    "stored",
    [
        pytest.param({"kind": "days"}, id="missing-fields"),
        pytest.param({**GOOD_ROW, "kind": "fortnightly"}, id="unknown-kind"),
        pytest.param({**GOOD_ROW, "kind": "weeks", "unit": "week", "weekday": 9}, id="bad-weekday"),
        pytest.param({**GOOD_ROW, "anchor": "2026-05-14T10:00:00"}, id="naive-anchor"),
        pytest.param({**GOOD_ROW, "every": "1"}, id="every-not-int"),
        pytest.param({**GOOD_ROW, "time_zone": "Mars/Olympus"}, id="bad-zone"),
        pytest.param({**GOOD_ROW, "kind": "cron", "unit": "", "cron": "0 0 * * * *"}, id="six-field-cron"),
    ],
)
def test_from_dict_refuses_corrupt_rows(stored: dict[str, object]) -> None:
    """A corrupt stored schedule is a ValueError, never a silently wrong schedule."""
    with pytest.raises(ValueError):
        Schedule.from_dict(stored)


def test_dst_daily_fires_once_per_local_day() -> None:
    """Across both 2026 changes in New York a daily 01:30 fires exactly once per local date."""
    s = schedule("daily", None, "01:30", "America/New_York")
    fires = s.fires_between(utc(2026, 1, 1), utc(2027, 1, 1), 1000)
    dates = [f.astimezone(ZoneInfo("America/New_York")).date() for f in fires]
    assert len(dates) == len(set(dates)) == 365
    assert fires[-1] - fires[0] == timedelta(days=364)


def test_good_row_loads() -> None:
    """The base row of the corruption table is itself valid, so each corruption is what fails."""
    assert Schedule.from_dict(GOOD_ROW).next_fire_after(ANCHOR) == utc(2026, 5, 15)
