"""Merge, unmerge and review decisions. Reversible by construction: a merge points the
merged person at the survivor, writes a history row and lets the registered steps move the
person's data (recording each row moved); unmerge clears the pointer and moves those rows
back."""

from __future__ import annotations

from sqlalchemy.orm import Session

from medalliance.audit import service as audit
from medalliance.auth.principal import Actor
from medalliance.errors import Conflict, NotFound
from medalliance.kit.clock import utcnow
from medalliance.patients import merge_steps, repository
from medalliance.patients.enums import ReviewDecision, ReviewStatus
from medalliance.patients.models import MatchReview, Person, PersonMerge


def merge(
    db: Session, actor: Actor, *, survivor_id: str, merged_id: str, reason: str
) -> PersonMerge:
    if survivor_id == merged_id:
        raise Conflict("a patient cannot be merged into itself", field="merged_id")
    survivor = _person(db, survivor_id, "survivor_id")
    merged = _person(db, merged_id, "merged_id")
    if merged.merged_into_id is not None:
        raise Conflict(
            f"patient {merged_id} is already merged into {merged.merged_into_id}",
            field="merged_id",
        )
    if survivor.merged_into_id is not None:
        raise Conflict(
            f"patient {survivor_id} is merged into {survivor.merged_into_id}; "
            "merge into the surviving patient",
            field="survivor_id",
        )
    now = utcnow()
    merged.merged_into_id = survivor.id
    survivor.updated_at = now
    row = PersonMerge(
        survivor_id=survivor.id,
        merged_id=merged.id,
        merged_by=_who(actor),
        merged_at=now,
        reason=reason.strip(),
    )
    db.add(row)
    db.flush()
    for step in merge_steps.STEPS.values():
        step.move(db, row)
    for patient in (survivor.id, merged.id):
        audit.record(
            db,
            actor,
            "patient.merge",
            resource_type="Patient",
            resource_id=merged.id,
            patient_id=patient,
            detail={"merge_id": row.id, "survivor_id": survivor.id, "reason": row.reason},
        )
    return row


def unmerge(db: Session, actor: Actor, *, merged_id: str, reason: str) -> PersonMerge:
    merged = _person(db, merged_id, "merged_id")
    row = repository.active_merge_of(db, merged_id)
    if merged.merged_into_id is None or row is None:
        raise Conflict(f"patient {merged_id} is not merged", field="merged_id")
    survivor = _person(db, merged.merged_into_id, "merged_id")
    now = utcnow()
    merged.merged_into_id = None
    merged.updated_at = now
    survivor.updated_at = now
    row.unmerged_by, row.unmerged_at, row.unmerge_reason = _who(actor), now, reason.strip()
    db.flush()
    for step in merge_steps.STEPS.values():
        step.restore(db, row)
    merge_steps.release(db, row)
    for patient in (survivor.id, merged.id):
        audit.record(
            db,
            actor,
            "patient.unmerge",
            resource_type="Patient",
            resource_id=merged.id,
            patient_id=patient,
            detail={"merge_id": row.id, "survivor_id": survivor.id, "reason": row.unmerge_reason},
        )
    return row


def decide_review(
    db: Session, actor: Actor, *, review_id: int, decision: ReviewDecision, reason: str
) -> MatchReview:
    review = repository.review(db, review_id)
    if review is None:
        raise NotFound(f"review {review_id} not found")
    if review.status != ReviewStatus.OPEN.value:
        raise Conflict(f"review {review_id} is already decided ({review.status})")
    if decision == ReviewDecision.LINK:
        # The older golden record survives; the provisional person made at registration goes.
        survivor = _survivor(db, review.candidate_id)
        merged = _survivor(db, review.person_id)
        if survivor.id == merged.id:
            raise Conflict("these records already belong to the same patient")
        row = merge(db, actor, survivor_id=survivor.id, merged_id=merged.id, reason=reason)
        review.merge_id = row.id
        review.status = ReviewStatus.LINKED.value
    else:
        review.status = ReviewStatus.SEPARATE.value
    review.decided_by, review.decided_at, review.reason = _who(actor), utcnow(), reason.strip()
    db.flush()
    audit.record(
        db,
        actor,
        f"patient.review.{decision.value}",
        resource_type="MatchReview",
        resource_id=str(review.id),
        patient_id=review.person_id,
        detail={"candidate_id": review.candidate_id, "reason": review.reason},
    )
    return review


def _person(db: Session, person_id: str, field: str) -> Person:
    person = repository.person(db, person_id)
    if person is None:
        raise NotFound(f"patient {person_id} not found", field=field)
    return person


def _survivor(db: Session, person_id: str) -> Person:
    person = _person(db, person_id, "person_id")
    for _ in range(repository.MAX_MERGE_DEPTH):
        if person.merged_into_id is None:
            break
        person = _person(db, person.merged_into_id, "person_id")
    return person


def _who(actor: Actor) -> str:
    return actor.user_id or actor.client_id or actor.username
