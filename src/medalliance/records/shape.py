"""The JSON shape of an R4 resource, by the official StructureDefinitions: every element's
name, whether it repeats, and the JSON type of each primitive (R4 json.html: decimal and
the integers are JSON numbers, boolean is true/false, every other primitive a string).

The fhir.resources models coerce (``"value": "5"`` passed as the decimal 5, ``"true"`` as
a boolean) and are R4B's, so the raw JSON, which is what the store keeps and serves, is
walked once here against R4 itself. The walk knows each object's type, so the invariants
of data types that the models do not check ride on it: per-1 (Period), ref-1 (Reference)
and txt-1 (Narrative), and a contained resource must be a resource (dom-2 too).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any, Final, NamedTuple

from medalliance.records import narrative, structure
from medalliance.records.dates import parse_range

# How an element's value is written in JSON.
STRING, NUMBER, INTEGER, BOOLEAN, OBJECT, RESOURCE = range(6)
_KIND_OF_PRIMITIVE: Final = {
    "boolean": BOOLEAN,
    "integer": INTEGER,
    "positiveInt": INTEGER,
    "unsignedInt": INTEGER,
    "decimal": NUMBER,
}
_LEAVES: Final = {STRING: str, NUMBER: float, INTEGER: int, BOOLEAN: bool}
_SYSTEM = "http://hl7.org/fhirpath/System."  # types of Element.id, Extension.url ...
_EXPECTED: Final = {
    STRING: "a JSON string",
    NUMBER: "a JSON number",
    INTEGER: "a JSON number without a fraction",
    BOOLEAN: "true or false",
    OBJECT: "a JSON object",
    RESOURCE: "a JSON object (a resource)",
}


class _Never:
    """The type no JSON value has: the fast path's type for objects and resources."""


class Slot(NamedTuple):
    kind: int
    target: str  # OBJECT: its table (type or backbone path); else the FHIR type, for messages
    repeats: bool
    nullable: bool  # a primitive or its "_" twin: an array of them may hold null (json.html)
    # The Python type a valid primitive value always has (a decimal: float or int), so that
    # most values are passed by one comparison.
    leaf: type = _Never


class ShapeError(Exception):
    """Where (element names, outermost last while unwinding) and what is wrong."""

    def __init__(self, message: str, *path: str) -> None:
        super().__init__(message)
        self.message = message
        self.path = list(path)

    def expression(self, resource_type: str) -> str:
        return ".".join((resource_type, *reversed(self.path)))


class _Scope:
    """The resource local references resolve in (ref-1's %rootResource): the one being
    validated or a Bundle entry's; a contained resource resolves in its container's."""

    __slots__ = ("_ids", "contained", "root", "tables")

    def __init__(
        self, tables: dict[str, dict[str, Slot]], root: dict[str, Any], *, contained: bool = False
    ) -> None:
        self.tables, self.root, self.contained = tables, root, contained
        self._ids: frozenset[str] | None = None

    def inside(self) -> _Scope:
        return _Scope(self.tables, self.root, contained=True)

    def of(self, resource: dict[str, Any]) -> _Scope:
        return _Scope(self.tables, resource)

    def ids(self) -> frozenset[str]:
        if self._ids is None:
            items = self.root.get("contained")
            ids = (c.get("id") for c in items if isinstance(c, dict)) if type(items) is list else ()
            self._ids = frozenset(i for i in ids if isinstance(i, str))
        return self._ids


def check(resource: dict[str, Any]) -> None:
    """Raise ``ShapeError`` at the first element not written as R4 JSON says (the resource's
    type is known: ``validation`` checked it)."""
    _object(resource, resource["resourceType"], _Scope(tables(), resource))


# --- the walk -----------------------------------------------------------------------------


def _object(node: dict[str, Any], key: str, scope: _Scope) -> None:
    table = scope.tables[key]
    for name, value in node.items():
        slot = table.get(name)
        if slot is None:
            raise ShapeError(f"{name} is not an element of {key} in R4", name)
        try:
            if not slot.repeats:
                if type(value) is not slot.leaf:
                    _value(value, slot, scope)
            elif type(value) is not list:
                raise ShapeError(f"must be a JSON array (the element repeats), not {_shown(value)}")
            else:
                for item in value:
                    if type(item) is not slot.leaf and (item is not None or not slot.nullable):
                        _value(item, slot, scope)
        except ShapeError as error:
            error.path.append(name)
            raise
    invariant = _INVARIANTS.get(key)
    if invariant is not None:
        invariant(node, scope)


def _value(value: Any, slot: Slot, scope: _Scope) -> None:
    kind = slot.kind
    if kind == STRING:
        valid = type(value) is str
    elif kind == OBJECT:
        valid = type(value) is dict
        if valid:
            _object(value, slot.target, scope)
    elif kind == NUMBER:
        valid = isinstance(value, int | float) and type(value) is not bool
    elif kind == INTEGER:
        valid = type(value) is int
    elif kind == BOOLEAN:
        valid = type(value) is bool
    else:
        _resource(value, scope, contained=slot.target == "contained")
        return
    if not valid:
        raise ShapeError(
            f"{_shown(value)} is {_json_type(value)}; FHIR JSON writes {slot.target} as "
            f"{_EXPECTED[kind]}"
        )


def _resource(value: Any, scope: _Scope, *, contained: bool) -> None:
    """A contained resource (in its container's scope), or a Bundle entry's or a
    Parameters' resource (a scope of its own)."""
    if type(value) is not dict:
        raise ShapeError(f"must be a resource (a JSON object), not {_shown(value)}")
    resource_type = value.get("resourceType")
    if resource_type is None:
        raise ShapeError("the resource has no resourceType")
    if not isinstance(resource_type, str) or resource_type not in structure.package().snapshots:
        shown = _shown(resource_type)
        raise ShapeError(f"the resource has the resourceType {shown}, not an R4 resource type")
    if contained and "contained" in value:
        raise ShapeError("a contained resource may not contain resources (dom-2)", "contained")
    _object(value, resource_type, scope.inside() if contained else scope.of(value))


# --- invariants of data types -------------------------------------------------------------


def _period(node: dict[str, Any], _: _Scope) -> None:
    """per-1: start <= end. Partial dates are ranges (2020-02 is the whole month): the
    period is refused only when its start is certainly after its end, as FHIRPath's
    comparison of dates of different precision leaves it open otherwise."""
    start, end = node.get("start"), node.get("end")
    if not isinstance(start, str) or not isinstance(end, str):
        return
    first, last = parse_range(start), parse_range(end)
    if first is not None and last is not None and first[0] > last[1]:
        raise ShapeError(f"start {start} is after end {end} (per-1)")


def _reference(node: dict[str, Any], scope: _Scope) -> None:
    """ref-1: a local reference (#id) names a resource contained in the same resource;
    "#" alone is a contained resource referring to its container."""
    reference = node.get("reference")
    if not isinstance(reference, str) or not reference.startswith("#"):
        return
    if reference == "#":
        if not scope.contained:
            raise ShapeError(
                '"#" refers to the containing resource; only a contained resource has one',
                "reference",
            )
    elif reference[1:] not in scope.ids():
        raise ShapeError(f"{reference} names no contained resource (ref-1)", "reference")


def _narrative(node: dict[str, Any], _: _Scope) -> None:
    div = node.get("div")
    if isinstance(div, str) and (problem := narrative.problem(div)) is not None:
        raise ShapeError(f"the narrative {problem}", "div")


_INVARIANTS: Final[dict[str, Callable[[dict[str, Any], _Scope], None]]] = {
    "Period": _period,
    "Reference": _reference,
    "Narrative": _narrative,
}


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


_JSON_TYPES: Final[dict[type, str]] = {
    str: "a JSON string",
    dict: "a JSON object",
    list: "a JSON array",
}


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a JSON boolean"
    if isinstance(value, int | float):
        return "a JSON number" if isinstance(value, int) else "a JSON number with a fraction"
    if value is None:
        return "not a value (JSON null stands only for a missing item of an array)"
    return _JSON_TYPES.get(type(value), "not JSON")


# --- the tables, from the StructureDefinitions --------------------------------------------

_LOADING = threading.Lock()


def tables() -> dict[str, dict[str, Slot]]:
    """JSON name -> slot, for each data type (``Quantity``), resource type
    (``Observation``) and backbone element (``Observation.component``)."""
    with _LOADING:
        return _tables()


@cache
def _tables() -> dict[str, dict[str, Slot]]:
    package = structure.package()
    found: dict[str, dict[str, Slot]] = {}
    for elements in (*package.datatypes.values(), *package.snapshots.values()):
        _add(found, elements)
    for resource_type in package.snapshots:
        found[resource_type]["resourceType"] = Slot(STRING, "code", repeats=False, nullable=False)
    return found


def _add(found: dict[str, dict[str, Slot]], elements: Iterable[dict[str, Any]]) -> None:
    elements = tuple(elements)
    parents = {e["path"].rpartition(".")[0] for e in elements}
    for element in elements:
        parent, _, name = element["path"].rpartition(".")
        if not parent:
            found.setdefault(element["path"], {})
            continue
        table = found.setdefault(parent, {})
        repeats = element.get("max", "1") not in ("0", "1")
        if element.get("contentReference"):  # Questionnaire.item.item: as Questionnaire.item
            table[name] = Slot(OBJECT, element["contentReference"].lstrip("#"), repeats, False)
            continue
        codes = [t["code"] for t in element.get("type", ())]
        if name.endswith("[x]"):
            for code in codes:
                _put(table, name[:-3] + code[0].upper() + code[1:], code, repeats)
        elif element["path"] in parents:  # a backbone element: its own table, by path
            table[name] = Slot(OBJECT, element["path"], repeats, False)
        else:
            _put(table, name, codes[0], repeats)


def _put(table: dict[str, Slot], name: str, code: str, repeats: bool) -> None:
    if code == "Resource":  # contained, or Bundle.entry.resource (a scope of its own)
        target = "contained" if name == "contained" else code
        table[name] = Slot(RESOURCE, target, repeats, False)
        return
    primitive = code.startswith(_SYSTEM) or code[0].islower()  # string, dateTime, xhtml ...
    if not primitive:
        table[name] = Slot(OBJECT, code, repeats, False)
        return
    fhir_type = code.removeprefix(_SYSTEM).lower() if code.startswith(_SYSTEM) else code
    kind = _KIND_OF_PRIMITIVE.get(fhir_type, STRING)
    table[name] = Slot(kind, fhir_type, repeats, True, _LEAVES[kind])
    # Its id and extensions (json.html "_status"), an array beside an array.
    table[f"_{name}"] = Slot(OBJECT, "Element", repeats, True)


def warm() -> None:
    tables()
