"""The consortium administrator's care-level catalogue page (each change a new version)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from medalliance.auth.enums import Role
from medalliance.auth.policy import Scope, allow
from medalliance.auth.principal import Actor
from medalliance.care_levels import service
from medalliance.care_levels.schemas import DiseaseEntry
from medalliance.errors import DomainError, ValidationFailed
from medalliance.kit.clock import utcnow
from medalliance.kit.http import DbSession, TransactionalRoute
from medalliance.web.templating import render

router = APIRouter(route_class=TransactionalRoute, include_in_schema=False)
Admin = Annotated[Actor, allow(Role.ADMIN, scope=Scope.CONSORTIUM)]


def _context(db: Any) -> dict[str, Any]:
    catalogue = service.current(db)
    return {"catalogue": catalogue, "versions": service.history(db)}


@router.get("/care-levels", response_class=HTMLResponse)
def catalogue_page(request: Request, db: DbSession, actor: Admin) -> HTMLResponse:
    return render(request, "care_levels/index.html", _context(db), actor=actor)


def _entry(form: dict[str, str]) -> DiseaseEntry:
    try:
        return DiseaseEntry(
            code=form.get("code", ""),
            name_zh=form.get("name_zh", ""),
            name_en=form.get("name_en", ""),
            level=form.get("level", ""),
            departments=[d.strip() for d in form.get("departments", "").split(",") if d.strip()],
            must_refer=form.get("must_refer") == "on",
            pathway=form.get("pathway") or None,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ValidationFailed(f"{field}: {first['msg']}", field=field) from exc


def _save(db: Any, actor: Actor, form: dict[str, str]) -> None:
    note = form.get("note", "").strip() or "edited on the catalogue page"
    if form.get("remove"):
        service.remove_disease(db, actor, form["remove"], note=note, now=utcnow())
    else:
        service.upsert_disease(db, actor, _entry(form), note=note, now=utcnow())


@router.post("/care-levels", response_class=HTMLResponse)
async def edit_catalogue(request: Request, db: DbSession, actor: Admin) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items()}
    try:
        await run_in_threadpool(_save, db, actor, form)
    except DomainError as exc:
        await run_in_threadpool(db.rollback)
        context = await run_in_threadpool(_context, db)
        context["error"] = exc.message
        return render(
            request, "care_levels/index.html", context, actor=actor, status_code=exc.status
        )
    return RedirectResponse("/care-levels", status_code=303)
