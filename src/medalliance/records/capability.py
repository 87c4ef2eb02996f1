"""The CapabilityStatement: exactly what this server supports, generated from the same
search parameter registry the indexes are built from."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from medalliance import __version__
from medalliance.kit.fhir import FHIR_VERSION
from medalliance.records.links import HOMES
from medalliance.records.searchparams import all_resource_types, params_for

INTERACTIONS = (
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
)
DEEP_TYPES = (
    "Encounter", "Condition", "Observation", "DiagnosticReport", "ImagingStudy", "Procedure",
    "MedicationRequest", "MedicationStatement", "AllergyIntolerance", "Immunization", "CarePlan",
    "CareTeam", "DocumentReference", "Composition",
)  # fmt: skip


@lru_cache
def capability_statement() -> dict[str, Any]:
    resources = [_resource(t) for t in all_resource_types() if t not in HOMES]
    resources.append(
        {
            "type": "AuditEvent",
            "interaction": [{"code": "search-type"}],
            "searchParam": [
                {"name": n, "type": t}
                for n, t in (("patient", "reference"), ("agent", "string"), ("date", "date"))
            ],
        }
    )
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-23",
        "kind": "instance",
        "software": {"name": "MedAlliance", "version": __version__},
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "description": "OAuth2 bearer tokens (POST /api/auth/token); "
                    "member systems use client credentials"
                },
                "interaction": [{"code": "transaction"}, {"code": "batch"}],
                "resource": resources,
                "operation": [
                    {
                        "name": "everything",
                        "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                    }
                ],
            }
        ],
    }


def _resource(resource_type: str) -> dict[str, Any]:
    params = params_for(resource_type)
    search = [{"name": p.code, "type": p.type} for p in params.values() if p.code != "_lastUpdated"]
    search.append({"name": "_lastUpdated", "type": "date"})
    refs = sorted(f"{resource_type}:{p.code}" for p in params.values() if p.type == "reference")
    return {
        "type": resource_type,
        "interaction": [{"code": c} for c in INTERACTIONS],
        "versioning": "versioned-update",
        "readHistory": True,
        "updateCreate": True,
        "conditionalCreate": True,
        "conditionalUpdate": True,
        "conditionalDelete": "not-supported",
        "searchInclude": refs,
        "searchRevInclude": refs,
        "searchParam": sorted(search, key=lambda p: p["name"]),
    }
