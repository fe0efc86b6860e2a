"""Schedules: parse check_on/custom_day/custom_time/time_zone and compute fire times (pure, no I/O).

Minute and hour intervals are exact elapsed time from a phase instant; day, week, month and cron
schedules keep local wall-clock time. A wall time inside a spring-forward gap fires shifted forward
by the gap; one that exists twice (fall back) fires once, at the first occurrence.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

from models.errors import DefinitionError

KINDS = ("interval", "days", "weeks", "monthly", "cron")
UNIT_MINUTES = {"minute": 1, "hour": 60, "day": 1440, "week": 10080}
KIND_UNITS = {"interval": ("minute", "hour"), "days": ("day",), "weeks": ("week",), "monthly": ("month",)}
MAX_INTERVAL_MINUTES = 365 * 1440
MONTH_MINUTES = 43200
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
ALIASES = {"hourly": (1, "hour"), "daily": (1, "day"), "weekly": (1, "week")}
INTERVAL_HINT = "use e.g. '15 minutes', '8 hours', '2 days', 'weekly', 'monthly', 'customDayTime' or cron"

_INTERVAL_RE = re.compile(r"^(\d+)\s+(minutes?|hours?|days?|weeks?)$")
_LOOSE_INTERVAL_RE = re.compile(r"^([+-]?[\d.,]+)\s*([a-z]*)$")
_TIME_RE = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
_CRON_FIELD_RE = re.compile(r"^[\w*/,?#-]+$")
_RANDOM_CRON_RE = re.compile(r"(?<![a-z])[rh](?![a-z])", re.IGNORECASE)
_PROBE_SPAN = timedelta(hours=26)  # wider than any real offset change, so cron search windows are safe
_MAX_OFFSET = timedelta(hours=16)  # above any UTC offset tzdata has ever used
_MAX_CRON_STEPS = 20_000


@dataclass(frozen=True)
class Schedule:
    """A validated schedule; every datetime it returns is timezone-aware UTC."""

    kind: str  # one of KINDS
    every: int  # N: the step in `unit`s (always 1 for monthly and cron)
    unit: str  # "minute"/"hour" (interval), "day", "week", "month", or "" (cron)
    time: str  # HH:MM:SS: interval phase, or local time of day for calendar kinds
    time_zone: str  # IANA zone name
    anchor: datetime  # when the definition was stored; its local date fixes the phase
    weekday: int | None = None  # 0 = Monday .. 6 = Sunday (weeks)
    day_of_month: int | None = None  # 1..31 (monthly)
    cron: str | None = None  # five-field expression (cron)

    def __post_init__(self) -> None:
        """Refuse inconsistent fields so from_dict cannot smuggle in a broken schedule."""
        _check_fields(self)
        object.__setattr__(self, "anchor", _aware_utc(self.anchor, "anchor"))

    def next_fire_after(self, t: datetime) -> datetime:
        """First fire strictly after t, the primitive every other query is built on."""
        t = _aware_utc(t, "t")
        zone = ZoneInfo(self.time_zone)
        if self.kind == "interval":
            step = timedelta(minutes=self.check_on_minutes)
            origin = self.origin
            return origin + ((t - origin) // step + 1) * step
        if self.kind == "cron":
            return _next_cron(str(self.cron), zone, t)
        if self.kind == "monthly":
            return _next_monthly(int(self.day_of_month or 1), _tod(self.time), zone, t)
        return _next_stepped(self._base_date(zone), self._step_days(), _tod(self.time), zone, t)

    def next_n(self, t: datetime, n: int) -> list[datetime]:
        """The next n fires after t, for previews such as the API's upcoming-runs list."""
        if n < 0:
            raise ValueError("n must be >= 0")
        fires: list[datetime] = []
        for _ in range(n):
            t = self.next_fire_after(t)
            fires.append(t)
        return fires

    def fires_between(self, start: datetime, end: datetime, limit: int) -> list[datetime]:
        """The earliest fires in (start, end], at most limit, so catch-up work stays bounded."""
        if limit < 0:
            raise ValueError("limit must be >= 0")
        end = _aware_utc(end, "end")
        if self.kind == "interval":
            return self._interval_between(_aware_utc(start, "start"), end, limit)
        fires: list[datetime] = []
        t = self.next_fire_after(start)
        while t <= end and len(fires) < limit:
            fires.append(t)
            t = self.next_fire_after(t)
        return fires

    @property
    def origin(self) -> datetime:
        """Phase instant of an interval: custom time on the anchor's local date, in UTC."""
        zone = ZoneInfo(self.time_zone)
        return _localise(datetime.combine(self.anchor.astimezone(zone).date(), _tod(self.time)), zone)

    @property
    def check_on_minutes(self) -> int:
        """Nominal interval in minutes, as the API reports it."""
        if self.kind == "monthly":
            return MONTH_MINUTES
        if self.kind == "cron":
            first = self.next_fire_after(self.anchor)
            return max(1, int((self.next_fire_after(first) - first).total_seconds() // 60))
        return self.every * UNIT_MINUTES[self.unit]

    @property
    def text(self) -> str:
        """Plain English for checkOnText, so users can see what they configured."""
        at = f"at {self.time} {self.time_zone}"
        if self.kind == "interval":
            return f"Every {_count(self.every, self.unit)} from {self.time} {self.time_zone}"
        if self.kind == "cron":
            return f"Cron '{self.cron}' ({self.time_zone})"
        if self.kind == "monthly":
            dom = self.day_of_month or 1
            tail = " (or the month's last day)" if dom > 28 else ""
            return f"Every month on day {dom}{tail} {at}"
        base = self._base_date(ZoneInfo(self.time_zone)).isoformat()
        if self.kind == "days":
            return f"Every day {at}" if self.every == 1 else f"Every {self.every} days {at} from {base}"
        day = WEEKDAYS[int(self.weekday or 0)].capitalize()
        return (
            f"Every {day} {at}" if self.every == 1 else f"Every {self.every} weeks on {day} {at} from {base}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form stored with the definition."""
        return {**asdict(self), "anchor": self.anchor.isoformat()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Schedule:
        """Rebuild a stored schedule; ValueError if the stored form is corrupt."""
        try:
            data: dict[str, Any] = {f.name: d.get(f.name) for f in fields(cls)}
            return cls(**{**data, "anchor": datetime.fromisoformat(str(d["anchor"]))})
        except (KeyError, TypeError) as exc:
            raise ValueError(f"stored schedule is malformed: {exc!r}") from exc

    def _base_date(self, zone: ZoneInfo) -> date:
        """Local date the day/week series counts from: the anchor's date, or its week's chosen weekday."""
        local = self.anchor.astimezone(zone).date()
        if self.kind == "weeks":
            return local - timedelta(days=local.weekday()) + timedelta(days=int(self.weekday or 0))
        return local

    def _step_days(self) -> int:
        """Calendar step in days for the day and week kinds."""
        return self.every * (7 if self.kind == "weeks" else 1)

    def _interval_between(self, start: datetime, end: datetime, limit: int) -> list[datetime]:
        """Interval fires in (start, end] by arithmetic, so long outages cost nothing to count."""
        step = timedelta(minutes=self.check_on_minutes)
        first = self.next_fire_after(start)
        if first > end:
            return []
        count = min(limit, (end - first) // step + 1)
        return [first + k * step for k in range(count)]


def parse_schedule(
    check_on: str,
    custom_day: str | None,
    custom_time: str | None,
    time_zone: str | None,
    anchor: datetime,
    default_timezone: str = "UTC",
) -> Schedule:
    """Validate the request's schedule fields into a Schedule; DefinitionError names the bad field."""
    anchor = _aware_utc(anchor, "anchor")
    zone_name = parse_time_zone(time_zone, default_timezone)
    tod = parse_custom_time(custom_time)
    spec = (check_on or "").strip()
    lowered = spec.lower()
    day = (custom_day or "").strip()
    common: dict[str, Any] = {"time": tod, "time_zone": zone_name, "anchor": anchor}
    if not spec:
        raise DefinitionError("check_on", f"is empty; {INTERVAL_HINT}")
    if lowered == "monthly":
        return Schedule(kind="monthly", every=1, unit="month", day_of_month=parse_day_of_month(day), **common)
    if lowered == "customdaytime":
        if not day:
            raise DefinitionError("custom_day", "customDayTime needs a weekday (monday..sunday)")
        return _weekly(1, day, ZoneInfo(zone_name), common)
    if len(spec.split()) >= 5:
        return _cron_schedule(spec, zone_name, anchor)
    every, unit = ALIASES.get(lowered) or parse_interval(lowered)
    if unit == "week":
        return _weekly(every, day, ZoneInfo(zone_name), common)
    kind = "days" if unit == "day" else "interval"
    return Schedule(kind=kind, every=every, unit=unit, **common)


def parse_interval(spec: str) -> tuple[int, str]:
    """Split 'N unit' into (N, singular unit), explaining exactly what is wrong otherwise."""
    match = _INTERVAL_RE.match(spec)
    if match is None:
        raise DefinitionError("check_on", _interval_problem(spec))
    unit = match.group(2).rstrip("s")
    digits = match.group(1).lstrip("0") or "0"
    if len(digits) > 9 or int(digits) * UNIT_MINUTES[unit] > MAX_INTERVAL_MINUTES:
        raise DefinitionError("check_on", f"'{spec}' is too long; an interval may be at most one year")
    every = int(digits)
    if every < 1:
        raise DefinitionError("check_on", f"'{spec}' must repeat at least every 1 {unit}, not 0")
    return every, unit


def parse_custom_time(value: str | None) -> str:
    """Normalise HH:MM[:SS] (24h) to HH:MM:SS; empty means midnight."""
    text = (value or "").strip()
    if not text:
        return "00:00:00"
    match = _TIME_RE.match(text)
    if match is None:
        raise DefinitionError("custom_time", f"'{text}' is not a time; use HH:MM or HH:MM:SS (24-hour)")
    hour, minute, second = int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)
    if hour > 23 or minute > 59 or second > 59:
        raise DefinitionError(
            "custom_time", f"'{text}' is out of range; hours 00-23, minutes and seconds 00-59"
        )
    return f"{hour:02d}:{minute:02d}:{second:02d}"


def parse_weekday(value: str) -> int:
    """Map monday..sunday (or mon..sun, any case) to 0..6."""
    text = value.strip().lower()
    for index, name in enumerate(WEEKDAYS):
        if text in (name, name[:3]):
            return index
    raise DefinitionError("custom_day", f"'{value}' is not a weekday; use monday..sunday (or mon..sun)")


def parse_day_of_month(value: str | None) -> int:
    """Parse a monthly custom_day 1..31 (default 1); weekday names are a mistake here."""
    text = (value or "").strip()
    if not text:
        return 1
    if not text.isdigit():
        raise DefinitionError("custom_day", f"'{text}' is not valid: monthly needs a day of month 1-31")
    if not 1 <= int(text) <= 31:
        raise DefinitionError("custom_day", f"'{text}' is out of range: monthly needs a day of month 1-31")
    return int(text)


def parse_time_zone(value: str | None, default_timezone: str = "UTC") -> str:
    """Resolve an IANA zone name (empty means the default) and prove it loads."""
    name = (value or "").strip() or default_timezone.strip() or "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise DefinitionError(
            "time_zone", f"'{name}' is not a known IANA time zone (e.g. Europe/London)"
        ) from exc
    return name


def _interval_problem(spec: str) -> str:
    """Say why a 'N unit' string was refused, for a useful 422."""
    loose = _LOOSE_INTERVAL_RE.match(spec)
    if loose is None:
        return f"'{spec}' is not a schedule; {INTERVAL_HINT}"
    number, unit = loose.groups()
    if unit.rstrip("s") == "month":
        return f"'{spec}' is not supported; use 'monthly' (with custom_day 1-31) or a cron expression"
    if unit and unit.rstrip("s") not in UNIT_MINUTES:
        return f"'{spec}' has an unknown unit '{unit}'; use minutes, hours, days or weeks"
    if number.startswith("-"):
        return f"'{spec}' is negative; the count must be a whole number of at least 1"
    if not number.lstrip("+").isdigit():
        return f"'{spec}' is not a whole number; the count must be a whole number of at least 1"
    return f"'{spec}' is not a schedule; {INTERVAL_HINT}"


def _weekly(every: int, day: str, zone: ZoneInfo, common: dict[str, Any]) -> Schedule:
    """Build a week schedule, defaulting the weekday to the anchor's local weekday."""
    weekday = parse_weekday(day) if day else common["anchor"].astimezone(zone).weekday()
    return Schedule(kind="weeks", every=every, unit="week", weekday=weekday, **common)


def _cron_schedule(spec: str, zone_name: str, anchor: datetime) -> Schedule:
    """Validate a five-field cron expression and prove that it fires."""
    parts = spec.split()
    if len(parts) != 5:
        raise DefinitionError(
            "check_on",
            f"'{spec}' has {len(parts)} fields; only five-field cron is supported (no seconds/year)",
        )
    expr = " ".join(parts)
    if not all(_CRON_FIELD_RE.match(f) for f in parts) or _RANDOM_CRON_RE.search(expr):
        raise DefinitionError("check_on", f"'{spec}' is not a valid five-field cron expression")
    if not croniter.is_valid(expr):
        raise DefinitionError(
            "check_on", f"'{spec}' is not a valid cron expression (a field is out of range)"
        )
    schedule = Schedule(
        kind="cron", every=1, unit="", time="00:00:00", time_zone=zone_name, anchor=anchor, cron=expr
    )
    try:
        _ = schedule.check_on_minutes  # evaluated to prove the expression ever fires
    except (CroniterError, RuntimeError) as exc:
        raise DefinitionError("check_on", f"cron '{spec}' never fires (no such date)") from exc
    return schedule


def _check_fields(s: Schedule) -> None:
    """Raise ValueError when a Schedule's fields do not describe a valid schedule."""
    if s.kind not in KINDS:
        raise ValueError(f"unknown schedule kind {s.kind!r}")
    if s.kind != "cron" and s.unit not in KIND_UNITS[s.kind]:
        raise ValueError(f"unit {s.unit!r} does not fit kind {s.kind!r}")
    if not isinstance(s.every, int) or s.every < 1 or (s.kind in ("monthly", "cron") and s.every != 1):
        raise ValueError(f"every={s.every} is not valid for kind {s.kind!r}")
    if s.kind == "weeks" and (s.weekday is None or not 0 <= s.weekday <= 6):
        raise ValueError("weeks schedules need weekday 0..6")
    if s.kind == "monthly" and (s.day_of_month is None or not 1 <= s.day_of_month <= 31):
        raise ValueError("monthly schedules need day_of_month 1..31")
    if s.kind == "cron" and not (s.cron and croniter.is_valid(s.cron) and len(s.cron.split()) == 5):
        raise ValueError(f"invalid cron expression {s.cron!r}")
    try:
        parse_custom_time(s.time)
        parse_time_zone(s.time_zone)
    except DefinitionError as exc:
        raise ValueError(str(exc)) from exc


def _aware_utc(t: datetime, name: str) -> datetime:
    """Convert to UTC, refusing naive datetimes (a programming error, not bad input)."""
    if not isinstance(t, datetime) or t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {t!r}")
    return t.astimezone(UTC)


def _tod(hms: str) -> time:
    """Parse a normalised HH:MM:SS into a time of day."""
    hour, minute, second = (int(part) for part in hms.split(":"))
    return time(hour, minute, second)


def _localise(wall: datetime, zone: ZoneInfo) -> datetime:
    """Local wall time to UTC: fold=0 gives the first of a repeated time and shifts gap times forward."""
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def _count(n: int, unit: str) -> str:
    """'hour', '8 hours': English for a count of units."""
    return unit if n == 1 else f"{n} {unit}s"


def _next_stepped(base: date, step: int, tod: time, zone: ZoneInfo, t: datetime) -> datetime:
    """Next fire of 'every step days from base at tod', checking a few neighbours around t."""
    k0 = (t.astimezone(zone).date() - base).days // step
    fires = [
        _localise(datetime.combine(base + timedelta(days=k * step), tod), zone) for k in range(k0 - 1, k0 + 3)
    ]
    return min(f for f in fires if f > t)


def _next_monthly(day: int, tod: time, zone: ZoneInfo, t: datetime) -> datetime:
    """Next monthly fire, clamping the day to the month's last day."""
    local = t.astimezone(zone)
    m0 = local.year * 12 + local.month - 1
    fires = []
    for m in range(m0 - 1, m0 + 3):
        year, month = divmod(m, 12)
        last = calendar.monthrange(year, month + 1)[1]
        fires.append(_localise(datetime.combine(date(year, month + 1, min(day, last)), tod), zone))
    return min(f for f in fires if f > t)


@lru_cache(maxsize=4096)
def _offset_range(zone: ZoneInfo, hour: datetime) -> tuple[timedelta, timedelta]:
    """Smallest and largest UTC offset within 27h of an hour (hourly probes), bounding cron searches."""
    offsets = [
        (hour + timedelta(hours=h)).astimezone(zone).utcoffset() or timedelta(0) for h in range(-27, 28)
    ]
    return min(offsets), max(offsets)


def _next_cron(expr: str, zone: ZoneInfo, t: datetime) -> datetime:
    """Next cron fire on local wall-clock; gap-shifted walls may tie or reorder, so take the minimum."""
    low, high = _offset_range(zone, t.replace(minute=0, second=0, microsecond=0))
    walls = croniter(expr, (t + low).replace(tzinfo=None))
    best: datetime | None = None
    for _ in range(_MAX_CRON_STEPS):
        wall = walls.get_next(datetime)
        fire = _localise(wall, zone)
        if fire > t and (best is None or fire < best):
            best = fire
        # no later wall can map before `best` once wall - (largest offset it could use) reaches it
        reach = high if best is not None and best <= t + _PROBE_SPAN else _MAX_OFFSET
        if best is not None and wall.replace(tzinfo=UTC) - reach >= best:
            return best
    raise RuntimeError(f"cron '{expr}' found no fire after {t.isoformat()}")
