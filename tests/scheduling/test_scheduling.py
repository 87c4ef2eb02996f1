"""Slots: the reserved share for consortium referrals, its earlier release, and bookings
that never double-book a slot."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from medalliance.errors import Conflict, Forbidden, ValidationFailed
from medalliance.kit.clock import utcnow
from medalliance.referrals.enums import ReferralStatus
from medalliance.scheduling import service
from medalliance.scheduling.enums import AppointmentStatus
from referrals.factories import PATIENT, actor, open_slots, referral


class TestReservedShare:
    @pytest.mark.parametrize(
        ("count", "share", "reserved"),
        [(10, 0.3, 3), (20, 0.3, 6), (7, 0.3, 3), (4, 0.5, 2), (1, 0.3, 1)],
    )
    def test_at_least_the_share_is_reserved_spread_over_the_day(
        self, count: int, share: float, reserved: int
    ) -> None:
        chosen = service.reserved_indexes(count, share)
        assert len(chosen) == reserved
        assert 0 in chosen

    def test_thirty_percent_of_slots_and_half_of_expert_slots_are_reserved(
        self, db: Session
    ) -> None:
        ordinary = open_slots(db, count=20)
        expert = open_slots(db, count=10, expert=True, day=(utcnow() + timedelta(days=4)).date())
        assert sum(s.reserved for s in ordinary) == 6
        assert sum(s.reserved for s in expert) == 5

    def test_reserved_slots_open_to_the_consortium_fourteen_days_before_the_public(
        self, db: Session
    ) -> None:
        slots = open_slots(db, count=10)
        reserved = next(s for s in slots if s.reserved)
        public = next(s for s in slots if not s.reserved)
        assert reserved.public_open_at - reserved.consortium_open_at == timedelta(days=14)
        assert public.consortium_open_at == public.public_open_at


class TestBooking:
    def test_public_booking_cannot_take_a_reserved_slot(self, db: Session) -> None:
        reserved = next(s for s in open_slots(db) if s.reserved)
        with pytest.raises(ValidationFailed) as caught:
            service.book(
                db, actor(db, "coordinator"), slot_id=reserved.id, patient_id=PATIENT, now=utcnow()
            )
        assert caught.value.field == "slot_id"

    def test_referral_booking_before_release_is_refused(self, db: Session) -> None:
        far = (utcnow() + timedelta(days=40)).date()
        reserved = next(s for s in open_slots(db, day=far) if s.reserved)
        with pytest.raises(ValidationFailed):
            service.book(
                db,
                actor(db, "coordinator"),
                slot_id=reserved.id,
                patient_id=PATIENT,
                now=utcnow(),
                referral_id="r1",
            )

    def test_the_same_slot_is_never_booked_twice(self, db: Session) -> None:
        slot = open_slots(db, count=1)[0]
        coordinator = actor(db, "coordinator")
        service.book(
            db, coordinator, slot_id=slot.id, patient_id=PATIENT, now=utcnow(), referral_id="a"
        )
        with pytest.raises(Conflict):
            service.book(
                db,
                coordinator,
                slot_id=slot.id,
                patient_id="p00000012",
                now=utcnow(),
                referral_id="b",
            )

    def test_only_the_slots_institution_books_it(self, db: Session) -> None:
        slot = open_slots(db, count=1)[0]
        with pytest.raises(Forbidden):
            service.book(
                db,
                actor(db, "doctor"),
                slot_id=slot.id,
                patient_id=PATIENT,
                now=utcnow(),
                referral_id="a",
            )

    def test_cancelled_booking_frees_the_slot(self, db: Session) -> None:
        r = referral(db, status=ReferralStatus.SCHEDULED)
        assert r.appointment_id is not None
        appointment = service.set_status(
            db, None, r.appointment_id, AppointmentStatus.CANCELLED, utcnow()
        )
        slot = service.get_slot(db, appointment.slot_id)
        assert slot.status == "free"
        again = service.book(
            db,
            actor(db, "coordinator"),
            slot_id=slot.id,
            patient_id=PATIENT,
            now=utcnow(),
            referral_id="x",
        )
        assert again.active_slot_id == slot.id

    def test_contract_priority_hook_is_off_until_contracts_exist(self, db: Session) -> None:
        assert service.is_contracted(db, PATIENT) is False
