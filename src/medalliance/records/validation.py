"""Validation at the boundary: the JSON as R4 writes it (``shape``: element names, arrays,
primitives' JSON types, and the data types' invariants per-1, ref-1, txt-1), structure
with the fhir.resources R4B models, the required code bindings (``terminology``), plus the
rules the store itself relies on (type, id, a patient it can file the resource under).

fhir.resources has no R4 models since its 7.0 (its R4 ones were pydantic 1), so R4B's, the
closest, are used for every type they know that R4B did not reshape. Types R4B removed
(e.g. EffectEvidenceSynthesis) or redesigned (Evidence, EvidenceVariable) get the R4 shape
and the store's checks only. The dict as sent is what is stored, never the model's
re-serialisation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache, lru_cache
from typing import Any, Final

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from medalliance.errors import DomainError, NotFound, ValidationFailed
from medalliance.records import shape, terminology
from medalliance.records.indexing import reference_target
from medalliance.records.searchparams import params_for, resource_type_set

ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
# R4B redesigned these (R4B diff.html): the official R4 Evidence example fails its model.
_RESHAPED_IN_R4B: Final = frozenset({"Evidence", "EvidenceVariable"})


class InvalidResource(DomainError):
    """Unparseable or structurally invalid FHIR (400, OperationOutcome with expression)."""

    status = 400
    code = "invalid"


class UnsupportedType(NotFound):
    """A resource type the URL names that is none of R4's (R4 http.html: 404, "resource
    type not supported"). One in a body is an invalid body instead (400)."""

    code = "not-supported"
    issue = "not-supported"


@lru_cache(maxsize=256)
def _model(resource_type: str) -> Any | None:
    if resource_type in _RESHAPED_IN_R4B:
        return None
    try:
        return get_fhir_model_class(resource_type)
    except (ValueError, KeyError):
        return None


def warm() -> None:
    """Import every R4B model class before the first request needs it (called at startup):
    a type's first validation otherwise imports and builds its pydantic models, 20-160 ms
    per type, in the middle of a member system's request."""
    for resource_type in sorted(resource_type_set()):
        _model(resource_type)
    terminology.warm(resource_type_set())
    shape.warm()


def require_type(resource_type: str) -> str:
    if resource_type not in resource_type_set():
        raise UnsupportedType(
            f"{resource_type!r} is not a resource type of FHIR R4 (names are case-sensitive)",
            field="resourceType",
        )
    return resource_type


def validate(resource: Any, *, expected_type: str | None = None) -> dict[str, Any]:
    """The resource if valid; otherwise a 400 naming the offending element (a 404 for a
    type in the URL that R4 does not have)."""
    if expected_type is not None:
        require_type(expected_type)
    if not isinstance(resource, dict):
        raise InvalidResource("the body must be a JSON object (a FHIR resource)")
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        raise InvalidResource("resourceType is missing", field="resourceType")
    if resource_type not in resource_type_set():
        raise InvalidResource(f"{resource_type!r} is not an R4 resource type", field="resourceType")
    if expected_type and resource_type != expected_type:
        raise InvalidResource(
            f"resourceType {resource_type} does not match the URL ({expected_type})",
            field="resourceType",
        )
    rid = resource.get("id")
    if rid is not None and (not isinstance(rid, str) or not ID_PATTERN.match(rid)):
        raise InvalidResource(
            "id must be 1-64 characters of A-Z a-z 0-9 - .", field=f"{resource_type}.id"
        )
    # Before the models: they coerce what the shape refuses ("5" to 5) and fail with a
    # KeyError on a contained resource of an unknown type.
    _validate_shape(resource, resource_type)
    model = _model(resource_type)
    if model is not None:
        _validate_model(model, resource, resource_type)
    not_allowed = terminology.first_code_not_allowed(resource)
    if not_allowed is not None:
        raise InvalidResource(not_allowed.message(), field=not_allowed.expression)
    _refuse_contained_patient(resource, resource_type)
    return resource


def _validate_shape(resource: dict[str, Any], resource_type: str) -> None:
    try:
        shape.check(resource)
    except shape.ShapeError as error:
        expression = error.expression(resource_type)
        raise InvalidResource(f"{expression}: {error.message}", field=expression) from None
    except RecursionError:
        raise InvalidResource(
            f"{resource_type}: the resource is nested too deeply", field=resource_type
        ) from None


def _validate_model(model: Any, resource: dict[str, Any], resource_type: str) -> None:
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        # Element names were checked against R4 (shape): an R4B model's "extra" is an R4
        # element it lacks (Extension's _valueString), not an error.
        errors = [e for e in exc.errors() if e.get("type") != "extra_forbidden"]
        if not errors:
            return
        error = errors[0]
        path = ".".join(str(p) for p in error.get("loc", ()) if not isinstance(p, int))
        expression = f"{resource_type}.{path}" if path else resource_type
        raise InvalidResource(
            f"{expression}: {error.get('msg', 'invalid')}", field=expression
        ) from None
    except (TypeError, ValueError, KeyError) as exc:
        raise InvalidResource(f"{resource_type}: {exc}", field=resource_type) from None
    except RecursionError:  # JSON that parses, nested past the models' stack (extensions)
        raise InvalidResource(
            f"{resource_type}: the resource is nested too deeply", field=resource_type
        ) from None


# --- the patient the store files a resource under -----------------------------------------


def _refuse_contained_patient(resource: dict[str, Any], resource_type: str) -> None:
    """A resource whose patient is only a contained Patient would be filed under no
    patient (the store files by ``Patient/id`` of the master patient index): readable by
    anyone, unaudited, and in nobody's $everything."""
    contained = resource.get("contained")
    if not contained:
        return  # nearly every resource: nothing to look up
    patients = {
        c.get("id") for c in contained if isinstance(c, dict) and c.get("resourceType") == "Patient"
    }
    if not patients:
        return
    local, named = None, False
    for where, reference in _compartment_references(resource, resource_type):
        if reference.startswith("#"):
            local = (where, reference) if reference[1:] in patients else local
        else:
            target = reference_target(reference)
            named = named or (target is not None and target[0] == "Patient")
    if local is not None and not named:
        where, reference = local
        raise ValidationFailed(
            f"{where} refers to the contained Patient {reference}: this {resource_type} is "
            "filed in its patient's record, so it must refer to the patient as Patient/<id> "
            "of the master patient index (register the patient first)",
            field=where,
        )


def _compartment_references(
    resource: dict[str, Any], resource_type: str
) -> Iterator[tuple[str, str]]:
    for path in _compartment_paths(resource_type):
        for value in _values(resource, path):
            reference = value.get("reference") if isinstance(value, dict) else None
            if isinstance(reference, str):
                yield ".".join((resource_type, *path)), reference


@cache
def _compartment_paths(resource_type: str) -> tuple[tuple[str, ...], ...]:
    """The elements the store reads the patient from (``writes.patient_of``: the
    ``patient`` search parameter, else ``subject``), as paths below the resource."""
    params = params_for(resource_type)
    param = params.get("patient") or params.get("subject")
    if param is None:
        return ()
    paths = []
    for part in param.expression.split("|"):
        part = part.strip().strip("()")
        if part.startswith(resource_type + "."):
            path = part.split(".where(")[0].split(" as ")[0]
            paths.append(tuple(path.split(".")[1:]))
    return tuple(paths)


def _values(node: Any, path: tuple[str, ...]) -> Iterator[Any]:
    if isinstance(node, list):
        for item in node:
            yield from _values(item, path)
    elif isinstance(node, dict) and path and path[0] in node:
        value = node[path[0]]
        if len(path) > 1:
            yield from _values(value, path[1:])
        else:
            yield from value if isinstance(value, list) else (value,)


__all__ = ["InvalidResource", "UnsupportedType", "ValidationFailed", "require_type", "validate"]
