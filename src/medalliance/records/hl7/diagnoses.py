"""DG1 (diagnoses of an ADT visit) to Conditions of the encounter, keyed by visit and code."""

from __future__ import annotations

from typing import Any

from medalliance.records.hl7 import datatypes, systems
from medalliance.records.hl7.enums import ErrorCode
from medalliance.records.hl7.er7 import Hl7Error, Segment

# DG1-6 diagnosis type: admitting and working diagnoses are provisional, final ones confirmed.
_VERIFICATION = {"A": "provisional", "W": "provisional", "F": "confirmed"}
_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
_VERIFICATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-ver-status"


def condition(
    dg1: Segment, *, visit: str, patient_id: str, institution_id: str, encounter_ref: str
) -> tuple[str, dict[str, Any]]:
    reps = dg1.repetitions(3)
    code = datatypes.codeable_concept(
        reps[0] if reps else None, local_system=systems.local_codes(institution_id)
    )
    if code is None:
        location = dg1.at(3)
        raise Hl7Error(
            f"{location} (diagnosis code) is required",
            code=ErrorCode.REQUIRED_FIELD_MISSING,
            location=location,
        )
    key = f"{visit}/{dg1.get(3)}"
    verification = _VERIFICATION.get(dg1.get(6).upper(), "provisional")
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "identifier": [{"system": systems.diagnosis(institution_id), "value": key}],
        "clinicalStatus": {"coding": [{"system": _CLINICAL, "code": "active"}]},
        "verificationStatus": {"coding": [{"system": _VERIFICATION_SYSTEM, "code": verification}]},
        "category": [
            {"coding": [{"system": systems.CONDITION_CATEGORY, "code": "encounter-diagnosis"}]}
        ],
        "code": code,
        "subject": {"reference": f"Patient/{patient_id}"},
        "encounter": {"reference": encounter_ref},
    }
    recorded = datatypes.fhir_datetime(dg1.get(5), dg1.at(5), "diagnosis date/time")
    if recorded:
        resource["recordedDate"] = recorded
    return key, resource
