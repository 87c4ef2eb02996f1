"""Required code bindings (R4 terminologies 4.1.5): an element of type ``code`` bound with
strength *required* holds one of its value set's codes, or the resource is invalid.

The pydantic models check structure only: ``"status": "bogus"`` passed them, and the
store, indicators and referral rules then met a status no FHIR client can mean. Bindings
and codes come from the official package (``StructureDefinition-<type>.json`` and the
value sets' expansions), read once per resource type.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from medalliance.config import get_settings
from medalliance.records import structure

_LOADING = threading.Lock()
_SHOWN_CODES = 12  # an error lists this many of the allowed codes


@dataclass(frozen=True)
class RequiredCode:
    """An element path below the resource (``("statusHistory", "status")``) and the codes
    its required value set allows."""

    path: tuple[str, ...]
    value_set: str
    codes: frozenset[str]

    @property
    def expression(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True)
class CodeNotAllowed:
    expression: str  # e.g. Encounter.statusHistory.status
    value: object
    binding: RequiredCode

    def message(self) -> str:
        allowed = sorted(self.binding.codes)
        shown = ", ".join(allowed[:_SHOWN_CODES]) + (", …" if len(allowed) > _SHOWN_CODES else "")
        return (
            f"{self.expression}: {self.value!r} is not a code of the required value set "
            f"{self.binding.value_set} ({shown})"
        )


def first_code_not_allowed(resource: dict[str, Any]) -> CodeNotAllowed | None:
    resource_type = str(resource.get("resourceType", ""))
    for binding in required_codes(resource_type):
        for value in _values(resource, binding.path):
            if not isinstance(value, str) or value not in binding.codes:
                return CodeNotAllowed(f"{resource_type}.{binding.expression}", value, binding)
    return None


def _values(node: Any, path: tuple[str, ...]) -> Iterator[Any]:
    """The values at ``path`` below ``node``, through lists (repeating elements)."""
    if isinstance(node, list):
        for item in node:
            yield from _values(item, path)
        return
    if not isinstance(node, dict):
        return
    if path[0] not in node:
        return
    value = node[path[0]]
    if len(path) == 1:
        yield from value if isinstance(value, list) else (value,)
    else:
        yield from _values(value, path[1:])


@cache
def required_codes(resource_type: str) -> tuple[RequiredCode, ...]:
    """The required ``code`` bindings of a resource type's own elements (not those inside
    data types, which the package defines elsewhere)."""
    found = []
    for element in structure.snapshot(resource_type):
        binding = element.get("binding") or {}
        types = [t.get("code") for t in element.get("type", ())]
        if binding.get("strength") != "required" or types != ["code"]:
            continue
        url = str(binding.get("valueSet", "")).split("|")[0]
        codes = _expansions().get(url)
        if codes:  # a value set the package does not expand cannot be checked here
            found.append(RequiredCode(tuple(element["path"].split(".")[1:]), url, codes))
    return tuple(found)


def _expansions() -> dict[str, frozenset[str]]:
    with _LOADING:
        return _load_expansions()


@cache
def _load_expansions() -> dict[str, frozenset[str]]:
    path = get_settings().fhir_package_dir / "Bundle-valueset-expansions.json"
    bundle = json.loads(path.read_text(encoding="utf-8"))
    expansions = {}
    for entry in bundle.get("entry", ()):
        value_set = entry.get("resource") or {}
        expansion = (
            value_set.get("expansion") if value_set.get("resourceType") == "ValueSet" else None
        )
        if expansion is not None and _complete(expansion):
            expansions[value_set["url"]] = frozenset(_codes(expansion.get("contains", ())))
    return expansions


def _complete(expansion: dict[str, Any]) -> bool:
    """Whether the package's expansion lists every code (large ones, e.g. SNOMED CT based,
    are cut short: a code missing from them may still be valid)."""
    limited = any(p.get("name") == "limitedExpansion" for p in expansion.get("parameter", ()))
    listed = sum(1 for _ in _codes(expansion.get("contains", ()), abstract=True))
    return not limited and expansion.get("total", listed) == listed


def _codes(contains: Any, *, abstract: bool = False) -> Iterator[str]:
    """Codes of an expansion, nested ones included (an abstract heading has no code)."""
    for item in contains:
        if "code" in item and (abstract or not item.get("abstract")):
            yield item["code"]
        yield from _codes(item.get("contains", ()), abstract=abstract)


def warm(resource_types: Any) -> None:
    for resource_type in resource_types:
        required_codes(resource_type)
