"""Referral rules: writing a referral, every transition (with its side effects: booking,
outcome, follow-up, access, outbox events, audit) and the read models of the queues."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from medalliance.access import service as access
from medalliance.access.enums import RelationshipKind
from medalliance.audit import service as audit
from medalliance.auth.principal import Actor
from medalliance.care_levels import adapters as registry
from medalliance.care_levels import service as care_levels
from medalliance.care_levels.enums import CARE_LEVEL_RANK
from medalliance.config import get_settings
from medalliance.errors import Conflict, Forbidden, NotFound, ValidationFailed
from medalliance.events import service as events
from medalliance.kit.ids import new_id
from medalliance.referrals import adapters, repository, resources, validation, workflow
from medalliance.referrals.enums import (
    AWAITING_DECISION,
    Box,
    Direction,
    FollowUpStatus,
    ReferralEvent,
    ReferralStatus,
    Side,
    Urgency,
)

# Re-exported: the indicators worker reads the change feed through this service.
from medalliance.referrals.feed import ReferralChange as ReferralChange
from medalliance.referrals.feed import changed_since as changed_since
from medalliance.referrals.models import (
    Referral,
    ReferralEscalation,
    ReferralFollowUp,
    ReferralHistory,
)
from medalliance.referrals.repository import QueueFilter
from medalliance.referrals.schemas import Outcome, ReferralCreate, TransitionRequest
from medalliance.registry.models import Institution
from medalliance.scheduling import service as scheduling
from medalliance.scheduling.enums import AppointmentStatus

E = ReferralEvent


class VersionMismatch(Conflict):
    """If-Match named an older version: someone changed the referral since it was read."""

    code = "version-mismatch"


# --- writing a referral --------------------------------------------------------------------


def create(db: Session, actor: Actor, data: ReferralCreate, *, now: datetime) -> Referral:
    """Validate the referral form completely before writing anything, then store it as a
    draft and, unless asked to keep the draft, submit it."""
    here = validation.actor_institution(db, actor)
    patient = validation.patient(db, data.patient_id)
    target = validation.target(db, data.to_institution_id)
    validation.check_direction(here, target, data.direction)
    validation.check_departments(db, data, here, target)
    catalogue = care_levels.current(db)
    if data.reason_code not in {r.code for r in care_levels.reasons(catalogue, data.direction)}:
        raise ValidationFailed(
            "choose a referral-up reason"
            if data.direction == Direction.UP
            else "choose a referral-down criterion",
            field="reason_code",
        )
    if not data.diagnoses:
        raise ValidationFailed("at least one ICD-10 diagnosis is required", field="diagnoses")
    rules = care_levels.diagnosis_rules(catalogue, data.diagnoses)
    if data.direction == Direction.DOWN:
        validation.require_plans(data)
    previous = validation.previous(db, actor, data.previous_referral_id, patient.id)
    validation.check_access(db, actor, patient.id, target.id, data.urgency, now)
    for index, reference in enumerate(data.attachments):
        if not adapters.record_exists(db, actor, reference, now):
            raise ValidationFailed(
                f"{reference} is not a record of this patient you may attach",
                field=f"attachments[{index}]",
            )
    level = max((r.level for r in rules), key=lambda lv: CARE_LEVEL_RANK[lv])
    referral = Referral(
        id=new_id(),
        patient_id=patient.id,
        patient_name=patient.name,
        episode_id=previous.episode_id if previous else new_id(),
        previous_referral_id=previous.id if previous else None,
        direction=data.direction.value,
        urgency=data.urgency.value,
        status=ReferralStatus.DRAFT.value,
        green_channel=data.urgency == Urgency.EMERGENCY,
        from_institution_id=here.id,
        from_department_id=data.from_department_id,
        from_practitioner_id=data.from_practitioner_id or validation.practitioner_of(db, actor),
        to_institution_id=target.id,
        to_department_id=data.to_department_id,
        to_practitioner_id=data.to_practitioner_id,
        requester_user_id=actor.user_id,
        requester_name=actor.username,
        reason_code=data.reason_code,
        reason_text=data.reason_text,
        diagnoses=[{"code": r.code, "display": r.name} for r in rules],
        history_summary=data.history_summary,
        current_treatment=data.current_treatment,
        # A down referral carries the outcome of the one it continues (closed loop).
        attachments=list(dict.fromkeys([*data.attachments, *_carried_outcome(previous)])),
        rehab_plan=data.rehab_plan,
        medication_plan=data.medication_plan,
        follow_up_plan=data.follow_up_plan,
        recommendation={
            "catalogue_version": catalogue.version,
            "level": level.value,
            "fit": care_levels.level_fit(here.level, level, any(r.must_refer for r in rules)),
        },
        created_at=now,
        updated_at=now,
    )
    db.add(referral)
    db.flush()
    audit.record(
        db,
        actor,
        "referral.create",
        resource_type="ServiceRequest",
        resource_id=referral.id,
        patient_id=patient.id,
        detail={"to": target.id, "direction": referral.direction, "urgency": referral.urgency},
    )
    if data.submit:
        _submit(db, actor, referral, now)
    return referral


# --- transitions ---------------------------------------------------------------------------


def deadline_for(urgency: str) -> timedelta:
    settings = get_settings()
    minutes = {
        Urgency.EMERGENCY: settings.referral_deadline_emergency_minutes,
        Urgency.URGENT: settings.referral_deadline_urgent_minutes,
        Urgency.ROUTINE: settings.referral_deadline_routine_minutes,
    }[Urgency(urgency)]
    return timedelta(minutes=minutes)


def transition(
    db: Session,
    actor: Actor,
    referral_id: str,
    event: ReferralEvent,
    body: TransitionRequest,
    *,
    now: datetime,
    expected_version: int | None = None,
) -> Referral:
    """One step of the workflow by one side; 404 unseen, 403 wrong side, 409 wrong state or
    lost race, 422 a missing reason/slot/outcome. Nothing is half-written."""
    referral = _visible(db, actor, referral_id)
    if expected_version is not None and expected_version != referral.version:
        raise VersionMismatch(
            f"referral changed since you read it (now version {referral.version})"
        )
    if event == E.AUTO_ACCEPT:
        raise Forbidden("only the platform accepts on the green channel")
    side = workflow.choose_side(event, validation.sides(actor, referral))
    with _optimistic():
        if event == E.SUBMIT:
            _submit(db, actor, referral, now)
            return referral
        has_outcome = body.outcome is not None and bool(
            body.outcome.reference or body.outcome.text.strip()
        )
        _record(
            db,
            workflow.apply(
                referral, event, side, actor, now, reason=body.reason, has_outcome=has_outcome
            ),
        )
        _effects(db, actor, referral, event, body, now)
        db.flush()
    audit.record(
        db,
        actor,
        f"referral.{event.value}",
        resource_type="Task",
        resource_id=referral.id,
        patient_id=referral.patient_id,
        detail={"status": referral.status, "reason": body.reason.strip()},
    )
    return referral


@contextmanager
def _optimistic() -> Iterator[None]:
    try:
        yield
    except StaleDataError as exc:
        raise Conflict(
            "someone else changed this referral at the same moment; reload to see it"
        ) from exc


def _record(db: Session, row: ReferralHistory) -> None:
    db.add(row)


def _effects(
    db: Session,
    actor: Actor,
    referral: Referral,
    event: ReferralEvent,
    body: TransitionRequest,
    now: datetime,
) -> None:
    if event in (E.ACCEPT, E.REJECT):
        referral.decided_at = now
    if event == E.ACCEPT and body.slot_id is not None:
        _record(db, workflow.apply(referral, E.SCHEDULE, Side.RECEIVER, actor, now))
        _book(db, actor, referral, body.slot_id, now)
    elif event == E.SCHEDULE:
        if body.slot_id is None:
            raise ValidationFailed("choose a slot to schedule the patient", field="slot_id")
        _book(db, actor, referral, body.slot_id, now)
    elif event == E.ARRIVE:
        _appointment(db, actor, referral, AppointmentStatus.ARRIVED, now)
    elif event == E.COMPLETE:
        _complete(db, actor, referral, body.outcome, now)
    elif event in (E.REJECT, E.CANCEL):
        _appointment(db, actor, referral, AppointmentStatus.CANCELLED, now)
    elif event == E.FAIL:
        _appointment(db, actor, referral, AppointmentStatus.NOSHOW, now)
    if event in (E.REJECT, E.CANCEL, E.FAIL):
        # The receiver will not treat the patient on this referral: its access ends.
        access.end_relationship(
            db,
            patient_id=referral.patient_id,
            institution_id=referral.to_institution_id,
            kind=RelationshipKind.REFERRAL,
            source_id=referral.id,
            now=now,
        )
    if event in (E.ACCEPT, E.REJECT, E.COMPLETE, E.CANCEL, E.FAIL):
        _publish(db, referral, f"referral.{_EVENT_NAMES[event]}")


_EVENT_NAMES = {
    E.ACCEPT: "accepted",
    E.REJECT: "rejected",
    E.COMPLETE: "completed",
    E.CANCEL: "cancelled",
    E.FAIL: "failed",
}


def _submit(db: Session, actor: Actor, referral: Referral, now: datetime) -> None:
    _record(db, workflow.apply(referral, E.SUBMIT, Side.SENDER, actor, now))
    referral.requested_at = now
    span = deadline_for(referral.urgency)
    referral.deadline_at = now + span
    referral.escalation_deadline_at = now + 2 * span
    db.flush()
    if referral.to_institution_id != referral.from_institution_id:
        # The receiving member may now read the record it is asked to treat.
        access.record_relationship(
            db,
            patient_id=referral.patient_id,
            institution_id=referral.to_institution_id,
            kind=RelationshipKind.REFERRAL,
            source_type="ServiceRequest",
            source_id=referral.id,
        )
    _publish(db, referral, "referral.requested")
    audit.record(
        db,
        actor,
        "referral.submit",
        resource_type="ServiceRequest",
        resource_id=referral.id,
        patient_id=referral.patient_id,
    )
    if referral.green_channel:
        _green_channel(db, referral, now)


def _green_channel(db: Session, referral: Referral, now: datetime) -> None:
    """绿色通道: the receiving emergency department is told at once and the referral is
    accepted by default; the receiver may still reject it with a reason."""
    emergency = registry.department(db, f"{referral.to_institution_id}:20")
    _publish(
        db,
        referral,
        "referral.green_channel",
        extra={"department": emergency.id if emergency else None},
        to=[referral.to_institution_id],
    )
    _record(db, workflow.apply(referral, E.AUTO_ACCEPT, Side.SYSTEM, None, now))
    referral.decided_at = now
    db.flush()
    _publish(db, referral, "referral.accepted")


def _book(db: Session, actor: Actor, referral: Referral, slot_id: int, now: datetime) -> None:
    slot = scheduling.get_slot(db, slot_id) if slot_id > 0 else None
    if slot is None or slot.institution_id != referral.to_institution_id:
        raise ValidationFailed(
            "the slot is not one of the receiving institution's", field="slot_id"
        )
    if referral.to_department_id and slot.department_id != referral.to_department_id:
        raise ValidationFailed("the slot is not in the requested department", field="slot_id")
    appointment = scheduling.book(
        db,
        actor,
        slot_id=slot_id,
        patient_id=referral.patient_id,
        now=now,
        referral_id=referral.id,
        referrer_institution_id=referral.from_institution_id,
    )
    referral.appointment_id = appointment.id


def _appointment(
    db: Session, actor: Actor, referral: Referral, status: AppointmentStatus, now: datetime
) -> None:
    if referral.appointment_id is None:
        return
    current = scheduling.get_appointment(db, referral.appointment_id)
    if current is not None and current.status != AppointmentStatus.CANCELLED:
        scheduling.set_status(db, actor, referral.appointment_id, status, now)


def _complete(
    db: Session, actor: Actor, referral: Referral, outcome: Outcome | None, now: datetime
) -> None:
    referral.completed_at = now
    _appointment(db, actor, referral, AppointmentStatus.FULFILLED, now)
    if outcome is not None and (outcome.reference or outcome.text.strip()):
        _store_outcome(db, actor, referral, outcome, now)
    if referral.direction == Direction.DOWN:
        _follow_up(db, referral, now)


def _store_outcome(
    db: Session, actor: Actor, referral: Referral, outcome: Outcome, now: datetime
) -> None:
    """The closed loop: the outcome is a document of the shared record, announced to the
    referrer (outbox) and flagged in their outgoing queue until they open it."""
    if outcome.reference:
        if not adapters.record_exists(db, actor, outcome.reference, now) or not (
            outcome.reference.startswith(("DocumentReference/", "Composition/"))
        ):
            raise ValidationFailed(
                "the outcome must be a DocumentReference or Composition of the shared record",
                field="outcome.reference",
            )
        referral.outcome_reference = outcome.reference
    else:
        document = resources.outcome_document(referral, outcome, now)
        reference, stored = adapters.store_document(db, actor, document, now)
        referral.outcome_reference = reference
        referral.outcome_document = None if stored else document
    referral.outcome_summary = outcome.text.strip()[:2000]
    referral.outcome_seen_at = None


def _follow_up(db: Session, referral: Referral, now: datetime) -> None:
    """After a down referral the patient's family doctor (else the receiving grassroots
    doctor) sees the patient within the configured days (2 weeks by default)."""
    institution, practitioner = adapters.family_doctor_of(db, referral.patient_id)
    task = ReferralFollowUp(
        referral_id=referral.id,
        patient_id=referral.patient_id,
        institution_id=institution or referral.to_institution_id,
        assignee_practitioner_id=practitioner or referral.to_practitioner_id,
        due_at=now + timedelta(days=get_settings().referral_follow_up_days),
        status=FollowUpStatus.OPEN.value,
        note=referral.follow_up_plan[:2000],
        created_at=now,
    )
    db.add(task)
    db.flush()
    _publish(
        db,
        referral,
        "referral.follow_up_due",
        extra={"due": task.due_at.isoformat()},
        to=[task.institution_id],
    )


def _publish(
    db: Session,
    referral: Referral,
    event_type: str,
    *,
    extra: dict[str, Any] | None = None,
    to: list[str] | None = None,
) -> None:
    payload = {
        "referral": referral.id,
        "status": referral.status,
        "direction": referral.direction,
        "urgency": referral.urgency,
        "patient": referral.patient_id,
        "from": referral.from_institution_id,
        "to": referral.to_institution_id,
        "episode": referral.episode_id,
        "outcome": referral.outcome_reference,
        **(extra or {}),
    }
    events.publish(
        db,
        event_type,
        payload,
        institution_ids=to or [referral.from_institution_id, referral.to_institution_id],
        patient_id=referral.patient_id,
    )


# --- visibility ----------------------------------------------------------------------------


def _visible(db: Session, actor: Actor, referral_id: str) -> Referral:
    referral = repository.referral(db, referral_id)
    if referral is None or not validation.sides(actor, referral):
        raise NotFound(f"referral {referral_id} not found")
    return referral


def may(referral: Referral, event: ReferralEvent, sides: set[Side]) -> bool:
    """Whether the page should offer the action (the transition itself re-checks)."""
    transition = workflow.TRANSITIONS.get(event)
    if transition is None or referral.status not in transition.frm or not sides & transition.by:
        return False
    return not (
        event == E.REJECT
        and referral.status == ReferralStatus.ACCEPTED
        and not referral.green_channel
    )


def member_choices(db: Session) -> list[Institution]:
    """Institutions a referral may be addressed to, lead levels first."""
    members = [m for m in registry.active_institutions(db) if m.consortium_id]
    return sorted(members, key=lambda m: (-validation.LEVEL_ORDER[m.level], m.id))


def record_follow_up(
    db: Session, actor: Actor, referral_id: str, result: str, *, now: datetime
) -> ReferralFollowUp:
    """The grassroots saw the patient after a down referral: the closed loop's last step.
    Only the institution the follow-up is assigned to records it, once. The referral's
    version moves too, so the indicators feed reads the completion and two people
    recording at the same moment end in one record and one 409."""
    finding = result.strip()
    if not finding:
        raise ValidationFailed("say what the follow-up found", field="result")
    referral = _visible(db, actor, referral_id)
    task = repository.follow_up(db, referral.id)
    if task is None:
        raise NotFound(f"referral {referral_id} has no follow-up")
    if actor.institution_id != task.institution_id:
        raise Forbidden("only the institution the follow-up is assigned to records it")
    if task.status != FollowUpStatus.OPEN:
        raise Conflict(f"the follow-up was already recorded by {task.done_by}")
    task.status = FollowUpStatus.DONE.value
    task.done_at, task.done_by, task.result = now, actor.username, finding[:2000]
    referral.updated_at = now
    with _optimistic():
        db.flush()
    audit.record(
        db,
        actor,
        "referral.follow_up_done",
        resource_type="Task",
        resource_id=referral.id,
        patient_id=referral.patient_id,
        detail={"due": task.due_at.isoformat(), "late": now > task.due_at},
    )
    _publish(db, referral, "referral.follow_up_done", extra={"done": now.isoformat()})
    return task


def follow_ups_due(db: Session, actor: Actor, *, limit: int = 50) -> list[ReferralFollowUp]:
    """Open follow-ups assigned to the actor's institution, soonest due first."""
    if actor.institution_id is None:
        return []
    tasks = list(repository.follow_ups_due(db, actor.institution_id, limit=limit))
    if tasks:
        audit.record(
            db,
            actor,
            "read",
            resource_type="Task",
            detail={"follow_ups": "due", "patients": sorted({t.patient_id for t in tasks})},
        )
    return tasks


# --- reads ---------------------------------------------------------------------------------


def _carried_outcome(previous: Referral | None) -> list[str]:
    return [previous.outcome_reference] if previous and previous.outcome_reference else []


@dataclass
class ReferralDetail:
    referral: Referral
    history: list[ReferralHistory]
    escalations: list[ReferralEscalation]
    follow_up: ReferralFollowUp | None
    chain: list[Referral]
    sides: set[Side]
    overdue: bool
    # The referral this one continues, whose outcome travels with it (shown to both sides).
    continued: Referral | None = None

    @property
    def escalation_level(self) -> int:
        return max((e.level for e in self.escalations), default=0)


def get(db: Session, actor: Actor, referral_id: str, *, now: datetime) -> ReferralDetail:
    """One referral with its history; a patient-data read, checked and audited."""
    referral = _visible(db, actor, referral_id)
    basis = access.require_clinical_access(db, actor, referral.patient_id, now)
    access.audit_read(
        db,
        actor,
        patient_id=referral.patient_id,
        basis=basis,
        resource_type="ServiceRequest",
        resource_id=referral.id,
    )
    sides = validation.sides(actor, referral)
    if Side.SENDER in sides and referral.outcome_reference and referral.outcome_seen_at is None:
        referral.outcome_seen_at = now  # the referrer has now seen the outcome
        with _optimistic():
            db.flush()
    return ReferralDetail(
        referral=referral,
        history=list(repository.history(db, referral.id)),
        escalations=list(repository.escalations(db, referral.id)),
        follow_up=repository.follow_up(db, referral.id),
        chain=[r for r in repository.chain(db, referral.episode_id) if validation.sides(actor, r)],
        sides=sides,
        overdue=is_overdue(referral, now),
        continued=(
            repository.referral(db, referral.previous_referral_id)
            if referral.previous_referral_id
            else None
        ),
    )


def is_overdue(referral: Referral, now: datetime) -> bool:
    return (
        referral.status in AWAITING_DECISION
        and referral.deadline_at is not None
        and referral.deadline_at < now
    )


@dataclass
class QueueItem:
    referral: Referral
    escalation_level: int
    overdue: bool
    seconds_left: int | None

    @property
    def outcome_unseen(self) -> bool:
        return self.referral.outcome_reference is not None and self.referral.outcome_seen_at is None


@dataclass
class QueuePage:
    items: list[QueueItem]
    has_more: bool


def queue(
    db: Session,
    actor: Actor,
    criteria: QueueFilter,
    *,
    now: datetime,
    offset: int = 0,
    limit: int = 50,
    mine: bool = False,
) -> QueuePage:
    """A referral office's (or, with ``mine``, a doctor's own) queue of one side."""
    if actor.institution_id is None:
        raise Forbidden("queues belong to an institution")
    if mine:
        criteria.requester_user_id = actor.user_id if criteria.box == Box.OUTGOING else None
        criteria.practitioner_id = validation.practitioner_of(db, actor) or "-"
    rows = repository.queue(db, actor.institution_id, criteria, offset=offset, limit=limit + 1)
    items = [
        QueueItem(
            referral=r,
            escalation_level=level or 0,
            overdue=is_overdue(r, now),
            seconds_left=int((r.deadline_at - now).total_seconds())
            if r.deadline_at and r.status in AWAITING_DECISION
            else None,
        )
        for r, level in rows[:limit]
    ]
    if items:
        # One audit row per page view (patients listed in the detail), not one per poll row.
        audit.record(
            db,
            actor,
            "read",
            resource_type="ServiceRequest",
            detail={
                "queue": criteria.box.value,
                "patients": sorted({i.referral.patient_id for i in items}),
            },
        )
    return QueuePage(items=items, has_more=len(rows) > limit)
