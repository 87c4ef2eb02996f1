"""FHIR R4 views of a referral: the order (ServiceRequest) and its fulfilment (Task)."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any, Final

from medalliance.kit.ids import new_id
from medalliance.referrals.enums import ReferralEvent, ReferralStatus
from medalliance.referrals.models import Referral
from medalliance.referrals.schemas import Outcome

S = ReferralStatus
ICD10_SYSTEM: Final = "http://hl7.org/fhir/sid/icd-10"
REASON_SYSTEM: Final = "https://medalliance.example/fhir/CodeSystem/referral-reason"
EPISODE_SYSTEM: Final = "https://medalliance.example/fhir/sid/care-episode"
# SNOMED CT 3457005 |Patient referral (procedure)|.
REFERRAL_CATEGORY: Final = {
    "coding": [
        {"system": "http://snomed.info/sct", "code": "3457005", "display": "Patient referral"}
    ]
}

# Task.status has no "scheduled": a booked referral is "ready" (businessStatus says why).
TASK_STATUS: Final[dict[str, str]] = {
    S.DRAFT: "draft",
    S.REQUESTED: "requested",
    S.RECEIVED: "received",
    S.ACCEPTED: "accepted",
    S.REJECTED: "rejected",
    S.SCHEDULED: "ready",
    S.IN_PROGRESS: "in-progress",
    S.COMPLETED: "completed",
    S.CANCELLED: "cancelled",
    S.FAILED: "failed",
}
FROM_TASK_STATUS: Final[dict[str, str]] = {v: k for k, v in TASK_STATUS.items()}
SERVICE_REQUEST_STATUS: Final[dict[str, str]] = {
    S.DRAFT: "draft",
    S.REQUESTED: "active",
    S.RECEIVED: "active",
    S.ACCEPTED: "active",
    S.SCHEDULED: "active",
    S.IN_PROGRESS: "active",
    S.COMPLETED: "completed",
    S.REJECTED: "revoked",
    S.CANCELLED: "revoked",
    S.FAILED: "revoked",
}
# The event a member system asks for by setting Task.status.
EVENT_FOR_TASK_STATUS: Final[dict[str, ReferralEvent]] = {
    "requested": ReferralEvent.SUBMIT,
    "received": ReferralEvent.RECEIVE,
    "accepted": ReferralEvent.ACCEPT,
    "rejected": ReferralEvent.REJECT,
    "ready": ReferralEvent.SCHEDULE,
    "in-progress": ReferralEvent.ARRIVE,
    "completed": ReferralEvent.COMPLETE,
    "cancelled": ReferralEvent.CANCEL,
    "failed": ReferralEvent.FAIL,
}
PRIORITY: Final = {"routine": "routine", "urgent": "urgent", "emergency": "stat"}


def _meta(r: Referral) -> dict[str, Any]:
    return {"versionId": str(r.version), "lastUpdated": r.updated_at.isoformat()}


def service_request(r: Referral) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": r.id,
        "meta": _meta(r),
        "identifier": [{"system": EPISODE_SYSTEM, "value": r.episode_id}],
        "requisition": {"system": EPISODE_SYSTEM, "value": r.episode_id},
        "status": SERVICE_REQUEST_STATUS[r.status],
        "intent": "order",
        "category": [REFERRAL_CATEGORY],
        "priority": PRIORITY[r.urgency],
        "code": {"text": f"referral-{r.direction}"},
        "subject": {"reference": f"Patient/{r.patient_id}", "display": r.patient_name},
        "authoredOn": (r.requested_at or r.created_at).isoformat(),
        "requester": {"reference": f"Organization/{r.from_institution_id}"},
        "performer": [{"reference": f"Organization/{r.to_institution_id}"}],
        "reasonCode": [
            {
                "coding": [{"system": REASON_SYSTEM, "code": r.reason_code}],
                "text": r.reason_text or r.reason_code,
            },
            *(
                {"coding": [{"system": ICD10_SYSTEM, "code": d["code"], "display": d["display"]}]}
                for d in r.diagnoses
            ),
        ],
    }
    if r.previous_referral_id:
        resource["basedOn"] = [{"reference": f"ServiceRequest/{r.previous_referral_id}"}]
    if r.attachments:
        resource["supportingInfo"] = [{"reference": ref} for ref in r.attachments]
    notes = [
        text
        for text in (
            r.history_summary,
            r.current_treatment,
            r.rehab_plan,
            r.medication_plan,
            r.follow_up_plan,
        )
        if text
    ]
    if notes:
        resource["note"] = [{"text": text} for text in notes]
    return resource


def task(r: Referral) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Task",
        "id": r.id,
        "meta": _meta(r),
        "basedOn": [{"reference": f"ServiceRequest/{r.id}"}],
        "status": TASK_STATUS[r.status],
        "businessStatus": {"text": r.status},
        "intent": "order",
        "priority": PRIORITY[r.urgency],
        "focus": {"reference": f"ServiceRequest/{r.id}"},
        "for": {"reference": f"Patient/{r.patient_id}"},
        "authoredOn": r.created_at.isoformat(),
        "lastModified": r.updated_at.isoformat(),
        "requester": {"reference": f"Organization/{r.from_institution_id}"},
        "owner": {"reference": f"Organization/{r.to_institution_id}"},
    }
    if r.status_reason:
        resource["statusReason"] = {"text": r.status_reason}
    if r.deadline_at:
        resource["restriction"] = {"period": {"end": r.deadline_at.isoformat()}}
    if r.appointment_id:
        resource["input"] = [
            {
                "type": {"text": "appointment"},
                "valueReference": {"reference": f"Appointment/{r.appointment_id}"},
            }
        ]
    if r.outcome_reference:
        resource["output"] = [
            {"type": {"text": "outcome"}, "valueReference": {"reference": r.outcome_reference}}
        ]
    return resource


_LOINC = {
    "consult-note": ("11488-4", "Consult note"),
    "discharge-summary": ("18842-5", "Discharge summary"),
}


def outcome_document(referral: Referral, outcome: Outcome, now: datetime) -> dict[str, Any]:
    """The closed loop's consult note or discharge summary as a DocumentReference."""
    code, display = _LOINC[outcome.kind]
    return {
        "resourceType": "DocumentReference",
        "id": new_id(),
        "status": "current",
        "type": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
        "subject": {"reference": f"Patient/{referral.patient_id}"},
        "date": now.isoformat(),
        "author": [{"reference": f"Organization/{referral.to_institution_id}"}],
        "custodian": {"reference": f"Organization/{referral.to_institution_id}"},
        "context": {"related": [{"reference": f"ServiceRequest/{referral.id}"}]},
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain; charset=utf-8",
                    "data": base64.b64encode(outcome.text.encode()).decode(),
                    "title": display,
                }
            }
        ],
    }
