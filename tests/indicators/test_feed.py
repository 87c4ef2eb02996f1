"""The worker turns encounters recorded in the shared record into indicator facts, once."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from medalliance.auth.enums import Role
from medalliance.auth.principal import Actor
from medalliance.indicators import sources
from medalliance.indicators.models import EncounterFact
from medalliance.kit.clock import utcnow
from medalliance.records import service as records

HIS = Actor(None, "county-his", Role.SYSTEM, "county-hospital", client_id="county-his")


def _visit(db: Session, patient: str, start: str) -> str:
    stored = records.create(
        db,
        HIS,
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
            "subject": {"reference": f"Patient/{patient}"},
            "serviceProvider": {"reference": "Organization/county-hospital"},
            "period": {"start": start},
            "reasonCode": [
                {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I63"}]}
            ],
        },
        now=utcnow() - timedelta(minutes=1),
    )
    return stored.id


def _facts(db: Session, encounter_id: str) -> list[EncounterFact]:
    stmt = select(EncounterFact).where(EncounterFact.source_id == f"Encounter/{encounter_id}")
    return list(db.scalars(stmt))


class TestEncounterFeed:
    def test_a_recorded_admission_becomes_one_fact(self, db: Session) -> None:
        encounter = _visit(db, "p00000321", "2026-10-03T09:30:00+08:00")
        db.flush()
        ctx = sources.Context.of(db)
        sources.refresh_encounters(db, ctx, 500, utcnow())
        [fact] = _facts(db, encounter)
        assert (fact.institution_id, fact.encounter_class, fact.icd10) == (
            "county-hospital",
            "inpatient",
            "I63",
        )
        assert fact.in_county

    def test_a_second_tick_adds_nothing(self, db: Session) -> None:
        _visit(db, "p00000322", "2026-10-04T09:30:00+08:00")
        db.flush()
        ctx = sources.Context.of(db)
        sources.refresh_encounters(db, ctx, 500, utcnow())
        before = db.scalar(select(func.count()).select_from(EncounterFact))
        assert sources.refresh_encounters(db, ctx, 500, utcnow()) == 0
        assert db.scalar(select(func.count()).select_from(EncounterFact)) == before

    def test_feed_skips_rows_too_recent_to_be_settled(self, db: Session) -> None:
        stored = records.create(
            db,
            HIS,
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"code": "AMB"},
                "subject": {"reference": "Patient/p00000323"},
                "serviceProvider": {"reference": "Organization/county-hospital"},
                "period": {"start": "2026-10-05T09:30:00+08:00"},
            },
            now=utcnow(),
        )
        assert stored.id not in {r.id for r in records.changed_since(db, "Encounter", None, 500)}


class TestEncounterDiagnoses:
    def test_principal_diagnosis_comes_from_the_condition_the_encounter_names(
        self, db: Session
    ) -> None:
        past = utcnow() - timedelta(minutes=1)
        icd10 = "http://hl7.org/fhir/sid/icd-10"

        def condition(code: str) -> str:
            return records.create(
                db,
                HIS,
                {
                    "resourceType": "Condition",
                    "subject": {"reference": "Patient/p00000324"},
                    "code": {"coding": [{"system": icd10, "code": code}]},
                },
                now=past,
            ).id

        encounter: dict[str, object] = {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"code": "IMP"},
            "subject": {"reference": "Patient/p00000324"},
            "serviceProvider": {"reference": "Organization/county-hospital"},
            "period": {"start": "2026-10-06T09:30:00+08:00"},
            "reasonCode": [{"coding": [{"system": icd10, "code": "R07.4"}]}],
        }
        # The hospital's own encounter gives it the care relationship to write the rest.
        stored = records.create(db, HIS, encounter, now=past)
        secondary, principal = condition("E11.9"), condition("I21.0")
        encounter["id"] = stored.id
        encounter["diagnosis"] = [
            {"condition": {"reference": f"Condition/{secondary}"}, "rank": 2},
            {"condition": {"reference": f"Condition/{principal}"}, "rank": 1},
        ]
        records.update(db, HIS, "Encounter", stored.id, encounter, now=past)
        db.flush()
        sources.refresh_encounters(db, sources.Context.of(db), 500, utcnow())
        [fact] = _facts(db, stored.id)
        assert (fact.icd10, fact.icd_chapter) == ("I21.0", "IX")

    def test_a_deleted_encounter_leaves_the_indicators(self, db: Session) -> None:
        encounter = _visit(db, "p00000325", "2026-10-07T09:30:00+08:00")
        db.flush()
        sources.refresh_encounters(db, sources.Context.of(db), 500, utcnow())
        assert len(_facts(db, encounter)) == 1
        records.delete(db, HIS, "Encounter", encounter, now=utcnow() - timedelta(seconds=30))
        db.flush()
        sources.refresh_encounters(db, sources.Context.of(db), 500, utcnow())
        assert _facts(db, encounter) == []


class TestReferralFeed:
    def test_an_accepted_referral_becomes_a_fact_with_its_acceptance_time(
        self, db: Session
    ) -> None:
        from medalliance.indicators.models import ReferralFact
        from medalliance.referrals.enums import ReferralStatus
        from referrals.factories import referral

        sent = referral(db, status=ReferralStatus.ACCEPTED, now=utcnow() - timedelta(minutes=5))
        db.flush()
        ctx = sources.Context.of(db)
        sources.refresh_referrals(db, ctx, 5000, utcnow())
        fact = db.scalars(select(ReferralFact).where(ReferralFact.referral_id == sent.id)).one()
        assert (fact.direction, fact.from_institution_id, fact.to_institution_id) == (
            "up",
            "township-01",
            "county-hospital",
        )
        assert fact.accepted_at is not None
