"""Validation at the boundary: the JSON as R4 writes it (``shape``: element names, arrays,
primitives' JSON types, and the data types' invariants per-1, ref-1, txt-1), structure
with the fhir.resources R4B models, the required code bindings (``terminology``), plus the
rules the store itself relies on (type, id).

fhir.resources has no R4 models since its 7.0 (its R4 ones were pydantic 1), so R4B's, the
closest, are used for every type they know that R4B did not reshape. Types R4B removed
(e.g. EffectEvidenceSynthesis) or redesigned (Evidence, EvidenceVariable) get the R4 shape
and the store's checks only. The dict as sent is what is stored, never the model's
re-serialisation.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Final

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from medalliance.errors import DomainError, NotFound, ValidationFailed
from medalliance.records import shape, terminology
from medalliance.records.searchparams import resource_type_set

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


__all__ = ["InvalidResource", "UnsupportedType", "ValidationFailed", "require_type", "validate"]
