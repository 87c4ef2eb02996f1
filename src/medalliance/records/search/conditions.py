"""SQL conditions for parsed criteria: each parameter is a ``pid IN (index subquery)``.

A condition is made in two steps, so that a search's statement can be reused:
``plan`` reads a criterion's values into bound parameters (``Binds``) and returns the
condition's *shape*, a hashable tuple of everything the SQL depends on; ``build`` makes
the SQL from the shape alone, never from a value. Searches of one shape (the same
parameters, modifiers and kinds of value) therefore share one statement: building it,
and SQLAlchemy's cache key for it, were half a millisecond of a patient's search.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, and_, bindparam, false, not_, or_, select
from sqlalchemy import true as sql_true
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
Shape = tuple[Any, ...]
_TABLES: dict[str, Any] = {
    "token": TokenIndex,
    "uri": TokenIndex,
    "string": StringIndex,
    "date": DateIndex,
    "reference": ReferenceIndex,
    "quantity": QuantityIndex,
    "number": QuantityIndex,
}


class Binds:
    """The values of a statement's bound parameters, named in the order they are planned
    (so one shape always has the same names). The search's patients are one parameter,
    however many conditions are narrowed to them."""

    def __init__(self, resource_type: str, patients: Sequence[str] | None) -> None:
        self.values: dict[str, Any] = {}
        self.patients = patients
        self._patients_name: str | None = None
        self.resource_type = self.add(resource_type)

    def add(self, value: Any) -> str:
        name = f"b{len(self.values)}"
        self.values[name] = value
        return name

    def names(self, *values: Any) -> tuple[str, ...]:
        return tuple(self.add(v) for v in values)

    def patients_name(self) -> str:
        """The name of the parameter holding the search's patients (a list)."""
        assert self.patients is not None
        if self._patients_name is None:
            self._patients_name = self.add(list(self.patients))
        return self._patients_name


def bound(name: str) -> BindParameter[Any]:
    """A parameter whose type is the column's it is compared with."""
    return bindparam(name)


def bound_list(name: str) -> BindParameter[Any]:
    return bindparam(name, expanding=True)


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


# -- planning: values into parameters, and the shape of the SQL -------------------------


class BadValue(ValueError):
    """A value its parameter's type cannot read (``date=garbage``)."""


def plan(c: Criterion, binds: Binds) -> Shape:
    """The shape of a criterion's condition on the resource table's row. Index rows carry
    the patient too, so each index subquery of a search about patients is narrowed to
    them: within one record that is a few hundred rows instead of every patient's
    matches of, say, a common LOINC code. A value that cannot be read is a 400 naming
    its parameter (the OperationOutcome's expression), as the parser's refusals do."""
    try:
        return _plan(c, binds)
    except BadValue as exc:
        name = c.name if c.chain is None else f"{c.name}.{c.chain.criterion.name}"
        raise DomainError(f"{name}: {exc}", field=name) from None


def _plan(c: Criterion, binds: Binds) -> Shape:
    if c.chain is not None:
        return _plan_chain(c, binds)
    if not c.values:  # a chain into the MPI or the registry that found no one
        return ("false",)
    if c.param is None:
        return _plan_column(c, binds)
    if _is_patient_criterion(c):
        return ("patient", binds.patients_name()) if binds.patients else ("false",)
    if c.modifier == "missing":
        return ("missing", index_table(c), _plan_scope(c, binds), c.values[0] == "true")
    kind = "not" if c.modifier == "not" else "in"
    return (kind, index_table(c), plan_match(c, binds))


def plan_match(c: Criterion, binds: Binds, *, of_type: str | None = None) -> Shape:
    """The shape of the index rows a criterion without :missing or :not matches: rows of
    the search's type and patients, or (``of_type``: a chain's targets) of that type, the
    name of its parameter, and any patient."""
    assert c.param is not None
    planner = _plan_text if _is_text(c) else _PLANNERS[c.param.type]
    leaves = tuple(planner(v, c.modifier, binds) for v in c.values)
    scope = _plan_scope(c, binds) if of_type is None else (of_type, binds.add(_index_name(c)), None)
    return (scope, leaves)


def _plan_scope(c: Criterion, binds: Binds) -> Shape:
    patients = binds.patients_name() if binds.patients is not None else None
    return (binds.resource_type, binds.add(_index_name(c)), patients)


def _plan_column(c: Criterion, binds: Binds) -> Shape:
    if c.name == "_id":
        return ("_id", binds.add(list(c.values)))
    return ("_lastUpdated", tuple(_plan_date_value(v, binds) for v in c.values))


def _plan_chain(c: Criterion, binds: Binds) -> Shape:
    """References (of ``c``) to live stored resources that meet the chained criterion."""
    assert c.chain is not None
    inner = c.chain.criterion
    scope = _plan_scope(c, binds)
    target_type = binds.add(c.chain.target_type)
    if inner.param is None:  # _id
        meets: Shape = ("_id", binds.add(list(inner.values)))
    else:
        meets = ("index", index_table(inner), plan_match(inner, binds, of_type=target_type))
    return ("chain", scope, target_type, meets)


def _plan_text(value: str, modifier: str | None, binds: Binds) -> Shape:
    """Words anywhere in a code's display or text: Chinese has no spaces to start a word
    at (血红蛋白 in 全血血红蛋白测定)."""
    return ("like", binds.names(f"%{_escape(folded(value))}%"))


def _plan_token(value: str, modifier: str | None, binds: Binds) -> Shape:
    if "|" not in value:
        return ("code", binds.names(value[:MAX_TEXT]))
    system, _, code = value.partition("|")
    if not system:
        return ("unsystemed-code", binds.names(code))
    if not code:
        return ("system", binds.names(system))
    return ("system-code", binds.names(system, code[:MAX_TEXT]))


def _plan_string(value: str, modifier: str | None, binds: Binds) -> Shape:
    text = folded(value)
    if modifier == "exact":
        # The lookup index finds the folded value's few rows; case and accents are checked
        # on them.
        written = cased(value)
        if written is None:
            return ("equals-uncased", binds.names(text))
        return ("equals-cased", binds.names(text, written))
    if modifier == "contains":
        return ("like", binds.names(f"%{_escape(text)}%"))
    return ("like", binds.names(f"{_escape(text)}%"))


def _plan_reference(value: str, modifier: str | None, binds: Binds) -> Shape:
    if value.startswith(("http://", "https://", "urn:")):
        parts = value.rstrip("/").split("/")
        if len(parts) >= 2 and value.startswith("http"):
            # An absolute URL to a resource here matches its relative form as well.
            return ("url", binds.names(value[:MAX_TEXT], parts[-2], parts[-1]))
        return ("target-id", binds.names(value[:MAX_TEXT]))
    if "/" in value:
        target_type, _, target_id = value.rpartition("/")
        return ("target", binds.names(target_type, target_id))
    if modifier:  # subject:Patient=123
        return ("target", binds.names(modifier, value))
    return ("target-id", binds.names(value))


def _plan_date(value: str, modifier: str | None, binds: Binds) -> Shape:
    return _plan_date_value(value, binds)


def _plan_date_value(raw: str, binds: Binds) -> Shape:
    prefix, text = split_prefix(raw)
    parsed = parse_range(text)
    if parsed is None:
        raise BadValue(f"{raw!r} is not a FHIR date (YYYY, YYYY-MM, YYYY-MM-DD or dateTime)")
    start, end = parsed
    if prefix in ("eq", "ne"):
        return (f"date-{prefix}", binds.names(start, end))
    if prefix in ("lt", "ge", "eb"):
        return (f"date-{prefix}", binds.names(start))
    if prefix in ("le", "gt", "sa"):
        return (f"date-{prefix}", binds.names(end))
    # ap: within 10% of the distance from now (at least a day) around the value
    margin = max(abs(datetime.now(UTC) - start) * 0.1, timedelta(days=1))
    return ("date-ap", binds.names(moved(end, margin), moved(start, -margin)))


def _plan_quantity(raw: str, modifier: str | None, binds: Binds) -> Shape:
    prefix, text = split_prefix(raw)
    number, _, rest = text.partition("|")
    system, _, code = rest.partition("|")
    try:
        value = Decimal(number)
    except InvalidOperation:
        raise BadValue(f"{raw!r} is not a number") from None
    kind, names = _plan_number(prefix, value, binds)
    if not code:
        return (kind, names)
    if system:
        return (kind + "+system-code", (*names, *binds.names(system, code)))
    return (kind + "+code", (*names, *binds.names(code)))


def _plan_number(prefix: str, value: Decimal, binds: Binds) -> tuple[str, tuple[str, ...]]:
    # eq honours the precision written: 5.4 means [5.35, 5.45)
    exponent = value.as_tuple().exponent
    half = (
        Decimal(5) * Decimal(10) ** (int(exponent) - 1) if isinstance(exponent, int) else Decimal(0)
    )
    low, high, exact = float(value - half), float(value + half), float(value)
    if prefix in ("eq", "ne"):
        return f"number-{prefix}", binds.names(low, high)
    if prefix == "ap":
        around = sorted((exact * 0.9, exact * 1.1))  # a negative value's order flips
        return "number-ap", binds.names(*around)
    if prefix in _NUMBER_SQL:
        return f"number-{prefix}", binds.names(exact)
    return "number-any", ()


_PLANNERS: dict[str, Callable[[str, str | None, Binds], Shape]] = {
    "token": _plan_token,
    "uri": _plan_token,
    "string": _plan_string,
    "date": _plan_date,
    "reference": _plan_reference,
    "quantity": _plan_quantity,
    "number": _plan_quantity,
}


# -- building: the SQL of a shape ------------------------------------------------------


def build(shape: Shape, readable_on: ReadableOn) -> ColumnElement[bool]:
    """The condition on the resource table's row a ``plan`` shape stands for."""
    kind = shape[0]
    if kind == "false":
        return false()
    if kind == "_id":
        return FhirResource.id.in_(bound_list(shape[1]))
    if kind == "_lastUpdated":
        column = FhirResource.last_updated
        return or_(*(_date_sql(column, column, leaf) for leaf in shape[1]))
    if kind == "patient":
        return FhirResource.patient_id.in_(bound_list(shape[1]))
    if kind == "chain":
        return _build_chain(shape, readable_on)
    table = shape[1]
    if kind == "missing":
        present = FhirResource.pid.in_(select(table.pid).where(build_scope(table, shape[2])))
        return not_(present) if shape[3] else present
    subquery = select(table.pid).where(build_match(table, shape[2]))
    if kind == "not":
        return FhirResource.pid.not_in(subquery)
    return FhirResource.pid.in_(subquery)


def build_match(table: Any, shape: Shape) -> ColumnElement[bool]:
    """The index rows (of ``table``, the criterion's index table or an alias of it) a
    ``plan_match`` shape stands for."""
    scope, leaves = shape
    return and_(build_scope(table, scope), or_(*(_leaf_sql(table, leaf) for leaf in leaves)))


def build_scope(table: Any, shape: Shape) -> ColumnElement[bool]:
    resource_type, name, patients = shape
    scope = and_(table.resource_type == bound(resource_type), table.name == bound(name))
    if patients is not None:
        scope = and_(table.patient_id.in_(bound_list(patients)), scope)
    return scope


def _build_chain(shape: Shape, readable_on: ReadableOn) -> ColumnElement[bool]:
    """Targets that the reader may read: a chain must not tell what an unreadable record
    holds."""
    _, scope, target_type, meets = shape
    target = aliased(FhirResource)  # fresh aliases: the outer query has these tables too
    if meets[0] == "_id":
        meeting = target.id.in_(bound_list(meets[1]))
    else:
        rows = aliased(meets[1])
        meeting = target.pid.in_(select(rows.pid).where(build_match(rows, meets[2])))
    targets = select(target.id).where(
        target.resource_type == bound(target_type),
        target.deleted.is_(False),
        meeting,
        readable_on(target.patient_id),
    )
    refs = aliased(ReferenceIndex)
    return FhirResource.pid.in_(
        select(refs.pid).where(
            build_scope(refs, scope),
            refs.target_type == bound(target_type),
            refs.target_id.in_(targets),
        )
    )


def _leaf_sql(table: Any, leaf: Shape) -> ColumnElement[bool]:
    kind, names = leaf
    if kind.startswith("date-"):
        return _date_sql(table.low, table.high, leaf)
    b = [bound(n) for n in names]
    if kind.startswith("number-"):
        return _quantity_sql(table, kind, b)
    return _TOKEN_AND_TEXT_SQL[kind](table, b)


_TOKEN_AND_TEXT_SQL: dict[str, Callable[[Any, list[Any]], ColumnElement[bool]]] = {
    "code": lambda t, b: t.code == b[0],
    "unsystemed-code": lambda t, b: and_(t.system.is_(None), t.code == b[0]),
    "system": lambda t, b: t.system == b[0],
    "system-code": lambda t, b: and_(t.system == b[0], t.code == b[1]),
    "equals-uncased": lambda t, b: and_(t.value == b[0], t.cased.is_(None)),
    "equals-cased": lambda t, b: and_(t.value == b[0], t.cased == b[1]),
    "like": lambda t, b: t.value.like(b[0], escape="\\"),
    "target": lambda t, b: and_(t.target_type == b[0], t.target_id == b[1]),
    "target-id": lambda t, b: t.target_id == b[0],
    "url": lambda t, b: or_(t.target_id == b[0], and_(t.target_type == b[1], t.target_id == b[2])),
}


def _date_sql(low: Any, high: Any, leaf: Shape) -> ColumnElement[bool]:
    kind, names = leaf
    b = [bound(n) for n in names]
    if kind == "date-eq":
        # low <= end follows from high <= end (a range never ends before it starts); said
        # outright, it bounds the index scan on low from both sides, and the planner's
        # estimate with it (one day over all patients: 355 ms → a few ms).
        return and_(low >= b[0], low <= b[1], high <= b[1])
    if kind == "date-ne":
        return or_(low < b[0], high > b[1])
    if kind == "date-ap":
        return and_(low <= b[0], high >= b[1])
    return _DATE_BOUND_SQL[kind](low, high, b[0])


_DATE_BOUND_SQL: dict[str, Callable[[Any, Any, Any], ColumnElement[bool]]] = {
    "date-lt": lambda low, high, start: low < start,
    "date-le": lambda low, high, end: low <= end,
    "date-gt": lambda low, high, end: high > end,
    "date-ge": lambda low, high, start: high >= start,
    "date-sa": lambda low, high, end: low > end,
    "date-eb": lambda low, high, start: high < start,
}


def _quantity_sql(table: Any, kind: str, b: list[Any]) -> ColumnElement[bool]:
    number, _, unit = kind.partition("+")
    cond = _number_sql(table.value, number, b)
    if unit == "code":
        return and_(cond, table.code == b[-1])
    if unit == "system-code":
        return and_(cond, table.code == b[-1], table.system == b[-2])
    return cond


def _number_sql(column: Any, kind: str, b: list[Any]) -> ColumnElement[bool]:
    prefix = kind.removeprefix("number-")
    if prefix == "eq":
        return and_(column >= b[0], column < b[1])
    if prefix == "ne":
        return or_(column < b[0], column >= b[1])
    if prefix == "ap":
        return and_(column >= b[0], column <= b[1])
    if prefix == "any":
        return sql_true()
    return _NUMBER_SQL[prefix](column, b[0])


_NUMBER_SQL: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "lt": lambda column, value: column < value,
    "le": lambda column, value: column <= value,
    "gt": lambda column, value: column > value,
    "ge": lambda column, value: column >= value,
    "sa": lambda column, value: column > value,
    "eb": lambda column, value: column < value,
}


# -- what the engine asks of criteria ----------------------------------------------------


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


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
