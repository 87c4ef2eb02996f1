"""Scheduling API (/api/scheduling): open a day of slots, list bookable slots."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from medalliance.auth.enums import Role
from medalliance.auth.policy import Scope, allow
from medalliance.auth.principal import Actor
from medalliance.kit.clock import utcnow
from medalliance.kit.http import DbSession, TransactionalRoute
from medalliance.scheduling import service
from medalliance.scheduling.schemas import DayOpen, SlotRead

router = APIRouter(prefix="/api/scheduling", tags=["scheduling"], route_class=TransactionalRoute)
STAFF = (Role.COORDINATOR, Role.DOCTOR, Role.SPECIALIST, Role.FAMILY_DOCTOR, Role.SYSTEM)


@router.post(
    "/days",
    status_code=201,
    response_model=list[SlotRead],
    responses={403: {"description": "Not staff of that institution"}, 422: {"description": "Bad"}},
)
def open_day(
    body: DayOpen,
    db: DbSession,
    actor: Annotated[Actor, allow(Role.ADMIN, Role.COORDINATOR, scope=Scope.OWN_INSTITUTION)],
) -> list[SlotRead]:
    slots = service.open_day_for(db, actor, body, now=utcnow())
    return [SlotRead.model_validate(s) for s in slots]


@router.get("/slots", response_model=list[SlotRead])
def bookable_slots(
    db: DbSession,
    actor: Annotated[Actor, allow(*STAFF, scope=Scope.CONSORTIUM)],
    department_id: str | None = None,
    institution_id: str | None = None,
    days: int = 28,
) -> list[SlotRead]:
    slots = service.free_slots(
        db,
        now=utcnow(),
        department_id=department_id,
        institution_id=institution_id,
        days=min(max(days, 1), 60),
    )
    return [SlotRead.model_validate(s) for s in slots]
