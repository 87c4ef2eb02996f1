"""Computing any definition from measure data: ratios, values, growth against the same
period a year before, and percentiles from observations. No indicator is special-cased."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from medalliance.indicators import expressions, repository
from medalliance.indicators.definitions import Definition
from medalliance.indicators.enums import Better, IndicatorKind, MeasureKind, Status
from medalliance.indicators.measures import MEASURES
from medalliance.indicators.periods import year_before
from medalliance.indicators.repository import GroupBy, Scope

AMBER_MARGIN = 0.10  # within 10 % of the target: amber, not red


@dataclass(frozen=True)
class Result:
    value: float | None
    numerator: float | None
    denominator: float | None
    status: Status


@dataclass
class MeasureData:
    """Measure values of one scope (or one group within it), by month."""

    sums: dict[tuple[str, str], tuple[int, float]] = field(default_factory=dict)
    samples: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    residents: int | None = None
    # Percentiles computed by the database: (measure, months) → (n, {percentile: value}).
    quantiles: dict[tuple[str, tuple[str, ...]], tuple[int, dict[float, float]]] = field(
        default_factory=dict
    )

    def value(self, name: str, months: Sequence[str]) -> float:
        measure = MEASURES[name]
        if measure.kind == MeasureKind.CONSTANT:
            return float(len(months))
        if measure.kind == MeasureKind.POPULATION:
            return float(self.residents or 0)
        index = 1 if measure.kind == MeasureKind.SUM else 0
        return float(sum(self.sums.get((name, m), (0, 0.0))[index] for m in months))

    def observations(self, name: str, months: Sequence[str]) -> list[float]:
        return [v for m in months for v in self.samples.get((name, m), [])]


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Linear interpolation between closest ranks (PostgreSQL's percentile_cont)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def status_of(definition: Definition, value: float | None) -> Status:
    if value is None or definition.target is None:
        return Status.NONE
    target = definition.target
    margin = abs(target) * AMBER_MARGIN
    if definition.better == Better.HIGHER:
        if value >= target:
            return Status.GREEN
        return Status.AMBER if value >= target - margin else Status.RED
    if value <= target:
        return Status.GREEN
    return Status.AMBER if value <= target + margin else Status.RED


def compute(definition: Definition, data: MeasureData, months: Sequence[str]) -> Result:
    kind = definition.kind
    if kind == IndicatorKind.PERCENTILE:
        name, pct = definition.numerator.strip(), definition.percentile or 50
        computed = data.quantiles.get((name, tuple(months)))
        if computed is not None:
            n, by_pct = computed
            value = by_pct.get(pct)
            return Result(value, None, float(n), status_of(definition, value))
        samples = data.observations(name, months)
        value = percentile(samples, pct)
        return Result(value, None, float(len(samples)), status_of(definition, value))
    numerator_tree = expressions.parse(definition.numerator, "numerator")
    values = {n: data.value(n, months) for n in expressions.names(numerator_tree)}
    numerator = expressions.evaluate(numerator_tree, values)
    if kind == IndicatorKind.VALUE:
        return Result(numerator, numerator, None, status_of(definition, numerator))
    if kind == IndicatorKind.GROWTH:
        before = year_before(list(months))
        previous = expressions.evaluate(numerator_tree, {n: data.value(n, before) for n in values})
        value = _ratio(
            None if numerator is None or previous is None else numerator - previous,
            previous,
            definition.factor,
        )
        return Result(value, numerator, previous, status_of(definition, value))
    assert definition.denominator is not None
    denominator_tree = expressions.parse(definition.denominator, "denominator")
    denominator = expressions.evaluate(
        denominator_tree, {n: data.value(n, months) for n in expressions.names(denominator_tree)}
    )
    value = _ratio(numerator, denominator, definition.factor)
    return Result(value, numerator, denominator, status_of(definition, value))


def _ratio(numerator: float | None, denominator: float | None, factor: float) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator * factor


def needed_months(months: Sequence[str], definitions: Sequence[Definition]) -> list[str]:
    wanted = set(months)
    if any(d.kind == IndicatorKind.GROWTH for d in definitions):
        wanted |= set(year_before(list(months)))
    return sorted(wanted)


def load(
    db: Session,
    definitions: Sequence[Definition],
    scope: Scope,
    months: Sequence[str],
    group: GroupBy = None,
    windows: Sequence[Sequence[str]] = (),
) -> dict[str, MeasureData]:
    """Measure data for the definitions over the months, per group key ("" when ungrouped).

    ``windows`` are the month sets percentiles will be asked for beyond single months (on
    PostgreSQL they are computed in the database, one query per window)."""
    names: set[str] = set()
    for definition in definitions:
        names |= definition.measure_names()
    found: dict[str, MeasureData] = defaultdict(MeasureData)
    aggregated = sorted(n for n in names if MEASURES[n].aggregated)
    for key, measure, month, n, total in repository.measure_sums(
        db, aggregated, scope, months, group
    ):
        found[key].sums[(measure, month)] = (n, total)
    percentiles = sorted(n for n in names if MEASURES[n].kind == MeasureKind.PERCENTILE)
    if percentiles and db.get_bind().dialect.name == "postgresql":
        _database_quantiles(db, definitions, percentiles, scope, months, group, windows, found)
    else:
        for name in percentiles:
            rows = repository.observations(db, MEASURES[name], scope, months, group)
            for key, month, value in rows:
                found[key].samples[(name, month)].append(value)
    if any(MEASURES[n].kind == MeasureKind.POPULATION for n in names):
        for key, residents in repository.residents(db, scope, group).items():
            found[key].residents = residents
    return found


def _database_quantiles(
    db: Session,
    definitions: Sequence[Definition],
    names: Sequence[str],
    scope: Scope,
    months: Sequence[str],
    group: GroupBy,
    windows: Sequence[Sequence[str]],
    found: dict[str, MeasureData],
) -> None:
    for name in names:
        pcts = sorted(
            {
                d.percentile or 50
                for d in definitions
                if d.kind == IndicatorKind.PERCENTILE and d.numerator.strip() == name
            }
        )
        fractions = [p / 100 for p in pcts]
        measure = MEASURES[name]
        rows = repository.quantiles(db, measure, scope, months, fractions, group, per_month=True)
        for key, month, n, values in rows:
            found[key].quantiles[(name, (month,))] = (n, dict(zip(pcts, values, strict=True)))
        for window in windows:
            if len(window) < 2:
                continue
            rows = repository.quantiles(
                db, measure, scope, window, fractions, group, per_month=False
            )
            for key, _month, n, values in rows:
                found[key].quantiles[(name, tuple(window))] = (
                    n,
                    dict(zip(pcts, values, strict=True)),
                )
