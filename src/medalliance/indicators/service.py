"""Indicator rules the pages, API, CLI and worker call: current definitions and their
versioned edits, the overview, drill-downs and monthly series. Flushes, never commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from medalliance.audit import service as audit
from medalliance.auth.principal import Actor
from medalliance.config import get_settings
from medalliance.errors import NotFound, ValidationFailed
from medalliance.indicators import definitions as defs
from medalliance.indicators import engine, repository
from medalliance.indicators.definitions import Definition
from medalliance.indicators.engine import Result
from medalliance.indicators.enums import Level
from medalliance.indicators.facts import (  # noqa: F401  (the ingest API lives here too)
    EncounterInput,
    ReferralInput,
    ingest_encounter,
    ingest_encounters,
    ingest_referral,
    ingest_referrals,
    rebuild_aggregates,
)
from medalliance.indicators.models import IndicatorDefinition
from medalliance.indicators.periods import Period, add_months, month_range
from medalliance.indicators.repository import GroupBy, Scope
from medalliance.registry import service as registry
from medalliance.registry.enums import InstitutionLevel
from medalliance.registry.repository import InstitutionFilter

TREND_MONTHS = 12


# --- definitions --------------------------------------------------------------------------


def current_definitions(db: Session) -> list[Definition]:
    """The newest stored version of each indicator, else the shipped one (version 0)."""
    stored = repository.latest_definitions(db)
    found = [
        Definition.model_validate(stored[d.id].body) if d.id in stored else d
        for d in defs.shipped()
    ]
    shipped_ids = {d.id for d in defs.shipped()}
    found += [
        Definition.model_validate(r.body) for i, r in sorted(stored.items()) if i not in shipped_ids
    ]
    return found


def get_definition(db: Session, indicator_id: str) -> Definition:
    for definition in current_definitions(db):
        if definition.id == indicator_id:
            return definition
    raise NotFound(f"indicator {indicator_id} not found", field="indicator_id")


@dataclass(frozen=True)
class Version:
    version: int
    definition: Definition
    created_at: datetime | None
    created_by: str
    note: str


def definition_versions(db: Session, indicator_id: str) -> list[Version]:
    rows = repository.definition_versions(db, indicator_id)
    found = [
        Version(r.version, Definition.model_validate(r.body), r.created_at, r.created_by, r.note)
        for r in rows
    ]
    shipped = {d.id: d for d in defs.shipped()}
    if indicator_id in shipped:
        found.append(Version(0, shipped[indicator_id], None, "", "shipped"))
    if not found:
        raise NotFound(f"indicator {indicator_id} not found", field="indicator_id")
    return found


def save_definition(
    db: Session, actor: Actor, indicator_id: str, body: dict[str, Any], *, note: str, now: datetime
) -> Version:
    """Every edit is a new version row, audited with the before and after bodies."""
    definition = defs.parse_body({**body, "id": body.get("id", indicator_id)})
    if definition.id != indicator_id:
        raise ValidationFailed(
            "id: the id in the body differs from the indicator edited", field="id"
        )
    versions = repository.definition_versions(db, indicator_id)
    before = (
        get_definition(db, indicator_id).model_dump(mode="json")
        if versions or _shipped(indicator_id)
        else None
    )
    number = (versions[0].version if versions else 0) + 1
    after = definition.model_dump(mode="json")
    db.add(
        IndicatorDefinition(
            indicator_id=indicator_id,
            version=number,
            body=after,
            note=note[:500],
            created_at=now,
            created_by=actor.username,
        )
    )
    db.flush()
    audit.record(
        db,
        actor,
        "indicator.definition.update" if before else "indicator.definition.create",
        resource_type="IndicatorDefinition",
        resource_id=f"{indicator_id}/{number}",
        detail={"before": before, "after": after, "note": note[:500]},
    )
    return Version(number, definition, now, actor.username, note)


def _shipped(indicator_id: str) -> bool:
    return any(d.id == indicator_id for d in defs.shipped())


# --- scopes and periods -------------------------------------------------------------------


def county_code() -> str:
    return get_settings().indicators_county_code


def scope_for(level: Level, key: str | None) -> Scope:
    if level == Level.CONSORTIUM:
        return Scope(level)
    if level == Level.COUNTY:
        return Scope(level, key or county_code())
    if not key:
        raise ValidationFailed(f"key: level {level.value} needs a key", field="key")
    return Scope(level, key)


def default_period(db: Session, today: date) -> Period:
    """The latest month with data that is over: the month under way holds a few days (a
    growth against a whole month a year before reads as a fall), a later one a wrong
    clock. Else the latest month with data (a first month), else this month."""
    current = Period.month_containing(today)
    latest = repository.latest_month(db, before=current.last_month) or repository.latest_month(db)
    return Period.parse(latest) if latest else current


def trend_months(period: Period) -> list[str]:
    return month_range(add_months(period.last_month, -(TREND_MONTHS - 1)), period.last_month)


def available(definition: Definition, scope: Scope, period: Period) -> bool:
    return scope.level in definition.levels and period.kind in definition.periods


# --- overview -----------------------------------------------------------------------------


@dataclass(frozen=True)
class OverviewRow:
    definition: Definition
    result: Result | None  # None: not computed at this level or period
    trend: list[tuple[str, float | None]]


@dataclass(frozen=True)
class Overview:
    period: Period
    scope: Scope
    rows: list[OverviewRow]
    months: list[str]


def overview(db: Session, period: Period, scope: Scope) -> Overview:
    """Every indicator's value, numerator, denominator, status and 12-month trend."""
    definitions = current_definitions(db)
    computable = [d for d in definitions if available(d, scope, period)]
    trend = trend_months(period)
    months = engine.needed_months(sorted(set(trend) | set(period.months)), computable)
    data = engine.load(db, computable, scope, months, windows=[period.months]).get(
        "", engine.MeasureData()
    )
    rows = []
    for definition in definitions:
        if definition not in computable:
            rows.append(OverviewRow(definition, None, []))
            continue
        result = engine.compute(definition, data, period.months)
        series = [(m, engine.compute(definition, data, [m]).value) for m in trend]
        rows.append(OverviewRow(definition, result, series))
    return Overview(period, scope, rows, trend)


# --- drill-down ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BreakdownRow:
    key: str
    label: str
    level: str
    result: Result


@dataclass(frozen=True)
class Breakdown:
    definition: Definition
    period: Period
    total: Result
    by: GroupBy
    rows: list[BreakdownRow]


def breakdown(db: Session, indicator_id: str, period: Period, by: Level) -> Breakdown:
    """The consortium value and its parts by institution or by township."""
    definition = get_definition(db, indicator_id)
    if by not in (Level.INSTITUTION, Level.TOWNSHIP) or by not in definition.levels:
        raise ValidationFailed(f"by: {indicator_id} is not computed per {by.value}", field="by")
    months = engine.needed_months(period.months, [definition])
    scope = Scope(Level.CONSORTIUM)
    total = engine.compute(
        definition,
        engine.load(db, [definition], scope, months, windows=[period.months]).get(
            "", engine.MeasureData()
        ),
        period.months,
    )
    group: GroupBy = "institution" if by == Level.INSTITUTION else "township"
    parts = engine.load(db, [definition], scope, months, group, windows=[period.months])
    labels = _labels(db, group)
    rows = [
        BreakdownRow(
            key,
            labels.get(key, (key, ""))[0],
            labels.get(key, (key, ""))[1],
            engine.compute(definition, data, period.months),
        )
        for key, data in parts.items()
    ]
    rows.sort(key=lambda r: (_LEVEL_ORDER.get(r.level, 9), r.key))
    return Breakdown(definition, period, total, group, rows)


_LEVEL_ORDER = {level.value: i for i, level in enumerate(InstitutionLevel)}


def _labels(db: Session, group: GroupBy) -> dict[str, tuple[str, str]]:
    """Institution id (or township code) → (name, institution level)."""
    institutions, _ = registry.find_institutions(db, InstitutionFilter(), limit=5000, offset=0)
    if group == "institution":
        return {i.id: (i.name, i.level) for i in institutions}
    return {
        i.division_code: (i.name, "")
        for i in institutions
        if i.level == InstitutionLevel.PRIMARY.value
    }


def scope_label(db: Session, scope: Scope) -> str:
    if scope.level in (Level.INSTITUTION, Level.TOWNSHIP):
        group: GroupBy = "institution" if scope.level == Level.INSTITUTION else "township"
        return _labels(db, group).get(scope.key, (scope.key, ""))[0]
    return scope.key


def monthly(
    db: Session, indicator_id: str, scope: Scope, period: Period
) -> tuple[Definition, list[tuple[str, Result]]]:
    """Month by month for the 12 months ending with the period (the last drill step)."""
    definition = get_definition(db, indicator_id)
    if scope.level not in definition.levels:
        raise ValidationFailed(
            f"level: {indicator_id} is not computed per {scope.level.value}", field="level"
        )
    trend = trend_months(period)
    data = engine.load(db, [definition], scope, engine.needed_months(trend, [definition])).get(
        "", engine.MeasureData()
    )
    return definition, [(m, engine.compute(definition, data, [m])) for m in trend]


def institutions(db: Session, ids: Sequence[str]) -> dict[str, Any]:
    return registry.institutions_by_ids(db, ids)


def group_labels(db: Session, group: GroupBy) -> dict[str, str]:
    return {k: name for k, (name, _level) in _labels(db, group).items()}
