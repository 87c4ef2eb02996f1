"""SQL conditions for parsed criteria: each parameter is a ``pid IN (index subquery)``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import ColumnElement, and_, false, not_, or_, select, true
from sqlalchemy.orm import aliased

from medalliance.errors import DomainError
from medalliance.kit.fhir import split_prefix
from medalliance.records.dates import moved, parse_range
from medalliance.records.indexing import MAX_TEXT, cased, folded, text_index_name
from medalliance.records.models import (
    DateIndex,
    FhirResource,
    QuantityIndex,
    ReferenceIndex,
    StringIndex,
    TokenIndex,
)
from medalliance.records.search.criteria import Criterion

PatientResolver = Callable[[str], str | None]
# The access condition on a patient column (the chained targets' own patients).
ReadableOn = Callable[[Any], ColumnElement[bool]]
_TABLES: dict[str, Any] = {
    "token": TokenIndex,
    "uri": TokenIndex,
    "string": StringIndex,
    "date": DateIndex,
    "reference": ReferenceIndex,
    "quantity": QuantityIndex,
    "number": QuantityIndex,
}


def patient_scope(
    criteria: Sequence[Criterion], resolve_patient: PatientResolver
) -> list[str] | None:
    """The MPI persons a search is restricted to by its ``patient`` criteria (AND-ed, so
    intersected), or None when it names no patient. Each id is resolved once."""
    scope: list[str] | None = None
    for c in criteria:
        if not _is_patient_criterion(c):
            continue
        found = [p for v in c.values if (p := resolve_patient(v.split("/")[-1]))]
        scope = found if scope is None else [p for p in scope if p in found]
    return scope


def _is_patient_criterion(c: Criterion) -> bool:
    return (
        c.name == "patient"
        and c.param is not None
        and c.param.type == "reference"
        and not c.modifier
        and c.chain is None
    )


def condition(
    resource_type: str, c: Criterion, patients: Sequence[str] | None, readable_on: ReadableOn
) -> ColumnElement[bool]:
    """``patients``: the search's patient scope (see ``patient_scope``). Index rows carry
    the patient too, so each index subquery is narrowed to it: within one record that is
    a few hundred rows instead of every patient's matches of, say, a common LOINC code."""
    if c.chain is not None:
        return _chained(resource_type, c, patients, readable_on)
    if not c.values:  # a chain into the MPI or the registry that found no one
        return false()
    if c.param is None:
        return _column_condition(c)
    if _is_patient_criterion(c):
        assert patients is not None
        return FhirResource.patient_id.in_(patients) if patients else false()
    table = index_table(c)
    if c.modifier == "missing":
        present = FhirResource.pid.in_(
            select(table.pid).where(_scope(table, resource_type, c, patients))
        )
        return not_(present) if c.values[0] == "true" else present
    subquery = select(table.pid).where(index_match(table, resource_type, c, patients))
    if c.modifier == "not":
        return FhirResource.pid.not_in(subquery)
    return FhirResource.pid.in_(subquery)


def _chained(
    resource_type: str, c: Criterion, patients: Sequence[str] | None, readable_on: ReadableOn
) -> ColumnElement[bool]:
    """References (of ``c``) to live stored resources that meet the chained criterion and
    that the reader may read: a chain must not tell what an unreadable record holds."""
    assert c.chain is not None
    target_type, inner = c.chain.target_type, c.chain.criterion
    target = aliased(FhirResource)  # fresh aliases: the outer query has these tables too
    if inner.param is None:  # _id
        meets = target.id.in_(inner.values)
    else:
        rows = aliased(index_table(inner))
        meets = target.pid.in_(select(rows.pid).where(index_match(rows, target_type, inner, None)))
    targets = select(target.id).where(
        target.resource_type == target_type,
        target.deleted.is_(False),
        meets,
        readable_on(target.patient_id),
    )
    refs = aliased(ReferenceIndex)
    return FhirResource.pid.in_(
        select(refs.pid).where(
            _scope(refs, resource_type, c, patients),
            refs.target_type == target_type,
            refs.target_id.in_(targets),
        )
    )


def can_drive(c: Criterion) -> bool:
    """Whether the index rows a criterion matches are exactly the resources it selects,
    so a query can start from them (a join, not ``pid IN``): not for the patient (a
    resource column), not for :missing and :not (the resources without such rows), not
    for a chain (rows of its targets' indexes)."""
    return (
        c.param is not None
        and c.chain is None
        and bool(c.values)
        and not _is_patient_criterion(c)
        and c.modifier not in ("missing", "not")
    )


def pid_ordered(c: Criterion) -> bool:
    """Whether the rows a criterion matches are one range of its lookup index, pid next
    (see ``TokenIndex``, ``ReferenceIndex``): one value, a token with its system and
    code, a reference by id (not an absolute URL, which is matched two ways)."""
    if c.param is None or len(c.values) != 1 or not can_drive(c):
        return False
    value = c.values[0]
    if c.param.type in ("token", "uri"):
        system, bar, code = value.partition("|")
        return c.modifier is None and bool(bar and system and code)
    return c.param.type == "reference" and not value.startswith(("http://", "https://", "urn:"))


def one_row_per_resource(c: Criterion) -> bool:
    """Whether a resource has at most one index row the criterion matches: a resource's
    rows of one parameter are distinct (system, code) and (type, id) pairs."""
    if not pid_ordered(c):
        return False
    assert c.param is not None
    return c.param.type != "reference" or "/" in c.values[0]  # a bare id: any type


def index_table(c: Criterion) -> Any:
    assert c.param is not None
    return StringIndex if _is_text(c) else _TABLES[c.param.type]


def _is_text(c: Criterion) -> bool:
    """A token searched by what its codes say (``code:text``): string rows of its own."""
    return c.modifier == "text" and c.param is not None and c.param.type in ("token", "uri")


def _index_name(c: Criterion) -> str:
    return text_index_name(c.name) if _is_text(c) else c.name


def index_match(
    table: Any, resource_type: str, c: Criterion, patients: Sequence[str] | None
) -> ColumnElement[bool]:
    """The index rows (of ``table``, the criterion's index table or an alias of it) that
    a criterion without :missing or :not matches."""
    assert c.param is not None
    builder = _text if _is_text(c) else _BUILDERS[c.param.type]
    matches = or_(*(builder(table, v, c.modifier) for v in c.values))
    return and_(_scope(table, resource_type, c, patients), matches)


def _scope(
    table: Any, resource_type: str, c: Criterion, patients: Sequence[str] | None
) -> ColumnElement[bool]:
    scope = and_(table.resource_type == resource_type, table.name == _index_name(c))
    if patients is not None:
        scope = and_(table.patient_id.in_(patients), scope)
    return scope


def _column_condition(c: Criterion) -> ColumnElement[bool]:
    if c.name == "_id":
        return FhirResource.id.in_(c.values)
    return or_(
        *(_date_match(FhirResource.last_updated, FhirResource.last_updated, v) for v in c.values)
    )


def _text(table: Any, value: str, modifier: str | None) -> ColumnElement[bool]:
    """Words anywhere in a code's display or text: Chinese has no spaces to start a word
    at (血红蛋白 in 全血血红蛋白测定)."""
    pattern = f"%{_escape(folded(value))}%"
    return table.value.like(pattern, escape="\\")  # type: ignore[no-any-return]


def _token(table: Any, value: str, modifier: str | None) -> ColumnElement[bool]:
    if "|" not in value:
        return table.code == value[:MAX_TEXT]  # type: ignore[no-any-return]
    system, _, code = value.partition("|")
    if not system:
        return and_(table.system.is_(None), table.code == code)
    if not code:
        return table.system == system  # type: ignore[no-any-return]
    return and_(table.system == system, table.code == code[:MAX_TEXT])


def _string(table: Any, value: str, modifier: str | None) -> ColumnElement[bool]:
    text = folded(value)
    if modifier == "exact":
        # The lookup index finds the folded value's few rows; the case is checked on them.
        written = cased(value)
        same_case = table.cased.is_(None) if written is None else table.cased == written
        return and_(table.value == text, same_case)
    if modifier == "contains":
        return table.value.like(f"%{_escape(text)}%", escape="\\")  # type: ignore[no-any-return]
    return table.value.like(f"{_escape(text)}%", escape="\\")  # type: ignore[no-any-return]


def _reference(table: Any, value: str, modifier: str | None) -> ColumnElement[bool]:
    if value.startswith(("http://", "https://", "urn:")):
        parts = value.rstrip("/").split("/")
        if len(parts) >= 2 and value.startswith("http"):
            # An absolute URL to a resource here matches its relative form as well.
            relative = and_(table.target_type == parts[-2], table.target_id == parts[-1])
            return or_(table.target_id == value[:MAX_TEXT], relative)
        return table.target_id == value[:MAX_TEXT]  # type: ignore[no-any-return]
    if "/" in value:
        target_type, _, target_id = value.rpartition("/")
        return and_(table.target_type == target_type, table.target_id == target_id)
    if modifier:  # subject:Patient=123
        return and_(table.target_type == modifier, table.target_id == value)
    return table.target_id == value  # type: ignore[no-any-return]


def _date(table: Any, value: str, modifier: str | None) -> ColumnElement[bool]:
    return _date_match(table.low, table.high, value)


def _date_match(low: Any, high: Any, raw: str) -> ColumnElement[bool]:
    prefix, text = split_prefix(raw)
    parsed = parse_range(text)
    if parsed is None:
        raise DomainError(
            f"{raw!r} is not a FHIR date (YYYY, YYYY-MM, YYYY-MM-DD or dateTime)", field=raw
        )
    start, end = parsed
    if prefix == "eq":
        # low <= end follows from high <= end (a range never ends before it starts); said
        # outright, it bounds the index scan on low from both sides, and the planner's
        # estimate with it (one day over all patients: 355 ms → a few ms).
        return and_(low >= start, low <= end, high <= end)
    if prefix == "ne":
        return or_(low < start, high > end)
    if prefix == "lt":
        return low < start  # type: ignore[no-any-return]
    if prefix == "le":
        return low <= end  # type: ignore[no-any-return]
    if prefix == "gt":
        return high > end  # type: ignore[no-any-return]
    if prefix == "ge":
        return high >= start  # type: ignore[no-any-return]
    if prefix == "sa":
        return low > end  # type: ignore[no-any-return]
    if prefix == "eb":
        return high < start  # type: ignore[no-any-return]
    # ap: within 10% of the distance from now (at least a day) around the value
    margin = max(abs(datetime.now(UTC) - start) * 0.1, timedelta(days=1))
    return and_(low <= moved(end, margin), high >= moved(start, -margin))


def _quantity(table: Any, raw: str, modifier: str | None) -> ColumnElement[bool]:
    prefix, text = split_prefix(raw)
    number, _, rest = text.partition("|")
    system, _, code = rest.partition("|")
    try:
        value = Decimal(number)
    except InvalidOperation:
        raise DomainError(f"{raw!r} is not a number", field=raw) from None
    cond = _number_match(table.value, prefix, value)
    if code:
        unit = or_(table.code == code)
        cond = and_(cond, unit, table.system == system) if system else and_(cond, unit)
    return cond


def _number_match(column: Any, prefix: str, value: Decimal) -> ColumnElement[bool]:
    # eq honours the precision written: 5.4 means [5.35, 5.45)
    exponent = value.as_tuple().exponent
    half = (
        Decimal(5) * Decimal(10) ** (int(exponent) - 1) if isinstance(exponent, int) else Decimal(0)
    )
    low, high, exact = float(value - half), float(value + half), float(value)
    conditions: dict[str, ColumnElement[bool]] = {
        "eq": and_(column >= low, column < high),
        "ne": or_(column < low, column >= high),
        "lt": column < exact,
        "le": column <= exact,
        "gt": column > exact,
        "ge": column >= exact,
        "sa": column > exact,
        "eb": column < exact,
        "ap": and_(
            column >= min(exact * 0.9, exact * 1.1), column <= max(exact * 0.9, exact * 1.1)
        ),
    }
    return conditions.get(prefix, true())


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


_BUILDERS: dict[str, Callable[[Any, str, str | None], ColumnElement[bool]]] = {
    "token": _token,
    "uri": _token,
    "string": _string,
    "date": _date,
    "reference": _reference,
    "quantity": _quantity,
    "number": _quantity,
}
