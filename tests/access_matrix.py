"""The access matrix: for every route, what each kind of caller gets.

One row per route ("METHOD /path"); one column per caller. Reviewed like code: adding a
route means adding its row here, and a change of who may call it shows up in the diff.

Outcomes:
- ALLOW  the caller reaches the function (2xx/3xx, or a 4xx about the payload: 400/409/422)
- LOGIN  not authenticated: 401 (API) or a redirect to /login (pages)
- DENY   403
- HIDDEN 404: the row exists but is not visible to this caller
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

Outcome = Literal["ALLOW", "LOGIN", "DENY", "HIDDEN"]
ALLOW: Final = "ALLOW"
LOGIN: Final = "LOGIN"
DENY: Final = "DENY"
HIDDEN: Final = "HIDDEN"

# Callers: anonymous, each demo role, a doctor of another township (no relationship with
# the scenario's patient), and a member institution's system (client credentials).
CALLERS: Final = (
    "anonymous",
    "admin",
    "coordinator",
    "doctor",
    "specialist",
    "reader",
    "family_doctor",
    "resident",
    "commission",
    "other_doctor",
    "system",
)


@dataclass(frozen=True)
class Row:
    default: Outcome
    overrides: dict[str, Outcome] = field(default_factory=dict)
    # Path parameters for this route when the shared SAMPLES do not fit.
    params: dict[str, str] = field(default_factory=dict)

    def at(self, **params: str) -> Row:
        return Row(self.default, self.overrides, params)

    def expected(self, caller: str) -> Outcome:
        return self.overrides.get(caller, self.default)


def public() -> Row:
    return Row(ALLOW)


def signed_in() -> Row:
    return Row(ALLOW, {"anonymous": LOGIN})


def people() -> Row:
    """Pages are for people; a member system's token gets 403."""
    return Row(ALLOW, {"anonymous": LOGIN, "system": DENY})


def only(*callers: str, otherwise: Outcome = DENY) -> Row:
    return Row(otherwise, {"anonymous": LOGIN, **dict.fromkeys(callers, ALLOW)})


STAFF: Final = (
    "admin",
    "coordinator",
    "doctor",
    "specialist",
    "reader",
    "family_doctor",
    "commission",
    "other_doctor",
)

# Shared sample values for path parameters: rows of the demo consortium.
SAMPLES: Final[dict[str, str]] = {
    "locale": "en",
    "consortium_id": "county",
    "institution_id": "township-01",
    "department_id": "township-01:02",
    "practitioner_id": "pr-00104",
    "role_id": "prr-00104",
    "action": "deactivate",
    "person_id": "p00000123",  # not the demo resident (p00000010)
    "review_id": "1",
}


def _registry() -> dict[str, Row]:
    """Reference data: anyone signed in reads it; admins of the consortium edit it."""
    rows: dict[str, Row] = {}
    api = {
        "consortia": "{consortium_id}",
        "institutions": "{institution_id}",
        "departments": "{department_id}",
        "practitioners": "{practitioner_id}",
        "practitioner-roles": "{role_id}",
    }
    for collection, item in api.items():
        base = f"/api/registry/{collection}"
        rows[f"GET {base}"] = signed_in()
        rows[f"GET {base}/{item}"] = signed_in()
        rows[f"POST {base}"] = only("admin")
        rows[f"PATCH {base}/{item}"] = only("admin")
        rows[f"POST {base}/{item}/{{action}}"] = only("admin")
    fhir_ids = {
        "Organization": "township-01",
        "Location": "township-01",
        "HealthcareService": "county-hospital.emergency-centre.stroke",
        "Practitioner": "pr-00001",
        "PractitionerRole": "prr-00001",
    }
    for resource, sample in fhir_ids.items():
        rows[f"GET /fhir/{resource}"] = signed_in()
        rows[f"POST /fhir/{resource}/_search"] = signed_in()
        rows[f"GET /fhir/{resource}/{{resource_id}}"] = signed_in().at(resource_id=sample)
    for page in (
        "/registry",
        "/registry/consortia",
        "/registry/institutions/{institution_id}",
        "/registry/departments/{department_id}",
        "/registry/practitioners/{practitioner_id}",
    ):
        rows[f"GET {page}"] = signed_in()
    rows["GET /registry/institutions/new"] = only("admin")
    for form in (
        "/registry/institutions",
        "/registry/institutions/{institution_id}",
        "/registry/institutions/{institution_id}/departments",
        "/registry/institutions/{institution_id}/practitioners",
        "/registry/institutions/{institution_id}/{action}",
        "/registry/departments/{department_id}",
        "/registry/departments/{department_id}/{action}",
        "/registry/practitioners/{practitioner_id}",
        "/registry/practitioners/{practitioner_id}/roles",
        "/registry/practitioners/{practitioner_id}/{action}",
        "/registry/roles/{role_id}/{action}",
        "/registry/consortia",
        "/registry/consortia/{consortium_id}",
        "/registry/consortia/{consortium_id}/{action}",
    ):
        rows[f"POST {form}"] = only("admin")
    return rows


REGISTRY: Final = _registry()

# Identification (search, match, register, the patient card's demographics) is open to
# clinical staff of every member; clinical data needs a basis (see the records rows).
IDENTIFIERS: Final = (
    "admin",
    "coordinator",
    "doctor",
    "specialist",
    "reader",
    "family_doctor",
    "other_doctor",
    "system",
)
STEWARDS: Final = ("admin", "coordinator")  # merge, unmerge, review decisions
CONSENT_TAKERS: Final = (
    "admin",
    "coordinator",
    "doctor",
    "specialist",
    "family_doctor",
    "other_doctor",
)
EMERGENCY: Final = ("doctor", "specialist", "family_doctor", "other_doctor")

PATIENTS: Final[dict[str, Row]] = {
    "POST /api/patients/records": only(*IDENTIFIERS),
    "POST /api/patients/merges": only(*STEWARDS),
    "POST /api/patients/unmerges": only(*STEWARDS),
    "GET /api/patients/reviews": only(*STEWARDS),
    "POST /api/patients/reviews/{review_id}/decision": only(*STEWARDS),
    "POST /api/patients/{person_id}/consent": only(*CONSENT_TAKERS, "resident"),
    "POST /api/patients/{person_id}/break-glass": only(*EMERGENCY),
    "POST /fhir/Patient/$match": only(*IDENTIFIERS),
    "GET /fhir/Patient": only(*IDENTIFIERS, "resident"),  # a resident's list holds only them
    "POST /fhir/Patient/_search": only(*IDENTIFIERS, "resident"),
    "GET /fhir/Patient/{person_id}": Row(
        ALLOW, {"anonymous": LOGIN, "resident": HIDDEN, "commission": DENY}
    ),
    "GET /patients": only(*IDENTIFIERS),
    "GET /patients/{person_id}": only(*IDENTIFIERS),
    "POST /patients/{person_id}/consent": only(*CONSENT_TAKERS),
    # A resident's own consent and access log (the person their account is linked to).
    "GET /me/consent": only("resident"),
    "GET /me/record": only("resident"),  # a redirect to the resident's own timeline
    "POST /me/consent": only("resident"),
    "POST /patients/{person_id}/break-glass": only(*EMERGENCY),
    "GET /patients/reviews": only(*STEWARDS),
    "GET /patients/reviews/{review_id}": only(*STEWARDS),
    "POST /patients/reviews/{review_id}": only(*STEWARDS),
}

# The shared record. The scenario (test_matrix.py) has the county hospital's own system
# record a visit and a blood pressure for the sample patient: county-hospital staff and
# its system have a care relationship; township doctors, residents other than the
# patient, administrators and the commission do not.
TREATING: Final = ("coordinator", "specialist", "reader", "system")
WRITERS: Final = (
    "coordinator",
    "doctor",
    "specialist",
    "reader",
    "family_doctor",
    "other_doctor",
    "system",
)


def treating_only() -> Row:
    return Row(DENY, {"anonymous": LOGIN, **dict.fromkeys(TREATING, ALLOW)})


RECORDS: Final[dict[str, Row]] = {
    "GET /fhir/metadata": public(),
    "GET /fhir/{resource_type}/{resource_id}": treating_only().at(
        resource_type="Observation", resource_id="@observation"
    ),
    "GET /fhir/{resource_type}/{resource_id}/_history": treating_only().at(
        resource_type="Observation", resource_id="@observation"
    ),
    "GET /fhir/{resource_type}/{resource_id}/_history/{version}": treating_only().at(
        resource_type="Observation", resource_id="@observation", version="1"
    ),
    "PUT /fhir/{resource_type}/{resource_id}": only(*WRITERS).at(
        resource_type="Observation", resource_id="@observation"
    ),
    "PATCH /fhir/{resource_type}/{resource_id}": only(*WRITERS).at(
        resource_type="Observation", resource_id="@observation"
    ),
    "DELETE /fhir/{resource_type}/{resource_id}": treating_only().at(
        resource_type="Observation", resource_id="@observation"
    ),
    "GET /fhir/{resource_type}": signed_in().at(resource_type="Observation"),
    "POST /fhir/{resource_type}/_search": signed_in().at(resource_type="Observation"),
    "GET /fhir/{resource_type}/_history": signed_in().at(resource_type="Observation"),
    "POST /fhir/{resource_type}": only(*WRITERS).at(resource_type="Observation"),
    "PUT /fhir/{resource_type}": only(*WRITERS).at(resource_type="Observation"),
    "DELETE /fhir/{resource_type}": only(*WRITERS).at(resource_type="Observation"),
    "POST /fhir": only(*WRITERS),
    # Without ?patient= only the administrator reads the whole log.
    "GET /fhir/AuditEvent": only("admin"),
    "POST /fhir/AuditEvent/_search": only("admin"),
    "GET /fhir/Patient/{patient_id}/$everything": treating_only().at(patient_id="p00000123"),
}

# Two-way referral. The scenario: township-01's doctor referred a patient up to the county
# hospital, whose referral office accepted it and booked a slot. The sender side is
# township-01 (doctor, family doctor), the receiving side the county hospital
# (coordinator, specialist, its system); a doctor of another township sees nothing.
REFERRERS: Final = (
    "coordinator",
    "doctor",
    "specialist",
    "family_doctor",
    "other_doctor",
    "system",
)
SENDER: Final = ("doctor", "family_doctor")
RECEIVER: Final = ("coordinator", "specialist", "system")


def either_side() -> Row:
    """Both sides see it; the other township gets 404; non-referring roles 403."""
    return Row(
        DENY,
        {"anonymous": LOGIN, "other_doctor": HIDDEN, **dict.fromkeys((*SENDER, *RECEIVER), ALLOW)},
    )


def receiver_acts() -> Row:
    """Only the receiving side may act; the sender gets 403, the other township 404."""
    return Row(DENY, {"anonymous": LOGIN, "other_doctor": HIDDEN, **dict.fromkeys(RECEIVER, ALLOW)})


REFERRALS: Final[dict[str, Row]] = {
    "POST /api/referrals": only(*REFERRERS),
    "GET /api/referrals": only(*REFERRERS),
    "GET /api/referrals/{referral_id}": either_side().at(referral_id="@referral"),
    # The scenario's referral has no follow-up; the empty body is refused (422) first.
    "GET /api/referrals/follow-ups": only(*REFERRERS),
    "POST /api/referrals/{referral_id}/follow-up": only(*REFERRERS).at(referral_id="@referral"),
    "POST /api/referrals/{referral_id}/{event}": receiver_acts().at(
        referral_id="@referral", event="arrive"
    ),
    "GET /fhir/ServiceRequest": only(*REFERRERS),
    "POST /fhir/ServiceRequest/_search": only(*REFERRERS),
    "GET /fhir/ServiceRequest/{referral_id}": either_side().at(referral_id="@referral"),
    "GET /fhir/Task": only(*REFERRERS),
    "POST /fhir/Task/_search": only(*REFERRERS),
    "GET /fhir/Task/{referral_id}": either_side().at(referral_id="@referral"),
    # Without If-Match both sides get 412 before the side is checked (the body is empty);
    # the named leak tests cover a sender changing the receiver's Task.
    "PUT /fhir/Task/{referral_id}": either_side().at(referral_id="@referral"),
    "PATCH /fhir/Task/{referral_id}": either_side().at(referral_id="@referral"),
    "GET /referrals": only(*REFERRERS),
    "GET /referrals/rows": only(*REFERRERS),
    "GET /referrals/mine": only(*REFERRERS),
    "GET /referrals/patients": only(*REFERRERS),
    "GET /referrals/recommend": only(*REFERRERS),
    "GET /referrals/attachments": only(*REFERRERS),
    "GET /referrals/new": only(*REFERRERS),
    "POST /referrals/new": only(*REFERRERS),
    "GET /referrals/{referral_id}": either_side().at(referral_id="@referral"),
    "POST /referrals/{referral_id}/follow-up": either_side().at(referral_id="@referral"),
    "POST /referrals/{referral_id}/{event}": receiver_acts().at(
        referral_id="@referral", event="arrive"
    ),
    "GET /api/care-levels/catalogue": Row(ALLOW, {"anonymous": LOGIN, "resident": DENY}),
    "PUT /api/care-levels/catalogue": only("admin"),
    "POST /api/care-levels/recommend": only(*REFERRERS),
    "GET /api/care-levels/emergency/{pathway}": only(*REFERRERS).at(pathway="stroke"),
    "GET /care-levels": only("admin"),
    "POST /care-levels": only("admin"),
    "POST /api/scheduling/days": only("admin", "coordinator"),
    "GET /api/scheduling/slots": only(*REFERRERS),
    "GET /fhir/Slot": only(*REFERRERS),
    "POST /fhir/Slot/_search": only(*REFERRERS),
    "GET /fhir/Slot/{slot_id}": only(*REFERRERS).at(slot_id="@slot"),
    "GET /fhir/Appointment": only(*REFERRERS),
    "POST /fhir/Appointment/_search": only(*REFERRERS),
    "GET /fhir/Appointment/{appointment_id}": either_side().at(appointment_id="@appointment"),
    "GET /scheduling": only("admin", "coordinator"),
    "POST /scheduling": only("admin", "coordinator"),
}

MATRIX: Final[dict[str, Row]] = {
    # Foundation
    "GET /health": public(),
    "GET /metrics": public(),
    "GET /login": public(),
    # Without the form's CSRF token nobody gets in, not even with the right password.
    "POST /login": Row(DENY),
    "GET /lang/{locale}": public(),
    "POST /api/auth/token": public(),
    "GET /api/auth/me": signed_in(),
    "GET /": people(),
    "POST /logout": people(),
    "POST /switch-role": people(),
    "GET /audit": only("admin"),
    "GET /api/audit/verify": only("admin"),
    **REGISTRY,
    **PATIENTS,
    **RECORDS,
    **REFERRALS,
    # HL7 v2 inbound (records/hl7): member systems only; a person's token is refused.
    "POST /api/hl7v2": only("system"),
    # Patient timeline: clinicians, the referral office and residents (own record only),
    # each with a basis for this patient (the scenario: the county hospital's staff).
    "GET /patients/{person_id}/timeline": Row(
        DENY, {"anonymous": LOGIN, "coordinator": ALLOW, "specialist": ALLOW, "reader": ALLOW}
    ),
    # Indicators (indicators/): aggregates for the commission and admins; definitions and
    # the settlement import for admins. Unknown ids are 404 for those who may look.
    "GET /indicators": only("admin", "commission"),
    "GET /indicators/spectrum": only("admin", "commission"),
    "GET /indicators/{indicator_id}": Row(
        DENY, {"anonymous": LOGIN, "admin": HIDDEN, "commission": HIDDEN}
    ),
    "GET /indicators/{indicator_id}/{level}/{key}": only("admin", "commission"),
    "GET /indicators/definitions": only("admin"),
    "GET /indicators/definitions/{indicator_id}": Row(DENY, {"anonymous": LOGIN, "admin": HIDDEN}),
    "POST /indicators/definitions/{indicator_id}": Row(DENY, {"anonymous": LOGIN, "admin": HIDDEN}),
    "GET /indicators/settlements": only("admin"),
    "POST /indicators/settlements": only("admin"),
    "GET /indicators/settlements/{import_id}": Row(DENY, {"anonymous": LOGIN, "admin": HIDDEN}),
    "POST /indicators/settlements/{import_id}/accept": Row(
        DENY, {"anonymous": LOGIN, "admin": HIDDEN}
    ),
    "POST /indicators/settlements/{import_id}/discard": Row(
        DENY, {"anonymous": LOGIN, "admin": HIDDEN}
    ),
    "GET /api/indicators": only("admin", "commission"),
    "PUT /api/indicators/definitions/{indicator_id}": only("admin"),
}
