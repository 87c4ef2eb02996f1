"""Resources the shared record refers to but other domains keep: the Patient in the
master patient index, the Practitioner, Organization and Location in the registry. Read
as their own /fhir/Type/id routes answer them (the reader's access and audit included),
for a search's ``_include``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from medalliance.auth.principal import Actor
from medalliance.errors import DomainError
from medalliance.patients import service as patients
from medalliance.records.store import StoredResource, dump
from medalliance.registry import fhir_map, staff
from medalliance.registry import service as registry

Reader = Callable[[Session, Actor, str], dict[str, Any]]


def _patient(db: Session, actor: Actor, person_id: str) -> dict[str, Any]:
    return patients.patient_resource(db, patients.read_patient(db, actor, person_id))


def _organization(db: Session, actor: Actor, institution_id: str) -> dict[str, Any]:
    return fhir_map.organization(registry.get_institution(db, institution_id))


def _location(db: Session, actor: Actor, institution_id: str) -> dict[str, Any]:
    return fhir_map.location(registry.get_institution(db, institution_id))


def _practitioner(db: Session, actor: Actor, practitioner_id: str) -> dict[str, Any]:
    return fhir_map.practitioner(staff.get_practitioner(db, practitioner_id))


READS: dict[str, Reader] = {
    "Patient": _patient,
    "Organization": _organization,
    "Location": _location,
    "Practitioner": _practitioner,
}


def included(
    db: Session, actor: Actor, refs: Sequence[tuple[str, str]], *, now: datetime
) -> list[StoredResource]:
    """The referenced resources of these types the actor may read, once each; one that is
    unknown or closed to the actor is left out, as an unreadable stored one is."""
    found: list[StoredResource] = []
    for resource_type, resource_id in dict.fromkeys(refs):
        read = READS.get(resource_type)
        if read is None:
            continue
        try:
            resource = read(db, actor, resource_id)
        except DomainError:
            continue
        found.append(_stored(resource, now))
    return found


def _stored(resource: dict[str, Any], now: datetime) -> StoredResource:
    meta = resource.get("meta") or {}
    updated = meta.get("lastUpdated")
    return StoredResource(
        resource_type=resource["resourceType"],
        id=resource["id"],
        version=int(meta.get("versionId", 1)),
        last_updated=datetime.fromisoformat(updated) if updated else now,
        patient_id=resource["id"] if resource["resourceType"] == "Patient" else None,
        institution_id=None,
        raw=dump(resource),
    )
