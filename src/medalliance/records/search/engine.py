"""Running a parsed query: access scoping in SQL, keyset paging, includes, counts.

Paging is a keyset cursor (the last row's sort key and pid), not an offset: rows written
while a client pages can only appear after the cursor, never shift or repeat a page.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Integer,
    Select,
    Subquery,
    and_,
    bindparam,
    func,
    inspect,
    or_,
    select,
)
from sqlalchemy.engine import Result
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.visitors import iterate, replacement_traverse

from medalliance.errors import DomainError
from medalliance.kit.hot import flush_pending, session_connection
from medalliance.records.dates import NO_DATE, cursor_instant
from medalliance.records.models import (
    DateIndex,
    FhirResource,
    ReferenceIndex,
    StringIndex,
    TokenIndex,
)
from medalliance.records.search.conditions import (
    Binds,
    PatientResolver,
    Shape,
    bound,
    bound_list,
    build,
    build_match,
    can_drive,
    one_row_per_resource,
    patient_scope,
    pid_ordered,
    plan,
)
from medalliance.records.search.criteria import Criterion, Query
from medalliance.records.searchparams import params_for
from medalliance.records.store import StoredResource, from_row

MAX_INCLUDES = 1000
# Plain rows, not ORM objects: a page is only read and rendered, never changed.
RESOURCE_COLUMNS = tuple(FhirResource.__table__.c)


@dataclass(frozen=True)
class Readable:
    """What the reader may read: a condition on the resource table's row, and the values
    of its bound parameters, given to every statement that has it (the condition is
    built once per kind of reader, see ``access.readable_rule``)."""

    condition: ColumnElement[bool]
    params: Mapping[str, Any]


@dataclass
class SearchResult:
    matches: list[StoredResource]
    included: list[StoredResource] = field(default_factory=list)
    total: int | None = None
    next_cursor: str | None = None
    warnings: list[str] = field(default_factory=list)
    elements: tuple[str, ...] | None = None  # of the matches
    summary: str | None = None  # _summary's mode: the included resources' elements
    ignored: list[tuple[str, str]] = field(default_factory=list)  # left out of the links
    # What _include named that the store did not give (a Patient, a Practitioner: other
    # domains answer for those; or a resource the reader may not read).
    unresolved: list[tuple[str, str]] = field(default_factory=list)


def run(
    db: Session,
    query: Query,
    readable: Readable,
    resolve_patient: PatientResolver,
    *,
    granted: Collection[str] = (),
) -> SearchResult:
    """``granted``: persons whose record the caller has already let the actor read; a
    search scoped to them needs no per-row access condition (includes still get one)."""
    patients = patient_scope(query.criteria, resolve_patient)
    checked = bool(patients) and set(patients or ()) <= set(granted)
    binds = Binds(query.resource_type, patients)
    criteria = [(c, plan(c, binds)) for c in query.criteria]
    result = SearchResult(
        matches=[],
        warnings=list(query.warnings),
        elements=query.elements,
        summary=query.summary,
        ignored=query.ignored,
    )
    # _count=0 asks how many, as _summary=count does (R4 search 3.1.1.5.6).
    if query.summary_count or query.total or query.count == 0:
        result.total = _count(db, query, criteria, binds, readable, checked=checked)
    if query.summary_count or query.count == 0:
        return result
    shape = _page_shape(query, criteria, binds, checked)
    stmt = _statement(shape, readable, lambda: _page(shape, readable))
    rows = _execute(db, stmt, {**readable.params, **binds.values}).all()
    page, more = rows[: query.count], len(rows) > query.count
    result.matches = [from_row(row) for row in page]
    if more:
        last = page[-1]
        result.next_cursor = _encode(last.sort_key, last.pid)
    result.included = includes(db, query, result.matches, readable, result.unresolved)
    return result


Criteria = Sequence[tuple[Criterion, Shape]]
# Statements by shape and access rule, built once (see ``conditions``). Shapes are few (a
# member system asks the same searches all day); the bound keeps a stream of odd ones
# from growing it for good.
_STATEMENTS: dict[tuple[Any, ...], tuple[ColumnElement[bool], Select[Any]]] = {}
MAX_STATEMENTS = 2000


def _statement(shape: Shape, readable: Readable, build: Callable[[], Select[Any]]) -> Select[Any]:
    """The statement of a shape under an access rule. Rules are built once per kind of
    reader, so the rule's identity is part of the key; it is kept in the entry, so the
    id cannot be another's while the entry lives."""
    key = (shape, id(readable.condition))
    found = _STATEMENTS.get(key)
    if found is not None and found[0] is readable.condition:
        return found[1]
    stmt = build()
    if len(_STATEMENTS) >= MAX_STATEMENTS:
        _STATEMENTS.clear()
    _STATEMENTS[key] = (readable.condition, stmt)
    return stmt


def _execute(db: Session, stmt: Select[*tuple[Any, ...]], params: Mapping[str, Any]) -> Result[Any]:
    """A statement of plain columns, on the session's connection: ``Session.execute``'s
    ORM layer (its own execution context and compile step) cost 0.2 ms of a search."""
    flush_pending(db)  # what the session's autoflush would do: a bundle's writes are seen
    return session_connection(db).connection.execute(stmt, dict(params))


def _page_shape(query: Query, criteria: Criteria, binds: Binds, checked: bool) -> Shape:
    """The page's statement's shape, its cursor and limit planned into ``binds``.

    In the default order (pid) a search over all patients starts from the index rows of
    its first criterion that matches one range of its lookup index (``pid_ordered``):
    pid comes right after the searched columns, so one code's or target's rows come in
    pid order and the page can stop after its 20 rows. Written as ``pid IN (...)`` the
    planner hashes or sorts all of them first (a practitioner's 11,000 observations:
    80 ms instead of 0.2 ms)."""
    driver = None
    if query.sort is None and binds.patients is None:
        driver = next((i for i, (c, _) in enumerate(criteria) if pid_ordered(c)), None)
    cursor = binds.names(*_decode(query.cursor, query)) if query.cursor else None
    return (
        "page",
        query.resource_type,
        binds.resource_type,
        tuple(shape for _, shape in criteria),
        query.sort,
        driver,
        cursor,
        _access_shape(binds, checked),
        binds.add(query.count + 1),
    )


def _access_shape(binds: Binds, checked: bool) -> Shape | None:
    """None when the search's patients are known readable. When the search is about one
    patient, the access rule is decided once for them: written against each row's
    patient it is a correlated subquery per row; on one patient's id PostgreSQL
    evaluates it once."""
    if checked:
        return None
    if binds.patients is not None and len(binds.patients) == 1:
        return ("patient", binds.add(binds.patients[0]))
    return ("rows",)


def _page(shape: Shape, readable: Readable) -> Select[Any]:
    _, resource_type, type_name, criteria, sort, driver, cursor, access, limit = shape
    key, descending = _sort_key(resource_type, sort)
    columns = (*RESOURCE_COLUMNS, key.label("sort_key"))
    base = (FhirResource.resource_type == bound(type_name), FhirResource.deleted.is_(False))
    readable_on = _readable_on(readable)
    others = [build(c, readable_on) for i, c in enumerate(criteria) if i != driver]
    if driver is None:
        stmt = select(*columns).where(*base, *others)
    else:
        _, table, match = criteria[driver]
        rows = _alias(table)
        matched = select(rows.pid).where(build_match(rows, match))
        if cursor:  # said here too: the planner does not carry pid > x across the join
            matched = matched.where(rows.pid > bound(cursor[1]))
        pids = matched.distinct().subquery()
        joined = select(*columns).join_from(FhirResource, pids, pids.c.pid == FhirResource.pid)
        stmt = joined.where(*base, *others)
    if access is not None:
        stmt = stmt.where(_access(readable, access))
    if cursor:
        stmt = stmt.where(_after(cursor, key, descending))
    order = (
        (key.desc(), FhirResource.pid.desc()) if descending else (key.asc(), FhirResource.pid.asc())
    )
    return stmt.order_by(*order).limit(bindparam(limit, type_=Integer))


def _readable_on(readable: Readable) -> Callable[[Any], ColumnElement[bool]]:
    def readable_on(column: Any) -> ColumnElement[bool]:
        return _on_columns(readable.condition, {"patient_id": column})

    return readable_on


def _access(readable: Readable, access: Shape) -> ColumnElement[bool]:
    if access[0] == "rows":
        return readable.condition
    patient = bindparam(access[1], type_=FhirResource.__table__.c.patient_id.type)
    return _on_columns(readable.condition, {"patient_id": patient})


def _count(
    db: Session,
    query: Query,
    criteria: Criteria,
    binds: Binds,
    readable: Readable,
    *,
    checked: bool = False,
) -> int:
    """Access is decided per patient, not per match: the matches are counted per patient
    and the access rule keeps the readable patients' counts (``checked``: the search's
    patients are already known readable, no rule). A code over all patients is 333,000
    matches but 2,000 patients. The rule's parameters go with the count either way: a
    chained criterion carries the rule on its targets."""
    driver = next((i for i, (c, _) in enumerate(criteria) if can_drive(c)), None)
    if any(c.param is None for c, _ in criteria):
        driver = None
    distinct = driver is not None and not one_row_per_resource(criteria[driver][0])
    shape = (
        "count",
        binds.resource_type,
        tuple(shape for _, shape in criteria),
        driver,
        distinct,
        not checked,
    )
    stmt = _statement(shape, readable, lambda: _count_statement(shape, readable))
    return int(_execute(db, stmt, {**readable.params, **binds.values}).scalar() or 0)


def _count_statement(shape: Shape, readable: Readable) -> Select[Any]:
    _, type_name, criteria, driver, distinct, ruled = shape
    rule = readable.condition if ruled else None
    if rule is not None and _resource_columns(rule) - {"patient_id"}:
        # A rule on more than the patient can only be decided per resource row.
        rows = _resource_rows(type_name, criteria, readable).where(rule).subquery()
        return select(func.count()).select_from(rows)
    matches = _matching_rows(type_name, criteria, driver, distinct, readable)
    per_patient = (
        select(matches.c.patient_id, func.count().label("n"))
        .group_by(matches.c.patient_id)
        .subquery()
    )
    stmt = select(func.coalesce(func.sum(per_patient.c.n), 0))
    if rule is not None:
        stmt = stmt.where(_on_columns(rule, {"patient_id": per_patient.c.patient_id}))
    return stmt


def _matching_rows(
    type_name: str,
    criteria: tuple[Shape, ...],
    driver: int | None,
    distinct: bool,
    readable: Readable,
) -> Subquery:
    """(pid, patient_id) of every match. When each criterion is an index lookup, from
    index rows alone: a deleted resource has none (its deleting version is written
    without them) and each row carries its resource's type and patient. The token lookup
    index holds pid and patient: a count of codes reads no table row at all.
    ``distinct``: a resource can have several matching rows (code=x in two systems)."""
    if driver is None:
        return _resource_rows(type_name, criteria, readable).subquery()
    _, table, match = criteria[driver]
    rows = _alias(table)
    columns = inspect(rows).selectable.c
    own = {"pid": columns.pid, "patient_id": columns.patient_id}
    readable_on = _readable_on(readable)
    others = (
        _on_columns(build(c, readable_on), own) for i, c in enumerate(criteria) if i != driver
    )
    stmt = select(columns.pid, columns.patient_id).where(build_match(rows, match), *others)
    return (stmt.distinct() if distinct else stmt).subquery()


@cache
def _alias(table: Any) -> Any:
    """One alias per index table, made once: building one is a tenth of a search's time."""
    return aliased(table)


def _resource_rows(
    type_name: str, criteria: tuple[Shape, ...], readable: Readable
) -> Select[int, str | None]:
    readable_on = _readable_on(readable)
    return select(FhirResource.pid, FhirResource.patient_id).where(
        FhirResource.resource_type == bound(type_name),
        FhirResource.deleted.is_(False),
        *(build(c, readable_on) for c in criteria),
    )


def _resource_columns(expression: ColumnElement[Any]) -> set[str]:
    """The names of the resource table's columns an expression reads."""
    return {
        e.name
        for e in iterate(expression)
        if isinstance(e, Column) and e.table is FhirResource.__table__
    }


def _on_columns(
    expression: ColumnElement[bool], columns: dict[str, ColumnElement[Any]]
) -> ColumnElement[bool]:
    """``expression`` with the resource table's columns named in ``columns`` replaced."""

    def replace(element: Any, **kw: Any) -> Any:
        ours = isinstance(element, Column) and element.table is FhirResource.__table__
        return columns.get(element.name) if ours else None

    replaced: ColumnElement[bool] = replacement_traverse(expression, {}, replace)
    return replaced


def _sort_key(resource_type: str, sort: tuple[str, bool] | None) -> Any:
    if sort is None:
        return FhirResource.pid, False
    name, descending = sort
    if name == "_id":
        return FhirResource.id, descending
    if name == "_lastUpdated":
        return FhirResource.last_updated, descending
    if name == "date":
        return FhirResource.sort_date, descending  # denormalised clinical date: indexed
    param = params_for(resource_type)[name]
    table: Any
    column: Any
    table, column, empty = {
        "date": (DateIndex, DateIndex.low, NO_DATE),
        "string": (StringIndex, StringIndex.value, ""),
        "token": (TokenIndex, TokenIndex.code, ""),
    }[param.type]
    sub = (
        select(func.min(column))
        .where(table.pid == FhirResource.pid, table.name == name)
        .scalar_subquery()
    )
    return func.coalesce(sub, empty), descending


def _encode(key: Any, pid: int) -> str:
    value = key.isoformat() if isinstance(key, datetime) else key
    raw = json.dumps([value, pid], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


MAX_PID = 2**63 - 1  # a BIGINT


def _decode(cursor: str, query: Query) -> tuple[Any, int]:
    """The sort key and pid a cursor carries, checked against the query's sort: a value
    of another type than the sort column's would fail in the database, not here."""
    try:
        value, pid = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(pid, int) or not 0 <= pid <= MAX_PID:
            raise ValueError(pid)
        if query.sort is not None and not isinstance(value, str):
            raise TypeError(value)
        if query.sort is not None and _is_date_sort(query):
            value = cursor_instant(value)
        return value, pid
    except (ValueError, TypeError, RecursionError):
        raise DomainError("_cursor is not a cursor this server issued", field="_cursor") from None


def _after(cursor: tuple[str, str], key: Any, descending: bool) -> ColumnElement[bool]:
    value, pid = bound(cursor[0]), bindparam(cursor[1], type_=BigInteger)
    if key is FhirResource.pid:
        return FhirResource.pid < pid if descending else FhirResource.pid > pid  # type: ignore[no-any-return]
    if descending:
        return or_(key < value, and_(key == value, FhirResource.pid < pid))
    return or_(key > value, and_(key == value, FhirResource.pid > pid))


def _is_date_sort(query: Query) -> bool:
    assert query.sort is not None
    name = query.sort[0]
    if name in ("_lastUpdated", "date"):
        return True
    param = params_for(query.resource_type).get(name)
    return param is not None and param.type == "date"


def includes(
    db: Session,
    query: Query,
    matches: Sequence[StoredResource],
    readable: Readable,
    unresolved: list[tuple[str, str]] | None = None,
) -> list[StoredResource]:
    """``unresolved`` receives the targets of ``_include`` the store did not give. Each
    statement is built once (per access rule), as the page's are."""
    if not matches or not (query.includes or query.revincludes):
        return []
    seen = {(m.resource_type, m.id) for m in matches}
    found: list[StoredResource] = []
    pids = [m.pid for m in matches]
    for inc in query.includes:
        named = {"pids": pids, "name": inc.param, "target_type": inc.target_type}
        refs = _execute(db, _include_refs(inc.target_type is not None), named).all()
        targets = [(str(r.target_type), str(r.target_id)) for r in refs]
        wanted = [t for t in targets if t not in seen]
        found += _load_refs(db, wanted, readable, seen)
        if unresolved is not None:
            unresolved += [r for r in wanted if r not in seen]
    for inc in query.revincludes:
        ids = [m.id for m in matches if m.resource_type == query.resource_type]
        referring = {
            "source_type": inc.source_type,
            "name": inc.param,
            "target_type": query.resource_type,
            "ids": ids,
        }
        stmt = _statement(("revinclude",), readable, lambda: _revinclude(readable))
        found += _unseen(_execute(db, stmt, {**readable.params, **referring}), seen)
    return found


@cache
def _include_refs(of_one_type: bool) -> Select[str | None, str]:
    """The targets the matches' references of one parameter name (of one type)."""
    stmt = select(ReferenceIndex.target_type, ReferenceIndex.target_id).where(
        ReferenceIndex.pid.in_(bound_list("pids")),
        ReferenceIndex.name == bound("name"),
        ReferenceIndex.target_type.is_not(None),
    )
    return stmt.where(ReferenceIndex.target_type == bound("target_type")) if of_one_type else stmt


def _revinclude(readable: Readable) -> Select[Any]:
    return (
        select(*RESOURCE_COLUMNS)
        .join(ReferenceIndex, ReferenceIndex.pid == FhirResource.pid)
        .where(
            ReferenceIndex.resource_type == bound("source_type"),
            ReferenceIndex.name == bound("name"),
            ReferenceIndex.target_type == bound("target_type"),
            ReferenceIndex.target_id.in_(bound_list("ids")),
            FhirResource.deleted.is_(False),
            readable.condition,
        )
        .limit(MAX_INCLUDES)
    )


def _load_refs(
    db: Session, refs: list[tuple[str, str]], readable: Readable, seen: set[tuple[str, str]]
) -> list[StoredResource]:
    """Live resources among (type, id) pairs that the reader may read."""
    by_type: dict[str, list[str]] = {}
    for resource_type, resource_id in refs[:MAX_INCLUDES]:
        by_type.setdefault(resource_type, []).append(resource_id)
    stmt = _statement(("targets",), readable, lambda: _targets(readable))
    out: list[StoredResource] = []
    for resource_type, ids in by_type.items():
        params = {**readable.params, "type": resource_type, "ids": ids}
        out += _unseen(_execute(db, stmt, params), seen)
    return out


def _targets(readable: Readable) -> Select[Any]:
    return select(*RESOURCE_COLUMNS).where(
        FhirResource.resource_type == bound("type"),
        FhirResource.id.in_(bound_list("ids")),
        FhirResource.deleted.is_(False),
        readable.condition,
    )


def _unseen(rows: Result[Any], seen: set[tuple[str, str]]) -> list[StoredResource]:
    """The rows not seen before (a resource referring twice comes twice), noted seen."""
    out: list[StoredResource] = []
    for row in rows:
        if (row.resource_type, row.id) not in seen:
            seen.add((row.resource_type, row.id))
            out.append(from_row(row))
    return out
