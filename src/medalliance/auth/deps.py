"""Resolving the actor of a request: bearer token (API, member systems) or page session."""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from medalliance.auth import service
from medalliance.auth.policy import Policy, Scope, route_policies
from medalliance.auth.principal import Actor
from medalliance.auth.tokens import read_token
from medalliance.errors import Forbidden, Unauthorized
from medalliance.kit.clock import utcnow
from medalliance.kit.http import client_ip

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use."""
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return str(token)


async def check_csrf(request: Request) -> None:
    if request.method in SAFE_METHODS:
        return
    expected = request.session.get("csrf")
    sent: Any = request.headers.get(CSRF_HEADER)
    if sent is None and _is_form(request):
        sent = (await request.form()).get(CSRF_FIELD)
    if not expected or not isinstance(sent, str) or not hmac.compare_digest(expected, sent):
        raise Forbidden("missing or invalid CSRF token; reload the page and try again")


def _is_form(request: Request) -> bool:
    content_type = request.headers.get("content-type", "")
    return content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data"))


async def current_actor(request: Request) -> Actor:
    cached: Actor | None = getattr(request.state, "actor", None)
    if cached is not None:
        return cached
    authorization = request.headers.get("authorization", "")
    ip = client_ip(request)
    if authorization.lower().startswith("bearer "):
        token_actor = read_token(authorization[7:].strip())
        actor = Actor(**{**token_actor.__dict__, "ip": ip})
    else:
        actor = await _session_actor(request, ip)
        await check_csrf(request)
    request.state.actor = actor
    return actor


async def refuse_unauthenticated(request: Request) -> None:
    """Unauthorized (401) unless the request's credentials name someone, or its route is
    public. For refusals decided before the route's policy (a format it does not serve):
    the caller must not learn them without credentials. Nothing is cached and no CSRF
    token checked: the refusal follows."""
    route = request.scope.get("route")
    if route is None or all(p.scope is Scope.PUBLIC for p in route_policies(route)):
        return
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        read_token(authorization[7:].strip())
    else:
        await _session_actor(request, client_ip(request))


async def _session_actor(request: Request, ip: str | None) -> Actor:
    user_id, membership_id = request.session.get("uid"), request.session.get("mid")
    if not user_id or membership_id is None:
        raise Unauthorized("login required")
    actor = await run_in_threadpool(
        service.session_actor, request.state.db, user_id, int(membership_id), ip=ip, now=utcnow()
    )
    if actor is None:
        request.session.clear()
        raise Unauthorized("session is no longer valid; please log in again")
    return actor


async def require_actor(request: Request, policy: Policy) -> Actor:
    actor = await current_actor(request)
    if not policy.permits(actor.role):
        raise Forbidden(f"role {actor.role.value} may not use this function")
    return actor
