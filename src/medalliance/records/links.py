"""Where references to the master patient index and the registry resolve.

Patient, Organization, Practitioner (and the other registry types) are not stored here:
``Patient/x`` resolves to the MPI person (following merges), ``Organization/x`` to an
institution, and conditional references (``Practitioner?identifier=system|value``) are
looked up through those domains' services.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import parse_qsl

from sqlalchemy.orm import Session

from medalliance.errors import NotFound, ValidationFailed
from medalliance.patients import service as patients
from medalliance.registry import fhir_map, staff
from medalliance.registry import service as registry
from medalliance.registry.repository import InstitutionFilter, PractitionerFilter

# Types other domains own: never written into this store.
HOMES = {
    "Patient": "the master patient index (/fhir/Patient)",
    "Organization": "the registry (/fhir/Organization)",
    "Practitioner": "the registry (/fhir/Practitioner)",
    "PractitionerRole": "the registry (/fhir/PractitionerRole)",
    "Location": "the registry (/fhir/Location)",
    "HealthcareService": "the registry (/fhir/HealthcareService)",
    "AuditEvent": "the audit log (GET /fhir/AuditEvent; written by the platform only)",
    # Read and searched as views of their workflows: a copy written here would never show.
    "ServiceRequest": "the referral workflow (POST /api/referrals; read at /fhir/ServiceRequest)",
    "Task": "the referral workflow (PUT or PATCH /fhir/Task/{id} moves a referral on)",
    "Slot": "the referral appointment book (/api/scheduling; read at /fhir/Slot)",
    "Appointment": "the referral appointment book (/api/scheduling; read at /fhir/Appointment)",
}
RESOLVABLE = frozenset({"Patient", "Organization", "Practitioner"})


def person_id(db: Session, candidate: str) -> str | None:
    """The surviving golden id of a Patient id, or None when the MPI does not know it."""
    try:
        return patients.resolve_person_id(db, candidate)
    except NotFound:
        return None


def person_and_relationship(
    db: Session, candidate: str, institution_id: str, now: datetime
) -> tuple[str | None, bool | None]:
    """``person_id``, and whether that person has a live care relationship with the
    institution (None: not asked)."""
    try:
        return patients.resolve_person_and_relationship(db, candidate, institution_id, now)
    except NotFound:
        return None, None


def institution_id(db: Session, candidate: str) -> str | None:
    try:
        return registry.get_institution(db, candidate).id
    except NotFound:
        return None


def practitioner_id(db: Session, candidate: str) -> str | None:
    try:
        return staff.get_practitioner(db, candidate).id
    except NotFound:
        return None


def resolve_owned(db: Session, resource_type: str, resource_id: str) -> str | None:
    """The id a literal reference to an MPI/registry type resolves to (None: unknown)."""
    if resource_type == "Patient":
        return person_id(db, resource_id)
    if resource_type == "Organization":
        return institution_id(db, resource_id)
    if resource_type == "Practitioner":
        return practitioner_id(db, resource_id)
    return None


def identifier_matches(
    db: Session, resource_type: str, system: str | None, value: str
) -> list[str]:
    """Ids of MPI persons / institutions / practitioners carrying an identifier."""
    if resource_type == "Patient":
        return patients.identifier_person_ids(db, system or None, value)
    if resource_type == "Organization":
        if system and system != fhir_map.SYSTEMS["institution-code"]:
            return []
        found, _ = registry.find_institutions(
            db, InstitutionFilter(codes=(value,)), limit=2, offset=0
        )
        return [i.id for i in found]
    if resource_type == "Practitioner":
        if system and system != fhir_map.SYSTEMS["licence"]:
            return []
        people, _ = staff.search_practitioners(
            db, PractitionerFilter(licences=(value,)), limit=2, offset=0
        )
        return [p.id for p in people]
    return []


def conditional_owned(db: Session, resource_type: str, query: str, *, where: str) -> str:
    """Exactly one MPI/registry match for ``identifier=system|value`` (or ``_id=``)."""
    params = parse_qsl(query, keep_blank_values=True)
    if not params:
        raise ValidationFailed(f"{resource_type}?{query}: empty condition", field=where)
    matches: set[str] | None = None
    for key, value in params:
        if key == "identifier":
            system, _, code = value.rpartition("|")
            found = set(identifier_matches(db, resource_type, system or None, code))
        elif key == "_id":
            resolved = resolve_owned(db, resource_type, value)
            found = {resolved} if resolved else set()
        else:
            raise ValidationFailed(
                f"{resource_type}?{query}: only identifier and _id can find a "
                f"{resource_type} in {HOMES[resource_type]}",
                field=where,
            )
        matches = found if matches is None else matches & found
    return _one(resource_type, query, sorted(matches or set()), where)


def _one(resource_type: str, query: str, matches: list[str], where: str) -> str:
    if len(matches) != 1:
        what = "no" if not matches else f"{len(matches)}"
        raise ValidationFailed(
            f"conditional reference {resource_type}?{query} matched {what} resources "
            "(exactly one is required)",
            field=where,
        )
    return matches[0]
