"""The official StructureDefinitions, read once: every concrete resource type's elements
(which are in its summary, which are mandatory, which codes are required) and the choice
elements. ``_summary`` and ``_elements`` choose the elements a search returns from these
(R4 search 3.1.1.5.8-9)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from medalliance.config import get_settings

# Always returned: what identifies the resource and its version.
_IDENTITY = ("resourceType", "id", "meta")


@dataclass(frozen=True)
class Element:
    name: str  # as in JSON; a choice without its type: "value" for value[x]
    choice: bool
    summary: bool
    mandatory: bool


@dataclass(frozen=True)
class Package:
    """What is kept of the package's StructureDefinitions (resources, data types, profiles)."""

    snapshots: dict[str, tuple[dict[str, Any], ...]]  # by concrete resource type
    choices: frozenset[str]  # names of the choice elements (value of value[x]), anywhere
    # By complex data type (Quantity, Period, Element ...): what JSON validation walks into.
    datatypes: dict[str, tuple[dict[str, Any], ...]]


# Concurrent first requests wait for one read instead of each reading the package.
_LOADING = threading.Lock()


def package() -> Package:
    with _LOADING:
        return _read_package()


@cache
def _read_package() -> Package:
    """One pass over the files (655, 39 MB of JSON: about a second): the search parameters
    need the types and choices, the summaries and required codes the types' elements."""
    snapshots: dict[str, tuple[dict[str, Any], ...]] = {}
    datatypes: dict[str, tuple[dict[str, Any], ...]] = {}
    choices: set[str] = set()
    for path in sorted(get_settings().fhir_package_dir.glob("StructureDefinition-*.json")):
        definition = json.loads(path.read_text(encoding="utf-8"))
        elements = tuple((definition.get("snapshot") or {}).get("element", ()))
        choices.update(
            e["path"].rsplit(".", 1)[-1][:-3] for e in elements if e["path"].endswith("[x]")
        )
        if (
            definition.get("kind") == "resource"
            and definition.get("derivation") == "specialization"
            and not definition.get("abstract")
        ):
            snapshots[definition["type"]] = elements
        elif (
            definition.get("kind") == "complex-type"
            and definition.get("derivation") != "constraint"
        ):
            datatypes[definition["type"]] = elements  # not the profiles (SimpleQuantity ...)
    return Package(snapshots, frozenset(choices), datatypes)


def snapshot(resource_type: str) -> tuple[dict[str, Any], ...]:
    """The elements of a resource type's official StructureDefinition (none for a name that
    is not a concrete resource type)."""
    return package().snapshots.get(resource_type, ())


@cache
def elements(resource_type: str) -> tuple[Element, ...]:
    found = []
    for element in snapshot(resource_type):
        parts = element["path"].split(".")
        if len(parts) != 2:
            continue
        name = parts[1]
        choice = name.endswith("[x]")
        found.append(
            Element(
                name=name.removesuffix("[x]"),
                choice=choice,
                summary=bool(element.get("isSummary")),
                mandatory=int(element.get("min", 0)) > 0,
            )
        )
    return tuple(found)


def summary(resource_type: str) -> tuple[str, ...]:
    """``_summary=true``: the elements marked summary, and the mandatory ones."""
    return _names(resource_type, lambda e: e.summary or e.mandatory)


def text_summary(resource_type: str) -> tuple[str, ...]:
    """``_summary=text``: the narrative and the mandatory elements."""
    return ("text", *_names(resource_type, lambda e: e.mandatory))


def data(resource_type: str) -> tuple[str, ...]:
    """``_summary=data``: everything but the narrative."""
    return _names(resource_type, lambda e: e.name != "text")


SUMMARIES: dict[str, Callable[[str], tuple[str, ...]]] = {
    "true": summary,
    "text": text_summary,
    "data": data,
}


def included_elements(summary_mode: str | None, resource_type: str) -> tuple[str, ...] | None:
    """What an included resource keeps: its own type's summary under ``_summary``; whole
    under ``_elements``, whose names are the searched type's."""
    return SUMMARIES[summary_mode](resource_type) if summary_mode else None


def with_mandatory(resource_type: str, asked: tuple[str, ...]) -> tuple[str, ...]:
    """``_elements``: the elements asked for and the mandatory ones (R4: a server SHOULD
    return those, so that the subset is still a valid resource)."""
    mandatory = _names(resource_type, lambda e: e.mandatory)
    return tuple(dict.fromkeys((*asked, *mandatory)))


@cache
def choices(resource_type: str) -> frozenset[str]:
    """The choice elements' names without their type ("value" of value[x]); asked for
    every entry of a subsetted page."""
    return frozenset(e.name for e in elements(resource_type) if e.choice)


def _names(resource_type: str, wanted: Callable[[Element], bool]) -> tuple[str, ...]:
    chosen = (e.name for e in elements(resource_type) if wanted(e))
    return tuple(dict.fromkeys((*_IDENTITY, *chosen)))


def keeps(name: str, kept: frozenset[str], choice_names: frozenset[str]) -> bool:
    """Whether a resource's JSON key is one of ``kept``: itself, a choice's typed form
    (valueQuantity for value), or a primitive's extension (_status for status)."""
    bare = name.removeprefix("_")
    if bare in kept:
        return True
    for stem in choice_names & kept:
        if bare.startswith(stem) and bare[len(stem) : len(stem) + 1].isupper():
            return True
    return False
