"""Visit and order numbers identify one patient's resources at the member: a number reused
for another patient is refused, and results are found again by what they are."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from medalliance.records.models import FhirResource
from records.hl7.conftest import Send
from records.hl7.hl7_samples import adt, oru, pid, resident_id, segment

OTHER = pid(
    mrn="XB-0001",
    id_number=resident_id("13112519800303002"),
    name="韩^乙",
    birth_date="19800303",
    sex="F",
)


def _contents(db: Session, resource_type: str) -> list[dict[str, Any]]:
    db.expire_all()
    rows = db.scalars(
        select(FhirResource.content).where(
            FhirResource.resource_type == resource_type,
            FhirResource.institution_id == "county-hospital",
        )
    ).all()
    return [json.loads(r) for r in rows]


def _count(db: Session) -> int:
    return int(db.scalar(select(func.count()).select_from(FhirResource)) or 0)


def _accepted(response: Any) -> None:
    assert segment(response.content, "MSA")[1] == "AA", response.text


class TestNumbersOfAnotherPatient:
    def test_a_visit_number_reused_for_another_patient_is_refused(
        self, send: Send, db: Session
    ) -> None:
        _accepted(send(adt("A01", "KEY-0001", visit="V-SHARED")))
        [before] = _contents(db, "Encounter")
        count = _count(db)

        response = send(adt("A03", "KEY-0002", visit="V-SHARED", patient=OTHER))

        msa, err = segment(response.content, "MSA"), segment(response.content, "ERR")
        assert msa[1] == "AE"
        assert err[2] == "PV1^1^19^1"
        assert err[3].startswith("205^")
        [after] = _contents(db, "Encounter")
        assert after["subject"] == before["subject"]
        assert after["status"] == "in-progress"
        assert _count(db) == count

    def test_an_order_number_reused_for_another_patient_is_refused(
        self, send: Send, db: Session
    ) -> None:
        _accepted(send(oru("KEY-0003", visit="V-A", order="ORD-SHARED")))
        reports = _contents(db, "DiagnosticReport")
        observations = _contents(db, "Observation")
        count = _count(db)

        response = send(oru("KEY-0004", visit="V-B", order="ORD-SHARED", patient=OTHER))

        msa, err = segment(response.content, "MSA"), segment(response.content, "ERR")
        assert msa[1] == "AE"
        assert err[2] == "OBR^1^3^1"
        assert err[3].startswith("205^")
        assert _contents(db, "DiagnosticReport") == reports
        assert _contents(db, "Observation") == observations
        assert _count(db) == count
