"""Audit API: verify the hash chain."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel

from medalliance.audit import service
from medalliance.auth.enums import Role
from medalliance.auth.policy import Scope, allow
from medalliance.auth.principal import Actor
from medalliance.kit.http import DbSession, TransactionalRoute

router = APIRouter(prefix="/api/audit", tags=["audit"], route_class=TransactionalRoute)


class VerifyRead(BaseModel):
    ok: bool
    checked: int
    unsealed: int
    broken_seq: int | None
    broken_event_id: int | None
    reason: str | None


@router.get("/verify", response_model=VerifyRead, responses={403: {"description": "Not admin"}})
def verify(
    db: DbSession, actor: Annotated[Actor, allow(Role.ADMIN, scope=Scope.CONSORTIUM)]
) -> VerifyRead:
    report = service.verify(db)
    return VerifyRead(**report.__dict__)
