"""Valid HL7 table values are accepted: result statuses (0085), abnormal flags (0078) and
administrative sex (0001)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from medalliance.patients.models import Person
from medalliance.records.models import FhirResource
from records.hl7.conftest import Send
from records.hl7.hl7_samples import ID_NUMBER, adt, oru, pid, segment


def _observations(db: Session) -> dict[str, dict[str, Any]]:
    db.expire_all()
    rows = db.scalars(
        select(FhirResource.content).where(FhirResource.resource_type == "Observation")
    ).all()
    found = [json.loads(r) for r in rows]
    return {o["code"]["coding"][0]["code"]: o for o in found if "code" in o}


class TestResultStatuses:
    def test_not_asked_and_order_detail_results_are_stored_without_a_value(
        self, send: Send, db: Session
    ) -> None:
        results = (
            "OBX|1|NM|GLU-N^血糖^L||5.6|mmol/L|3.9-6.1|N|||N",
            "OBX|2|ST|DESC-O^说明^L||见描述||||||O",
            "OBX|3|NM|GLU-F^血糖^L||5.6|mmol/L|3.9-6.1|N|||F",
        )
        response = send(oru("TAB-0001", results=results, order="ORD-TAB-1"))

        assert segment(response.content, "MSA")[1] == "AA", response.text
        found = _observations(db)
        assert found["GLU-N"]["status"] == "cancelled"
        assert found["GLU-N"]["dataAbsentReason"]["coding"][0]["code"] == "not-asked"
        assert found["DESC-O"]["status"] == "registered"
        for code in ("GLU-N", "DESC-O"):
            assert not [k for k in found[code] if k.startswith("value")]
        assert found["GLU-F"]["valueQuantity"]["value"] == 5.6


class TestAbnormalFlags:
    @pytest.mark.parametrize("flag", ["MS", "VS"])
    def test_susceptibility_flags_are_interpretations(
        self, send: Send, db: Session, flag: str
    ) -> None:
        result = f"OBX|1|CWE|AMK^阿米卡星^L||S^敏感^L|||{flag}|||F"
        response = send(oru("TAB-0002", results=(result,), order="ORD-TAB-2"))

        assert segment(response.content, "MSA")[1] == "AA", response.text
        [coding] = _observations(db)["AMK"]["interpretation"][0]["coding"]
        assert coding["code"] == flag


class TestAdministrativeSex:
    @pytest.mark.parametrize(
        ("code", "recorded"),
        [("U", "male"), ("N", "male"), ("O", "other"), ("A", "other")],
    )
    def test_unknown_takes_the_id_numbers_sex_and_other_is_recorded_as_such(
        self, send: Send, db: Session, code: str, recorded: str
    ) -> None:
        """U and N: the sex the resident ID number encodes (male here); O and A: other."""
        response = send(adt("A04", "TAB-0003", patient=pid(sex=code)))

        assert segment(response.content, "MSA")[1] == "AA", response.text
        person = db.scalar(select(Person).where(Person.id_number == ID_NUMBER))
        assert person is not None
        assert person.sex == recorded
