"""Scheduling ORM. A slot is booked by a conditional UPDATE (free → busy) and the booking
row holds ``active_slot_id`` UNIQUE, so two bookings of one slot cannot both commit."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from medalliance.db import Base
from medalliance.kit.clock import utcnow
from medalliance.kit.columns import check_in
from medalliance.scheduling.enums import AppointmentStatus, SlotStatus


class Slot(Base):
    __tablename__ = "slot"
    __table_args__ = (
        check_in("status", SlotStatus),
        Index("ix_slot_department_start", "department_id", "start_at"),
        Index("ix_slot_institution_start", "institution_id", "start_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    institution_id: Mapped[str] = mapped_column(ForeignKey("institution.id"))
    department_id: Mapped[str] = mapped_column(ForeignKey("department.id"))
    practitioner_id: Mapped[str | None] = mapped_column(ForeignKey("practitioner.id"))
    start_at: Mapped[datetime] = mapped_column()
    end_at: Mapped[datetime] = mapped_column()
    expert: Mapped[bool] = mapped_column(Boolean, default=False)
    # Reserved for consortium referrals (and, through the hook, contracted residents).
    reserved: Mapped[bool] = mapped_column(Boolean, default=False)
    consortium_open_at: Mapped[datetime] = mapped_column()
    public_open_at: Mapped[datetime] = mapped_column()
    status: Mapped[str] = mapped_column(String(20), default=SlotStatus.FREE.value)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Appointment(Base):
    __tablename__ = "appointment"
    __table_args__ = (
        check_in("status", AppointmentStatus),
        Index("ix_appointment_institution_start", "institution_id", "start_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("slot.id"), index=True)
    # Equal to slot_id while the booking holds the slot, NULL once cancelled: the UNIQUE
    # constraint is the last line of defence against a double booking on any backend.
    active_slot_id: Mapped[int | None] = mapped_column(Integer, unique=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("person.id"), index=True)
    institution_id: Mapped[str] = mapped_column(ForeignKey("institution.id"))
    department_id: Mapped[str] = mapped_column(ForeignKey("department.id"))
    referrer_institution_id: Mapped[str | None] = mapped_column(ForeignKey("institution.id"))
    referral_id: Mapped[str | None] = mapped_column(String(32), index=True)
    start_at: Mapped[datetime] = mapped_column()
    end_at: Mapped[datetime] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default=AppointmentStatus.BOOKED.value)
    booked_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
