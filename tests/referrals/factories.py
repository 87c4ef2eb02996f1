"""Referral test factories: demo actors, consent, referrals in any state, slots."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from medalliance.access import service as access
from medalliance.access.enums import ConsentScope, ConsentStatus
from medalliance.auth import service as auth_service
from medalliance.auth.enums import Role
from medalliance.auth.models import Membership, User
from medalliance.auth.principal import Actor
from medalliance.kit.clock import utcnow
from medalliance.referrals import service
from medalliance.referrals.enums import ReferralEvent, ReferralStatus
from medalliance.referrals.models import Referral
from medalliance.referrals.schemas import Outcome, ReferralCreate, TransitionRequest
from medalliance.registry.models import Department
from medalliance.scheduling import service as scheduling
from medalliance.scheduling.models import Slot

PATIENT = "p00000011"  # a resident of township-01
VILLAGE = "township-01-village-1"
E = ReferralEvent


def actor(db: Session, username: str, institution_id: str | None = None) -> Actor:
    user = db.scalars(select(User).where(User.username == username)).one()
    stmt = select(Membership).where(Membership.user_id == user.id)
    if institution_id:
        stmt = stmt.where(Membership.institution_id == institution_id)
    membership = db.scalars(stmt).first()
    assert membership is not None
    return auth_service.actor_for(user, membership, ip="127.0.0.1")


def staff(db: Session, username: str, role: Role, institution_id: str) -> Actor:
    """A user that the demo does not have (a village doctor, a township coordinator...)."""
    existing = db.scalars(select(User).where(User.username == username)).first()
    if existing is None:
        auth_service.create_user(
            db,
            None,
            username=username,
            display_name=username,
            password="medalliance",
            roles=[(institution_id, role)],
        )
    return actor(db, username, institution_id)


def village_doctor(db: Session) -> Actor:
    return staff(db, "village_doctor", Role.DOCTOR, VILLAGE)


def consent(db: Session, patient_id: str = PATIENT) -> None:
    """Consortium-wide sharing consent (the demo default is opt-in)."""
    patient = Actor(
        user_id=None,
        username="patient",
        role=Role.RESIDENT,
        institution_id=None,
        person_id=patient_id,
    )  # the patient consents in person (the resident portal)
    access.record_consent(
        db,
        patient,
        patient_id=patient_id,
        status=ConsentStatus.GIVEN,
        scope=ConsentScope.CONSORTIUM,
        source_document="signed form",
    )


def form(**overrides: Any) -> ReferralCreate:
    values: dict[str, Any] = {
        "patient_id": PATIENT,
        "direction": "up",
        "urgency": "routine",
        "to_institution_id": "county-hospital",
        "to_department_id": "county-hospital:03.04",
        "reason_code": "needs_equipment",
        "reason_text": "needs coronary angiography",
        "diagnoses": ["I25"],
        "history_summary": "chest tightness on exertion for 3 months",
        "current_treatment": "aspirin 100 mg qd",
    }
    values.update(overrides)
    return ReferralCreate.model_validate(values)


def down_form(**overrides: Any) -> ReferralCreate:
    values: dict[str, Any] = {
        "direction": "down",
        "to_institution_id": "township-01",
        "to_department_id": "township-01:02",
        "reason_code": "rehabilitation",
        "diagnoses": ["I63"],
        "rehab_plan": "walking training twice a day",
        "medication_plan": "aspirin 100 mg qd, atorvastatin 20 mg qn",
        "follow_up_plan": "blood pressure weekly, visit in 2 weeks",
    }
    values.update(overrides)
    return form(**values)


def referral(
    db: Session,
    sender: Actor | None = None,
    *,
    status: ReferralStatus = ReferralStatus.REQUESTED,
    now: datetime | None = None,
    **overrides: Any,
) -> Referral:
    """A referral from township-01 (the demo doctor) to the county, moved to ``status``."""
    sender = sender or actor(db, "doctor")
    now = now or utcnow()
    consent(db, overrides.get("patient_id", PATIENT))
    draft = status == ReferralStatus.DRAFT
    created = service.create(db, sender, form(submit=not draft, **overrides), now=now)
    receiver = actor(db, "coordinator")
    path = {
        ReferralStatus.DRAFT: [],
        ReferralStatus.REQUESTED: [],
        ReferralStatus.RECEIVED: [E.RECEIVE],
        ReferralStatus.ACCEPTED: [E.ACCEPT],
        ReferralStatus.REJECTED: [E.REJECT],
        ReferralStatus.SCHEDULED: [E.ACCEPT, E.SCHEDULE],
        ReferralStatus.IN_PROGRESS: [E.ACCEPT, E.ARRIVE],
        ReferralStatus.COMPLETED: [E.ACCEPT, E.ARRIVE, E.COMPLETE],
        ReferralStatus.CANCELLED: [E.CANCEL],
        ReferralStatus.FAILED: [E.ACCEPT, E.FAIL],
    }[status]
    for event in path:
        if event == E.CANCEL:
            service.transition(
                db, sender, created.id, event, TransitionRequest(reason="no longer needed"), now=now
            )
            continue
        body = TransitionRequest(
            reason="no capacity today" if event == E.REJECT else "",
            slot_id=open_slots(db, now=now)[0].id if event == E.SCHEDULE else None,
            outcome=Outcome(text="PCI done, stable") if event == E.COMPLETE else None,
        )
        service.transition(db, receiver, created.id, event, body, now=now)
    return created


def open_slots(
    db: Session,
    department_id: str = "county-hospital:03.04",
    *,
    now: datetime | None = None,
    count: int = 10,
    day: date | None = None,
    expert: bool = False,
) -> list[Slot]:
    """Slots for a day a few days ahead (already open to consortium referrals)."""
    now = now or utcnow()
    department = db.get(Department, department_id)
    assert department is not None
    coordinator = staff(
        db, f"coord-{department.institution_id}", Role.COORDINATOR, department.institution_id
    )
    return scheduling.open_day(
        db,
        coordinator,
        department,
        day=day or (now + timedelta(days=3)).date(),
        count=count,
        first_start=time(8, 0),
        minutes=15,
        expert=expert,
        now=now,
    )
