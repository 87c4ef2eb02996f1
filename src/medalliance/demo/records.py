"""The demo's shared health record: what its referral history says the members wrote.

For each completed upward referral, the receiving hospital's stay (an inpatient
Encounter, its principal diagnosis, three lab results under one report, a prescription,
and the discharge summary the referral's closed loop points to, which was a dangling
reference before) and, when a township centre referred, its outpatient visit before it
(the grassroots record pushed up: a diagnosis and a blood pressure). Each is one
transaction bundle written through the FHIR service as the member's system, so index
rows, history, care relationships and audit are what real traffic leaves, and the
timeline, FHIR searches and indicators of the demo have something to show.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from medalliance.auth.enums import Role
from medalliance.auth.principal import Actor
from medalliance.kit.clock import utcnow
from medalliance.records import service as records
from medalliance.records.hl7 import systems
from medalliance.referrals.enums import Direction, ReferralStatus
from medalliance.referrals.models import Referral

ICD10 = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"
# Lab results as a county laboratory reports them: (LOINC, 中文名, UCUM unit, low, high).
LABS = (
    ("718-7", "血红蛋白", "g/L", 115.0, 150.0),
    ("6690-2", "白细胞计数", "10*9/L", 3.5, 9.5),
    ("2345-7", "葡萄糖", "mmol/L", 3.9, 6.1),
)
# A first-line drug by ICD-10 chapter letter; anything else gets symptomatic treatment.
DRUGS = {
    "I": ("阿司匹林肠溶片", "每日一次，每次100mg，口服"),
    "E": ("盐酸二甲双胍片", "每日两次，每次0.5g，餐后口服"),
    "J": ("头孢呋辛酯片", "每日两次，每次0.25g，口服"),
    "K": ("奥美拉唑肠溶胶囊", "每日一次，每次20mg，晨起空腹口服"),
}
SYMPTOMATIC = ("对症支持治疗", "遵医嘱")
HYPERTENSION = {"code": "I10", "display": "原发性高血压"}


def load(db: Session, *, seed: int, limit: int, resident: str, township: str, today: date) -> int:
    """Writes the stays of up to ``limit`` completed upward referrals, and the demo
    resident's (``resident``) follow-up visits at their ``township`` centre before
    ``today``; returns how many resources were written."""
    rng = random.Random(seed + 11)
    stmt = (
        select(Referral)
        .where(
            Referral.direction == Direction.UP.value,
            Referral.status == ReferralStatus.COMPLETED.value,
        )
        .order_by(Referral.requested_at, Referral.id)
        .limit(limit)
    )
    bundles = [b for n, referral in enumerate(db.scalars(stmt)) for b in _bundles(rng, n, referral)]
    for n, days_ago in enumerate((120, 60, 14)):
        at = datetime.combine(today - timedelta(days=days_ago), time(1, 30), UTC)  # 09:30 CST
        visit = _township_visit(rng, f"MZ9{n:05d}", resident, township, HYPERTENSION, at)
        bundles.append((township, visit))
    now = utcnow()
    written = 0
    for institution, bundle in bundles:
        response = records.transaction(db, _system(institution), bundle, now=now)
        written += len(response["entry"])
    return written


def _system(institution_id: str) -> Actor:
    client = f"{institution_id}-his"
    return Actor(None, client, Role.SYSTEM, institution_id, client_id=client)


def _bundles(rng: random.Random, n: int, referral: Referral) -> Iterator[tuple[str, Bundle]]:
    diagnosis = referral.diagnoses[0] if referral.diagnoses else {"code": "R69", "display": ""}
    township = referral.from_institution_id
    if township.startswith("township-"):
        at = _dates(referral)[0] - timedelta(minutes=30)
        visit = _township_visit(rng, f"MZ{n:06d}", referral.patient_id, township, diagnosis, at)
        yield township, visit
    yield referral.to_institution_id, _hospital_stay(rng, n, referral, diagnosis)


Bundle = dict[str, Any]


def _township_visit(
    rng: random.Random,
    number: str,
    patient_id: str,
    where: str,
    diagnosis: dict[str, str],
    at: datetime,
) -> Bundle:
    visit = _Entries(patient_id)
    encounter = visit.add(_encounter(where, number, "AMB", "门诊", at, at + timedelta(minutes=20)))
    condition = visit.add(_condition(diagnosis, encounter, at, active=True))
    visit.link_diagnosis(encounter, condition)
    systolic, diastolic = rng.randint(135, 175), rng.randint(85, 105)
    for code, name, value in (("8480-6", "收缩压", systolic), ("8462-4", "舒张压", diastolic)):
        visit.add(_vital(code, name, value, encounter, at))
    return visit.bundle()


def _hospital_stay(
    rng: random.Random, n: int, referral: Referral, diagnosis: dict[str, str]
) -> Bundle:
    _, admitted, discharged = _dates(referral)
    where = referral.to_institution_id
    stay = _Entries(referral.patient_id)
    encounter = stay.add(_encounter(where, f"ZY{n:06d}", "IMP", "住院", admitted, discharged))
    condition = stay.add(_condition(diagnosis, encounter, admitted, active=False))
    stay.link_diagnosis(encounter, condition)
    drawn = admitted + timedelta(hours=rng.randint(2, 20))
    results = [stay.add(_lab(rng, lab, encounter, drawn)) for lab in LABS]
    stay.add(_report(encounter, results, drawn, where))
    stay.add(_prescription(diagnosis, encounter, discharged))
    summary = _discharge_summary(referral, diagnosis, encounter, admitted, discharged)
    stay.put(summary)
    return stay.bundle()


def _dates(referral: Referral) -> tuple[datetime, datetime, datetime]:
    """Referred, admitted, discharged: a completed referral has all three, though the
    columns allow none (a draft has no request date yet)."""
    referred = referral.requested_at or referral.created_at
    admitted = referral.decided_at or referred
    return referred, admitted, referral.completed_at or admitted + timedelta(days=5)


class _Entries:
    """A transaction bundle's entries for one patient, linked by ``urn:uuid:`` full URLs."""

    def __init__(self, patient_id: str) -> None:
        self.patient = {"reference": f"Patient/{patient_id}"}
        self.entries: list[dict[str, Any]] = []

    def add(self, resource: dict[str, Any]) -> str:
        # Unique within its bundle (the entry's position), which is all a full URL needs.
        url = f"urn:uuid:00000000-0000-4000-8000-{len(self.entries):012x}"
        resource["subject"] = self.patient
        self.entries.append(
            {
                "fullUrl": url,
                "resource": resource,
                "request": {"method": "POST", "url": resource["resourceType"]},
            }
        )
        return url

    def put(self, resource: dict[str, Any]) -> None:
        """With the id the referral already points to."""
        resource["subject"] = self.patient
        url = f"{resource['resourceType']}/{resource['id']}"
        self.entries.append({"resource": resource, "request": {"method": "PUT", "url": url}})

    def link_diagnosis(self, encounter: str, condition: str) -> None:
        resource = next(e["resource"] for e in self.entries if e["fullUrl"] == encounter)
        resource["diagnosis"] = [{"condition": {"reference": condition}, "rank": 1}]

    def bundle(self) -> Bundle:
        return {"resourceType": "Bundle", "type": "transaction", "entry": self.entries}


def _encounter(
    institution: str, visit: str, klass: str, name: str, start: datetime, end: datetime
) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "identifier": [{"system": systems.visit(institution), "value": visit}],
        "status": "finished",
        "class": {"system": systems.V3_ACT_CODE, "code": klass, "display": name},
        "period": {"start": start.isoformat(), "end": end.isoformat()},
        "serviceProvider": {"reference": f"Organization/{institution}"},
    }


def _condition(
    diagnosis: dict[str, str], encounter: str, at: datetime, *, active: bool
) -> dict[str, Any]:
    clinical = "active" if active else "resolved"
    return {
        "resourceType": "Condition",
        "clinicalStatus": _coded(
            "http://terminology.hl7.org/CodeSystem/condition-clinical", clinical
        ),
        "verificationStatus": _coded(
            "http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed"
        ),
        "category": [_coded(systems.CONDITION_CATEGORY, "encounter-diagnosis")],
        "code": {
            "coding": [
                {"system": ICD10, "code": diagnosis["code"], "display": diagnosis["display"]}
            ],
            "text": diagnosis["display"],
        },
        "encounter": {"reference": encounter},
        "recordedDate": at.isoformat(),
    }


def _vital(code: str, name: str, value: int, encounter: str, at: datetime) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [_coded(systems.OBSERVATION_CATEGORY, "vital-signs")],
        "code": {"coding": [{"system": LOINC, "code": code, "display": name}], "text": name},
        "encounter": {"reference": encounter},
        "effectiveDateTime": at.isoformat(),
        "valueQuantity": _quantity(value, "mmHg", "mm[Hg]"),
    }


def _lab(
    rng: random.Random, lab: tuple[str, str, str, float, float], encounter: str, at: datetime
) -> dict[str, Any]:
    code, name, unit, low, high = lab
    value = round(rng.uniform(low * 0.8, high * 1.2), 1)
    flag = "L" if value < low else "H" if value > high else "N"
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [_coded(systems.OBSERVATION_CATEGORY, "laboratory")],
        "code": {"coding": [{"system": LOINC, "code": code, "display": name}], "text": name},
        "encounter": {"reference": encounter},
        "effectiveDateTime": at.isoformat(),
        "valueQuantity": _quantity(value, unit),
        "interpretation": [_coded(systems.INTERPRETATION, flag)],
        "referenceRange": [{"low": _quantity(low, unit), "high": _quantity(high, unit)}],
    }


def _report(encounter: str, results: list[str], at: datetime, institution: str) -> dict[str, Any]:
    return {
        "resourceType": "DiagnosticReport",
        "status": "final",
        "category": [_coded("http://terminology.hl7.org/CodeSystem/v2-0074", "LAB")],
        "code": {"coding": [{"system": LOINC, "code": "24360-0"}], "text": "血常规+血糖"},
        "encounter": {"reference": encounter},
        "effectiveDateTime": at.isoformat(),
        "issued": (at + timedelta(hours=2)).isoformat(),
        "performer": [{"reference": f"Organization/{institution}"}],
        "result": [{"reference": r} for r in results],
    }


def _prescription(diagnosis: dict[str, str], encounter: str, at: datetime) -> dict[str, Any]:
    drug, dosage = DRUGS.get(diagnosis["code"][:1], SYMPTOMATIC)
    return {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"text": drug},
        "encounter": {"reference": encounter},
        "authoredOn": at.isoformat(),
        "dosageInstruction": [{"text": dosage}],
    }


def _discharge_summary(
    referral: Referral,
    diagnosis: dict[str, str],
    encounter: str,
    admitted: datetime,
    discharged: datetime,
) -> dict[str, Any]:
    """The DocumentReference the referral's ``outcome_reference`` names, sent down."""
    text = (
        f"出院小结\n入院日期：{admitted:%Y-%m-%d}  出院日期：{discharged:%Y-%m-%d}\n"
        f"出院诊断：{diagnosis['display']}（{diagnosis['code']}）\n"
        f"{referral.outcome_summary or '诊疗结束，病情稳定。'}\n"
        "出院医嘱：按时服药，两周内基层随访。"
    )
    document_id = (referral.outcome_reference or "").rpartition("/")[2] or f"dc-{referral.id}"
    return {
        "resourceType": "DocumentReference",
        "id": document_id,
        "status": "current",
        "type": {
            "coding": [{"system": LOINC, "code": "18842-5", "display": "Discharge summary"}],
            "text": "出院小结",
        },
        "date": discharged.isoformat(),
        "author": [{"reference": f"Organization/{referral.to_institution_id}"}],
        "custodian": {"reference": f"Organization/{referral.to_institution_id}"},
        "context": {
            "encounter": [{"reference": encounter}],
            "related": [{"reference": f"ServiceRequest/{referral.id}"}],
        },
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain; charset=utf-8",
                    "data": base64.b64encode(text.encode()).decode(),
                    "title": "出院小结",
                }
            }
        ],
    }


def _coded(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def _quantity(value: float, unit: str, code: str | None = None) -> dict[str, Any]:
    """``unit`` as printed, ``code`` its UCUM code where the two differ."""
    return {"value": value, "unit": unit, "system": systems.UCUM, "code": code or unit}
