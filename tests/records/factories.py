"""Actors, persons and resources for the shared-record tests."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from medalliance.auth.enums import Role
from medalliance.auth.principal import Actor
from medalliance.config import get_settings
from medalliance.patients.models import Person
from medalliance.records import service
from medalliance.records.store import StoredResource

COUNTY = "county-hospital"
TOWNSHIP = "township-01"
COUNTY_HIS = Actor(
    user_id=None,
    username="county-his",
    role=Role.SYSTEM,
    institution_id=COUNTY,
    client_id="county-his",
)
TOWNSHIP_HIS = Actor(
    user_id=None,
    username="township-his",
    role=Role.SYSTEM,
    institution_id=TOWNSHIP,
    client_id="t-his",
)
TOWNSHIP_DOCTOR = Actor(
    user_id="u-doctor-t1", username="doctor", role=Role.DOCTOR, institution_id=TOWNSHIP
)
COUNTY_DOCTOR = Actor(
    user_id="u-doctor-c", username="cdoctor", role=Role.DOCTOR, institution_id=COUNTY
)
ADMIN = Actor(user_id="u-admin", username="admin", role=Role.ADMIN, institution_id=COUNTY)


def resident(person_id: str) -> Actor:
    return Actor(
        user_id="u-res",
        username="resident",
        role=Role.RESIDENT,
        institution_id=TOWNSHIP,
        person_id=person_id,
    )


def ensure_person(db: Session, person_id: str) -> str:
    if db.get(Person, person_id) is None:
        db.add(
            Person(
                id=person_id,
                name="测试",
                pinyin="ce shi",
                sex="female",
                birth_date=date(1970, 1, 1),
            )
        )
        db.flush()
    return person_id


def related_system(client: Any, db: Session, patient_id: str) -> dict[str, str]:
    """The county HIS's FHIR headers, after an encounter of the patient it records (the
    care relationship its writes of that record need)."""
    from helpers import system_bearer

    ensure_person(db, patient_id)
    headers = {**system_bearer(client), "Content-Type": "application/fhir+json"}
    visit = client.post("/fhir/Encounter", json=encounter(patient_id), headers=headers)
    assert visit.status_code == 201, visit.text
    return headers


def encounter(
    patient_id: str, *, institution: str = COUNTY, start: str = "2026-10-01T08:00:00Z"
) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "serviceProvider": {"reference": f"Organization/{institution}"},
        "period": {"start": start, "end": start},
    }


def observation(
    patient_id: str,
    encounter_id: str | None = None,
    *,
    code: str = "8867-4",
    when: str = "2026-10-01T08:05:00Z",
    value: float = 72,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": when,
        "valueQuantity": {
            "value": value,
            "unit": "/min",
            "system": "http://unitsofmeasure.org",
            "code": "/min",
        },
    }
    if encounter_id:
        resource["encounter"] = {"reference": f"Encounter/{encounter_id}"}
    return resource


def admitted(db: Session, patient_id: str, now: datetime, actor: Actor = COUNTY_HIS) -> str:
    """The member's own system records an encounter: the care relationship exists after."""
    ensure_person(db, patient_id)
    return service.create(
        db, actor, encounter(patient_id, institution=actor.institution_id or COUNTY), now=now
    ).id


def stored_unchecked(
    db: Session, resource: dict[str, Any], now: datetime, actor: Actor = COUNTY_HIS
) -> StoredResource:
    """A create stored past ``writes.commit_writes`` and its checks: data of an earlier
    release (e.g. a reference to a deleted resource, refused since)."""
    from medalliance.records import store, writes

    ctx = writes.WriteContext(actor, now)
    prepared = writes.prepare(db, ctx, resource, method="create")
    return store.persist_holding(db, [prepared], now)[0][0]


def example(name: str) -> dict[str, Any]:
    path = Path(get_settings().fhir_package_dir) / name
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded
