"""Indicator vocabularies; stored values, Chinese labels live in the indicators catalogue."""

from __future__ import annotations

from datetime import date
from enum import StrEnum


class EncounterClass(StrEnum):
    AMBULATORY = "ambulatory"
    INPATIENT = "inpatient"
    EMERGENCY = "emergency"


class Level(StrEnum):
    """Where an indicator is computed: one member, a township's residents, the county's
    residents, or everything the platform holds (the consortium)."""

    INSTITUTION = "institution"
    TOWNSHIP = "township"
    COUNTY = "county"
    CONSORTIUM = "consortium"


class PeriodKind(StrEnum):
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


class Better(StrEnum):
    HIGHER = "higher"
    LOWER = "lower"


class IndicatorKind(StrEnum):
    RATIO = "ratio"  # numerator ÷ denominator × factor
    VALUE = "value"  # numerator alone (a count or a formula)
    GROWTH = "growth"  # (this period − same period last year) ÷ last year × factor
    PERCENTILE = "percentile"  # a percentile of a duration measure, from facts


class MeasureKind(StrEnum):
    COUNT = "count"
    SUM = "sum"
    PERCENTILE = "percentile"
    POPULATION = "population"  # residents in scope (a snapshot, not per month)
    CONSTANT = "constant"  # months in the period


class Status(StrEnum):
    GREEN = "green"
    AMBER = "amber"
    RED = "red"
    NONE = "none"


class Sex(StrEnum):
    MALE = "male"
    FEMALE = "female"
    UNKNOWN = "unknown"


class ImportStatus(StrEnum):
    STAGED = "staged"  # validated with rejected rows: waiting for the user to accept
    IMPORTED = "imported"
    DISCARDED = "discarded"


AGE_BANDS: tuple[tuple[str, int, int], ...] = (
    ("0-6", 0, 6),
    ("7-17", 7, 17),
    ("18-44", 18, 44),
    ("45-59", 45, 59),
    ("60-74", 60, 74),
    ("75+", 75, 200),
)


UNKNOWN_AGE = "unknown"  # a patient whose birth date is not known yet


def age_on(born: date | None, day: date) -> int | None:
    """Whole years (of 365 days, as the band limits are counted) on ``day``."""
    return None if born is None else (day - born).days // 365


def age_band(age: int | None) -> str:
    if age is None:
        return UNKNOWN_AGE
    for name, low, high in AGE_BANDS:
        if low <= age <= high:
            return name
    return AGE_BANDS[-1][0]
