"""Writing referrals and the closed loop: validation names the field, the receiver gains
access, events reach the institutions concerned, outcomes come back, follow-ups are due."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from medalliance.access import service as access
from medalliance.access.enums import RelationshipKind
from medalliance.auth.enums import Role
from medalliance.errors import Conflict, Forbidden, NotFound, ValidationFailed
from medalliance.events import service as events
from medalliance.kit.clock import utcnow
from medalliance.referrals import repository, service
from medalliance.referrals.enums import Box, ReferralEvent, ReferralStatus
from medalliance.referrals.repository import QueueFilter
from medalliance.referrals.schemas import Outcome, TransitionRequest
from medalliance.registry.models import Department
from referrals.factories import (
    PATIENT,
    actor,
    consent,
    down_form,
    form,
    open_slots,
    referral,
    staff,
    village_doctor,
)

E, S = ReferralEvent, ReferralStatus


class TestBadInput:
    @pytest.mark.parametrize(
        ("overrides", "field"),
        [
            ({"to_institution_id": "mars-hospital"}, "to_institution_id"),
            ({"to_department_id": "city-hospital:03.04"}, "to_department_id"),
            ({"reason_code": ""}, "reason_code"),
            ({"reason_code": "stable"}, "reason_code"),  # a down criterion on an up referral
            ({"diagnoses": []}, "diagnoses"),
            ({"diagnoses": ["I25", "hypertension"]}, "diagnoses[1]"),
            ({"patient_id": "p99999999"}, "patient_id"),
            ({"attachments": ["not a reference"]}, "attachments[0]"),
            ({"direction": "down"}, "direction"),  # down from a township to the county
        ],
    )
    def test_bad_field_is_named_and_nothing_is_written(
        self, db: Session, overrides: dict[str, object], field: str
    ) -> None:
        consent(db)
        with pytest.raises(ValidationFailed) as caught:
            service.create(db, actor(db, "doctor"), form(**overrides), now=utcnow())
        assert caught.value.field == field

    def test_inactive_department_is_refused(self, db: Session) -> None:
        consent(db)
        dept = db.get(Department, "county-hospital:03.04")
        assert dept is not None
        dept.active = False
        db.flush()
        with pytest.raises(ValidationFailed) as caught:
            service.create(db, actor(db, "doctor"), form(), now=utcnow())
        assert caught.value.field == "to_department_id"

    def test_patient_without_consent_to_share_is_refused(self, db: Session) -> None:
        with pytest.raises(ValidationFailed) as caught:
            service.create(db, actor(db, "doctor"), form(), now=utcnow())
        assert caught.value.field == "patient_id"

    def test_down_referral_without_care_plans_is_refused(self, db: Session) -> None:
        up = referral(db, status=S.COMPLETED)
        with pytest.raises(ValidationFailed) as caught:
            service.create(
                db,
                actor(db, "specialist", "county-hospital"),
                down_form(previous_referral_id=up.id, medication_plan=""),
                now=utcnow(),
            )
        assert caught.value.field == "medication_plan"


class TestAccess:
    def test_receiving_institution_gains_a_referral_care_relationship(self, db: Session) -> None:
        r = referral(db)
        rel = access.clinical_basis(db, actor(db, "coordinator"), PATIENT, utcnow())
        assert rel is not None
        assert repository.referral(db, r.id) is not None

    @pytest.mark.parametrize("status", [S.REJECTED, S.CANCELLED, S.FAILED])
    def test_access_from_a_referral_ends_when_it_will_not_be_treated(
        self, db: Session, status: ReferralStatus
    ) -> None:
        from medalliance.access import repository as access_repository

        r = referral(db, status=status)
        later = utcnow() + timedelta(seconds=1)
        # Consent still covers the patient in these scenarios; the referral basis is gone.
        assert (
            access_repository.relationship(
                db, PATIENT, "county-hospital", RelationshipKind.REFERRAL.value, r.id
            )
            is not None
        )
        assert not access_repository.has_relationship(db, PATIENT, "county-hospital", later)

    def test_access_from_a_completed_referral_stays(self, db: Session) -> None:
        from medalliance.access import repository as access_repository

        referral(db, status=S.COMPLETED)
        later = utcnow() + timedelta(seconds=1)
        assert access_repository.has_relationship(db, PATIENT, "county-hospital", later)

    def test_a_third_institution_does_not_see_the_referral(self, db: Session) -> None:
        r = referral(db)
        outsider = staff(db, "tcm_doctor", Role.DOCTOR, "county-tcm")
        with pytest.raises(NotFound):
            service.get(db, outsider, r.id, now=utcnow())
        with pytest.raises(NotFound):
            service.transition(db, outsider, r.id, E.ACCEPT, TransitionRequest(), now=utcnow())

    def test_sender_may_not_accept_its_own_referral(self, db: Session) -> None:
        r = referral(db)
        with pytest.raises(Forbidden):
            service.transition(
                db, actor(db, "doctor"), r.id, E.ACCEPT, TransitionRequest(), now=utcnow()
            )

    def test_queue_shows_only_the_institutions_own_side(self, db: Session) -> None:
        r = referral(db)
        incoming = service.queue(
            db, actor(db, "coordinator"), QueueFilter(box=Box.INCOMING), now=utcnow()
        )
        outgoing = service.queue(
            db, actor(db, "coordinator"), QueueFilter(box=Box.OUTGOING), now=utcnow()
        )
        other = service.queue(
            db, staff(db, "tcm_coord", Role.COORDINATOR, "county-tcm"), QueueFilter(), now=utcnow()
        )
        assert r.id in [i.referral.id for i in incoming.items]
        assert r.id not in [i.referral.id for i in outgoing.items]
        assert r.id not in [i.referral.id for i in other.items]

    def test_village_doctor_refers_up_to_the_township(self, db: Session) -> None:
        consent(db)
        r = service.create(
            db,
            village_doctor(db),
            form(
                to_institution_id="township-01",
                to_department_id="township-01:02",
                diagnoses=["I10"],
            ),
            now=utcnow(),
        )
        assert r.status == S.REQUESTED
        assert r.recommendation["level"] == "primary"


class TestEvents:
    def test_requested_accepted_rejected_reach_both_institutions(self, db: Session) -> None:
        r = referral(db, status=S.ACCEPTED)
        referral(db, status=S.REJECTED)
        for kind in ("referral.requested", "referral.accepted", "referral.rejected"):
            found = [
                e
                for e in events.events_of_type(db, kind)
                if e.payload["referral"] in {r.id} or kind == "referral.rejected"
            ]
            assert found, kind
            assert set(found[0].institution_ids) == {"township-01", "county-hospital"}


class TestGreenChannel:
    def test_emergency_is_accepted_by_default_and_the_emergency_department_told(
        self, db: Session
    ) -> None:
        r = referral(db, urgency="emergency", diagnoses=["I21.0"], reason_code="acute_critical")
        assert r.status == S.ACCEPTED
        assert r.green_channel
        told = [
            e
            for e in events.events_of_type(db, "referral.green_channel")
            if e.payload["referral"] == r.id
        ]
        assert told[0].payload["department"] == "county-hospital:20"
        assert told[0].institution_ids == ["county-hospital"]

    def test_emergency_may_still_be_rejected_with_a_reason(self, db: Session) -> None:
        r = referral(db, urgency="emergency", diagnoses=["I21.0"], reason_code="acute_critical")
        with pytest.raises(ValidationFailed):
            service.transition(
                db, actor(db, "coordinator"), r.id, E.REJECT, TransitionRequest(), now=utcnow()
            )
        service.transition(
            db,
            actor(db, "coordinator"),
            r.id,
            E.REJECT,
            TransitionRequest(reason="cath lab down, go to the city"),
            now=utcnow(),
        )
        assert r.status == S.REJECTED

    def test_emergency_needs_no_sharing_consent(self, db: Session) -> None:
        # The township saw the patient itself (an encounter), but there is no consent.
        access.record_relationship(
            db,
            patient_id=PATIENT,
            institution_id="township-01",
            kind=RelationshipKind.ENCOUNTER,
            source_type="Encounter",
            source_id="enc-1",
        )
        r = service.create(
            db,
            actor(db, "doctor"),
            form(urgency="emergency", diagnoses=["I63"], reason_code="acute_critical"),
            now=utcnow(),
        )
        assert r.status == S.ACCEPTED


class TestClosedLoop:
    def test_up_referral_cannot_complete_without_an_outcome(self, db: Session) -> None:
        r = referral(db, status=S.IN_PROGRESS)
        with pytest.raises(ValidationFailed) as caught:
            service.transition(
                db, actor(db, "coordinator"), r.id, E.COMPLETE, TransitionRequest(), now=utcnow()
            )
        assert caught.value.field == "outcome"

    def test_outcome_is_announced_and_flagged_for_the_referrer_until_opened(
        self, db: Session
    ) -> None:
        r = referral(db, status=S.COMPLETED)
        assert r.outcome_reference
        assert r.outcome_reference.startswith("DocumentReference/")
        done = [
            e
            for e in events.events_of_type(db, "referral.completed")
            if e.payload["referral"] == r.id
        ]
        assert done[0].payload["outcome"] == r.outcome_reference
        doctor = actor(db, "doctor")
        mine = service.queue(
            db, doctor, QueueFilter(box=Box.OUTGOING, statuses=["completed"]), now=utcnow()
        )
        assert [i.outcome_unseen for i in mine.items if i.referral.id == r.id] == [True]
        service.get(db, doctor, r.id, now=utcnow())
        again = service.queue(
            db, doctor, QueueFilter(box=Box.OUTGOING, statuses=["completed"]), now=utcnow()
        )
        assert [i.outcome_unseen for i in again.items if i.referral.id == r.id] == [False]

    def test_down_referral_continues_the_chain_and_creates_a_follow_up(self, db: Session) -> None:
        up = referral(db, status=S.COMPLETED)
        specialist = actor(db, "specialist", "county-hospital")
        now = utcnow()
        down = service.create(db, specialist, down_form(previous_referral_id=up.id), now=now)
        assert down.episode_id == up.episode_id
        township = actor(db, "doctor")
        for event in (E.ACCEPT, E.ARRIVE, E.COMPLETE):
            service.transition(db, township, down.id, event, TransitionRequest(), now=now)
        task = repository.follow_up(db, down.id)
        assert task is not None
        assert task.institution_id == "township-01"
        assert task.due_at == now + timedelta(days=14)

    def test_down_referral_carries_the_outcome_to_the_grassroots_doctor(self, db: Session) -> None:
        up = referral(db, status=S.COMPLETED)
        assert up.outcome_reference
        specialist = actor(db, "specialist", "county-hospital")
        down = service.create(db, specialist, down_form(previous_referral_id=up.id), now=utcnow())
        assert up.outcome_reference in down.attachments
        seen = service.get(db, actor(db, "doctor"), down.id, now=utcnow())
        assert seen.continued is not None
        assert seen.continued.outcome_summary == up.outcome_summary


class TestConcurrency:
    def test_stale_version_conflicts(self, db: Session) -> None:
        r = referral(db)
        with pytest.raises(Conflict):
            service.transition(
                db,
                actor(db, "coordinator"),
                r.id,
                E.ACCEPT,
                TransitionRequest(),
                now=utcnow(),
                expected_version=r.version - 1,
            )

    def test_second_accept_of_same_referral_conflicts(self, db: Session) -> None:
        r = referral(db)
        service.transition(
            db, actor(db, "coordinator"), r.id, E.ACCEPT, TransitionRequest(), now=utcnow()
        )
        with pytest.raises(Conflict):
            service.transition(
                db,
                actor(db, "specialist", "county-hospital"),
                r.id,
                E.ACCEPT,
                TransitionRequest(),
                now=utcnow(),
            )

    def test_accept_with_a_slot_schedules_in_one_step(self, db: Session) -> None:
        r = referral(db)
        slot = open_slots(db)[0]
        service.transition(
            db,
            actor(db, "coordinator"),
            r.id,
            E.ACCEPT,
            TransitionRequest(slot_id=slot.id),
            now=utcnow(),
        )
        assert r.status == S.SCHEDULED
        assert r.appointment_id is not None
        other = referral(db)
        with pytest.raises(Conflict):
            service.transition(
                db,
                actor(db, "coordinator"),
                other.id,
                E.ACCEPT,
                TransitionRequest(slot_id=slot.id),
                now=utcnow(),
            )
        assert other.status == S.REQUESTED or db.in_transaction()

    def test_cancel_frees_the_booked_slot(self, db: Session) -> None:
        r = referral(db, status=S.SCHEDULED)
        service.transition(
            db,
            actor(db, "doctor"),
            r.id,
            E.CANCEL,
            TransitionRequest(reason="patient recovered"),
            now=utcnow(),
        )
        assert r.status == S.CANCELLED
        _ = Outcome  # keep the import for the schema under test
