"""HL7 v2 data types to FHIR values: timestamps (TS/DTM), person names (XPN), addresses
(XAD), telephone numbers (XTN), coded elements (CE/CWE)."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from medalliance.config import get_settings
from medalliance.records.hl7.enums import ErrorCode
from medalliance.records.hl7.er7 import Hl7Error, Location, Repetition

_TS = re.compile(
    r"^(?P<y>\d{4})(?P<m>\d{2})?(?P<d>\d{2})?(?P<H>\d{2})?(?P<M>\d{2})?(?P<S>\d{2})?"
    r"(?:\.(?P<f>\d{1,4}))?(?P<tz>[+-]\d{4})?$"
)
# HL7 coding system names (table 0396) that have a FHIR URI.
CODE_SYSTEMS = {
    "LN": "http://loinc.org",
    "UCUM": "http://unitsofmeasure.org",
    "I10": "http://hl7.org/fhir/sid/icd-10",
    "ICD10": "http://hl7.org/fhir/sid/icd-10",
    "SCT": "http://snomed.info/sct",
    "HL70074": "http://terminology.hl7.org/CodeSystem/v2-0074",
}


def _invalid(value: str, location: Location, what: str) -> Hl7Error:
    return Hl7Error(
        f"{location} ({what}) {value!r} is not an HL7 date/time (YYYYMMDD[HHMM[SS]][+ZZZZ])",
        code=ErrorCode.DATA_TYPE,
        location=location,
    )


def fhir_datetime(value: str, location: Location, what: str) -> str | None:
    """A TS/DTM as a FHIR dateTime; local times without an offset are the consortium's.
    Fractions of a second are kept (two events in one second keep their order)."""
    value = value.strip()
    if not value:
        return None
    match = _TS.match(value)
    if match is None:
        raise _invalid(value, location, what)
    parts = match.groupdict()
    try:
        if parts["H"] is None:
            day = date(int(parts["y"]), int(parts["m"] or 1), int(parts["d"] or 1))
            return day.isoformat()[: 4 + (3 if parts["m"] else 0) + (3 if parts["d"] else 0)]
        if parts["d"] is None:
            raise ValueError("a time needs a full date")
        moment = datetime(
            int(parts["y"]),
            int(parts["m"] or 1),
            int(parts["d"]),
            int(parts["H"]),
            int(parts["M"] or 0),
            int(parts["S"] or 0),
            int((parts["f"] or "0").ljust(6, "0")),
            tzinfo=_zone(parts["tz"]),
        )
    except ValueError:
        raise _invalid(value, location, what) from None
    return moment.isoformat()


def fhir_instant(value: str, location: Location, what: str) -> str | None:
    """A TS as a FHIR instant (a date alone becomes local midnight)."""
    converted = fhir_datetime(value, location, what)
    if converted is None or "T" in converted:
        return converted
    if len(converted) != 10:
        return None  # a year or month cannot be an instant
    day = date.fromisoformat(converted)
    return datetime(day.year, day.month, day.day, tzinfo=_zone(None)).isoformat()


def birth_date(value: str, location: Location) -> date | None:
    """PID-7 as a full date; empty when not known (an unidentified emergency patient)."""
    if not value:
        return None
    converted = fhir_datetime(value[:8], location, "date of birth")
    if converted is None or len(converted) < 10:
        raise Hl7Error(
            f"{location} (date of birth) must be a full date YYYYMMDD, or empty when unknown",
            code=ErrorCode.DATA_TYPE,
            location=location,
        )
    return date.fromisoformat(converted[:10])


def _zone(offset: str | None) -> Any:
    if offset is None:
        return ZoneInfo(get_settings().timezone)
    sign = 1 if offset[0] == "+" else -1
    from datetime import timedelta, timezone

    return timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5])))


def has_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" for ch in text)


def person_name(reps: list[Repetition]) -> str:
    """XPN: the legal name (type L) or the first; Chinese names are family+given unspaced."""
    chosen = next((r for r in reps if r.component(7) == "L"), reps[0] if reps else None)
    if chosen is None:
        return ""
    family, given = chosen.component(1), chosen.component(2)
    separator = "" if has_cjk(family + given) else " "
    return separator.join(p for p in (family, given) if p)


def address(reps: list[Repetition]) -> str:
    """XAD in Chinese order: province, city, county (XAD-9), street, other designation."""
    if not reps:
        return ""
    first = reps[0]
    parts = [first.component(n) for n in (4, 3, 9, 1, 2)]
    return "".join(p for p in parts if p)[:300]


def phone(reps: list[Repetition]) -> str | None:
    """XTN: the unformatted number (XTN-12), the local number (XTN-7) or XTN-1, digits only."""
    for rep in reps:
        for number in (rep.component(12), rep.component(7), rep.component(1)):
            digits = "".join(ch for ch in number if ch.isdigit())
            if digits:
                return digits[:20]
    return None


def codeable_concept(rep: Repetition | None, *, local_system: str) -> dict[str, Any] | None:
    """CE/CWE: identifier^text^coding system (and the alternate triplet in 4-6)."""
    if rep is None or rep.empty:
        return None
    codings = []
    for offset in (0, 3):
        code, display, system = (rep.component(offset + n) for n in (1, 2, 3))
        if code:
            coding: dict[str, Any] = {"system": CODE_SYSTEMS.get(system.upper(), local_system)}
            coding["code"] = code
            if display:
                coding["display"] = display
            codings.append(coding)
    concept: dict[str, Any] = {}
    if codings:
        concept["coding"] = codings
    text = rep.component(2) or rep.component(5) or rep.component(9)
    if text:
        concept["text"] = text
    return concept or None
