"""Identifier and code systems the HL7 mapping writes (the platform's own URIs, per member:
a visit number or order number is only unique within the member that issued it)."""

from __future__ import annotations

from typing import Final

_BASE: Final = "https://medalliance.example/fhir"
V3_ACT_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
V2_0074: Final = "http://terminology.hl7.org/CodeSystem/v2-0074"
OBSERVATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERPRETATION: Final = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
UCUM: Final = "http://unitsofmeasure.org"
DATA_ABSENT_REASON: Final = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
CONDITION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/condition-category"


def visit(institution_id: str) -> str:
    return f"{_BASE}/sid/visit/{institution_id}"


def order(institution_id: str) -> str:
    return f"{_BASE}/sid/order/{institution_id}"


def result(institution_id: str) -> str:
    return f"{_BASE}/sid/result/{institution_id}"


def diagnosis(institution_id: str) -> str:
    return f"{_BASE}/sid/diagnosis/{institution_id}"


def local_codes(institution_id: str) -> str:
    return f"{_BASE}/CodeSystem/local/{institution_id}"
