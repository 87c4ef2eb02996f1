"""Indicators JSON API under /api/indicators: the overview values (aggregates only) and
definition edits (a new version each time; unknown measures answer 422 naming them)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from medalliance.auth.enums import Role
from medalliance.auth.policy import Scope, allow
from medalliance.auth.principal import Actor
from medalliance.indicators import api_service
from medalliance.indicators.enums import Level
from medalliance.indicators.schemas import DefinitionSaved, DefinitionWrite, OverviewRead
from medalliance.kit.clock import utcnow
from medalliance.kit.http import DbSession, TransactionalRoute

router = APIRouter(prefix="/api/indicators", route_class=TransactionalRoute, tags=["indicators"])

Viewer = Annotated[Actor, allow(Role.COMMISSION, Role.ADMIN, scope=Scope.AGGREGATE)]
Admin = Annotated[Actor, allow(Role.ADMIN, scope=Scope.CONSORTIUM)]
ERRORS: dict[int | str, dict[str, str]] = {
    404: {"description": "unknown indicator"},
    422: {"description": "invalid definition, formula or period"},
}


@router.get("", response_model=OverviewRead, responses=ERRORS)
def values(
    db: DbSession,
    actor: Viewer,
    period: str | None = None,
    level: Level = Level.CONSORTIUM,
    key: str | None = None,
) -> OverviewRead:
    return api_service.overview(db, period, level, key, now=utcnow())


@router.put("/definitions/{indicator_id}", response_model=DefinitionSaved, responses=ERRORS)
def save_definition(
    db: DbSession, actor: Admin, indicator_id: str, body: DefinitionWrite
) -> DefinitionSaved:
    return api_service.save_definition(db, actor, indicator_id, body, now=utcnow())
