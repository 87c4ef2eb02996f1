"""MPI domain API: register a member's local record, merge/unmerge, review decisions,
consent and break-the-glass."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter

from medalliance.auth.enums import Role
from medalliance.auth.policy import Scope, allow
from medalliance.auth.principal import Actor
from medalliance.kit.clock import utcnow
from medalliance.kit.fhir import Page
from medalliance.kit.http import DbSession, Offset, TransactionalRoute
from medalliance.patients import service
from medalliance.patients.enums import ReviewStatus
from medalliance.patients.schemas import (
    BreakGlassIn,
    BreakGlassRead,
    ConsentIn,
    ConsentRead,
    LocalRecordIn,
    MergeIn,
    MergeRead,
    RegistrationRead,
    ReviewDecisionIn,
    ReviewRead,
    UnmergeIn,
)
from medalliance.patients.service import IDENTIFYING_ROLES

router = APIRouter(prefix="/api/patients", tags=["patients"], route_class=TransactionalRoute)

# Merging and review decisions: the administrator, and the referral office (转诊办), which
# meets duplicate patients first when referrals arrive and runs identity checks in practice.
IDENTITY_STEWARDS = (Role.ADMIN, Role.COORDINATOR)
CONSENT_RECORDERS = (
    Role.ADMIN,
    Role.COORDINATOR,
    Role.DOCTOR,
    Role.SPECIALIST,
    Role.FAMILY_DOCTOR,
)
Registrar = Annotated[Actor, allow(*IDENTIFYING_ROLES, scope=Scope.CARE_RELATIONSHIP)]
Steward = Annotated[Actor, allow(*IDENTITY_STEWARDS, scope=Scope.CONSORTIUM)]


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {
        403: "Role may not do this",
        404: "Unknown patient or review",
        409: "Conflict (record number in use, merged patient, decided review)",
        422: "Invalid field (named in the problem)",
    }
    return {code: {"description": text[code]} for code in codes}


@router.post(
    "/records", status_code=201, response_model=RegistrationRead, responses=_errors(403, 409, 422)
)
def register_record(db: DbSession, actor: Registrar, data: LocalRecordIn) -> RegistrationRead:
    result = service.register_local_record(db, actor, data)
    return RegistrationRead(
        person_id=result.person.id,
        local_record_id=result.record.id,
        outcome=result.outcome,
        score=result.score,
        review_id=result.review.id if result.review else None,
    )


@router.post("/merges", response_model=MergeRead, responses=_errors(403, 404, 409, 422))
def merge(db: DbSession, actor: Steward, data: MergeIn) -> MergeRead:
    row = service.merge_persons(
        db, actor, survivor_id=data.survivor_id, merged_id=data.merged_id, reason=data.reason
    )
    return MergeRead.model_validate(row)


@router.post("/unmerges", response_model=MergeRead, responses=_errors(403, 404, 409, 422))
def unmerge(db: DbSession, actor: Steward, data: UnmergeIn) -> MergeRead:
    row = service.unmerge_person(db, actor, merged_id=data.merged_id, reason=data.reason)
    return MergeRead.model_validate(row)


@router.get("/reviews", response_model=list[ReviewRead], responses=_errors(403))
def reviews(
    db: DbSession, actor: Steward, status: ReviewStatus = ReviewStatus.OPEN, offset: Offset = 0
) -> list[ReviewRead]:
    queue = service.review_queue(db, actor, status, Page(100, offset))
    return [ReviewRead.model_validate(r) for r in queue.reviews]


@router.post(
    "/reviews/{review_id}/decision",
    response_model=ReviewRead,
    responses=_errors(403, 404, 409, 422),
)
def decide(db: DbSession, actor: Steward, review_id: int, data: ReviewDecisionIn) -> ReviewRead:
    review = service.decide_review(
        db, actor, review_id=review_id, decision=data.decision, reason=data.reason
    )
    return ReviewRead.model_validate(review)


@router.post(
    "/{person_id}/consent",
    status_code=201,
    response_model=ConsentRead,
    responses=_errors(403, 404, 422),
)
def consent(
    db: DbSession,
    # Residents record their own choice (the access service refuses anyone else's).
    actor: Annotated[
        Actor, allow(*CONSENT_RECORDERS, Role.RESIDENT, scope=Scope.CARE_RELATIONSHIP)
    ],
    person_id: str,
    data: ConsentIn,
) -> ConsentRead:
    row = service.record_consent(
        db,
        actor,
        person_id,
        status=data.status,
        source_document=data.source_document,
        note=data.note,
    )
    return ConsentRead.model_validate(row)


@router.post(
    "/{person_id}/break-glass",
    status_code=201,
    response_model=BreakGlassRead,
    responses=_errors(403, 404, 422),
)
def break_glass(
    db: DbSession,
    actor: Annotated[
        Actor,
        allow(Role.DOCTOR, Role.SPECIALIST, Role.FAMILY_DOCTOR, scope=Scope.CARE_RELATIONSHIP),
    ],
    person_id: str,
    data: BreakGlassIn,
) -> BreakGlassRead:
    grant = service.break_glass(db, actor, person_id, reason=data.reason, now=utcnow())
    return BreakGlassRead.model_validate(grant)
