"""FHIR ServiceRequest and Task (referrals): read, search, and Task status updates."""

from __future__ import annotations

import json
from functools import partial
from typing import Annotated, Any

from fastapi import Header, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session
from starlette.datastructures import QueryParams

from medalliance.auth.policy import Scope, allow
from medalliance.auth.principal import Actor
from medalliance.errors import DomainError
from medalliance.kit.clock import utcnow
from medalliance.kit.fhir import (
    FhirResponse,
    fhir_router,
    read_response,
    resource_headers,
    search_bundle,
    search_routes,
    strict_handling,
)
from medalliance.kit.http import DbSession
from medalliance.referrals import interop
from medalliance.referrals.api import REFERRAL_ROLES

router = fhir_router()
Reader = Annotated[Actor, allow(*REFERRAL_ROLES, scope=Scope.CARE_RELATIONSHIP)]


def _resource(resource: dict[str, Any]) -> FhirResponse:
    return FhirResponse(resource, headers=resource_headers(resource))


def _search(
    resource_type: str, request: Request, db: Session, actor: Actor, params: QueryParams
) -> FhirResponse:
    strict = strict_handling(request.headers.get("prefer"))
    found = interop.search(
        db, actor, resource_type, params.multi_items(), strict=strict, now=utcnow()
    )
    return FhirResponse(search_bundle(request, found))


search_routes(router, "ServiceRequest", Reader, partial(_search, "ServiceRequest"))


@router.get("/ServiceRequest/{referral_id}")
def read_service_request(
    request: Request, referral_id: str, db: DbSession, actor: Reader
) -> Response:
    resource = interop.read(db, actor, "ServiceRequest", referral_id, now=utcnow())
    return read_response(request, resource)


search_routes(router, "Task", Reader, partial(_search, "Task"))


@router.get("/Task/{referral_id}")
def read_task(request: Request, referral_id: str, db: DbSession, actor: Reader) -> Response:
    return read_response(request, interop.read(db, actor, "Task", referral_id, now=utcnow()))


async def _body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError as exc:
        raise DomainError("body is not JSON", field="body") from exc


@router.put("/Task/{referral_id}")
async def update_task(
    referral_id: str,
    request: Request,
    db: DbSession,
    actor: Reader,
    if_match: Annotated[str | None, Header()] = None,
) -> FhirResponse:
    body = await _body(request)
    return _resource(await run_in_threadpool(_update, db, actor, referral_id, body, if_match, None))


@router.patch("/Task/{referral_id}")
async def patch_task(
    referral_id: str,
    request: Request,
    db: DbSession,
    actor: Reader,
    if_match: Annotated[str | None, Header()] = None,
) -> FhirResponse:
    body = await _body(request)
    patch_type = request.headers.get("content-type") or ""
    updated = await run_in_threadpool(_update, db, actor, referral_id, body, if_match, patch_type)
    return _resource(updated)


def _update(
    db: Any,
    actor: Actor,
    referral_id: str,
    body: Any,
    if_match: str | None,
    patch_type: str | None,
) -> dict[str, Any]:
    """``patch_type``: the Content-Type of a PATCH (None: a PUT)."""
    return interop.update_task(
        db, actor, referral_id, body, if_match=if_match, patch_type=patch_type, now=utcnow()
    )
