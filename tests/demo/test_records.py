"""The demo's shared health record: the stays its referral history implies, written
through the FHIR service, so that the referral's closed loop points at a real discharge
summary and the record can be searched like any member's."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from medalliance.auth.enums import Role
from medalliance.auth.principal import Actor
from medalliance.demo import records as demo_records
from medalliance.errors import Conflict
from medalliance.records import service as records
from medalliance.referrals.models import Referral

NOW = datetime.now(UTC)
STAYS = 12
RESIDENT = "p00000010"


def _load(db: Session) -> int:
    return demo_records.load(
        db, seed=1, limit=STAYS, resident=RESIDENT, township="township-01", today=date(2026, 11, 1)
    )


def _referrals(db: Session) -> list[Referral]:
    stmt = (
        select(Referral)
        .where(Referral.direction == "up", Referral.status == "completed")
        .order_by(Referral.requested_at, Referral.id)
        .limit(STAYS)
    )
    return list(db.scalars(stmt))


def _system(institution_id: str) -> Actor:
    return Actor(None, f"{institution_id}-his", Role.SYSTEM, institution_id, client_id="t")


def _search(db: Session, actor: Actor, resource_type: str, **params: str) -> list[dict[str, Any]]:
    found = records.search(db, actor, resource_type, list(params.items()), now=NOW)
    return [m.content for m in found.matches]


def test_each_completed_referral_points_at_its_stored_discharge_summary(db: Session) -> None:
    written = _load(db)
    referrals = _referrals(db)
    townships = sum(r.from_institution_id.startswith("township-") for r in referrals)
    # A stay is 8 resources, a township visit 4; the resident has three visits.
    assert written == STAYS * 8 + (townships + 3) * 4
    for referral in referrals:
        assert referral.outcome_reference
        kind, _, document_id = referral.outcome_reference.partition("/")
        hospital = _system(referral.to_institution_id)
        summary = records.read(db, hospital, kind, document_id, now=NOW).content
        assert summary["subject"]["reference"] == f"Patient/{referral.patient_id}"
        assert summary["type"]["coding"][0]["code"] == "18842-5"
        related = summary["context"]["related"][0]["reference"]
        assert related == f"ServiceRequest/{referral.id}"


def test_the_discharge_summary_a_referral_closed_on_cannot_be_deleted(db: Session) -> None:
    """The referral's closed loop would point at nothing: the township doctor following
    it up would find a deleted document."""
    _load(db)
    referral = _referrals(db)[0]
    assert referral.outcome_reference
    kind, _, document_id = referral.outcome_reference.partition("/")
    hospital = _system(referral.to_institution_id)
    with pytest.raises(Conflict, match="carried by a referral"):
        records.delete(db, hospital, kind, document_id, now=NOW)
    assert records.read(db, hospital, kind, document_id, now=NOW).deleted is False


def test_the_stay_and_the_township_visit_carry_the_referral_diagnosis(db: Session) -> None:
    _load(db)
    referral = next(r for r in _referrals(db) if r.from_institution_id.startswith("township-"))
    code = referral.diagnoses[0]["code"]
    hospital = _system(referral.to_institution_id)
    patient = referral.patient_id
    encounters = _search(db, hospital, "Encounter", patient=patient, _sort="date")
    assert [e["class"]["code"] for e in encounters] == ["AMB", "IMP"]
    assert (
        encounters[0]["serviceProvider"]["reference"]
        == f"Organization/{referral.from_institution_id}"
    )
    conditions = _search(db, hospital, "Condition", patient=patient, code=code)
    assert len(conditions) == 2
    stay = encounters[1]
    principal = stay["diagnosis"][0]["condition"]["reference"]
    assert principal in {f"Condition/{c['id']}" for c in conditions}
    labs = _search(db, hospital, "Observation", patient=patient, category="laboratory")
    assert {lab["encounter"]["reference"] for lab in labs} == {f"Encounter/{stay['id']}"}
    assert len(labs) == len(demo_records.LABS)


def test_the_demo_resident_sees_their_own_follow_up_visits(db: Session) -> None:
    _load(db)
    resident = Actor("u", "resident", Role.RESIDENT, "township-01", person_id=RESIDENT)
    visits = _search(db, resident, "Encounter", patient=RESIDENT)
    assert len(visits) == 3
    pressures = _search(db, resident, "Observation", patient=RESIDENT, code="8480-6")
    assert all(p["valueQuantity"]["unit"] == "mmHg" for p in pressures)
    assert len(pressures) == 3
