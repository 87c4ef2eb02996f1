"""The FHIR R4 Patient of a golden person: identifiers of every member, names in characters
and pinyin, and Patient.link for merges (replaced-by / replaces) and open reviews (seealso)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from medalliance.patients import repository
from medalliance.patients.enums import (
    INSURANCE_CARD_SYSTEM,
    RESIDENT_ID_SYSTEM,
    mrn_system,
)
from medalliance.patients.models import LocalRecord, Person
from medalliance.patients.names import is_latin, surname_length

DIVISION_CODE_URL = "https://medalliance.example/fhir/StructureDefinition/division-code"
NAME_REPRESENTATION_URL = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation"


def patient_resource(db: Session, person: Person) -> dict[str, Any]:
    absorbed = repository.absorbed_ids(db, person.id) if person.merged_into_id is None else []
    people = [person, *repository.persons_by_ids(db, absorbed).values()]
    records = repository.local_records_of(db, [p.id for p in people])
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": person.id,
        "meta": {"lastUpdated": person.updated_at.isoformat()},
        "active": person.merged_into_id is None,
        "identifier": _identifiers(person, people[1:], records),
        "name": _names(person),
        "gender": person.sex,
    }
    if person.birth_date is not None:  # an unidentified patient's is not known yet
        resource["birthDate"] = person.birth_date.isoformat()
    if person.phone:
        resource["telecom"] = [{"system": "phone", "value": person.phone, "use": "mobile"}]
    if person.address or person.division_code:
        resource["address"] = [_address(person)]
    links = _links(db, person)
    if links:
        resource["link"] = links
    return resource


def _identifiers(person: Person, absorbed: list[Person], records: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()

    def add(system: str, value: str | None, entry: dict[str, Any]) -> None:
        if value and (system, value) not in seen:
            seen.add((system, value))
            found.append({**entry, "system": system, "value": value})

    add(RESIDENT_ID_SYSTEM, person.id_number, {"use": "official", "type": _type("NNCHN")})
    for other in absorbed:
        add(RESIDENT_ID_SYSTEM, other.id_number, {"use": "old", "type": _type("NNCHN")})
    add(INSURANCE_CARD_SYSTEM, person.insurance_number, {"type": _type("SN")})
    for other in absorbed:
        add(INSURANCE_CARD_SYSTEM, other.insurance_number, {"type": _type("SN")})
    for record in records:
        assert isinstance(record, LocalRecord)
        add(
            mrn_system(record.institution_id),
            record.mrn,
            {"use": "usual", "type": _type("MR"), "assigner": _org(record.institution_id)},
        )
        add(INSURANCE_CARD_SYSTEM, record.insurance_number, {"type": _type("SN")})
    return found


def _type(code: str) -> dict[str, Any]:
    return {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": code}]}


def _org(institution_id: str) -> dict[str, str]:
    return {"reference": f"Organization/{institution_id}"}


def _names(person: Person) -> list[dict[str, Any]]:
    family, _, given = person.pinyin.partition(" ")
    # A Latin name is not split: which word is the family name, the order does not say.
    surname_chars = len(person.name) if is_latin(person.name) else surname_length(person.name)
    return [
        {
            "use": "official",
            "text": person.name,
            "family": person.name[:surname_chars],
            "given": [person.name[surname_chars:]] if person.name[surname_chars:] else [],
        },
        {
            "extension": [{"url": NAME_REPRESENTATION_URL, "valueCode": "SYL"}],
            "text": person.pinyin,
            "family": family,
            "given": [given] if given else [],
        },
    ]


def _address(person: Person) -> dict[str, Any]:
    address: dict[str, Any] = {"text": person.address, "country": "CN"}
    if person.division_code:
        address["extension"] = [{"url": DIVISION_CODE_URL, "valueString": person.division_code}]
    return address


def _links(db: Session, person: Person) -> list[dict[str, Any]]:
    links: list[dict[str, Any]] = []
    if person.merged_into_id is not None:
        links.append(_link(person.merged_into_id, "replaced-by"))
    links += [_link(other, "replaces") for other in repository.directly_absorbed(db, person.id)]
    for review in repository.open_reviews_of(db, [person.id]):
        other = review.candidate_id if review.person_id == person.id else review.person_id
        links.append(_link(other, "seealso"))
    return links


def _link(person_id: str, kind: str) -> dict[str, Any]:
    return {"other": {"reference": f"Patient/{person_id}"}, "type": kind}
