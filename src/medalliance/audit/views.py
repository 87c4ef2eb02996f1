"""The administrator's audit log page: recent events and the chain's state."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from medalliance.audit import service
from medalliance.auth.enums import Role
from medalliance.auth.policy import Scope, allow
from medalliance.auth.principal import Actor
from medalliance.kit.http import DbSession, TransactionalRoute
from medalliance.web.templating import render

router = APIRouter(route_class=TransactionalRoute, include_in_schema=False)


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    db: DbSession,
    actor: Annotated[Actor, allow(Role.ADMIN, scope=Scope.CONSORTIUM)],
) -> HTMLResponse:
    report = service.verify(db)
    events = service.recent(db, limit=100)
    return render(request, "audit/index.html", {"report": report, "events": events}, actor=actor)
