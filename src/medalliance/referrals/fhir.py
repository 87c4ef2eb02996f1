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
    page_from,
    read_response,
    resource_headers,
    search_routes,
    searchset,
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
    page = page_from(params)
    result = interop.search(db, actor, resource_type, params.multi_items(), page, now=utcnow())
    return FhirResponse(
        searchset(
            request,
            result.resources,
            total=None,
            page=page,
            has_more=result.has_more,
            included=result.included,
            params=params.multi_items(),
        )
    )


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
    return _resource(
        await run_in_threadpool(_update, db, actor, referral_id, body, if_match, False)
    )


@router.patch("/Task/{referral_id}")
async def patch_task(
    referral_id: str,
    request: Request,
    db: DbSession,
    actor: Reader,
    if_match: Annotated[str | None, Header()] = None,
) -> FhirResponse:
    body = await _body(request)
    return _resource(await run_in_threadpool(_update, db, actor, referral_id, body, if_match, True))


def _update(
    db: Any, actor: Actor, referral_id: str, body: Any, if_match: str | None, patch: bool
) -> dict[str, Any]:
    return interop.update_task(
        db, actor, referral_id, body, if_match=if_match, patch=patch, now=utcnow()
    )
