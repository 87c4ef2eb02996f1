"""Every query of the indicators domain: facts, aggregates, observations for percentiles,
residents, definitions, watermarks and staged imports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, Table, column, delete, func, select, text, true
from sqlalchemy import table as table_clause
from sqlalchemy.orm import Session

from medalliance.indicators.enums import Level
from medalliance.indicators.measures import NOT_NULL, TABLES, Measure
from medalliance.indicators.models import (
    CELL_COLUMNS,
    EncounterCell,
    EncounterFact,
    IndicatorDefinition,
    MeasureAggregate,
    Population,
    SettlementImport,
    SourceWatermark,
)

GroupBy = Literal["institution", "township"] | None
Agg = MeasureAggregate


@dataclass(frozen=True)
class Scope:
    """Which facts an indicator value covers: a level and its key (none for consortium)."""

    level: Level
    key: str = ""

    def on(self, institution: Any, township: Any) -> ColumnElement[bool]:
        if self.level == Level.INSTITUTION:
            return institution == self.key  # type: ignore[no-any-return]
        if self.level == Level.TOWNSHIP:
            return township == self.key  # type: ignore[no-any-return]
        if self.level == Level.COUNTY:
            return township.startswith(self.key)  # type: ignore[no-any-return]
        return true()


def _group_columns(group: GroupBy, institution: Any, township: Any) -> list[Any]:
    """The GROUP BY key as a list: empty for a single total (PostgreSQL refuses to group
    by a constant)."""
    if group == "institution":
        return [institution]
    if group == "township":
        return [township]
    return []


def _key(row: Sequence[Any], group: GroupBy) -> tuple[str, Sequence[Any]]:
    return (str(row[0] or ""), row[1:]) if group else ("", row)


# --- aggregates ---------------------------------------------------------------------------


def measure_sums(
    db: Session, measures: Sequence[str], scope: Scope, months: Sequence[str], group: GroupBy
) -> list[tuple[str, str, str, int, float]]:
    """(group key, measure, month, n, total) over the aggregate table."""
    if not measures or not months:
        return []
    key = _group_columns(group, Agg.institution_id, Agg.township_code)
    stmt = (
        select(*key, Agg.measure, Agg.month, func.sum(Agg.n), func.sum(Agg.total))
        .where(Agg.measure.in_(measures), Agg.month.in_(months))
        .where(scope.on(Agg.institution_id, Agg.township_code))
        .group_by(*key, Agg.measure, Agg.month)
    )
    found = []
    for row in db.execute(stmt):
        g, (m, mo, n, t) = _key(row, group)
        found.append((g, m, mo, int(n or 0), float(t or 0)))
    return found


def observations(
    db: Session, measure: Measure, scope: Scope, months: Sequence[str], group: GroupBy
) -> list[tuple[str, str, float]]:
    """(group key, month, value) of a percentile measure, read from the facts."""
    assert measure.table is not None
    assert measure.value is not None
    table = TABLES[measure.table]
    institution, township = table.c[measure.institution], table.c.township_code
    key = _group_columns(group, institution, township)
    stmt = (
        select(*key, table.c.month, table.c[measure.value])
        .where(measure.condition(), table.c.month.in_(months))
        .where(scope.on(institution, township))
    )
    found = []
    for row in db.execute(stmt):
        g, (m, v) = _key(row, group)
        found.append((g, m, float(v)))
    return found


def quantiles(
    db: Session,
    measure: Measure,
    scope: Scope,
    window: Sequence[str],
    fractions: Sequence[float],
    group: GroupBy,
    *,
    per_month: bool,
) -> list[tuple[str, str, int, list[float]]]:
    """PostgreSQL only: (group key, month or "", n, percentiles) computed in the database
    with percentile_cont, so the facts never travel to Python."""
    from sqlalchemy import Float
    from sqlalchemy.dialects.postgresql import ARRAY, array

    assert measure.table is not None
    assert measure.value is not None
    table = TABLES[measure.table]
    institution, township = table.c[measure.institution], table.c.township_code
    key = _group_columns(group, institution, township)
    month = [table.c.month] if per_month else []
    value = table.c[measure.value]
    pct = func.percentile_cont(array([float(f) for f in fractions])).within_group(value)
    stmt = (
        select(*key, *month, func.count(), pct.cast(ARRAY(Float)))
        .where(measure.condition(), table.c.month.in_(window))
        .where(scope.on(institution, township))
        .group_by(*key, *month)
    )
    found = []
    for row in db.execute(stmt):
        g, rest = _key(row, group)
        m, n, values = (rest[0], rest[1], rest[2]) if per_month else ("", rest[0], rest[1])
        if values is not None:  # an ungrouped aggregate over no rows still answers one row
            found.append((g, m, int(n), [float(v) for v in values]))
    return found


CellKey = tuple[Any, ...]  # the CELL_COLUMNS values of one encounter fact


def encounter_cells(db: Session, keys: set[CellKey]) -> dict[CellKey, int]:
    """The cell id of every key, creating the missing cells. Callers hold the aggregate
    lock, so no other writer creates the same cell meanwhile."""
    if not keys:
        return {}
    months = {key[CELL_COLUMNS.index("month")] for key in keys}
    cells = EncounterCell.__table__.c
    rows = db.execute(
        select(cells.id, *(cells[c] for c in CELL_COLUMNS)).where(cells.month.in_(months))
    )
    found = {tuple(row[1:]): row[0] for row in rows}
    missing = {
        k: EncounterCell(**dict(zip(CELL_COLUMNS, k, strict=True))) for k in keys - found.keys()
    }
    db.add_all(missing.values())
    db.flush()  # one flush assigns every new cell its id
    return found | {key: cell.id for key, cell in missing.items()}


def aggregate_rows(
    db: Session, keys: Sequence[tuple[str, str, str, str]]
) -> dict[tuple[str, str, str, str], Agg]:
    found: dict[tuple[str, str, str, str], Agg] = {}
    for key in keys:
        row = db.get(Agg, key)
        if row is not None:
            found[key] = row
    return found


def clear_aggregates(db: Session) -> None:
    """Empty the aggregates for a rebuild. On PostgreSQL TRUNCATE: a DELETE leaves every
    old row dead in the primary key, and re-inserting the same keys then checks each dead
    duplicate (measured 2.3 s instead of 0.5 s for 47k rows after a few rebuilds).
    Dashboard reads wait for the rebuild's commit meanwhile, about a second at county
    scale."""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text(f"TRUNCATE {Agg.__tablename__}"))
    else:
        db.execute(delete(Agg))


def rebuild_table(db: Session, table: Table, measures: Sequence[Measure]) -> None:
    """Insert the aggregates of every measure of one fact table, in SQL, in two stages:
    one grouped scan of the facts by every column a measure filters on (small result),
    then each measure's filter and sum over that."""
    from sqlalchemy import Float, cast, insert, literal, union_all

    if not measures:
        return
    flags = frozenset(c for m in measures for c, allowed in m.where if allowed == (NOT_NULL,))
    names = sorted(
        {c for m in measures for c, _ in m.where}
        | {m.institution for m in measures}
        | {"township_code", "month"}
    )
    values = sorted({m.value for m in measures if m.value})
    if uses_cells(table, names, flags, values):
        grouped = _grouped_by_cell(names)
    else:
        keys = [(table.c[c].is_not(None) if c in flags else table.c[c]).label(c) for c in names]
        grouped = select(
            *keys, func.count().label("n__"), *(func.sum(table.c[v]).label(v) for v in values)
        ).group_by(*(table.c[c].is_not(None) if c in flags else table.c[c] for c in names))
    stage = _materialised(db, grouped, [*names, "n__", *values])
    parts = []
    for m in measures:
        total = cast(func.sum(stage.c[m.value]), Float) if m.value else cast(literal(0.0), Float)
        parts.append(
            select(
                literal(m.name).label("measure"),
                stage.c[m.institution].label("institution_id"),
                stage.c.township_code,
                stage.c.month,
                func.sum(stage.c.n__).label("n"),
                total.label("total"),
            )
            .where(m.condition(stage.c, flags))
            .group_by(stage.c[m.institution], stage.c.township_code, stage.c.month)
        )
    columns = ["measure", "institution_id", "township_code", "month", "n", "total"]
    db.execute(insert(Agg).from_select(columns, union_all(*parts)))


def uses_cells(table: Table, names: Sequence[str], flags: frozenset[str], values: Any) -> bool:
    """Encounter measures that only count facts by cell columns are grouped by cell id."""
    return (
        table.name == EncounterFact.__tablename__
        and set(names) <= set(CELL_COLUMNS)
        and not flags
        and not values
    )


def _grouped_by_cell(names: Sequence[str]) -> Select[Any]:
    facts, cells = EncounterFact.__table__.c, EncounterCell.__table__.c
    per_cell = select(facts.cell_id, func.count().label("n__")).group_by(facts.cell_id).subquery()
    return select(*(cells[c].label(c) for c in names), per_cell.c.n__).join_from(
        per_cell, EncounterCell.__table__, per_cell.c.cell_id == cells.id
    )


def _materialised(db: Session, grouped: Select[Any], columns: list[str]) -> Any:
    """The grouped pass as something the measure selects can read. On PostgreSQL it is a
    temporary table made by CREATE TABLE AS, which (unlike INSERT ... SELECT) may scan the
    facts with parallel workers; elsewhere a CTE."""
    if db.get_bind().dialect.name != "postgresql":
        return grouped.cte("stage")
    sql = grouped.compile(dialect=db.get_bind().dialect, compile_kwargs={"literal_binds": True})
    db.execute(text("DROP TABLE IF EXISTS indicator_rebuild_stage"))
    db.execute(text(f"CREATE TEMPORARY TABLE indicator_rebuild_stage ON COMMIT DROP AS {sql}"))
    # Statistics, so that the measure selects hash the stage rows rather than sort them
    # (a fresh temporary table looks empty to the planner).
    db.execute(text("ANALYZE indicator_rebuild_stage"))
    return table_clause("indicator_rebuild_stage", *(column(c) for c in columns))


def count_aggregates(db: Session) -> int:
    return int(db.scalar(select(func.count()).select_from(Agg)) or 0)


def all_aggregates(db: Session) -> Sequence[Agg]:
    return db.scalars(select(Agg)).all()


# --- population ---------------------------------------------------------------------------


def residents(db: Session, scope: Scope, group: GroupBy) -> dict[str, int]:
    if scope.level == Level.INSTITUTION or group == "institution":
        return {}
    key = _group_columns(group, None, Population.township_code)
    stmt = (
        select(*key, func.sum(Population.residents))
        .where(scope.on(None, Population.township_code))
        .group_by(*key)
    )
    found: dict[str, int] = {}
    for row in db.execute(stmt):
        g, (n,) = _key(row, group)
        found[g] = int(n or 0)
    return found


def population_row(db: Session, township_code: str) -> Population | None:
    return db.get(Population, township_code)


# --- facts --------------------------------------------------------------------------------


def fact_by_key(db: Session, model: Any, column: str, value: str) -> Any:
    return db.scalars(select(model).where(getattr(model, column) == value)).one_or_none()


def existing_keys(db: Session, model: Any, column: str, values: Sequence[str]) -> set[str]:
    found: set[str] = set()
    attribute = getattr(model, column)
    for start in range(0, len(values), 500):
        chunk = values[start : start + 500]
        found.update(db.scalars(select(attribute).where(attribute.in_(chunk))))
    return found


def clear_source_facts(db: Session) -> None:
    from medalliance.indicators.models import ReferralFact

    db.execute(delete(EncounterFact))
    db.execute(delete(ReferralFact))
    db.execute(delete(SourceWatermark))


def latest_month(db: Session, *, before: str | None = None) -> str | None:
    """The latest month (YYYY-MM) with aggregates, before ``before`` when given."""
    stmt = select(func.max(Agg.month))
    return db.scalar(stmt.where(Agg.month < before) if before else stmt)


def spectrum_rows(
    db: Session, months: Sequence[str], group: str, *, age_band: str | None, sex: str | None
) -> list[tuple[str, str, str, str, int]]:
    """(group value, chapter, code, institution level, visits) for the disease spectrum."""
    f = EncounterFact
    key = getattr(f, group)
    stmt = select(key, f.icd_chapter, f.icd10, f.institution_level, func.count()).where(
        f.month.in_(months), f.icd10 != ""
    )
    if age_band:
        stmt = stmt.where(f.age_band == age_band)
    if sex:
        stmt = stmt.where(f.sex == sex)
    stmt = stmt.group_by(key, f.icd_chapter, f.icd10, f.institution_level)
    return [(str(g), c, code, lvl, int(n)) for g, c, code, lvl, n in db.execute(stmt)]


# --- definitions --------------------------------------------------------------------------


def latest_definitions(db: Session) -> dict[str, IndicatorDefinition]:
    newest = (
        select(IndicatorDefinition.indicator_id, func.max(IndicatorDefinition.version).label("v"))
        .group_by(IndicatorDefinition.indicator_id)
        .subquery()
    )
    stmt = select(IndicatorDefinition).join(
        newest,
        (IndicatorDefinition.indicator_id == newest.c.indicator_id)
        & (IndicatorDefinition.version == newest.c.v),
    )
    return {row.indicator_id: row for row in db.scalars(stmt)}


def definition_versions(db: Session, indicator_id: str) -> Sequence[IndicatorDefinition]:
    return db.scalars(
        select(IndicatorDefinition)
        .where(IndicatorDefinition.indicator_id == indicator_id)
        .order_by(IndicatorDefinition.version.desc())
    ).all()


# --- watermarks and imports ---------------------------------------------------------------


def watermark(db: Session, source: str) -> SourceWatermark | None:
    return db.get(SourceWatermark, source)


def settlement_import(db: Session, import_id: str) -> SettlementImport | None:
    return db.get(SettlementImport, import_id)


def recent_imports(db: Session, limit: int = 20) -> Sequence[SettlementImport]:
    return db.scalars(
        select(SettlementImport).order_by(SettlementImport.created_at.desc()).limit(limit)
    ).all()
