"""Reporting periods: a month (2026-07), a quarter (2026-Q3) or a year (2026)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from medalliance.errors import ValidationFailed
from medalliance.indicators.enums import PeriodKind

_PATTERNS = (
    (re.compile(r"^(\d{4})-(\d{2})$"), PeriodKind.MONTH),
    (re.compile(r"^(\d{4})-Q([1-4])$"), PeriodKind.QUARTER),
    (re.compile(r"^(\d{4})$"), PeriodKind.YEAR),
)
# Month keys are compared as text: they order only while every year has four digits,
# including the months a trend or a year-on-year comparison reaches around a period.
FIRST_YEAR, LAST_YEAR = 1000, 9998


def month_key(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def add_months(key: str, delta: int) -> str:
    year, month = int(key[:4]), int(key[5:7])
    index = year * 12 + (month - 1) + delta
    return month_key(index // 12, index % 12 + 1)


def month_of(day: date) -> str:
    return month_key(day.year, day.month)


def month_range(first: str, last: str) -> list[str]:
    def index(key: str) -> int:  # by number: "10000-01" <= "9999-12" as text
        return int(key[:-3]) * 12 + int(key[-2:]) - 1

    return [add_months(first, n) for n in range(index(last) - index(first) + 1)]


@dataclass(frozen=True)
class Period:
    kind: PeriodKind
    year: int
    number: int  # month 1-12, quarter 1-4, or 1 for a year

    @classmethod
    def parse(cls, text: str, field: str = "period") -> Period:
        for pattern, kind in _PATTERNS:
            match = pattern.match(text.strip())
            if match:
                year = int(match.group(1))
                number = int(match.group(2)) if kind != PeriodKind.YEAR else 1
                if kind == PeriodKind.MONTH and not 1 <= number <= 12:
                    break
                if not FIRST_YEAR <= year <= LAST_YEAR:
                    raise ValidationFailed(
                        f"{field}: the year of {text!r} must be {FIRST_YEAR} to {LAST_YEAR}",
                        field=field,
                    )
                return cls(kind, year, number)
        raise ValidationFailed(
            f"{field}: {text!r} is not a period (2026-07, 2026-Q3 or 2026)", field=field
        )

    @classmethod
    def month_containing(cls, day: date) -> Period:
        return cls(PeriodKind.MONTH, day.year, day.month)

    @property
    def months(self) -> list[str]:
        if self.kind == PeriodKind.MONTH:
            return [month_key(self.year, self.number)]
        if self.kind == PeriodKind.QUARTER:
            first = (self.number - 1) * 3 + 1
            return [month_key(self.year, m) for m in range(first, first + 3)]
        return [month_key(self.year, m) for m in range(1, 13)]

    @property
    def last_month(self) -> str:
        return self.months[-1]

    def year_before(self) -> Period:
        return Period(self.kind, self.year - 1, self.number)

    def __str__(self) -> str:
        if self.kind == PeriodKind.MONTH:
            return month_key(self.year, self.number)
        if self.kind == PeriodKind.QUARTER:
            return f"{self.year}-Q{self.number}"
        return str(self.year)


def year_before(months: list[str]) -> list[str]:
    return [add_months(m, -12) for m in months]
