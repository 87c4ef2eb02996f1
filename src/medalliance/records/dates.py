"""FHIR partial dates as UTC ranges: ``2013`` is the whole year, ``2013-04-02T10:00`` the
minute. Values without a zone are taken as UTC at write and at search alike, so the two
always agree."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo

NO_DATE = datetime(1, 1, 1, tzinfo=UTC)  # sort key of resources without a clinical date

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
        return datetime(year, 1, 1, tzinfo=UTC), _end(datetime(year + 1, 1, 1, tzinfo=UTC))
    month = int(match["m"])
    if match["d"] is None:
        low = datetime(year, month, 1, tzinfo=UTC)
        nxt = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
        return low, _end(nxt)
    day = datetime(year, month, int(match["d"]), tzinfo=UTC)
    if match["H"] is None:
        return day, _end(day + timedelta(days=1))
    tz = _zone(match["tz"])
    local = datetime(year, month, day.day, int(match["H"]), int(match["M"]), tzinfo=tz)
    if match["S"] is None:
        low = local.astimezone(UTC)
        return low, _end(low + timedelta(minutes=1))
    micro = int((match["f"] or ".0")[1:7].ljust(6, "0"))
    low = local.replace(second=int(match["S"]), microsecond=micro).astimezone(UTC)
    if match["f"]:
        return low, low
    return low, _end(low + timedelta(seconds=1))


def _end(next_start: datetime) -> datetime:
    return next_start - timedelta(microseconds=1)


def _zone(raw: str | None) -> tzinfo:
    if raw is None or raw == "Z":
        return UTC
    sign = 1 if raw[0] == "+" else -1
    hours, minutes = int(raw[1:3]), int(raw[4:6])
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def instant(moment: datetime) -> str:
    """FHIR instant text for meta.lastUpdated (milliseconds, UTC)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
