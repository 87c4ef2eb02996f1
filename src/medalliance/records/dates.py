"""FHIR partial dates as UTC ranges: ``2013`` is the whole year, ``2013-04-02T10:00`` the
minute, ``10:00:00.5`` the tenth of a second. Values without a zone (a date, a month, a
year) are in the consortium's time zone (``TIMEZONE``), at write and at search alike: a
result taken at 07:30 in Beijing is on that day, as its ward sees it (R4 search 3.1.1.5.7:
without a zone, the server's local time)."""

from __future__ import annotations

import re
from datetime import MAXYEAR, UTC, date, datetime, timedelta, timezone, tzinfo
from functools import cache, lru_cache
from zoneinfo import ZoneInfo

from medalliance.config import get_settings

NO_DATE = datetime(1, 1, 1, tzinfo=UTC)  # sort key of resources without a clinical date
# The ends of time here: a FHIR date at the edge of year 1 or 9999 (9999-12-31, or a
# local time whose UTC falls outside) has a range reaching past them; it is cut there.
_FIRST = NO_DATE
_LAST = datetime.max.replace(tzinfo=UTC)

_DATE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?P<f>\.\d+)?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


def parse_range(raw: str) -> tuple[datetime, datetime] | None:
    """[low, high] covering the precision given, or None when it is not a FHIR date."""
    match = _DATE.match(raw.strip())
    if not match:
        return None
    try:
        return _range(match)
    except ValueError:
        return None


def _range(match: re.Match[str]) -> tuple[datetime, datetime]:
    year = int(match["y"])
    if match["m"] is None:
        return _local(year, 1, 1), _end_before(year + 1, 1)
    month = int(match["m"])
    if match["d"] is None:
        return _local(year, month, 1), _end_before(year + (month == 12), month % 12 + 1)
    day = datetime(year, month, int(match["d"]))  # checks the day exists
    if match["H"] is None:
        following = day + timedelta(days=1) if day.date() < datetime.max.date() else None
        end = _LAST if following is None else _local(*_ymd(following)) - _TICK
        return _local(year, month, day.day), end
    local = datetime(
        year, month, day.day, int(match["H"]), int(match["M"]), tzinfo=_zone(match["tz"])
    )
    if match["S"] is None:
        low = _utc(local)
        return low, _end(low, timedelta(minutes=1))
    fraction = match["f"] or ""
    micro = int(fraction[1:7].ljust(6, "0") or 0)
    low = _utc(local.replace(second=int(match["S"]), microsecond=micro))
    # The precision written is the range: .628 is [.628, .629), as a whole second is.
    digits = min(len(fraction) - 1, 6) if fraction else 0
    return low, _end(low, timedelta(microseconds=10 ** (6 - digits)))


_TICK = timedelta(microseconds=1)


def local_days(low: datetime, high: datetime) -> tuple[date, date]:
    """The first and last day of the consortium's calendar a range touches (a birth date
    searched as ``1980`` is 1980-01-01 to 1980-12-31, not the UTC instants' days)."""
    return _local_day(low, date.min), _local_day(high, date.max)


def _local_day(moment: datetime, edge: date) -> date:
    try:
        return moment.astimezone(_home_zone(get_settings().timezone)).date()
    except OverflowError:  # the ends of time: a local day past year 1 or 9999
        return edge


def _ymd(moment: datetime) -> tuple[int, int, int]:
    return moment.year, moment.month, moment.day


def _local(year: int, month: int, day: int) -> datetime:
    """The UTC moment local midnight of that day is, in the consortium's time zone."""
    return _midnight(year, month, day, get_settings().timezone)


@lru_cache(maxsize=8192)
def _midnight(year: int, month: int, day: int, zone: str) -> datetime:
    # Cached: a bundle's resources share their days, and the zone's rules cost 3 µs a day.
    return _utc(datetime(year, month, day, tzinfo=_home_zone(zone)))


@cache
def _home_zone(name: str) -> tzinfo:
    return ZoneInfo(name)


def _end_before(year: int, month: int) -> datetime:
    """The last moment before local midnight of the first of ``month`` in ``year``."""
    if year > MAXYEAR:
        return _LAST
    return _local(year, month, 1) - _TICK


def _end(start: datetime, length: timedelta) -> datetime:
    """The last moment of the span of ``length`` from ``start``."""
    try:
        return start + length - _TICK
    except OverflowError:
        return _LAST


def moved(moment: datetime, by: timedelta) -> datetime:
    """``moment + by``, kept within the ends of time (``ap`` margins around year 1)."""
    try:
        return moment + by
    except OverflowError:
        return _LAST if by > timedelta(0) else _FIRST


def _utc(local: datetime) -> datetime:
    try:
        return local.astimezone(UTC)
    except OverflowError:
        return _LAST if local.year == MAXYEAR else _FIRST


def _zone(raw: str | None) -> tzinfo:
    if raw is None:  # a time without a zone (not valid FHIR in a resource; in a search)
        return _home_zone(get_settings().timezone)
    if raw == "Z":
        return UTC
    sign = 1 if raw[0] == "+" else -1
    hours, minutes = int(raw[1:3]), int(raw[4:6])
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def instant(moment: datetime) -> str:
    """FHIR instant text for meta.lastUpdated (milliseconds, UTC)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def cursor_instant(raw: str) -> datetime:
    """A time a paging cursor carries (ISO 8601 with its offset), in UTC. ValueError when
    it is anything else, including a time past the ends of time in UTC: the UTC columns
    take no naive time, and an overflow there was a server error."""
    moment = datetime.fromisoformat(raw)
    if moment.tzinfo is None:
        raise ValueError(raw)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(raw) from None
