"""Access decisions: care relationship, consent, break-the-glass, own record."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from medalliance.access import service
from medalliance.access.enums import ConsentScope, ConsentStatus, RelationshipKind
from medalliance.access.models import CareRelationship
from medalliance.audit.enums import AccessBasis
from medalliance.audit.models import AuditEvent
from medalliance.auth.enums import Role
from medalliance.auth.principal import Actor
from medalliance.errors import Forbidden, ValidationFailed
from medalliance.kit.clock import utcnow
from medalliance.patients.models import Person

PATIENT = "p00000042"
DOCTOR_A = Actor(user_id="doc-a", username="doc_a", role=Role.DOCTOR, institution_id="township-01")
DOCTOR_B = Actor(user_id="doc-b", username="doc_b", role=Role.DOCTOR, institution_id="township-02")


def _readable_ids(db: Session, actor: Actor) -> set[str]:
    stmt = select(Person.id).where(service.readable_patients(actor, Person.id, utcnow()))
    return set(db.scalars(stmt))


def _relate(
    db: Session,
    institution: str,
    kind: RelationshipKind,
    source: str,
    expires_in: timedelta | None = None,
) -> int:
    row = service.record_relationship(
        db,
        patient_id=PATIENT,
        institution_id=institution,
        kind=kind,
        source_type=kind.value,
        source_id=source,
        expires_at=utcnow() + expires_in if expires_in is not None else None,
    )
    return row.id


class TestCareRelationship:
    def test_no_basis_means_no_access(self, db: Session) -> None:
        assert service.clinical_basis(db, DOCTOR_A, PATIENT, utcnow()) is None
        with pytest.raises(Forbidden):
            service.require_clinical_access(db, DOCTOR_A, PATIENT, utcnow())

    def test_relationship_opens_the_record_to_that_institution_only(self, db: Session) -> None:
        _relate(db, "township-01", RelationshipKind.ENCOUNTER, "e1")
        assert service.clinical_basis(db, DOCTOR_A, PATIENT, utcnow()) == (
            AccessBasis.CARE_RELATIONSHIP
        )
        assert service.clinical_basis(db, DOCTOR_B, PATIENT, utcnow()) is None
        assert PATIENT in _readable_ids(db, DOCTOR_A)
        assert PATIENT not in _readable_ids(db, DOCTOR_B)

    def test_recording_the_same_fact_twice_makes_one_relationship(self, db: Session) -> None:
        first = _relate(db, "township-01", RelationshipKind.REFERRAL, "r1")
        assert _relate(db, "township-01", RelationshipKind.REFERRAL, "r1") == first

    def test_visits_open_the_record_once_per_institution(self, db: Session) -> None:
        def visit(institution: str, encounter: str) -> bool:
            return service.record_visit(
                db, patient_id=PATIENT, institution_id=institution, encounter_id=encounter
            )

        assert visit("township-01", "e1") is True
        assert [visit("township-01", e) for e in ("e2", "e3")] == [False, False]
        assert visit("township-02", "e4") is True
        rows = db.scalars(
            select(CareRelationship.source_id).where(CareRelationship.patient_id == PATIENT)
        )
        assert sorted(rows) == ["e1", "e4"]
        assert service.clinical_basis(db, DOCTOR_A, PATIENT, utcnow()) == (
            AccessBasis.CARE_RELATIONSHIP
        )

    def test_a_visit_after_an_ended_relationship_opens_the_record_again(self, db: Session) -> None:
        _relate(db, "township-01", RelationshipKind.ENCOUNTER, "e1", timedelta(days=-1))
        assert service.record_visit(
            db, patient_id=PATIENT, institution_id="township-01", encounter_id="e2"
        )
        assert service.clinical_basis(db, DOCTOR_A, PATIENT, utcnow()) is not None

    def test_expired_relationship_gives_nothing(self, db: Session) -> None:
        _relate(db, "township-01", RelationshipKind.CONTRACT, "c1", timedelta(days=-1))
        assert service.clinical_basis(db, DOCTOR_A, PATIENT, utcnow()) is None
        assert PATIENT not in _readable_ids(db, DOCTOR_A)

    def test_administrators_and_commission_never_get_clinical_access(self, db: Session) -> None:
        _relate(db, "county-hospital", RelationshipKind.ENCOUNTER, "e2")
        for role in (Role.ADMIN, Role.COMMISSION):
            actor = Actor(user_id="x", username="x", role=role, institution_id="county-hospital")
            assert service.clinical_basis(db, actor, PATIENT, utcnow()) is None
            assert _readable_ids(db, actor) == set()


class TestConsent:
    @pytest.fixture(autouse=True)
    def _township_01_treats_the_patient(self, db: Session) -> None:
        _relate(db, "township-01", RelationshipKind.ENCOUNTER, "visit-1")

    def test_a_member_that_does_not_treat_the_patient_cannot_record_consent(
        self, db: Session
    ) -> None:
        with pytest.raises(Forbidden):
            service.record_consent(
                db,
                DOCTOR_B,
                patient_id=PATIENT,
                status=ConsentStatus.GIVEN,
                scope=ConsentScope.INSTITUTION,
                institution_id="township-02",
            )
        assert service.clinical_basis(db, DOCTOR_B, PATIENT, utcnow()) is None

    def test_resident_records_their_own_consent(self, db: Session) -> None:
        me = Actor(
            user_id="r", username="r", role=Role.RESIDENT, institution_id=None, person_id=PATIENT
        )
        service.record_consent(
            db, me, patient_id=PATIENT, status=ConsentStatus.GIVEN, scope=ConsentScope.CONSORTIUM
        )
        assert service.clinical_basis(db, DOCTOR_B, PATIENT, utcnow()) == AccessBasis.CONSENT

    def test_consortium_consent_opens_every_member_until_withdrawn(self, db: Session) -> None:
        service.record_consent(
            db,
            DOCTOR_A,
            patient_id=PATIENT,
            status=ConsentStatus.GIVEN,
            scope=ConsentScope.CONSORTIUM,
            source_document="签字知情同意书",
        )
        assert service.clinical_basis(db, DOCTOR_B, PATIENT, utcnow()) == AccessBasis.CONSENT
        assert PATIENT in _readable_ids(db, DOCTOR_B)
        service.record_consent(
            db,
            DOCTOR_A,
            patient_id=PATIENT,
            status=ConsentStatus.WITHDRAWN,
            scope=ConsentScope.CONSORTIUM,
        )
        assert service.clinical_basis(db, DOCTOR_B, PATIENT, utcnow()) is None
        assert PATIENT not in _readable_ids(db, DOCTOR_B)
        assert len(service.consent_history(db, PATIENT)) == 2

    def test_institution_consent_covers_only_that_institution(self, db: Session) -> None:
        service.record_consent(
            db,
            DOCTOR_A,
            patient_id=PATIENT,
            status=ConsentStatus.GIVEN,
            scope=ConsentScope.INSTITUTION,
            institution_id="township-02",
        )
        assert service.clinical_basis(db, DOCTOR_B, PATIENT, utcnow()) == AccessBasis.CONSENT
        other = Actor(user_id="c", username="c", role=Role.DOCTOR, institution_id="township-03")
        assert service.clinical_basis(db, other, PATIENT, utcnow()) is None

    def test_institution_consent_must_name_the_institution(self, db: Session) -> None:
        with pytest.raises(ValidationFailed) as error:
            service.record_consent(
                db,
                DOCTOR_A,
                patient_id=PATIENT,
                status=ConsentStatus.GIVEN,
                scope=ConsentScope.INSTITUTION,
            )
        assert error.value.field == "institution_id"


class TestBreakTheGlass:
    def test_emergency_access_is_granted_for_a_limited_time_and_audited(self, db: Session) -> None:
        now = utcnow()
        grant = service.break_glass(
            db, DOCTOR_B, patient_id=PATIENT, reason="患者昏迷送至急诊，需查看既往病史", now=now
        )
        assert service.clinical_basis(db, DOCTOR_B, PATIENT, now) == AccessBasis.BREAK_THE_GLASS
        assert service.clinical_basis(db, DOCTOR_B, PATIENT, grant.expires_at) is None
        audited = db.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "access.break_glass", AuditEvent.patient_id == PATIENT
            )
        ).one()
        assert audited.basis == "break_the_glass"
        assert "昏迷" in audited.detail["reason"]

    def test_emergency_access_needs_a_real_reason(self, db: Session) -> None:
        with pytest.raises(ValidationFailed):
            service.break_glass(db, DOCTOR_B, patient_id=PATIENT, reason="急", now=utcnow())

    def test_non_clinicians_cannot_break_the_glass(self, db: Session) -> None:
        admin = Actor(user_id="a", username="a", role=Role.ADMIN, institution_id="county-hospital")
        with pytest.raises(Forbidden):
            service.break_glass(
                db, admin, patient_id=PATIENT, reason="just curious about it", now=utcnow()
            )


class TestOwnRecord:
    def test_resident_reads_only_their_own_record(self, db: Session) -> None:
        me = Actor(
            user_id="r",
            username="r",
            role=Role.RESIDENT,
            institution_id="township-01",
            person_id=PATIENT,
        )
        assert service.clinical_basis(db, me, PATIENT, utcnow()) == AccessBasis.OWN_RECORD
        assert service.clinical_basis(db, me, "p00000043", utcnow()) is None
        assert _readable_ids(db, me) == {PATIENT}
