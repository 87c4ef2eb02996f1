"""The official R4 search parameters, compiled once into per-type extractors.

Each expression is split on its top-level unions and the parts for one resource type kept.
Simple paths (``A.b.c``, ``(A.b as T)``, ``A.b.as(T)``, ``….where(resolve() is T)``), which
are ~96% of the definitions, run on a hand-written walker over the JSON; the rest go to
fhirpathpy. Composite and special parameters are not indexed (the CapabilityStatement
lists only what is).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, wraps
from typing import Any, TypeVar

import structlog
from fhirpathpy import compile as fhirpath_compile

from medalliance.config import get_settings
from medalliance.records import structure

log = structlog.get_logger(__name__)

INDEXED_TYPES = frozenset({"token", "string", "date", "reference", "quantity", "number", "uri"})
# Parameters answered from columns of the resource table rather than index rows.
COLUMN_PARAMS = frozenset({"_id", "_lastUpdated"})

_SIMPLE = re.compile(
    r"^\(?(?P<path>[A-Z]\w*(?:\.\w+)*)(?: as (?P<cast>\w+))?\)?"
    r"(?P<tail>(?:\.\w+)*?)(?:\.as\((?P<cast2>\w+)\))?"
    r"(?:\.where\(resolve\(\) is (?P<target>\w+)\))?$"
)

Extractor = Callable[[dict[str, Any]], list[Any]]
T = TypeVar("T")
# The definitions take seconds to load: concurrent first requests wait for one load
# instead of each parsing the whole package (lru_cache does not deduplicate them).
_LOADING = threading.RLock()


def _loaded_once(load: Callable[[], T]) -> Callable[[], T]:
    done: list[T] = []

    @wraps(load)
    def cached() -> T:
        if not done:
            with _LOADING:
                if not done:
                    done.append(load())
        return done[0]

    return cached


@dataclass(frozen=True)
class SearchParam:
    code: str
    type: str
    resource_type: str
    expression: str
    targets: tuple[str, ...]
    extract: Extractor
    # First elements the expression starts from (``value`` for ``Observation.value as
    # Quantity``); a resource without any of them has no value for it. None: always run.
    roots: frozenset[str] | None = None


def _split_union(expression: str) -> list[str]:
    """Top-level ``|`` parts (unions never sit inside parentheses in the R4 definitions)."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in expression:
        depth += char == "("
        depth -= char == ")"
        if char == "|" and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def _parts_for(expression: str, resource_type: str, base: list[str]) -> list[str]:
    parts = _split_union(expression)
    own = [p for p in parts if p.lstrip("(").split(".")[0].split(" ")[0] == resource_type]
    if own:
        return own
    generic = {"Resource", "DomainResource"} & set(base)
    if generic:
        # "Resource.meta.tag" applies to every type: re-root it.
        return [
            re.sub(r"^(\(?)(Resource|DomainResource)\b", rf"\1{resource_type}", p) for p in parts
        ]
    return []


Step = tuple[str, bool]  # element name, and whether it may be a choice ([x]) element
_MISSING = object()


def _choice_values(node: dict[str, Any], stem: str) -> list[Any]:
    """A choice element named without its type (``Observation.effective``): any form."""
    found: list[Any] = []
    for name, value in node.items():
        if name.startswith(stem) and len(name) > len(stem) and name[len(stem)].isupper():
            found.extend(value if isinstance(value, list) else (value,))
    return found


def _walk(nodes: list[Any], steps: list[Step]) -> list[Any]:
    # Runs ~15 times per stored resource: a plain loop, no generators; only names that
    # are choice elements somewhere in R4 pay for the scan of a node's keys.
    for name, choice in steps:
        children: list[Any] = []
        for node in nodes:
            if not isinstance(node, dict):
                continue
            value = node.get(name, _MISSING)
            if value is _MISSING:
                if choice:
                    children.extend(_choice_values(node, name))
            elif isinstance(value, list):
                children.extend(value)
            else:
                children.append(value)
        if not children:
            return children
        nodes = children
    return nodes


def _steps(names: list[str]) -> list[Step]:
    choices = choice_element_names()
    return [(name, name in choices) for name in names]


def _cast_key(step: str, cast: str) -> str:
    return step + cast[0].upper() + cast[1:]


def _fast_path(part: str) -> Extractor | None:
    match = _SIMPLE.match(part)
    if not match:
        return None
    steps = match["path"].split(".")[1:]
    cast = match["cast"] or match["cast2"]
    tail = [s for s in (match["tail"] or "").split(".") if s]
    if match["cast"] and match["cast2"]:
        return None
    if cast:
        if match["cast"] and tail:
            if not steps:
                return None
            steps = [*steps[:-1], _cast_key(steps[-1], cast), *tail]
        else:
            steps = steps + tail
            if not steps:
                return None
            steps = [*steps[:-1], _cast_key(steps[-1], cast)]
    else:
        steps = steps + tail
    target = match["target"]

    walk_steps = _steps(steps)

    def extract(resource: dict[str, Any]) -> list[Any]:
        found = _walk([resource], walk_steps)
        if target:
            found = [v for v in found if _reference_type(v) == target]
        return found

    return extract


def _reference_type(value: Any) -> str | None:
    if isinstance(value, dict) and isinstance(value.get("reference"), str):
        parts = value["reference"].split("?")[0].split("/")
        if len(parts) >= 2:
            return str(parts[-2])
        kind = value.get("type")
        return kind if isinstance(kind, str) else None
    return None


def _fhirpath(part: str) -> Extractor:
    try:
        compiled = fhirpath_compile(part)
    except Exception:  # an expression fhirpathpy cannot parse: index nothing, say so once
        log.warning("search_param_not_compiled", expression=part)
        return lambda _resource: []

    def extract(resource: dict[str, Any]) -> list[Any]:
        try:
            return list(compiled(resource, {}))
        except Exception:  # resolve() and friends need a server; an index miss, not a failure
            return []

    return extract


def compile_expression(expression: str, resource_type: str, base: list[str]) -> Extractor | None:
    parts = _parts_for(expression, resource_type, base)
    if not parts:
        return None
    extractors = [_fast_path(p) or _fhirpath(p) for p in parts]
    if len(extractors) == 1:
        return extractors[0]

    def union(resource: dict[str, Any]) -> list[Any]:
        return [value for extract in extractors for value in extract(resource)]

    return union


def _roots(expression: str, resource_type: str, base: list[str]) -> frozenset[str] | None:
    roots = set()
    for part in _parts_for(expression, resource_type, base):
        match = _SIMPLE.match(part)
        steps = match["path"].split(".")[1:] if match else []
        if not steps:
            return None  # fhirpathpy or a whole-resource expression: no cheap pre-check
        roots.add(steps[0])
    return frozenset(roots)


def element_stems(resource: dict[str, Any]) -> set[str]:
    """Top-level element names of a resource, choice elements also without their type
    (``effectiveDateTime`` is ``effective`` too), to compare with ``SearchParam.roots``."""
    stems: set[str] = set()
    for key in resource:
        stems.update(_key_stems(key))
    return stems


@lru_cache(maxsize=4096)
def _key_stems(key: str) -> tuple[str, ...]:
    # The same few dozen element names recur in every resource: 13 µs -> 2 µs a resource.
    return (key, *(key[:i] for i in range(1, len(key)) if key[i].isupper()))


@_loaded_once
def registry() -> dict[str, dict[str, SearchParam]]:
    """Parameters by resource type and code (``Resource`` ones copied into every type)."""
    path = get_settings().fhir_package_dir / "Bundle-searchParams.json"
    bundle = json.loads(path.read_text(encoding="utf-8"))
    definitions = [entry["resource"] for entry in bundle["entry"]]
    types = all_resource_types()
    params: dict[str, dict[str, SearchParam]] = {t: {} for t in types}
    for definition in definitions:
        kind, expression = definition["type"], definition.get("expression")
        if kind not in INDEXED_TYPES or not expression:
            continue
        bases = definition["base"]
        applies = types if {"Resource", "DomainResource"} & set(bases) else bases
        for resource_type in applies:
            if resource_type not in params:
                continue
            extract = compile_expression(expression, resource_type, bases)
            if extract is None:
                continue
            params[resource_type][definition["code"]] = SearchParam(
                code=definition["code"],
                type=kind,
                resource_type=resource_type,
                expression=expression,
                targets=tuple(definition.get("target", ())),
                extract=extract,
                roots=_roots(expression, resource_type, bases),
            )
    return params


@_loaded_once
def all_resource_types() -> tuple[str, ...]:
    """Every concrete R4 resource type."""
    return tuple(sorted(structure.package().snapshots))


def choice_element_names() -> frozenset[str]:
    """Every element name that is a choice (``value[x]``) anywhere."""
    return structure.package().choices


@_loaded_once
def resource_type_set() -> frozenset[str]:
    return frozenset(all_resource_types())


def params_for(resource_type: str) -> dict[str, SearchParam]:
    return registry().get(resource_type, {})


def warm() -> None:
    """Load the definitions before the first request needs them (called at startup)."""
    registry()
    resource_type_set()


_RESOLVES_TO = re.compile(r"\.where\(resolve\(\) is (\w+)\)\s*$")


def reference_targets(param: SearchParam) -> tuple[str, ...]:
    """The types a reference parameter can point at from its own resource type: a shared
    definition (``patient``: Patient, Group) narrows per type with ``where(resolve() is X)``
    (Observation's is ``Observation.subject.where(resolve() is Patient)``)."""
    narrowed: list[str] = []
    for part in (p.strip() for p in param.expression.split("|")):
        if not part.lstrip("(").startswith(f"{param.resource_type}."):
            continue
        match = _RESOLVES_TO.search(part)
        if match is None:
            return param.targets
        narrowed.append(match.group(1))
    return tuple(narrowed) or param.targets


def chain_target(param: SearchParam) -> str | None:
    """The type a chain through ``param`` searches when the client names none: its only
    target, or the one it is named after (``encounter``: Encounter, not EpisodeOfCare);
    None when that is ambiguous (``performer``, ``subject`` of a Condition)."""
    targets = reference_targets(param)
    if len(targets) == 1:
        return targets[0]
    named = param.code.capitalize()
    return named if named in targets else None
