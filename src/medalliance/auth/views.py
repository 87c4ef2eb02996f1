"""Login, logout and role switching pages (signed session cookie + CSRF)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from medalliance.auth import service
from medalliance.auth.deps import check_csrf
from medalliance.auth.enums import HUMAN_ROLES
from medalliance.auth.policy import Scope, allow, public
from medalliance.auth.principal import Actor
from medalliance.errors import Forbidden
from medalliance.kit.clock import utcnow
from medalliance.kit.http import DbSession, TransactionalRoute, client_ip
from medalliance.web.i18n import gettext as _
from medalliance.web.templating import render

router = APIRouter(route_class=TransactionalRoute, include_in_schema=False)


def _safe_next(target: str | None) -> str:
    # Only same-site paths: an open redirect after login is a phishing aid.
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/"


@router.get("/login", response_class=HTMLResponse, dependencies=[public()])
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    return render(request, "auth/login.html", {"next": _safe_next(next), "error": None})


@router.post("/login", dependencies=[public(), Depends(check_csrf)])
def login_submit(
    request: Request,
    db: DbSession,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    if not username.strip() or not password:
        error = _("Enter your username and password.")
        return render(
            request,
            "auth/login.html",
            {"next": next, "error": error, "username": username},
            status_code=400,
        )
    result = service.login(db, username.strip(), password, ip=client_ip(request), now=utcnow())
    if result.actor is None:
        error = _(result.error or "Login failed.")
        return render(
            request,
            "auth/login.html",
            {"next": next, "error": error, "username": username},
            status_code=401,
        )
    membership = service.membership_of(db, result.actor)
    request.session.clear()  # new session id material: no fixation of a pre-login session
    request.session.update(
        {"uid": result.actor.user_id, "mid": membership.id if membership else None}
    )
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout")
def logout(
    request: Request, actor: Annotated[Actor, allow(*HUMAN_ROLES, scope=Scope.AUTHENTICATED)]
) -> Response:
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.post("/switch-role")
def switch_role(
    request: Request,
    db: DbSession,
    actor: Annotated[Actor, allow(*HUMAN_ROLES, scope=Scope.AUTHENTICATED)],
    membership_id: Annotated[int, Form()],
) -> Response:
    owned = {m.id for m in service.memberships_of(db, actor)}
    if membership_id not in owned:
        raise Forbidden("that role is not yours")
    request.session["mid"] = membership_id
    return RedirectResponse("/", status_code=303)
