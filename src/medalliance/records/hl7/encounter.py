"""PV1 (with EVN and PV2) to an Encounter at the sending member.

The visit number (PV1-19) identifies the Encounter within the member, so A01 then A03 of
one stay update one Encounter. Status follows the trigger: A01 admitted (in-progress), A04
registered (arrived), A03 discharged (finished), A08 keeps the current status; a visit that
is already finished stays finished (a late A01 does not reopen it: that is A13's job), and
an A03 for a visit never seen here records the finished stay.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from medalliance.records.hl7 import datatypes, systems
from medalliance.records.hl7.er7 import Message, Segment

# PV1-2 (HL7 table 0004) to the v3 ActCode encounter class.
_CLASS = {
    "I": ("IMP", "inpatient encounter"),
    "O": ("AMB", "ambulatory"),
    "E": ("EMER", "emergency"),
    "P": ("PRENC", "pre-admission"),
    "R": ("AMB", "ambulatory"),
    "B": ("IMP", "inpatient encounter"),
}
_STATUS_BY_TRIGGER = {"A01": "in-progress", "A04": "arrived", "A03": "finished"}
_STARTS = frozenset({"A01", "A04"})


@dataclass(frozen=True)
class Visit:
    number: str
    class_code: str
    start: str | None
    end: str | None
    attending: str
    reason: dict[str, Any] | None


def _event_time(message: Message) -> str | None:
    """When the event happened: EVN-6, else EVN-2 (recorded), else the message time."""
    evn = message.first("EVN")
    msh = message.msh
    if evn is not None:
        for number in (6, 2):
            converted = datatypes.fhir_datetime(evn.get(number), evn.at(number), "event time")
            if converted:
                return converted
    return datatypes.fhir_datetime(msh.get(7), msh.at(7), "message time")


def visit_from(message: Message, pv1: Segment, trigger: str, number: str) -> Visit:
    start = datatypes.fhir_datetime(pv1.get(44), pv1.at(44), "admit date/time")
    end = datatypes.fhir_datetime(pv1.get(45), pv1.at(45), "discharge date/time")
    if trigger in _STARTS and start is None:
        start = _event_time(message)
    if trigger == "A03" and end is None:
        end = _event_time(message)
    pv2 = message.first("PV2")
    institution_reason = pv2.repetitions(3)[0] if pv2 and pv2.repetitions(3) else None
    return Visit(
        number=number,
        class_code=pv1.get(2).upper(),
        start=start,
        end=end,
        attending=_doctor(pv1),
        reason=datatypes.codeable_concept(institution_reason, local_system="") or None,
    )


def _doctor(pv1: Segment) -> str:
    """PV1-7 attending doctor (XCN: id^family^given) as a display name."""
    reps = pv1.repetitions(7)
    if not reps:
        return ""
    family, given = reps[0].component(2), reps[0].component(3)
    return (family + given) if datatypes.has_cjk(family + given) else f"{given} {family}".strip()


def encounter(
    visit: Visit,
    trigger: str,
    *,
    patient_id: str,
    institution_id: str,
    existing: dict[str, Any] | None,
) -> dict[str, Any]:
    """The Encounter to store, merged over the member's existing one for this visit."""
    code, display = _CLASS.get(visit.class_code, ("AMB", "ambulatory"))
    old = existing or {}
    old_period = old.get("period") or {}
    period = {
        "start": visit.start or old_period.get("start"),
        "end": visit.end or old_period.get("end"),
    }
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "identifier": [{"system": systems.visit(institution_id), "value": visit.number}],
        "status": _status(trigger, existing, period.get("end")),
        "class": {"system": systems.V3_ACT_CODE, "code": code, "display": display},
        "subject": {"reference": f"Patient/{patient_id}"},
        "serviceProvider": {"reference": f"Organization/{institution_id}"},
    }
    if any(period.values()):
        resource["period"] = {k: v for k, v in period.items() if v}
    # A field the message leaves empty (an ORU's sparse PV1) keeps what the visit had.
    if not visit.class_code and old.get("class"):
        resource["class"] = old["class"]
    if visit.attending:
        resource["participant"] = [{"individual": {"display": visit.attending}}]
    elif old.get("participant"):
        resource["participant"] = old["participant"]
    if visit.reason:
        resource["reasonCode"] = [_local(visit.reason, institution_id)]
    elif existing and existing.get("reasonCode"):
        resource["reasonCode"] = existing["reasonCode"]
    if existing and existing.get("diagnosis"):
        resource["diagnosis"] = existing["diagnosis"]
    return resource


def _status(trigger: str, existing: dict[str, Any] | None, end: str | None) -> str:
    current = (existing or {}).get("status")
    if current == "finished":
        return "finished"
    if trigger in _STATUS_BY_TRIGGER:
        return _STATUS_BY_TRIGGER[trigger]
    if current:
        return str(current)
    return "finished" if end else "in-progress"


def _local(concept: dict[str, Any], institution_id: str) -> dict[str, Any]:
    """Codes without a known system are the member's local codes."""
    for coding in concept.get("coding", []):
        if not coding.get("system"):
            coding["system"] = systems.local_codes(institution_id)
    return concept
