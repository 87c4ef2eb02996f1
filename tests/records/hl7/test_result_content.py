"""What an ORU carries besides the value reaches the Observation: NTE comments, the number
as reported (HL7 NM, nothing float() would also take) and the unit as the sender wrote it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from medalliance.records.models import FhirResource
from records.hl7.conftest import Send
from records.hl7.hl7_samples import oru, segment

GLUCOSE = "OBX|1|NM|GLU^血糖^L||5.6|mmol/L^^UCUM|3.9-6.1|N|||F"
POTASSIUM = "OBX|2|NM|K^钾^L||4.1|mmol/L^^UCUM|3.5-5.3|N|||F"


def _observations(db: Session) -> dict[str, tuple[dict[str, Any], str]]:
    """Each stored Observation by its code: (content, the JSON as stored)."""
    db.expire_all()
    rows = db.scalars(
        select(FhirResource.content).where(FhirResource.resource_type == "Observation")
    ).all()
    found = [(json.loads(r), r) for r in rows]
    return {o["code"]["coding"][0]["code"]: (o, r) for o, r in found if "code" in o}


def _accepted(response: Any) -> None:
    assert segment(response.content, "MSA")[1] == "AA", response.text


class TestNotes:
    def test_a_comment_after_a_result_is_the_observations_note(
        self, send: Send, db: Session
    ) -> None:
        results = (GLUCOSE, "NTE|1|L|标本溶血，结果仅供参考", POTASSIUM)
        _accepted(send(oru("RES-0001", results=results, order="ORD-RES-1")))

        found = _observations(db)
        assert found["GLU"][0]["note"] == [{"text": "标本溶血，结果仅供参考"}]
        assert "note" not in found["K"][0]

    def test_a_comment_after_the_order_is_a_note_of_each_of_its_results(
        self, send: Send, db: Session
    ) -> None:
        results = ("NTE|1|L|标本溶血", GLUCOSE, "NTE|1|L|复查\\.br\\已通知医生", POTASSIUM)
        # The samples' OBR is the segment right before the results: the first NTE follows it.
        _accepted(send(oru("RES-0002", results=results, order="ORD-RES-2")))

        found = _observations(db)
        assert found["GLU"][0]["note"] == [{"text": "复查\n已通知医生"}, {"text": "标本溶血"}]
        assert found["K"][0]["note"] == [{"text": "标本溶血"}]


class TestNumbers:
    @pytest.mark.parametrize("value", ["1_000", "NaN", "Infinity", "1e3", "0x10", "５"])
    def test_what_is_not_an_hl7_number_is_refused_at_obx_5(
        self, send: Send, db: Session, value: str
    ) -> None:
        result = f"OBX|1|NM|GLU^血糖^L||{value}|mmol/L^^UCUM|3.9-6.1|N|||F"
        response = send(oru("RES-0010", results=(result,), order="ORD-RES-10"))

        assert segment(response.content, "MSA")[1] == "AE"
        err = segment(response.content, "ERR")
        assert err[2] == "OBX^1^5^1"
        assert err[3].startswith("102^")
        assert "GLU" not in _observations(db)

    def test_signed_and_bare_decimal_point_numbers_are_accepted(
        self, send: Send, db: Session
    ) -> None:
        results = (
            "OBX|1|NM|BE^碱剩余^L||-2.5|mmol/L^^UCUM||N|||F",
            "OBX|2|NM|GLU^血糖^L||+.5|mmol/L^^UCUM||N|||F",
        )
        _accepted(send(oru("RES-0011", results=results, order="ORD-RES-11")))

        found = _observations(db)
        assert found["BE"][0]["valueQuantity"]["value"] == -2.5
        assert found["GLU"][0]["valueQuantity"]["value"] == 0.5

    def test_a_whole_number_is_stored_without_a_decimal_place(
        self, send: Send, db: Session
    ) -> None:
        result = "OBX|1|NM|PLT^血小板^L||215|10*9/L^^UCUM|125-350|N|||F"
        _accepted(send(oru("RES-0012", results=(result,), order="ORD-RES-12")))

        _, stored = _observations(db)["PLT"]
        assert '"value":215,' in stored.replace(" ", "")

    def test_a_decimal_keeps_the_digits_the_laboratory_reported(
        self, send: Send, db: Session
    ) -> None:
        result = "OBX|1|NM|GLU^血糖^L||05.60|mmol/L^^UCUM|3.90-6.10|N|||F"
        _accepted(send(oru("RES-0013", results=(result,), order="ORD-RES-13")))

        _, stored = _observations(db)["GLU"]
        compact = stored.replace(" ", "")
        assert '"value":5.60,' in compact  # the leading zero goes: JSON forbids it
        assert '"value":3.90,' in compact
        assert '"value":6.10,' in compact


class TestStructuredNumbers:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (
                "^10^-^20",  # a range: 10 to 20 cells per high-power field
                {
                    "valueRange": {
                        "low": {"value": 10, "unit": "/HP"},
                        "high": {"value": 20, "unit": "/HP"},
                    }
                },
            ),
            (
                "^1^:^128",
                {"valueRatio": {"numerator": {"value": 1}, "denominator": {"value": 128}}},
            ),
            ("<^0.5", {"valueQuantity": {"value": 0.5, "unit": "/HP", "comparator": "<"}}),
            ("^2^+", {"valueString": "2+"}),
        ],
    )
    def test_a_structured_numeric_keeps_its_shape(
        self, send: Send, db: Session, value: str, expected: dict[str, Any]
    ) -> None:
        result = f"OBX|1|SN|RBC^尿红细胞^L||{value}|/HP|0-3|H|||F"
        _accepted(send(oru("RES-0030", results=(result,), order="ORD-RES-30")))

        found, _ = _observations(db)["RBC"]
        assert {k: v for k, v in found.items() if k.startswith("value")} == expected


class TestUnits:
    def test_a_unit_without_a_coding_system_is_only_the_units_text(
        self, send: Send, db: Session
    ) -> None:
        results = (
            "OBX|1|NM|WBC^白细胞^L||6.5|10^9/L|3.5-9.5|N|||F",
            "OBX|2|NM|GLU^血糖^L||5.6|mmol/L|3.9-6.1|N|||F",
        )
        _accepted(send(oru("RES-0020", results=results, order="ORD-RES-20")))

        found = _observations(db)
        assert found["WBC"][0]["valueQuantity"] == {"value": 6.5, "unit": "10^9/L"}
        assert found["WBC"][0]["referenceRange"][0]["low"] == {"value": 3.5, "unit": "10^9/L"}
        assert found["GLU"][0]["valueQuantity"] == {"value": 5.6, "unit": "mmol/L"}

    def test_a_unit_of_another_coding_system_is_not_labelled_ucum(
        self, send: Send, db: Session
    ) -> None:
        result = "OBX|1|NM|GLU^血糖^L||5.6|mmol/L^毫摩尔每升^ISO+|3.9-6.1|N|||F"
        _accepted(send(oru("RES-0021", results=(result,), order="ORD-RES-21")))

        quantity = _observations(db)["GLU"][0]["valueQuantity"]
        assert quantity == {"value": 5.6, "unit": "毫摩尔每升"}
