"""Reserved slots page: a department's day, which slots are reserved for referrals, and
opening a new day (the share reserved is configuration)."""

from __future__ import annotations

from datetime import date, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from medalliance.auth.enums import Role
from medalliance.auth.policy import Scope, allow
from medalliance.auth.principal import Actor
from medalliance.errors import DomainError, ValidationFailed
from medalliance.kit.clock import utcnow
from medalliance.kit.http import DbSession, TransactionalRoute
from medalliance.scheduling import service
from medalliance.scheduling.schemas import DayOpen
from medalliance.web.templating import render

router = APIRouter(route_class=TransactionalRoute, include_in_schema=False)
Coordinator = Annotated[Actor, allow(Role.COORDINATOR, Role.ADMIN, scope=Scope.OWN_INSTITUTION)]


def _context(db: Any, actor: Actor, department_id: str, day: date) -> dict[str, Any]:
    return {
        "department_id": department_id,
        "day": day,
        "slots": service.day_slots(db, department_id, day) if department_id else [],
    }


@router.get("/scheduling", response_class=HTMLResponse)
def slots_page(
    request: Request, db: DbSession, actor: Coordinator, department_id: str = "", day: str = ""
) -> HTMLResponse:
    chosen = date.fromisoformat(day) if day else (utcnow() + timedelta(days=1)).date()
    default = department_id or f"{actor.institution_id}:03.04"
    return render(
        request, "scheduling/index.html", _context(db, actor, default, chosen), actor=actor
    )


@router.post("/scheduling", response_class=HTMLResponse)
async def open_day(request: Request, db: DbSession, actor: Coordinator) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items()}
    try:
        try:
            body = DayOpen(
                department_id=form.get("department_id", ""),
                day=form.get("day", ""),
                count=form.get("count", "0"),
                first_start=form.get("first_start") or time(8, 0),
                minutes=form.get("minutes") or 15,
                expert=form.get("expert") == "on",
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ValidationFailed(str(first["msg"]), field=str(first["loc"][0])) from exc
        await run_in_threadpool(lambda: service.open_day_for(db, actor, body, now=utcnow()))
    except DomainError as exc:
        await run_in_threadpool(db.rollback)
        context = _context(db, actor, form.get("department_id", ""), utcnow().date())
        context["error"] = exc.message
        return render(
            request, "scheduling/index.html", context, actor=actor, status_code=exc.status
        )
    return RedirectResponse(
        f"/scheduling?department_id={body.department_id}&day={body.day.isoformat()}",
        status_code=303,
    )
