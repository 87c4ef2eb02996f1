"""The CapabilityStatement: exactly what this server supports, generated from the same
search parameter registry the indexes are built from."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from medalliance import __version__
from medalliance.kit.fhir import FHIR_VERSION
from medalliance.patients.search import SEARCH_PARAMS as PATIENT_SEARCH_PARAMS
from medalliance.records.links import HOMES
from medalliance.records.owned import READS as INCLUDED_OWNED
from medalliance.records.searchparams import (
    SearchParam,
    all_resource_types,
    params_for,
    reference_targets,
)
from medalliance.records.writes import NOT_STORED
from medalliance.referrals.interop import SEARCH_PARAMS as REFERRAL_SEARCH_PARAMS
from medalliance.scheduling.service import SEARCH_PARAMS as SCHEDULING_SEARCH_PARAMS

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


# Types the master patient index and the registry serve (their own routers, read and
# search only), with the parameters those routers read.
_TOKEN, _STRING, _DATE, _REF = "token", "string", "date", "reference"
OWNED: dict[str, tuple[tuple[str, str], ...]] = {
    "Patient": PATIENT_SEARCH_PARAMS,
    "Organization": (
        ("_id", _TOKEN), ("name", _STRING), ("type", _TOKEN), ("identifier", _TOKEN),
        ("partof", _REF), ("active", _TOKEN),
    ),
    "Location": (
        ("_id", _TOKEN), ("name", _STRING), ("type", _TOKEN), ("identifier", _TOKEN),
        ("partof", _REF), ("organization", _REF), ("active", _TOKEN),
    ),
    "HealthcareService": (
        ("_id", _TOKEN), ("organization", _REF), ("service-category", _TOKEN),
        ("service-type", _TOKEN), ("name", _STRING), ("active", _TOKEN),
    ),
    "Practitioner": (
        ("_id", _TOKEN), ("name", _STRING), ("identifier", _TOKEN), ("active", _TOKEN),
    ),
    "PractitionerRole": (
        ("_id", _TOKEN), ("practitioner", _REF), ("organization", _REF),
        ("specialty", _TOKEN), ("active", _TOKEN),
    ),
    # Views of the referral workflow and its appointment book.
    **REFERRAL_SEARCH_PARAMS,
    **SCHEDULING_SEARCH_PARAMS,
}  # fmt: skip
# Owned types a client may also change here: a Task moves its referral on.
OWNED_WRITES: dict[str, tuple[str, ...]] = {"Task": ("update", "patch")}
# Owned types read from one versioned row (a new meta.versionId at every change), which
# therefore answer a conditional read; the others' renderings change without a version.
OWNED_CONDITIONAL_READS = frozenset({"ServiceRequest", "Task"})
OWNED_DOCUMENTATION = {
    "Task": "PUT or PATCH (JSON Patch), with If-Match naming the current version (412 "
    "otherwise), sets Task.status, which moves the referral on as its workflow allows "
    "(409 otherwise); with a change of status, statusReason is its reason, an input "
    "Slot reference its booking and an output its outcome. Other elements are the "
    "referral's: a body changing one is refused (422 naming it); one a PUT leaves out is "
    "kept.",
}
# What $everything reads of the parameters its OperationDefinition defines.
EVERYTHING_PARAMETERS = (
    "Parameters: `_count`, `_since`, `_type` (Patient and the stored types), and `start` and "
    "`end` (care dates: a resource is included when its clinical date, or any part of its "
    "period, falls between them; resources without one are always included). The Patient "
    "heads the first page only. Any other parameter is ignored with a warning (an "
    "OperationOutcome entry), or refused (400) under `Prefer: handling=strict`."
)


MATCH_PARAMETERS = (
    "POST Patient/$match with a Parameters resource: `resource` (a Patient: name, and "
    "any of birthDate, gender, the resident ID number, a phone, an address), `count` and "
    "`onlyCertainMatches`; candidates come graded (match-grade extension) and scored."
)
BUNDLE_DOCUMENTATION = (
    "A document, message or collection Bundle is stored as a resource; a transaction or "
    "batch is processed by POST to the base, and is refused here (422), as are the kinds "
    "that answer a request."
)


def capability_statement(base_url: str) -> dict[str, Any]:
    """``base_url``: the FHIR base this installation answers at (``implementation.url``;
    it comes from the request, so it is not part of what is cached)."""
    statement = dict(_statement())
    statement["implementation"] = {
        "description": "MedAlliance: the consortium's shared record, master patient index "
        "and registry",
        "url": base_url,
    }
    return statement


@lru_cache
def _statement() -> dict[str, Any]:
    resources = [_resource(t) for t in _stored_types()]
    resources += [_owned(t, params) for t, params in OWNED.items()]
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
                        "documentation": EVERYTHING_PARAMETERS,
                    },
                    {
                        "name": "match",
                        "definition": "http://hl7.org/fhir/OperationDefinition/Patient-match",
                        "documentation": MATCH_PARAMETERS,
                    },
                ],
            }
        ],
    }


def _stored_types() -> list[str]:
    return [t for t in all_resource_types() if t not in HOMES and t not in NOT_STORED]


def _resource(resource_type: str) -> dict[str, Any]:
    params = params_for(resource_type)
    search = [{"name": p.code, "type": p.type} for p in params.values() if p.code != "_lastUpdated"]
    search.append({"name": "_lastUpdated", "type": "date"})
    documented = {"documentation": BUNDLE_DOCUMENTATION} if resource_type == "Bundle" else {}
    return {
        "type": resource_type,
        **documented,
        "interaction": [{"code": c} for c in INTERACTIONS],
        "versioning": "versioned-update",
        "readHistory": True,
        "conditionalRead": "full-support",  # If-None-Match and If-Modified-Since
        "updateCreate": True,
        "conditionalCreate": True,
        "conditionalUpdate": True,
        "conditionalDelete": "single",
        "searchInclude": _includes(resource_type),
        "searchRevInclude": _revincludes().get(resource_type, []),
        "searchParam": sorted(search, key=lambda p: p["name"]),
    }


def _owned(resource_type: str, params: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    owned: dict[str, Any] = {"type": resource_type}
    if resource_type in OWNED_DOCUMENTATION:
        owned["documentation"] = OWNED_DOCUMENTATION[resource_type]
    owned["interaction"] = [
        {"code": c} for c in ("read", "search-type", *OWNED_WRITES.get(resource_type, ()))
    ]
    conditional = resource_type in OWNED_CONDITIONAL_READS
    owned["conditionalRead"] = "full-support" if conditional else "not-supported"
    owned["searchParam"] = [{"name": n, "type": t} for n, t in params]
    return owned


def _includable(param: SearchParam) -> bool:
    """Whether ``_include`` can reach what the reference points at (no targets: any type):
    a stored resource, or a Patient, Practitioner, Organization or Location, which the
    MPI and the registry answer for."""
    targets = reference_targets(param)
    return not targets or any(t not in HOMES or t in INCLUDED_OWNED for t in targets)


def _includes(resource_type: str) -> list[str]:
    return sorted(
        f"{resource_type}:{p.code}"
        for p in params_for(resource_type).values()
        if p.type == "reference" and _includable(p)
    )


@lru_cache
def _revincludes() -> dict[str, list[str]]:
    """For each stored type, the stored ``Source:param`` references that can point at it."""
    found: dict[str, list[str]] = {}
    stored = _stored_types()
    for source in stored:
        for p in params_for(source).values():
            if p.type != "reference":
                continue
            for target in reference_targets(p) or stored:
                if target in stored:
                    found.setdefault(target, []).append(f"{source}:{p.code}")
    return {t: sorted(set(refs)) for t, refs in found.items()}
