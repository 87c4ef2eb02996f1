"""FHIR R4 Slot and Appointment views."""

from __future__ import annotations

from typing import Any, Final

from medalliance.scheduling.models import Appointment, Slot

DEPARTMENT_SYSTEM: Final = "https://medalliance.example/fhir/sid/department"
# The consortium's own code for the reserved referral pool (no national code exists).
RESERVED_CODE: Final = {
    "coding": [
        {
            "system": "https://medalliance.example/fhir/CodeSystem/slot-pool",
            "code": "consortium-referral",
            "display": "Reserved for consortium referrals",
        }
    ]
}


def slot(s: Slot) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Slot",
        "id": str(s.id),
        "meta": {"lastUpdated": s.created_at.isoformat()},
        "schedule": {"identifier": {"system": DEPARTMENT_SYSTEM, "value": s.department_id}},
        "status": s.status,
        "start": s.start_at.isoformat(),
        "end": s.end_at.isoformat(),
        "overbooked": False,
    }
    if s.reserved:
        resource["serviceCategory"] = [RESERVED_CODE]
        resource["comment"] = f"consortium booking opens {s.consortium_open_at.isoformat()}"
    if s.expert:
        resource["appointmentType"] = {"text": "expert"}
    return resource


def appointment(a: Appointment) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Appointment",
        "id": a.id,
        "meta": {"lastUpdated": a.updated_at.isoformat()},
        "status": a.status,
        "start": a.start_at.isoformat(),
        "end": a.end_at.isoformat(),
        "created": a.created_at.isoformat(),
        "slot": [{"reference": f"Slot/{a.slot_id}"}],
        "participant": [
            {"actor": {"reference": f"Patient/{a.patient_id}"}, "status": "accepted"},
            {"actor": {"reference": f"Organization/{a.institution_id}"}, "status": "accepted"},
        ],
    }
    if a.referral_id:
        resource["basedOn"] = [{"reference": f"ServiceRequest/{a.referral_id}"}]
    return resource
