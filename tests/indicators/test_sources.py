"""Source rows as the records service returns them become facts: a FHIR Encounter maps
to class, day, institution level, residence and diagnosis."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from medalliance.indicators import sources


@dataclass
class Stored:  # the shape of records.store.StoredResource that the adapter reads
    id: str
    patient_id: str | None
    institution_id: str | None
    raw: bytes
    deleted: bool = False
    last_updated: datetime = datetime(2026, 7, 1, tzinfo=UTC)
    pid: int = 1

    @property
    def content(self) -> dict[str, object]:
        return json.loads(self.raw)  # type: ignore[no-any-return]


def encounter(**fields: object) -> Stored:
    body = {
        "resourceType": "Encounter",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "period": {"start": "2026-07-03T09:30:00+08:00"},
        "serviceProvider": {"reference": "Organization/county-hospital"},
        "reasonCode": [{"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I63.9"}]}],
        **fields,
    }
    return Stored("enc-1", "p00000001", "county-hospital", json.dumps(body).encode())


class TestEncounterMapping:
    def test_an_inpatient_encounter_becomes_an_admission_fact(self, db: Session) -> None:
        fact = sources.encounter_input(sources.Context.of(db), encounter())
        assert fact is not None
        assert (fact.encounter_class, fact.institution_level, fact.icd10) == (
            "inpatient",
            "secondary",
            "I63.9",
        )
        assert (str(fact.day), fact.in_county, fact.resident) == ("2026-07-03", True, True)
        assert fact.township_code.startswith("510799")

    def test_an_encounter_without_class_is_skipped(self, db: Session) -> None:
        assert sources.encounter_input(sources.Context.of(db), encounter(**{"class": {}})) is None

    def test_an_unknown_patient_is_skipped(self, db: Session) -> None:
        stored = encounter()
        stored.patient_id = "nobody"
        assert sources.encounter_input(sources.Context.of(db), stored) is None
