"""Turning extracted values into index rows, by search parameter type."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, TypeAlias

from medalliance.kit.text import fold
from medalliance.records.dates import NO_DATE, parse_range
from medalliance.records.searchparams import (
    COLUMN_PARAMS,
    SearchParam,
    element_stems,
    params_for,
    resource_type_set,
)

MAX_TEXT = 255
_NAME_PARTS = ("text", "family", "given", "prefix", "suffix")
_ADDRESS_PARTS = ("text", "line", "city", "district", "state", "postalCode", "country")


@dataclass
class IndexRows:
    """Rows to insert for one resource (pid and patient are filled in by the store)."""

    token: list[dict[str, Any]] = field(default_factory=list)
    string: list[dict[str, Any]] = field(default_factory=list)
    date: list[dict[str, Any]] = field(default_factory=list)
    reference: list[dict[str, Any]] = field(default_factory=list)
    quantity: list[dict[str, Any]] = field(default_factory=list)
    sort_date: datetime = NO_DATE


def build_index(resource: dict[str, Any], found: Iterable[Reference] | None = None) -> IndexRows:
    """``found``: the resource's ``references``, when the write has walked them already."""
    rows = IndexRows()
    present = element_stems(resource)
    for param in params_for(resource["resourceType"]).values():
        if param.code in COLUMN_PARAMS:
            continue
        if param.roots is not None and param.roots.isdisjoint(present):
            continue  # none of the elements it reads is there: most parameters, cheaply
        values = param.extract(resource)
        if values:
            _add(rows, param, values)
    if found is None:
        found = references(resource, resource["resourceType"])
    # Not in a Bundle held as a resource: its references resolve among its own entries (or
    # against its sender's base), so they name nothing of this store to hold.
    stored = (r.value for r in found if not r.bundled)
    rows.reference += unsearched_references(stored, rows.reference)
    starts = [r["low"] for r in rows.date if r["name"] == "date"]
    rows.sort_date = min(starts) if starts else NO_DATE
    return rows


# The name of reference rows no search parameter reads: in contained resources, in
# extensions, in elements without a parameter (Claim.diagnosis.diagnosisReference). No
# search matches it; the rows are there so that what they name is held (a DELETE is
# refused while they refer to it, ``service.refuse_if_referenced``) like any target.
UNSEARCHED = ":unsearched"


def unsearched_references(
    values: Iterable[str], indexed: Iterable[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Rows for the relative references among ``values`` (a resource's, as written) that
    ``indexed`` (its search parameters' reference rows) lacks, one per target."""
    seen = {(r["target_type"], r["target_id"]) for r in indexed}
    rows = []
    for value in sorted(set(values)):
        target = reference_target(value)
        if target is None or target[0] is None or target in seen:
            continue  # local (#id), absolute, canonical or conditional: no stored target
        seen.add(target)
        rows.append({"name": UNSEARCHED, "target_type": target[0], "target_id": target[1]})
    return rows


class Reference(NamedTuple):
    """A ``reference`` value as written, and where it is."""

    path: str  # FHIRPath of the element: Observation.encounter.reference
    value: str
    # In a Bundle held as a resource (a document, or the resource itself): it resolves
    # among that Bundle's entries, not in the store.
    bundled: bool


# Where a node is, as (where its parent is, its key or index), spelled out only for the
# nodes that hold a reference: most of a resource's nodes hold none.
_Where: TypeAlias = "tuple[_Where, str | int] | None"
_NESTED = (dict, list)


def references(resource: dict[str, Any], path: str) -> list[Reference]:
    """Every ``reference`` value of a resource, contained resources, extensions and held
    Bundles included, each with its FHIRPath from ``path``, in document order. Iterative:
    a resource may be nested nearly as deep as JSON parsing allows."""
    found: list[Reference] = []
    stack: list[tuple[Any, _Where, bool]] = [(resource, None, False)]
    while stack:
        node, where, bundled = stack.pop()
        if isinstance(node, list):
            for i in range(len(node) - 1, -1, -1):
                if isinstance(node[i], _NESTED):  # a scalar holds no reference: not stacked
                    stack.append((node[i], (where, i), bundled))
            continue
        if not bundled and node.get("resourceType") == "Bundle":
            bundled = True
        for key, value in reversed(node.items()):
            if isinstance(value, _NESTED):
                stack.append((value, (where, key), bundled))
            elif key == "reference" and isinstance(value, str):
                found.append(Reference(_spelled(path, (where, key)), value, bundled))
    return found


def _spelled(path: str, where: _Where) -> str:
    steps: list[str] = []
    while where is not None:
        where, step = where
        steps.append(f"[{step}]" if isinstance(step, int) else f".{step}")
    return path + "".join(reversed(steps))


def reference_values(resource: dict[str, Any]) -> set[str]:
    """Every ``reference`` value in a resource, as written (see ``references``)."""
    return {r.value for r in references(resource, "")}


def _add(rows: IndexRows, param: SearchParam, values: list[Any]) -> None:
    name = param.code
    if param.type in ("token", "uri"):
        pairs = {pair for v in values for pair in tokens(v)}
        rows.token += [{"name": name, "system": s, "code": c} for s, c in pairs]
        # What the codes say in words, for ``:text`` (a doctor searches 血红蛋白, not 718-7).
        said = {folded(t) for v in values for t in token_texts(v)}
        rows.string += [{"name": text_index_name(name), "value": t, "cased": None} for t in said]
    elif param.type == "string":
        texts = {(folded(t), cased(t)) for v in values for t in strings(v)}
        rows.string += [{"name": name, "value": f, "cased": c} for f, c in texts]
    elif param.type == "date":
        ranges = {r for v in values for r in date_ranges(v)}
        rows.date += [{"name": name, "low": lo, "high": hi} for lo, hi in ranges]
    elif param.type == "reference":
        targets = {t for v in values if (t := reference_target(v)) is not None}
        rows.reference += [{"name": name, "target_type": t, "target_id": i} for t, i in targets]
    else:  # quantity, number
        amounts = {q for v in values if (q := quantity(v)) is not None}
        rows.quantity += [{"name": name, "value": v, "system": s, "code": c} for v, s, c in amounts]


def folded(text: str) -> str:
    """A string index row's value: without case or accents, for the prefix search that R4
    makes case- and accent-insensitive."""
    return fold(text)[:MAX_TEXT]


def cased(text: str) -> str | None:
    """The string as written, for ``:exact``, when its folded value would not say it
    (None for most: Chinese characters have no case or accents), so the index grows only
    by what it needs."""
    written = text[:MAX_TEXT]
    return None if written == folded(text) else written


def _clip(value: Any) -> str | None:
    return str(value)[:MAX_TEXT] if value is not None else None


def tokens(value: Any) -> list[tuple[str | None, str]]:
    if isinstance(value, bool):
        return [(None, "true" if value else "false")]
    if isinstance(value, str | int | float):
        return [(None, str(value)[:MAX_TEXT])]
    if not isinstance(value, dict):
        return []
    if "coding" in value:
        return [p for coding in value["coding"] for p in tokens(coding)]
    code = value.get("code", value.get("value"))
    if code is None or isinstance(code, dict):
        return []
    return [(_clip(value.get("system")), str(code)[:MAX_TEXT])]


def text_index_name(param_code: str) -> str:
    """The string index rows of a token parameter's text (``code:text``)."""
    return f"{param_code}:text"


def token_texts(value: Any) -> list[str]:
    """CodeableConcept.text and each Coding.display (R4 search, token :text)."""
    if not isinstance(value, dict):
        return []
    found = [value["text"]] if isinstance(value.get("text"), str) else []
    coding = value.get("coding")
    codings: list[Any] = coding if isinstance(coding, list) else [value]
    found += [
        c["display"] for c in codings if isinstance(c, dict) and isinstance(c.get("display"), str)
    ]
    return found


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, dict):
        return []
    found: list[str] = []
    for part in (*_NAME_PARTS, *_ADDRESS_PARTS, "display"):
        item = value.get(part)
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, list):
            found += [x for x in item if isinstance(x, str)]
    return found


def date_ranges(value: Any) -> list[tuple[datetime, datetime]]:
    if isinstance(value, str):
        parsed = parse_range(value)
        return [parsed] if parsed else []
    if not isinstance(value, dict):
        return []
    if "start" in value or "end" in value:  # Period: open ends are unbounded
        start = parse_range(value["start"]) if isinstance(value.get("start"), str) else None
        end = parse_range(value["end"]) if isinstance(value.get("end"), str) else None
        low = start[0] if start else NO_DATE
        high = end[1] if end else datetime.max.replace(tzinfo=NO_DATE.tzinfo)
        return [(low, high)] if start or end else []
    events = value.get("event")  # Timing
    if isinstance(events, list):
        return [r for e in events for r in date_ranges(e)]
    return []


def reference_target(value: Any) -> tuple[str | None, str] | None:
    """(type, id) of a relative reference; (None, url) for canonical or absolute ones, and
    for text whose part before the ``/`` is no R4 resource type (an extension's free text:
    it names nothing stored, and would not fit the type column)."""
    raw = value.get("reference") if isinstance(value, dict) else value
    if not isinstance(raw, str) or not raw or raw.startswith("#"):
        return None
    parts = raw.split("/")
    if len(parts) == 2 and "?" not in raw and ":" not in raw and parts[0] in resource_type_set():
        return parts[0], parts[1][:MAX_TEXT]
    if len(parts) >= 4 and parts[-2] == "_history" and parts[-4] in resource_type_set():
        return parts[-4], parts[-3][:MAX_TEXT]
    return None, raw[:MAX_TEXT]


def quantity(value: Any) -> tuple[float, str | None, str | None] | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value), None, None
    if isinstance(value, dict) and isinstance(value.get("value"), int | float):
        code = value.get("code") or value.get("unit")
        return float(value["value"]), _clip(value.get("system")), _clip(code)
    return None
