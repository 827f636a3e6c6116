"""Business-hours arithmetic: how much working time lies between two instants, and when a
given amount of working time runs out.

A ``WorkingCalendar`` is a team's opening hours in its own time zone (so 09:00 stays 09:00
across daylight-saving changes), its working weekdays and its holidays. ``None`` in place
of a calendar means around the clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# No calendar has a gap this long between working days; hitting it means the calendar
# has no working time at all (every day a holiday), which would otherwise loop forever.
_MAX_DAYS_SEARCHED = 3 * 366


class CalendarError(ValueError):
    """A calendar that cannot be worked with; the message says what to fix."""


@dataclass(frozen=True)
class WorkingCalendar:
    timezone: str
    opens_at_minute: int
    closes_at_minute: int
    # ISO weekdays (Monday = 1).
    workdays: frozenset[int]
    holidays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise CalendarError(f"unknown time zone {self.timezone!r}") from None
        if not 0 <= self.opens_at_minute < self.closes_at_minute <= 24 * 60:
            raise CalendarError("opening hours must open before they close, within one day")
        if not self.workdays or not self.workdays <= set(range(1, 8)):
            raise CalendarError("working days must be ISO weekdays 1 (Monday) to 7 (Sunday)")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_working_day(self, day: date) -> bool:
        return day.isoweekday() in self.workdays and day not in self.holidays

    def window(self, day: date) -> tuple[datetime, datetime]:
        """The day's opening hours as UTC instants."""
        return _window(self, day)


# Every ticket opened starts two clocks, each walking the same few days' windows; the
# time-zone arithmetic is the costly part, so each (calendar, day) is worked out once.
@lru_cache(maxsize=4096)
def _window(calendar: WorkingCalendar, day: date) -> tuple[datetime, datetime]:
    zone = calendar.zone
    opens = datetime.combine(day, _clock_time(calendar.opens_at_minute), zone)
    if calendar.closes_at_minute == 24 * 60:
        closes = datetime.combine(day + timedelta(days=1), time(0), zone)
    else:
        closes = datetime.combine(day, _clock_time(calendar.closes_at_minute), zone)
    return opens.astimezone(UTC), closes.astimezone(UTC)


def parse_clock(text: str) -> int:
    """ "09:30" → 570 minutes after midnight; "24:00" is allowed as a closing time."""
    try:
        hours, minutes = (int(part) for part in text.strip().split(":"))
    except ValueError:
        raise CalendarError(f"{text!r} is not a time of day like 09:00") from None
    if not (0 <= hours <= 24 and 0 <= minutes < 60) or (hours == 24 and minutes):
        raise CalendarError(f"{text!r} is not a time of day like 09:00")
    return hours * 60 + minutes


def _clock_time(minute: int) -> time:
    return time(minute // 60, minute % 60)


def _windows_from(
    calendar: WorkingCalendar, start: datetime
) -> Iterator[tuple[datetime, datetime]]:
    """Working windows (UTC) that end after ``start``, in order, clipped to begin at it."""
    day = start.astimezone(calendar.zone).date() - timedelta(days=1)
    idle_days = 0
    while True:
        if calendar.is_working_day(day):
            idle_days = 0
            opens, closes = calendar.window(day)
            if closes > start:
                yield max(opens, start), closes
        else:
            idle_days += 1
            if idle_days > _MAX_DAYS_SEARCHED:
                raise CalendarError("the calendar has no working time left: every day is off")
        day += timedelta(days=1)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("business-time arithmetic needs timezone-aware datetimes")
    return moment.astimezone(UTC)


def business_minutes_between(
    calendar: WorkingCalendar | None, start: datetime, end: datetime
) -> float:
    """Working minutes from ``start`` to ``end`` (0 if ``end`` is not after ``start``)."""
    start, end = _utc(start), _utc(end)
    if end <= start:
        return 0.0
    if calendar is None:
        return (end - start).total_seconds() / 60
    total = 0.0
    for opens, closes in _windows_from(calendar, start):
        if opens >= end:
            break
        total += (min(closes, end) - opens).total_seconds() / 60
        if closes >= end:
            break
    return total


def add_business_minutes(
    calendar: WorkingCalendar | None, start: datetime, minutes: float
) -> datetime:
    """The instant at which ``minutes`` of working time counted from ``start`` run out.

    Zero minutes give ``start`` itself, even outside working hours.
    """
    start = _utc(start)
    if minutes < 0:
        raise ValueError("cannot add a negative amount of working time")
    if calendar is None or minutes == 0:
        return start + timedelta(minutes=minutes)
    remaining = timedelta(minutes=minutes)
    for opens, closes in _windows_from(calendar, start):
        available = closes - opens
        if remaining <= available:
            return opens + remaining
        remaining -= available
    raise AssertionError("unreachable: _windows_from never ends")  # pragma: no cover
