"""Time for the generator: the fixed data period, local UTC offsets and the text formats producers use.

DST rules are written out by hand (US/Canada, EU, south-east Australia) instead of read from the
system tz database, so the bytes we write cannot change with the machine's tzdata version.
"""
from __future__ import annotations

import bisect
import calendar
import datetime as dt
from functools import cache

# The data period always ends here, never at the wall clock: same arguments, same bytes.
END = calendar.timegm((2026, 6, 30, 0, 0, 0))
DAY = 86400
HOUR = 3600
MINUTE = 60

# zone -> (standard offset in minutes, DST rule)
ZONES: dict[str, tuple[int, str | None]] = {
    "UTC": (0, None),
    "America/New_York": (-300, "us"),
    "America/Chicago": (-360, "us"),
    "America/Denver": (-420, "us"),
    "America/Los_Angeles": (-480, "us"),
    "America/Toronto": (-300, "us"),
    "America/Vancouver": (-480, "us"),
    "Europe/London": (0, "eu"),
    "Europe/Berlin": (60, "eu"),
    "Europe/Paris": (60, "eu"),
    "Europe/Amsterdam": (60, "eu"),
    "Australia/Sydney": (600, "au"),
    "Australia/Melbourne": (600, "au"),
    "Australia/Brisbane": (600, None),
    "Asia/Kolkata": (330, None),
}


def _nth_sunday(year: int, month: int, n: int) -> int:
    """Day of month of the n-th Sunday (n=-1: the last one)."""
    days = calendar.monthrange(year, month)[1]
    sundays = [d for d in range(1, days + 1) if calendar.weekday(year, month, d) == 6]
    return sundays[n if n < 0 else n - 1]


def _transitions(std: int, rule: str | None) -> tuple[list[int], list[int]]:
    """Sorted UTC instants at which the zone's offset changes, and the offset from each on."""
    if rule is None:
        return [-(2**62)], [std]
    times, offsets = [], []
    for y in range(2015, 2036):
        if rule == "us":  # 2nd Sunday of March 02:00 local standard .. 1st Sunday of November 02:00 local daylight
            on = calendar.timegm((y, 3, _nth_sunday(y, 3, 2), 2, 0, 0)) - std * 60
            off = calendar.timegm((y, 11, _nth_sunday(y, 11, 1), 2, 0, 0)) - (std + 60) * 60
        elif rule == "eu":  # last Sunday of March .. last Sunday of October, both at 01:00 UTC
            on = calendar.timegm((y, 3, _nth_sunday(y, 3, -1), 1, 0, 0))
            off = calendar.timegm((y, 10, _nth_sunday(y, 10, -1), 1, 0, 0))
        else:  # "au", southern hemisphere: DST ends 1st Sunday of April 03:00, starts 1st Sunday of October 02:00
            off = calendar.timegm((y, 4, _nth_sunday(y, 4, 1), 3, 0, 0)) - (std + 60) * 60
            on = calendar.timegm((y, 10, _nth_sunday(y, 10, 1), 2, 0, 0)) - std * 60
        for t, o in sorted([(on, std + 60), (off, std)]):
            times.append(t)
            offsets.append(o)
    first = std if rule != "au" else std + 60
    return [-(2**62)] + times, [first] + offsets


_TRANSITIONS = {z: _transitions(*spec) for z, spec in ZONES.items()}


def offset_minutes(zone: str, ts: int) -> int:
    """UTC offset of `zone` at UTC instant `ts` (seconds)."""
    times, offsets = _TRANSITIONS[zone]
    return offsets[bisect.bisect_right(times, ts) - 1]


@cache
def _ymd(epoch_day: int) -> tuple[int, int, int]:
    d = dt.date(1970, 1, 1) + dt.timedelta(days=epoch_day)
    return d.year, d.month, d.day


@cache
def _date_text(epoch_day: int) -> str:
    y, m, d = _ymd(epoch_day)
    return f"{y:04d}-{m:02d}-{d:02d}"


def date_text(ts: int) -> str:
    """UTC calendar date, YYYY-MM-DD."""
    return _date_text(ts // DAY)


def _hms(sec: int) -> str:
    return f"{sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}"


def _offset_text(off: int, zulu: bool) -> str:
    if off == 0 and zulu:
        return "Z"
    sign = "+" if off >= 0 else "-"
    off = abs(off)
    return f"{sign}{off // 60:02d}:{off % 60:02d}"


def iso(ts: int, off: int = 0, *, zulu: bool = True, millis: int | None = None) -> str:
    """ISO 8601 with an offset: the local wall time at UTC instant `ts` seen from offset `off` minutes."""
    local = ts + off * 60
    frac = "" if millis is None else f".{millis:03d}"
    return f"{_date_text(local // DAY)}T{_hms(local % DAY)}{frac}{_offset_text(off, zulu)}"


def iso_utc(ts: int) -> str:
    return iso(ts, 0)


def local_naive(ts: int, zone: str) -> tuple[int, int, int, int, int]:
    """(year, month, day, hour, minute) of the wall clock in `zone` at `ts`."""
    local = ts + offset_minutes(zone, ts) * 60
    y, m, d = _ymd(local // DAY)
    sec = local % DAY
    return y, m, d, sec // 3600, sec // 60 % 60


def hubspot_datetime(ts: int) -> str:
    """HubSpot exports: naive `YYYY-MM-DD HH:MM` in the portal's zone (America/New_York)."""
    y, m, d, hh, mm = local_naive(ts, "America/New_York")
    return f"{y:04d}-{m:02d}-{d:02d} {hh:02d}:{mm:02d}"


def salesforce_datetime(ts: int) -> str:
    """Salesforce reports: naive `M/D/YYYY h:mm AM` in the user's zone (America/Los_Angeles)."""
    y, m, d, hh, mm = local_naive(ts, "America/Los_Angeles")
    return f"{m}/{d}/{y} {(hh % 12) or 12}:{mm:02d} {'AM' if hh < 12 else 'PM'}"


def salesforce_date(ts: int) -> str:
    y, m, d, _, _ = local_naive(ts, "America/Los_Angeles")
    return f"{m}/{d}/{y}"


@cache
def _iso_week(epoch_day: int) -> str:
    y, w, _ = (dt.date(1970, 1, 1) + dt.timedelta(days=epoch_day)).isocalendar()
    return f"{y:04d}-W{w:02d}"


def iso_week(ts: int) -> str:
    """ISO week label of the UTC date of `ts`, e.g. 2026-W14 (sorts chronologically)."""
    return _iso_week(ts // DAY)


class Period:
    """The data period [start, end): `days` whole UTC days ending at END."""

    def __init__(self, days: int):
        self.days = days
        self.end = END
        self.start = END - days * DAY
        # Weekly landing files: one label per ISO week touched by the period, in order.
        self.weeks: list[str] = []
        for d in range(days):
            label = iso_week(self.start + d * DAY)
            if not self.weeks or self.weeks[-1] != label:
                self.weeks.append(label)
        # ISO weeks start on Monday: index by whole weeks since the Monday of the first one.
        first_day = self.start // DAY
        self._monday = (first_day - (first_day + 3) % 7) * DAY

    def week_index(self, ts: int) -> int:
        return (ts - self._monday) // (7 * DAY)

    def day_index(self, ts: int) -> int:
        return (ts - self.start) // DAY


def business_time(ts: int, zone: str) -> int:
    """Move an instant into the working day (Mon-Fri 08:00-18:00) of `zone`: times outside it go to the
    next morning, spread over its first hour. Idempotent, and keeps order."""
    off = offset_minutes(zone, ts) * 60
    day, sec = divmod(ts + off, DAY)
    if sec < 8 * HOUR:
        sec = 8 * HOUR + sec // 8
    elif sec >= 18 * HOUR:
        day, sec = day + 1, 8 * HOUR + (sec - 18 * HOUR) // 6
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday
    if weekday >= 5:
        day, sec = day + 7 - weekday, 8 * HOUR + (weekday - 5) * 1800 + (sec - 8 * HOUR) // 20
    return day * DAY + sec - off
