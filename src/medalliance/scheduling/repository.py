"""Every query of the scheduling domain."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, update
from sqlalchemy.orm import Session

from medalliance.scheduling.enums import SlotStatus
from medalliance.scheduling.models import Appointment, Slot


def open_for(now: datetime, *, consortium: bool) -> ColumnElement[bool]:
    """Slots bookable now: consortium bookings see reserved slots from their earlier release
    date; the public sees only unreserved slots from the public release date."""
    if consortium:
        return Slot.consortium_open_at <= now
    return and_(Slot.reserved.is_(False), Slot.public_open_at <= now)


def free_slots(
    db: Session,
    *,
    now: datetime,
    consortium: bool,
    start: datetime,
    end: datetime,
    department_id: str | None = None,
    institution_id: str | None = None,
    limit: int = 50,
) -> Sequence[Slot]:
    stmt = select(Slot).where(
        Slot.status == SlotStatus.FREE.value,
        Slot.start_at > now,
        Slot.start_at >= start,
        Slot.start_at < end,
        open_for(now, consortium=consortium),
    )
    if department_id:
        stmt = stmt.where(Slot.department_id == department_id)
    if institution_id:
        stmt = stmt.where(Slot.institution_id == institution_id)
    return db.scalars(stmt.order_by(Slot.start_at, Slot.id).limit(limit)).all()


def free_counts(
    db: Session, department_ids: Sequence[str], *, now: datetime, until: datetime
) -> dict[str, int]:
    if not department_ids:
        return {}
    stmt = (
        select(Slot.department_id, func.count())
        .where(
            Slot.department_id.in_(department_ids),
            Slot.status == SlotStatus.FREE.value,
            Slot.start_at > now,
            Slot.start_at < until,
            open_for(now, consortium=True),
        )
        .group_by(Slot.department_id)
    )
    return {dept: int(n) for dept, n in db.execute(stmt).all()}


def slot(db: Session, slot_id: int) -> Slot | None:
    return db.get(Slot, slot_id)


def claim(db: Session, slot_id: int) -> bool:
    """free → busy only if still free: of two concurrent claims exactly one matches a row."""
    stmt = (
        update(Slot)
        .where(Slot.id == slot_id, Slot.status == SlotStatus.FREE.value)
        .values(status=SlotStatus.BUSY.value)
        .execution_options(synchronize_session=False)
    )
    claimed = bool(db.execute(stmt).rowcount == 1)  # type: ignore[attr-defined]
    found = db.get(Slot, slot_id)
    if found is not None:
        db.refresh(found)
    return claimed


def release(db: Session, slot_id: int) -> None:
    stmt = (
        update(Slot)
        .where(Slot.id == slot_id)
        .values(status=SlotStatus.FREE.value)
        .execution_options(synchronize_session=False)
    )
    db.execute(stmt)
    found = db.get(Slot, slot_id)
    if found is not None:
        db.refresh(found)


def appointment(db: Session, appointment_id: str) -> Appointment | None:
    return db.get(Appointment, appointment_id)


@dataclass(frozen=True)
class SlotSearch:
    """A FHIR Slot search's criteria: the values each allows (None: any; empty: none)."""

    institution_ids: frozenset[str] | None = None
    department_ids: frozenset[str] | None = None
    statuses: frozenset[str] | None = None
    start_from: datetime | None = None
    start_to: datetime | None = None


def _slots_matching(criteria: SlotSearch) -> Select[Slot]:
    stmt = select(Slot)
    if criteria.institution_ids is not None:
        stmt = stmt.where(Slot.institution_id.in_(sorted(criteria.institution_ids)))
    if criteria.department_ids is not None:
        stmt = stmt.where(Slot.department_id.in_(sorted(criteria.department_ids)))
    if criteria.statuses is not None:
        stmt = stmt.where(Slot.status.in_(sorted(criteria.statuses)))
    if criteria.start_from:
        stmt = stmt.where(Slot.start_at >= criteria.start_from)
    if criteria.start_to:
        stmt = stmt.where(Slot.start_at < criteria.start_to)
    return stmt


def search_slots(db: Session, criteria: SlotSearch, *, offset: int, limit: int) -> Sequence[Slot]:
    stmt = _slots_matching(criteria).order_by(Slot.start_at, Slot.id)
    return db.scalars(stmt.offset(offset).limit(limit)).all()


def count_slots(db: Session, criteria: SlotSearch) -> int:
    return _count(db, _slots_matching(criteria))


@dataclass(frozen=True)
class AppointmentSearch:
    """A FHIR Appointment search's criteria, within what an institution booked or was
    booked at: the values each allows (None: any; empty: none)."""

    institution_id: str
    patient_ids: frozenset[str] | None = None
    statuses: frozenset[str] | None = None


def _appointments_matching(criteria: AppointmentSearch) -> Select[Appointment]:
    stmt = select(Appointment).where(
        or_(
            Appointment.institution_id == criteria.institution_id,
            Appointment.referrer_institution_id == criteria.institution_id,
        )
    )
    if criteria.patient_ids is not None:
        stmt = stmt.where(Appointment.patient_id.in_(sorted(criteria.patient_ids)))
    if criteria.statuses is not None:
        stmt = stmt.where(Appointment.status.in_(sorted(criteria.statuses)))
    return stmt


def search_appointments(
    db: Session, criteria: AppointmentSearch, *, offset: int, limit: int
) -> Sequence[Appointment]:
    stmt = _appointments_matching(criteria)
    stmt = stmt.order_by(Appointment.start_at.desc(), Appointment.id).offset(offset).limit(limit)
    return db.scalars(stmt).all()


def count_appointments(db: Session, criteria: AppointmentSearch) -> int:
    return _count(db, _appointments_matching(criteria))


def _count(db: Session, stmt: Select[Any]) -> int:
    return int(db.scalar(select(func.count()).select_from(stmt.subquery())) or 0)


def day_slots(db: Session, department_id: str, start: datetime, end: datetime) -> Sequence[Slot]:
    stmt = (
        select(Slot)
        .where(Slot.department_id == department_id, Slot.start_at >= start, Slot.start_at < end)
        .order_by(Slot.start_at, Slot.id)
    )
    return db.scalars(stmt).all()
