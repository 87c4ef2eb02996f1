"""Referral API (/api/referrals): write, list a side's queue, read, and move a referral."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response

from medalliance.auth.enums import Role
from medalliance.auth.policy import Scope, allow
from medalliance.auth.principal import Actor
from medalliance.errors import DomainError
from medalliance.kit.clock import utcnow
from medalliance.kit.http import DbSession, Offset, TransactionalRoute
from medalliance.referrals import service
from medalliance.referrals.enums import OPEN_STATUSES, Box, ReferralEvent, ReferralStatus
from medalliance.referrals.repository import QueueFilter
from medalliance.referrals.schemas import (
    FollowUpDone,
    FollowUpRead,
    HistoryRead,
    QueueItemRead,
    QueueRead,
    ReferralCreate,
    ReferralDetailRead,
    ReferralRead,
    TransitionRequest,
)

router = APIRouter(prefix="/api/referrals", tags=["referrals"], route_class=TransactionalRoute)
REFERRAL_ROLES = (Role.COORDINATOR, Role.DOCTOR, Role.SPECIALIST, Role.FAMILY_DOCTOR, Role.SYSTEM)
ERRORS: dict[int | str, dict[str, str]] = {
    403: {"description": "Wrong side or role"},
    404: {"description": "Not visible to your institution"},
    409: {"description": "Wrong state, or someone else changed it first"},
    422: {"description": "A field breaks a rule (the problem names it)"},
}


def etag(version: int) -> str:
    return f'W/"{version}"'


def parse_if_match(value: str | None) -> int | None:
    if value is None:
        return None
    digits = value.strip().removeprefix("W/").strip('"')
    if not digits.isdigit():
        raise DomainError('If-Match must look like W/"3"', field="If-Match")
    return int(digits)


@router.post("", status_code=201, response_model=ReferralRead, responses=ERRORS)
def create_referral(
    body: ReferralCreate,
    response: Response,
    db: DbSession,
    actor: Annotated[Actor, allow(*REFERRAL_ROLES, scope=Scope.CARE_RELATIONSHIP)],
) -> ReferralRead:
    referral = service.create(db, actor, body, now=utcnow())
    response.headers["ETag"] = etag(referral.version)
    response.headers["Location"] = f"/api/referrals/{referral.id}"
    return ReferralRead.model_validate(referral)


@router.get("", response_model=QueueRead, responses=ERRORS)
def list_referrals(
    db: DbSession,
    actor: Annotated[Actor, allow(*REFERRAL_ROLES, scope=Scope.OWN_INSTITUTION)],
    box: Box = Box.INCOMING,
    status: Annotated[list[ReferralStatus] | None, Query()] = None,
    urgency: str | None = None,
    direction: str | None = None,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> QueueRead:
    criteria = QueueFilter(
        box=box,
        statuses=[s.value for s in status] if status else sorted(OPEN_STATUSES),
        urgency=urgency,
        direction=direction,
    )
    page = service.queue(db, actor, criteria, now=utcnow(), offset=offset, limit=limit)
    return QueueRead(
        items=[
            QueueItemRead(
                **{
                    k: getattr(i.referral, k)
                    for k in QueueItemRead.model_fields
                    if hasattr(i.referral, k)
                },
                overdue=i.overdue,
                escalation_level=i.escalation_level,
                outcome_unseen=i.outcome_unseen,
            )
            for i in page.items
        ],
        has_more=page.has_more,
    )


@router.get("/follow-ups", response_model=list[FollowUpRead], responses=ERRORS)
def follow_ups_due(
    db: DbSession,
    actor: Annotated[Actor, allow(*REFERRAL_ROLES, scope=Scope.OWN_INSTITUTION)],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[FollowUpRead]:
    """Open follow-ups after down referrals, assigned to the caller's institution."""
    return [FollowUpRead.model_validate(t) for t in service.follow_ups_due(db, actor, limit=limit)]


@router.get("/{referral_id}", response_model=ReferralDetailRead, responses=ERRORS)
def read_referral(
    referral_id: str,
    response: Response,
    db: DbSession,
    actor: Annotated[Actor, allow(*REFERRAL_ROLES, scope=Scope.CARE_RELATIONSHIP)],
) -> ReferralDetailRead:
    detail = service.get(db, actor, referral_id, now=utcnow())
    response.headers["ETag"] = etag(detail.referral.version)
    base = ReferralRead.model_validate(detail.referral).model_dump()
    return ReferralDetailRead(
        **base,
        history=[HistoryRead.model_validate(h) for h in detail.history],
        escalation_level=detail.escalation_level,
        overdue=detail.overdue,
    )


# Declared before "/{referral_id}/{event}", which would otherwise take "follow-up" as an event.
@router.post("/{referral_id}/follow-up", response_model=FollowUpRead, responses=ERRORS)
def record_follow_up(
    referral_id: str,
    body: FollowUpDone,
    db: DbSession,
    actor: Annotated[Actor, allow(*REFERRAL_ROLES, scope=Scope.OWN_INSTITUTION)],
) -> FollowUpRead:
    task = service.record_follow_up(db, actor, referral_id, body.result, now=utcnow())
    return FollowUpRead.model_validate(task)


@router.post("/{referral_id}/{event}", response_model=ReferralRead, responses=ERRORS)
def move_referral(
    referral_id: str,
    event: ReferralEvent,
    response: Response,
    db: DbSession,
    actor: Annotated[Actor, allow(*REFERRAL_ROLES, scope=Scope.OWN_INSTITUTION)],
    body: TransitionRequest | None = None,
    if_match: Annotated[str | None, Header()] = None,
) -> ReferralRead:
    referral = service.transition(
        db,
        actor,
        referral_id,
        event,
        body or TransitionRequest(),
        now=utcnow(),
        expected_version=parse_if_match(if_match),
    )
    response.headers["ETag"] = etag(referral.version)
    return ReferralRead.model_validate(referral)
