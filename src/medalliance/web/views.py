"""Shell pages: the role's home page and the language switch."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from medalliance.auth.enums import HUMAN_ROLES
from medalliance.auth.policy import Scope, allow, public
from medalliance.auth.principal import Actor
from medalliance.kit.http import DbSession, TransactionalRoute
from medalliance.web.home import home_context
from medalliance.web.i18n import LOCALES
from medalliance.web.templating import render

router = APIRouter(route_class=TransactionalRoute, include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(
    request: Request,
    db: DbSession,
    actor: Annotated[Actor, allow(*HUMAN_ROLES, scope=Scope.AUTHENTICATED)],
) -> HTMLResponse:
    context = home_context(db, actor)
    return render(request, f"home/{actor.role.value}.html", {"home": context}, actor=actor)


@router.get("/lang/{locale}", dependencies=[public()])
def switch_language(request: Request, locale: str, next: str = "/") -> Response:
    if locale in LOCALES:
        request.session["lang"] = locale
    target = next if next.startswith("/") and not next.startswith("//") else "/"
    return RedirectResponse(target, status_code=303)
