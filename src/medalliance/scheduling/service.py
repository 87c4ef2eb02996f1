"""Scheduling rules: opening a day of slots with its reserved share, finding and booking
slots for consortium referrals, and appointment status changes."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from medalliance.access import service as access
from medalliance.audit import service as audit
from medalliance.auth.enums import Role
from medalliance.auth.principal import Actor
from medalliance.care_levels import adapters
from medalliance.config import get_settings
from medalliance.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed
from medalliance.kit.fhir import (
    DateRange,
    ParsedSearch,
    SearchPage,
    narrowed,
    overlap,
    parse_search,
    search_values,
    split_prefix,
)
from medalliance.kit.ids import new_id
from medalliance.records.dates import parse_range
from medalliance.registry.models import Department
from medalliance.scheduling import repository, resources
from medalliance.scheduling.enums import AppointmentStatus, SlotStatus
from medalliance.scheduling.models import Appointment, Slot
from medalliance.scheduling.schemas import DayOpen

MAX_SLOTS_PER_DAY = 200


def reserved_indexes(count: int, share: float) -> set[int]:
    """At least ``share`` of ``count`` slots, spread evenly over the day so that referred
    patients are not all pushed to the afternoon."""
    reserved = math.ceil(count * share - 1e-9)
    if reserved <= 0:
        return set()
    return {math.floor(j * count / reserved) for j in range(reserved)}


def is_contracted(db: Session, patient_id: str) -> bool:
    """Contracted residents (家庭医生签约) have priority access to the reserved pool.

    TODO(family_doctor): answer from ``family_doctor.service`` once contracts exist; until
    then nobody is contracted and the reserved pool serves referrals only.
    """
    return False


def open_day(
    db: Session,
    actor: Actor,
    department: Department,
    *,
    day: date,
    count: int,
    first_start: time,
    minutes: int,
    expert: bool = False,
    practitioner_id: str | None = None,
    now: datetime,
) -> list[Slot]:
    """Create a department's slots for one day; the configured share is reserved."""
    _require_staff_of(actor, department.institution_id)
    if not department.active:
        raise ValidationFailed("department is inactive", field="department_id")
    if not 1 <= count <= MAX_SLOTS_PER_DAY:
        raise ValidationFailed(f"count must be 1..{MAX_SLOTS_PER_DAY}", field="count")
    if not 5 <= minutes <= 240:
        raise ValidationFailed("minutes must be 5..240", field="minutes")
    settings = get_settings()
    zone = ZoneInfo(settings.timezone)
    midnight = datetime.combine(day, time(0, 0), tzinfo=zone)
    public_open = midnight - timedelta(days=settings.slot_public_booking_days)
    consortium_open = public_open - timedelta(days=settings.slot_referral_release_days)
    share = settings.slot_reserved_share_expert if expert else settings.slot_reserved_share
    reserved = reserved_indexes(count, share)
    first = datetime.combine(day, first_start, tzinfo=zone)
    slots = [
        Slot(
            institution_id=department.institution_id,
            department_id=department.id,
            practitioner_id=practitioner_id,
            start_at=first + timedelta(minutes=minutes * i),
            end_at=first + timedelta(minutes=minutes * (i + 1)),
            expert=expert,
            reserved=i in reserved,
            consortium_open_at=consortium_open if i in reserved else public_open,
            public_open_at=public_open,
            status=SlotStatus.FREE.value,
            created_at=now,
        )
        for i in range(count)
    ]
    db.add_all(slots)
    db.flush()
    audit.record(
        db,
        actor,
        "scheduling.day.open",
        resource_type="Slot",
        resource_id=department.id,
        detail={"day": day.isoformat(), "count": count, "reserved": len(reserved)},
    )
    return slots


def free_slots(
    db: Session,
    *,
    now: datetime,
    department_id: str | None = None,
    institution_id: str | None = None,
    days: int = 28,
    consortium: bool = True,
    limit: int = 50,
) -> Sequence[Slot]:
    return repository.free_slots(
        db,
        now=now,
        consortium=consortium,
        start=now,
        end=now + timedelta(days=days),
        department_id=department_id,
        institution_id=institution_id,
        limit=limit,
    )


def free_capacity(
    db: Session, department_ids: Sequence[str], *, now: datetime, days: int = 14
) -> dict[str, int]:
    """Free consortium-bookable slots per department over the next ``days``."""
    return repository.free_counts(db, department_ids, now=now, until=now + timedelta(days=days))


def book(
    db: Session,
    actor: Actor,
    *,
    slot_id: int,
    patient_id: str,
    now: datetime,
    referral_id: str | None = None,
    referrer_institution_id: str | None = None,
) -> Appointment:
    """Book one slot. Of two coordinators booking the same slot at once exactly one wins:
    the conditional UPDATE matches one row, the loser gets 409 (nothing half-written)."""
    slot = repository.slot(db, slot_id)
    if slot is None:
        raise ValidationFailed(f"slot {slot_id} does not exist", field="slot_id")
    _require_staff_of(actor, slot.institution_id)
    consortium = referral_id is not None or is_contracted(db, patient_id)
    opens = slot.consortium_open_at if consortium else slot.public_open_at
    if slot.reserved and not consortium:
        raise ValidationFailed("slot is reserved for consortium referrals", field="slot_id")
    if opens > now:
        raise ValidationFailed("slot is not open for booking yet", field="slot_id")
    if slot.start_at <= now:
        raise ValidationFailed("slot is in the past", field="slot_id")
    if not repository.claim(db, slot_id):
        raise Conflict("slot was just booked by someone else; choose another", field="slot_id")
    appointment = Appointment(
        id=new_id(),
        slot_id=slot.id,
        active_slot_id=slot.id,
        patient_id=patient_id,
        institution_id=slot.institution_id,
        department_id=slot.department_id,
        referrer_institution_id=referrer_institution_id,
        referral_id=referral_id,
        start_at=slot.start_at,
        end_at=slot.end_at,
        status=AppointmentStatus.BOOKED.value,
        booked_by=actor.username,
        created_at=now,
        updated_at=now,
    )
    db.add(appointment)
    try:
        db.flush()
    except IntegrityError as exc:
        raise Conflict("slot was just booked by someone else", field="slot_id") from exc
    audit.record(
        db,
        actor,
        "scheduling.appointment.book",
        resource_type="Appointment",
        resource_id=appointment.id,
        patient_id=patient_id,
        detail={"slot": slot.id, "referral": referral_id},
    )
    return appointment


def set_status(
    db: Session, actor: Actor | None, appointment_id: str, status: AppointmentStatus, now: datetime
) -> Appointment:
    found = repository.appointment(db, appointment_id)
    if found is None:
        raise NotFound(f"appointment {appointment_id} not found")
    found.status = status.value
    found.updated_at = now
    if status == AppointmentStatus.CANCELLED and found.active_slot_id is not None:
        found.active_slot_id = None
        db.flush()  # the unique holder goes first, then the slot is free again
        repository.release(db, found.slot_id)
    db.flush()
    audit.record(
        db,
        actor,
        f"scheduling.appointment.{status.value}",
        resource_type="Appointment",
        resource_id=found.id,
        patient_id=found.patient_id,
    )
    return found


def get_slot(db: Session, slot_id: int) -> Slot:
    found = repository.slot(db, slot_id)
    if found is None:
        raise NotFound(f"Slot/{slot_id} not found")
    return found


def get_appointment(db: Session, appointment_id: str) -> Appointment | None:
    return repository.appointment(db, appointment_id)


def day_slots(db: Session, department_id: str, day: date) -> Sequence[Slot]:
    zone = ZoneInfo(get_settings().timezone)
    start = datetime.combine(day, time(0, 0), tzinfo=zone)
    return repository.day_slots(db, department_id, start, start + timedelta(days=1))


def _require_staff_of(actor: Actor, institution_id: str) -> None:
    if actor.role == Role.ADMIN:
        return
    if actor.institution_id != institution_id:
        raise Forbidden("only staff of the slot's institution may manage its slots")


def open_day_for(db: Session, actor: Actor, body: DayOpen, *, now: datetime) -> list[Slot]:
    """The API/page entry: resolve the department, then open the day."""
    department = adapters.department(db, body.department_id)
    if department is None:
        raise ValidationFailed(f"{body.department_id} is not a department", field="department_id")
    return open_day(
        db,
        actor,
        department,
        day=body.day,
        count=body.count,
        first_start=body.first_start,
        minutes=body.minutes,
        expert=body.expert,
        practitioner_id=body.practitioner_id,
        now=now,
    )


def fhir_read(
    db: Session, actor: Actor, resource_type: str, resource_id: str, *, now: datetime
) -> dict[str, Any]:
    """Slot (reference data) or Appointment (patient data: scoped, checked and audited)."""
    if resource_type == "Slot":
        if not resource_id.isdigit():
            raise NotFound(f"Slot/{resource_id} not found")
        return resources.slot(get_slot(db, int(resource_id)))
    found = repository.appointment(db, resource_id)
    if found is None or actor.institution_id not in (
        found.institution_id,
        found.referrer_institution_id,
    ):
        raise NotFound(f"Appointment/{resource_id} not found")
    basis = access.require_clinical_access(db, actor, found.patient_id, now)
    access.audit_read(
        db,
        actor,
        patient_id=found.patient_id,
        basis=basis,
        resource_type="Appointment",
        resource_id=found.id,
    )
    return resources.appointment(found)


# What each search reads, by name and type (``institution`` and ``department`` are ours:
# R4 Slot has no such parameters; ``actor`` reads the Patient participant only, a 400 for
# another). The CapabilityStatement lists them, so what it advertises is what a search reads.
SEARCH_PARAMS: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "Slot": (
        ("status", "token"), ("start", "date"), ("schedule", "reference"),
        ("institution", "reference"), ("department", "reference"),
    ),
    "Appointment": (("patient", "reference"), ("actor", "reference"), ("status", "token")),
}  # fmt: skip


def fhir_search(
    db: Session,
    actor: Actor,
    resource_type: str,
    params: Sequence[tuple[str, str]],
    *,
    strict: bool,
) -> SearchPage:
    """Slots (reference data) or Appointments (scoped to the actor's institution, either
    side; each page read is audited, and so is every search naming a patient)."""
    read = [name for name, _ in SEARCH_PARAMS[resource_type]]
    parsed = parse_search(params, resource_type, read, strict=strict)
    if resource_type == "Slot":
        return _slot_page(db, parsed)
    return _appointment_page(db, actor, parsed)


def _slot_page(db: Session, parsed: ParsedSearch) -> SearchPage:
    page, criteria = parsed.page, _slot_criteria(parsed.applied)
    rows = repository.search_slots(db, criteria, offset=page.offset, limit=page.count + 1)
    total = repository.count_slots(db, criteria) if parsed.counted else None
    shown = [resources.slot(s) for s in rows[: page.count]]
    return SearchPage(shown, parsed, has_more=len(rows) > page.count, total=total)


def _slot_criteria(params: Sequence[tuple[str, str]]) -> repository.SlotSearch:
    """Comma-separated values OR-ed, a repeated parameter (or ``schedule`` and
    ``department``, which name the same) AND-ed: each occurrence narrows the search."""
    found = repository.SlotSearch()
    for name, value in params:
        values = search_values(value)
        if name == "status":
            found = replace(found, statuses=narrowed(found.statuses, values))
        elif name == "institution":
            found = replace(found, institution_ids=narrowed(found.institution_ids, values))
        elif name in ("schedule", "department"):
            found = replace(found, department_ids=narrowed(found.department_ids, values))
        elif name == "start":
            low, high = overlap((found.start_from, found.start_to), _start_range(value))
            found = replace(found, start_from=low, start_to=high)
    return found


def _appointment_page(db: Session, actor: Actor, parsed: ParsedSearch) -> SearchPage:
    if actor.institution_id is None:
        raise Forbidden("appointments belong to an institution")
    page, criteria = parsed.page, _appointment_criteria(actor.institution_id, parsed.applied)
    rows = repository.search_appointments(db, criteria, offset=page.offset, limit=page.count + 1)
    shown = list(rows[: page.count])
    # A named patient is audited whatever the page shows: a count reads their record too.
    patients = {a.patient_id for a in shown} | (criteria.patient_ids or set())
    if patients:
        audit.record(
            db, actor, "search", resource_type="Appointment", detail={"patients": sorted(patients)}
        )
    total = repository.count_appointments(db, criteria) if parsed.counted else None
    found = [resources.appointment(a) for a in shown]
    return SearchPage(found, parsed, has_more=len(rows) > page.count, total=total)


def _appointment_criteria(
    institution_id: str, params: Sequence[tuple[str, str]]
) -> repository.AppointmentSearch:
    """Comma-separated values OR-ed, a repeated parameter (or ``patient`` and ``actor``)
    AND-ed: each occurrence narrows the search."""
    found = repository.AppointmentSearch(institution_id)
    for name, value in params:
        values = search_values(value)
        if name == "status":
            found = replace(found, statuses=narrowed(found.statuses, values))
        elif name in ("patient", "actor"):
            patient_ids = narrowed(found.patient_ids, _patient_ids(name, values))
            found = replace(found, patient_ids=patient_ids)
    return found


def _patient_ids(name: str, values: Sequence[str]) -> list[str]:
    # An Appointment's other participant, its institution, is what the search is scoped to.
    if name == "actor" and not all(v.startswith("Patient/") for v in values):
        raise DomainError("actor reads Patient/<id> only", field="actor")
    return [v.removeprefix("Patient/") for v in values]


_MICROSECOND = timedelta(microseconds=1)
_END_OF_TIME = datetime.max.replace(tzinfo=UTC)
# The prefixes a ``start`` search reads, and the [from, to) each makes of the value's
# [first, after) (R4 search: ``gt2026-11-28`` is after that whole day, ``le`` up to its end).
_START_RANGES: Final[dict[str, Callable[[datetime, datetime], DateRange]]] = {
    "eq": lambda first, after: (first, after),
    "ge": lambda first, after: (first, None),
    "gt": lambda first, after: (after, None),
    "le": lambda first, after: (None, after),
    "lt": lambda first, after: (None, first),
}


def _start_range(value: str) -> DateRange:
    """The [from, to) a ``start`` value asks (None: open on that side): the precision
    written is the range, and a date without a zone is the consortium's, as in the
    record's date searches (``records.dates``)."""
    prefix, raw = split_prefix(value)
    bounds = parse_range(raw) if prefix in _START_RANGES else None
    if bounds is None:
        raise DomainError(
            "start takes [eq|ge|gt|le|lt] and a date or a date-time (2026-11-28, "
            "2026-11-28T08:00+08:00)",
            field="start",
        )
    first, last = bounds
    after = last + _MICROSECOND if last < _END_OF_TIME else last
    return _START_RANGES[prefix](first, after)
