"""Validation at the boundary: structure with the fhir.resources R4B models (the closest
to R4 available), the required code bindings (``terminology``), plus the rules the store
itself relies on (type, id).

R4B differs from R4 for a handful of types; the models of R4B are used for every type
they know, and types R4B removed (e.g. EffectEvidenceSynthesis) only get the store's own
checks. The dict as sent is what is stored, never the model's re-serialisation.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from medalliance.errors import DomainError, ValidationFailed
from medalliance.records import terminology
from medalliance.records.searchparams import resource_type_set

ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
# R4B renamed or reshaped these elements; an R4 resource using them is valid R4.
_R4_ONLY_ELEMENTS: dict[str, frozenset[str]] = {}


class InvalidResource(DomainError):
    """Unparseable or structurally invalid FHIR (400, OperationOutcome with expression)."""

    status = 400
    code = "invalid"


@lru_cache(maxsize=256)
def _model(resource_type: str) -> Any | None:
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


def require_type(resource_type: str) -> str:
    if resource_type not in resource_type_set():
        raise DomainError(f"{resource_type!r} is not an R4 resource type", field="resourceType")
    return resource_type


def validate(resource: Any, *, expected_type: str | None = None) -> dict[str, Any]:
    """The resource if valid; otherwise a 400 naming the offending element."""
    if not isinstance(resource, dict):
        raise InvalidResource("the body must be a JSON object (a FHIR resource)")
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        raise InvalidResource("resourceType is missing", field="resourceType")
    require_type(resource_type)
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
    model = _model(resource_type)
    if model is not None:
        _validate_model(model, resource, resource_type)
    not_allowed = terminology.first_code_not_allowed(resource)
    if not_allowed is not None:
        raise InvalidResource(not_allowed.message(), field=not_allowed.expression)
    return resource


def _validate_model(model: Any, resource: dict[str, Any], resource_type: str) -> None:
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        error = exc.errors()[0]
        path = ".".join(str(p) for p in error.get("loc", ()) if not isinstance(p, int))
        expression = f"{resource_type}.{path}" if path else resource_type
        raise InvalidResource(
            f"{expression}: {error.get('msg', 'invalid')}", field=expression
        ) from None
    except (TypeError, ValueError) as exc:
        raise InvalidResource(f"{resource_type}: {exc}", field=resource_type) from None
    except RecursionError:  # JSON that parses, nested past the models' stack (extensions)
        raise InvalidResource(
            f"{resource_type}: the resource is nested too deeply", field=resource_type
        ) from None


__all__ = ["InvalidResource", "ValidationFailed", "require_type", "validate"]
