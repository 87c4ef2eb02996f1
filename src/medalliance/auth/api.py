"""Token endpoint (OAuth2 password and client-credentials grants) and who-am-I."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse

from medalliance.auth import service
from medalliance.auth.policy import Scope, allow, public
from medalliance.auth.principal import Actor
from medalliance.auth.schemas import MeRead, TokenResponse
from medalliance.auth.tokens import issue_token
from medalliance.kit.clock import utcnow
from medalliance.kit.http import DbSession, TransactionalRoute, client_ip
from medalliance.kit.problems import problem_response

router = APIRouter(prefix="/api/auth", tags=["auth"], route_class=TransactionalRoute)


@router.post(
    "/token",
    response_model=TokenResponse,
    dependencies=[public()],
    responses={400: {"description": "Bad grant"}, 401: {"description": "Bad credentials"}},
)
def token(
    request: Request,
    db: DbSession,
    grant_type: Annotated[Literal["password", "client_credentials"], Form()],
    username: Annotated[str | None, Form(max_length=64)] = None,
    password: Annotated[str | None, Form(max_length=256)] = None,
    client_id: Annotated[str | None, Form(max_length=64)] = None,
    client_secret: Annotated[str | None, Form(max_length=256)] = None,
    institution_id: Annotated[str | None, Form(max_length=64)] = None,
) -> TokenResponse | JSONResponse:
    ip = client_ip(request)
    if grant_type == "password":
        if not username or not password:
            return problem_response(400, "invalid-request", "username and password are required")
        result = service.login(
            db, username, password, ip=ip, now=utcnow(), institution_id=institution_id
        )
    else:
        if not client_id or not client_secret:
            return problem_response(
                400, "invalid-request", "client_id and client_secret are required"
            )
        result = service.client_login(db, client_id, client_secret, ip=ip)
    if result.actor is None:
        # Returned, not raised: the failure count and its audit row must be committed.
        return problem_response(401, "invalid-grant", result.error or "authentication failed")
    access_token, expires_in = issue_token(result.actor, utcnow())
    return TokenResponse(
        access_token=access_token,
        expires_in=expires_in,
        role=result.actor.role.value,
        institution_id=result.actor.institution_id,
    )


@router.get("/me", response_model=MeRead)
def me(actor: Annotated[Actor, allow(scope=Scope.AUTHENTICATED)]) -> MeRead:
    return MeRead(
        username=actor.username,
        role=actor.role.value,
        institution_id=actor.institution_id,
        client_id=actor.client_id,
    )
