"""What each dashboard view needs, assembled in one call per view (the edges call one
function): parsed period and scope, the computed results and the table behind the chart."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from medalliance.indicators import reports, service
from medalliance.indicators import spectrum as spectra
from medalliance.indicators.definitions import Definition
from medalliance.indicators.engine import Result
from medalliance.indicators.enums import Level
from medalliance.indicators.exports import Table
from medalliance.indicators.periods import Period
from medalliance.indicators.repository import Scope
from medalliance.indicators.service import Breakdown, Overview
from medalliance.indicators.spectrum import Spectrum


def _period(db: Session, text: str | None, today: date) -> Period:
    return Period.parse(text) if text else service.default_period(db, today)


@dataclass
class OverviewPage:
    overview: Overview
    label: str
    tables: list[Table]


def overview_page(
    db: Session, period: str | None, level: Level, key: str | None, today: date
) -> OverviewPage:
    chosen = _period(db, period, today)
    scope = service.scope_for(level, key)
    overview = service.overview(db, chosen, scope)
    label = service.scope_label(db, scope)
    return OverviewPage(overview, label, reports.overview_table(overview, label))


@dataclass
class BreakdownPage:
    breakdown: Breakdown
    tables: list[Table]


def breakdown_page(
    db: Session, indicator_id: str, period: str | None, by: Level, today: date
) -> BreakdownPage:
    parts = service.breakdown(db, indicator_id, _period(db, period, today), by)
    return BreakdownPage(parts, reports.breakdown_table(parts))


@dataclass
class MonthlyPage:
    definition: Definition
    period: Period
    scope: Scope
    label: str
    series: list[tuple[str, Result]]
    tables: list[Table]


def monthly_page(
    db: Session, indicator_id: str, level: Level, key: str, period: str | None, today: date
) -> MonthlyPage:
    chosen = _period(db, period, today)
    scope = service.scope_for(level, key)
    definition, series = service.monthly(db, indicator_id, scope, chosen)
    label = service.scope_label(db, scope)
    tables = reports.monthly_table(definition, label, series)
    return MonthlyPage(definition, chosen, scope, label, series, tables)


@dataclass
class SpectrumPage:
    spectrum: Spectrum
    labels: dict[str, str]
    tables: list[Table]
    filters: dict[str, Any] = field(default_factory=dict)


def spectrum_page(
    db: Session, period: str | None, by: str, age_band: str | None, sex: str | None, today: date
) -> SpectrumPage:
    chosen = _period(db, period, today)
    if not period:
        # A disease spectrum of a single month is thin: default to the year of the data.
        chosen = Period.parse(str(chosen.year))
    found = spectra.spectrum(db, chosen, by, age_band=age_band or None, sex=sex or None)
    labels = service.group_labels(db, "township") if by == "township" else {}
    return SpectrumPage(
        found, labels, reports.spectrum_tables(found, labels), {"age_band": age_band, "sex": sex}
    )
