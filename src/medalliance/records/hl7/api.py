"""``POST /api/hl7v2``: one ER7 message per request from a member system (client
credentials); the answer is the HL7 ACK, with an HTTP status that says the same thing."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from medalliance.auth.enums import Role
from medalliance.auth.policy import Scope, allow
from medalliance.auth.principal import Actor
from medalliance.kit.clock import utcnow
from medalliance.kit.http import DbSession, TransactionalRoute
from medalliance.records.hl7 import service

router = APIRouter(prefix="/api", tags=["hl7v2"], route_class=TransactionalRoute)

ER7_MEDIA_TYPE = service.ER7_MEDIA_TYPE
_ACK_DOC: dict[str, Any] = {"content": {ER7_MEDIA_TYPE: {}}}


@router.post(
    "/hl7v2",
    response_class=Response,
    responses={
        200: {"description": "AA: accepted (or a resend: the original ACK)", **_ACK_DOC},
        400: {"description": "AR: malformed or unsupported message", **_ACK_DOC},
        403: {"description": "AR: MSH-4 is not the caller's institution", **_ACK_DOC},
        413: {"description": "Message too large"},
        422: {"description": "AE: the content could not be processed (ERR says why)", **_ACK_DOC},
    },
)
async def receive_message(
    request: Request,
    db: DbSession,
    actor: Annotated[Actor, allow(Role.SYSTEM, scope=Scope.OWN_INSTITUTION)],
) -> Response:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    # The body must be read in the event loop; the database work runs in the thread pool
    # like every synchronous endpoint's.
    received = await run_in_threadpool(
        service.receive_http, db, actor, body, media_type=media_type, now=utcnow()
    )
    # In the character set the message declared (MSH-18 of the ACK names it).
    answer = received.ack.encoded()
    return Response(answer, status_code=received.status, media_type=ER7_MEDIA_TYPE)
