"""Validation of the referral form and the sides an actor may act on; every check names
the field it refuses, before anything is written."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from medalliance.access import service as access
from medalliance.auth import service as auth_service
from medalliance.auth.principal import Actor
from medalliance.care_levels import adapters as registry
from medalliance.errors import Forbidden, NotFound, ValidationFailed
from medalliance.patients import service as patients
from medalliance.referrals import repository
from medalliance.referrals.enums import Direction, Side, Urgency
from medalliance.referrals.models import Referral
from medalliance.referrals.schemas import ReferralCreate
from medalliance.registry.models import Institution

LEVEL_ORDER = {"village": 0, "primary": 1, "secondary": 2, "tertiary": 3}


def sides(actor: Actor, referral: Referral) -> set[Side]:
    sides = set()
    if actor.institution_id == referral.from_institution_id:
        sides.add(Side.SENDER)
    if actor.institution_id == referral.to_institution_id and referral.status != "draft":
        sides.add(Side.RECEIVER)
    return sides


def actor_institution(db: Session, actor: Actor) -> Institution:
    found = registry.institution(db, actor.institution_id) if actor.institution_id else None
    if found is None:
        raise Forbidden("referrals are written on behalf of an institution")
    return found


def patient(db: Session, patient_id: str) -> Any:
    try:
        return patients.get_person(db, patient_id)
    except NotFound as exc:
        raise ValidationFailed(f"patient {patient_id} not found", field="patient_id") from exc


def target(db: Session, institution_id: str) -> Institution:
    found = registry.institution(db, institution_id)
    if found is None or not found.active or found.consortium_id is None:
        raise ValidationFailed(
            f"{institution_id} is not an active member of the consortium",
            field="to_institution_id",
        )
    return found


def check_direction(here: Institution, target: Institution, direction: Direction) -> None:
    """Up goes to the same or a higher level, down to the same or a lower one."""
    mine, theirs = LEVEL_ORDER[here.level], LEVEL_ORDER[target.level]
    if (direction == Direction.UP and theirs < mine) or (
        direction == Direction.DOWN and theirs > mine
    ):
        raise ValidationFailed(
            f"a referral {direction.value} cannot go from a {here.level} to a {target.level} "
            "institution",
            field="direction",
        )


def check_departments(
    db: Session, data: ReferralCreate, here: Institution, target: Institution
) -> None:
    for field, dept_id, inst in (
        ("to_department_id", data.to_department_id, target),
        ("from_department_id", data.from_department_id, here),
    ):
        if dept_id is None:
            continue
        dept = registry.department(db, dept_id)
        if dept is None or dept.institution_id != inst.id:
            raise ValidationFailed(f"{dept_id} is not a department of {inst.id}", field=field)
        if not dept.active:
            raise ValidationFailed(f"department {dept_id} is inactive", field=field)
    if data.to_practitioner_id and not registry.practitioner_works_at(
        db, data.to_practitioner_id, target.id, data.to_department_id
    ):
        raise ValidationFailed(
            f"{data.to_practitioner_id} does not work there", field="to_practitioner_id"
        )


def require_plans(data: ReferralCreate) -> None:
    for field in ("rehab_plan", "medication_plan", "follow_up_plan"):
        if not getattr(data, field).strip():
            raise ValidationFailed(f"a down referral carries the {field}", field=field)


def previous(
    db: Session, actor: Actor, previous_id: str | None, patient_id: str
) -> Referral | None:
    """A down referral may continue an earlier referral of the same patient (the chain)."""
    if previous_id is None:
        return None
    previous = repository.referral(db, previous_id)
    if previous is None or not sides(actor, previous) or previous.patient_id != patient_id:
        raise ValidationFailed(
            "previous referral not found for this patient", field="previous_referral_id"
        )
    return previous


def check_access(
    db: Session, actor: Actor, patient_id: str, target_id: str, urgency: Urgency, now: datetime
) -> None:
    """The sender needs its own basis to refer; sharing the record with another member
    needs the patient's consent, except on the green channel (emergency)."""
    if access.clinical_basis(db, actor, patient_id, now) is None:
        raise ValidationFailed(
            "no care relationship, consent or emergency access for this patient",
            field="patient_id",
        )
    cross = target_id != actor.institution_id
    if (
        cross
        and urgency != Urgency.EMERGENCY
        and not access.consent_covers(db, patient_id, target_id)
    ):
        raise ValidationFailed(
            "the patient has not consented to share the record with the receiving institution",
            field="patient_id",
        )


def practitioner_of(db: Session, actor: Actor) -> str | None:
    if actor.user_id is None:
        return None
    try:
        return auth_service.get_user(db, actor.user_id).practitioner_id
    except NotFound:
        return None
