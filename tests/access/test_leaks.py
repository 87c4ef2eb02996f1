"""The leaks seen in a peer platform, each tried here and refused (and audited).

A doctor of another township must not list, read, accept, schedule or complete a
referral between township-01 and the county hospital, must not read a patient's record
without a basis, and must not gain one by a self-addressed or pretext referral.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpers import bearer
from medalliance.access.models import CareRelationship
from medalliance.audit.models import AuditEvent
from medalliance.auth import service as auth_service
from medalliance.auth.enums import Role
from medalliance.errors import ValidationFailed
from medalliance.kit.clock import utcnow
from medalliance.referrals import service as referrals
from medalliance.referrals.enums import ReferralStatus
from referrals.factories import actor, consent, form, referral

OUTSIDER = "outsider"  # a doctor at township-02
STRANGER_PATIENT = "p00000777"  # nobody at township-02 treats them


@pytest.fixture
def outsider(client: TestClient, db: Session) -> dict[str, str]:
    auth_service.create_user(
        db,
        None,
        username=OUTSIDER,
        display_name="钱医生",
        password="outsider-pw",
        roles=[("township-02", Role.DOCTOR)],
    )
    db.flush()
    return bearer(client, OUTSIDER, "outsider-pw")


def _denials(db: Session, path: str) -> list[AuditEvent]:
    rows = db.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "access.denied", AuditEvent.username == OUTSIDER
        )
    ).all()
    return [r for r in rows if r.detail["path"].startswith(path)]


class TestAnotherInstitutionsReferral:
    def test_listing_does_not_show_it(
        self, client: TestClient, db: Session, outsider: dict[str, str]
    ) -> None:
        sent = referral(db)
        db.flush()
        for path in (
            "/api/referrals",
            "/api/referrals?box=incoming",
            "/api/referrals?box=outgoing",
            "/fhir/ServiceRequest",
            "/fhir/Task",
        ):
            body = client.get(path, headers=outsider).text
            assert sent.id not in body, path

    def test_reading_it_is_a_404(
        self, client: TestClient, db: Session, outsider: dict[str, str]
    ) -> None:
        sent = referral(db)
        db.flush()
        for path in (
            f"/api/referrals/{sent.id}",
            f"/fhir/ServiceRequest/{sent.id}",
            f"/fhir/Task/{sent.id}",
            f"/referrals/{sent.id}",
        ):
            assert client.get(path, headers=outsider).status_code == 404, path

    @pytest.mark.parametrize(
        ("state", "event", "body"),
        [
            (ReferralStatus.REQUESTED, "accept", {}),
            (ReferralStatus.ACCEPTED, "schedule", {"slot_id": 1}),
            (ReferralStatus.IN_PROGRESS, "complete", {"outcome": {"text": "done"}}),
        ],
    )
    def test_acting_on_it_is_a_404_and_changes_nothing(
        self,
        client: TestClient,
        db: Session,
        outsider: dict[str, str],
        state: ReferralStatus,
        event: str,
        body: dict[str, Any],
    ) -> None:
        sent = referral(db, status=state)
        db.flush()
        response = client.post(f"/api/referrals/{sent.id}/{event}", json=body, headers=outsider)
        assert response.status_code == 404
        db.refresh(sent)
        assert sent.status == state

    def test_the_sender_cannot_accept_its_own_referral(
        self, client: TestClient, db: Session
    ) -> None:
        sent = referral(db)
        db.flush()
        response = client.post(
            f"/api/referrals/{sent.id}/accept", json={}, headers=bearer(client, "doctor")
        )
        assert response.status_code == 403
        db.refresh(sent)
        assert sent.status == ReferralStatus.REQUESTED


class TestReadingWithoutABasis:
    def test_record_timeline_and_everything_are_refused_and_audited(
        self, client: TestClient, db: Session, outsider: dict[str, str]
    ) -> None:
        for path in (
            f"/fhir/Observation?patient={STRANGER_PATIENT}",
            f"/fhir/Patient/{STRANGER_PATIENT}/$everything",
            f"/patients/{STRANGER_PATIENT}/timeline",
        ):
            assert client.get(path, headers=outsider).status_code == 403, path
        assert _denials(db, "/fhir/Observation")
        assert _denials(db, "/fhir/Patient")
        assert _denials(db, f"/patients/{STRANGER_PATIENT}/timeline")

    def test_break_the_glass_opens_it_and_shows_in_the_patients_access_log(
        self, client: TestClient, db: Session, outsider: dict[str, str]
    ) -> None:
        path = f"/fhir/Patient/{STRANGER_PATIENT}/$everything"
        assert client.get(path, headers=outsider).status_code == 403
        grant = client.post(
            f"/api/patients/{STRANGER_PATIENT}/break-glass",
            json={"reason": "unconscious, brought in by ambulance"},
            headers=outsider,
        )
        assert grant.status_code in (200, 201), grant.text
        assert client.get(path, headers=outsider).status_code == 200
        reads = db.scalars(
            select(AuditEvent).where(
                AuditEvent.patient_id == STRANGER_PATIENT,
                AuditEvent.username == OUTSIDER,
                AuditEvent.basis == "break_the_glass",
            )
        ).all()
        assert {r.action for r in reads} >= {"access.break_glass"}
        assert len(reads) >= 2


class TestNoBasisFromAReferral:
    def test_a_self_addressed_referral_gives_no_access(self, db: Session) -> None:
        doctor = actor(db, "doctor")  # township-01
        consent(db, "p00000011")
        referrals.create(
            db,
            doctor,
            form(
                to_institution_id="township-01", to_department_id="township-01:02", direction="up"
            ),
            now=utcnow(),
        )
        granted = db.scalars(
            select(CareRelationship).where(
                CareRelationship.patient_id == "p00000011", CareRelationship.kind == "referral"
            )
        ).all()
        assert granted == []

    def test_a_pretext_referral_without_a_basis_is_refused(self, db: Session) -> None:
        auth_service.create_user(
            db,
            None,
            username="pretext",
            display_name="x",
            password="pretext-pw",
            roles=[("township-02", Role.DOCTOR)],
        )
        pretender = actor(db, "pretext")
        with pytest.raises(ValidationFailed) as refused:
            referrals.create(db, pretender, form(patient_id=STRANGER_PATIENT), now=utcnow())
        assert refused.value.field == "patient_id"
