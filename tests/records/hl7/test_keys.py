"""Visit and order numbers identify one patient's resources at the member: a number reused
for another patient is refused, and results are found again by what they are."""

from __future__ import annotations

import json
from typing import Any

import pytest
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


class TestResultKeys:
    def test_a_correction_listing_the_tests_in_another_order_updates_the_same_results(
        self, send: Send, db: Session
    ) -> None:
        first = (
            "OBX|1|NM|WBC^白细胞^L||12.5|10*9/L|3.5-9.5|H|||P",
            "OBX|2|NM|PLT^血小板^L||1000|10*9/L|125-350|H|||P",
        )
        _accepted(send(oru("KEY-0101", results=first, order="ORD-CBC", status="P")))
        corrected = (
            "OBX|1|NM|PLT^血小板^L||1200|10*9/L|125-350|H|||F",
            "OBX|2|NM|WBC^白细胞^L||11.5|10*9/L|3.5-9.5|H|||C",
        )

        _accepted(send(oru("KEY-0102", results=corrected, order="ORD-CBC", status="C")))

        observations = _contents(db, "Observation")
        by_code = {o["code"]["coding"][0]["code"]: o for o in observations}
        assert len(observations) == 2
        assert by_code["WBC"]["valueQuantity"]["value"] == 11.5
        assert by_code["WBC"]["status"] == "corrected"
        assert by_code["PLT"]["valueQuantity"]["value"] == 1200
        [report] = _contents(db, "DiagnosticReport")
        assert len(report["result"]) == 2

    def test_sub_ids_and_repeats_of_one_test_stay_separate_results(
        self, send: Send, db: Session
    ) -> None:
        results = (
            "OBX|1|NM|GLU^血糖^L|0H|5.1|mmol/L||N|||F",
            "OBX|2|NM|GLU^血糖^L|2H|7.2|mmol/L||N|||F",
            "OBX|3|ST|NOTE^备注^L||空腹||||||F",
            "OBX|4|ST|NOTE^备注^L||复查||||||F",
        )
        _accepted(send(oru("KEY-0103", results=results, order="ORD-OGTT")))

        keys = sorted(o["identifier"][0]["value"] for o in _contents(db, "Observation"))
        assert keys == [
            "ORD-OGTT/GLU/0H",
            "ORD-OGTT/GLU/2H",
            "ORD-OGTT/NOTE",
            "ORD-OGTT/NOTE#2",
        ]


class TestIdentifiersWithSearchCharacters:
    @pytest.mark.parametrize(
        ("order", "stored"),
        [("FS,1", "FS,1"), ("FT\\E\\1", "FT\\1"), ("FT\\F\\2", "FT|2"), ("FT$3", "FT$3")],
    )
    def test_an_order_number_with_a_comma_backslash_bar_or_dollar_is_found_again(
        self, send: Send, db: Session, order: str, stored: str
    ) -> None:
        _accepted(send(oru("KEY-0201", order=order, visit="V,1")))
        _accepted(send(oru("KEY-0202", order=order, visit="V,1", status="C")))

        [report] = _contents(db, "DiagnosticReport")
        assert report["identifier"][0]["value"] == stored
        assert report["status"] == "corrected"
        assert len(_contents(db, "Observation")) == 4
        assert len(_contents(db, "Encounter")) == 1
