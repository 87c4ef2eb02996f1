"""``/fhir`` routes of the shared record: every R4 type not served by a more specific
router (those are registered before this one in ``routes.py``), bundles, $everything,
AuditEvent and the CapabilityStatement. Edges only: parse, call one service function."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response
from fastapi.responses import Response as PlainResponse
from sqlalchemy.orm import Session
from starlette.datastructures import QueryParams

from medalliance.access.service import CLINICAL_ROLES
from medalliance.audit import fhir as audit_fhir
from medalliance.auth.policy import Scope, allow, public
from medalliance.auth.principal import Actor
from medalliance.errors import DomainError, NotFound
from medalliance.kit import fhirjson
from medalliance.kit.clock import utcnow
from medalliance.kit.direct import direct
from medalliance.kit.fhir import (
    FhirResponse,
    SearchParams,
    fhir_router,
    require_json_patch,
    search_routes,
    strict_handling,
    unread_parameters,
)
from medalliance.kit.http import MAX_INTEGER, DbSession, autocommit
from medalliance.records import render, service, writes
from medalliance.records.capability import capability_statement
from medalliance.records.dates import parse_range
from medalliance.records.everything import ignored_parameters
from medalliance.records.search.criteria import IGNORED_PARAMS
from medalliance.records.search.engine import MAX_PID

router = fhir_router()
Reader = Annotated[Actor, allow(scope=Scope.CARE_RELATIONSHIP)]
Writer = Annotated[Actor, allow(*sorted(CLINICAL_ROLES), scope=Scope.CARE_RELATIONSHIP)]
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid request (OperationOutcome)"},
    403: {"description": "No basis for access, or another institution's resource (audited)"},
    404: {"description": "Unknown resource"},
    406: {"description": "A format other than JSON asked for (_format, Accept)"},
    415: {"description": "A body other than JSON (or a form, for _search)"},
}


async def json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return fhirjson.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise DomainError("the body is not valid JSON", field="body") from None


Body = Annotated[Any, Depends(json_body)]


def _since(raw: str | None) -> datetime | None:
    if raw is None:
        return None
    parsed = parse_range(raw)
    if parsed is None:
        raise DomainError("_since must be a FHIR instant", field="_since")
    return parsed[0]


def _count(raw: str | None, default: int) -> int:
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()):  # "²".isdigit(), yet int("²") fails
        raise DomainError("_count must be a non-negative integer", field="_count")
    return min(int(raw), 1000)


@router.get("/metadata", dependencies=[public()], response_class=FhirResponse)
def metadata(request: Request) -> FhirResponse:
    # Public by convention: clients read the CapabilityStatement before they authenticate.
    return FhirResponse(capability_statement(render.base_url(request)))


@router.post("", response_class=FhirResponse, responses=ERRORS)
def bundle(request: Request, db: DbSession, actor: Writer, body: Body) -> FhirResponse:
    base = render.base_url(request)
    return FhirResponse(service.transaction(db, actor, body, now=utcnow(), base=base))


# Searches are a GET and a POST _search each (``kit.fhir.search_routes``; the store's
# generic pair, below, by hand for its path parameter). The GET reads its query in the
# endpoint, with no dependency for it: a bundle's GET entries call these endpoints directly.


def _audit_events(request: Request, db: Session, actor: Actor, params: QueryParams) -> FhirResponse:
    page = audit_fhir.search_events(
        db,
        actor,
        list(params.multi_items()),
        count=_count(params.get("_count"), 100),
        cursor=_row_cursor(params.get("_cursor")),
        now=utcnow(),
        strict=strict_handling(request.headers.get("prefer")),
    )
    return render.resources_searchset(
        request,
        page.events,
        total=page.total,
        next_cursor=page.next_cursor,
        warnings=page.warnings,
        ignored=page.ignored,
        search=_posted(request, "AuditEvent", params),
    )


search_routes(router, "AuditEvent", Reader, _audit_events, responses=ERRORS)


def _posted(
    request: Request, resource_type: str, params: QueryParams
) -> tuple[str, list[tuple[str, str]]] | None:
    """A POST ``_search``'s type and criteria, which its links repeat as a GET (the form
    is not sent again); None for a GET, whose links are its own URL."""
    return (resource_type, params.multi_items()) if request.method == "POST" else None


@router.get("/Patient/{patient_id}/$everything", response_class=FhirResponse, responses=ERRORS)
def everything(
    request: Request,
    db: DbSession,
    actor: Reader,
    patient_id: str,
    prefer: Annotated[str | None, Header()] = None,
) -> FhirResponse:
    params = request.query_params
    # Before the read: under strict handling an unknown parameter returns nothing.
    ignored = ignored_parameters(params.multi_items(), strict=strict_handling(prefer))
    result = service.patient_everything(
        db,
        actor,
        patient_id,
        now=utcnow(),
        since=_since(params.get("_since")),
        types=_types(params.getlist("_type")),
        start=_care_date(params.get("start"), "start"),
        end=_care_date(params.get("end"), "end"),
        count=_count(params.get("_count"), 100),
        cursor=_row_cursor(params.get("_cursor")),
        ignored=ignored,
    )
    return render.searchset(request, result)


def _types(raw: list[str]) -> list[str] | None:
    """``_type`` may repeat, each a comma-separated list; none given: every type."""
    named = [name.strip() for value in raw for name in value.split(",") if name.strip()]
    return named or None


def _care_date(raw: str | None, name: str) -> datetime | None:
    """``start`` from the first moment of the date given, ``end`` to its last."""
    if raw is None:
        return None
    parsed = parse_range(raw)
    if parsed is None:
        raise DomainError(f"{name} must be a FHIR date (e.g. 2026-03-01)", field=name)
    return parsed[0] if name == "start" else parsed[1]


def _row_cursor(raw: str | None) -> int | None:
    """A keyset cursor that is a row id (None: the first page)."""
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit() and int(raw) <= MAX_PID):
        raise DomainError("_cursor is not a cursor this server issued", field="_cursor")
    return int(raw)


@router.get("/{resource_type}/_history", response_class=FhirResponse, responses=ERRORS)
def type_history(
    request: Request,
    db: DbSession,
    actor: Reader,
    resource_type: str,
    prefer: Annotated[str | None, Header()] = None,
) -> FhirResponse:
    return _history(request, db, actor, resource_type, None, strict=strict_handling(prefer))


# What a history reads (R4 also defines _at and _list, which it does not).
HISTORY_PARAMETERS = frozenset({"_count", "_since", "_cursor", *IGNORED_PARAMS})


def _history(
    request: Request,
    db: DbSession,
    actor: Actor,
    resource_type: str,
    resource_id: str | None,
    *,
    strict: bool,
) -> FhirResponse:
    params = request.query_params
    # Before the read: under strict handling a parameter it cannot apply returns nothing.
    ignored = unread_parameters(params.multi_items(), HISTORY_PARAMETERS, "history", strict=strict)
    history = service.history(
        db, actor, resource_type, resource_id, now=utcnow(), since=_since(params.get("_since")),
        count=_count(params.get("_count"), 50), cursor=params.get("_cursor"),
    )  # fmt: skip
    return render.history_bundle(request, history, ignored=ignored)


@router.get("/{resource_type}", response_class=FhirResponse, responses=ERRORS)
def search(
    request: Request,
    db: DbSession,
    actor: Reader,
    resource_type: str,
    prefer: Annotated[str | None, Header()] = None,
) -> FhirResponse:
    return _search(request, db, actor, resource_type, request.query_params, prefer)


@router.post("/{resource_type}/_search", response_class=FhirResponse, responses=ERRORS)
def search_by_post(
    request: Request,
    db: DbSession,
    actor: Reader,
    resource_type: str,
    params: SearchParams,
    prefer: Annotated[str | None, Header()] = None,
) -> FhirResponse:
    return _search(request, db, actor, resource_type, params, prefer)


def _search(
    request: Request,
    db: Session,
    actor: Actor,
    resource_type: str,
    params: QueryParams,
    prefer: str | None,
) -> FhirResponse:
    autocommit(db)  # a search writes one statement: its page's audit rows
    result = service.search(
        db,
        actor,
        resource_type,
        params.multi_items(),
        now=utcnow(),
        strict=strict_handling(prefer),
    )
    return render.searchset(request, result, search=_posted(request, resource_type, params))


@router.post("/{resource_type}", response_class=FhirResponse, responses=ERRORS)
@direct
def create(
    request: Request,
    db: DbSession,
    actor: Writer,
    resource_type: str,
    body: Body,
    if_none_exist: Annotated[str | None, Header()] = None,
) -> Response:
    if writes.create_is_one_statement(resource_type) and not if_none_exist:
        autocommit(db)  # a conditional create matches, then writes: one transaction
    item = service.create(
        db, actor, body, now=utcnow(), if_none_exist=if_none_exist, expected_type=resource_type
    )
    return render.resource_response(item, request, status=201 if item.created else 200)


@router.put("/{resource_type}", response_class=FhirResponse, responses=ERRORS)
def conditional_update(
    request: Request,
    db: DbSession,
    actor: Writer,
    resource_type: str,
    body: Body,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    condition = request.url.query
    if not condition:
        raise DomainError("a conditional update needs search criteria in the URL", field="url")
    item = service.conditional_update(
        db, actor, resource_type, condition, body, now=utcnow(), if_match=if_match
    )
    return render.resource_response(item, request, status=201 if item.created else 200)


@router.delete("/{resource_type}", response_class=FhirResponse, responses=ERRORS)
def conditional_delete(
    request: Request,
    db: DbSession,
    actor: Writer,
    resource_type: str,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    condition = request.url.query
    if not condition:
        raise DomainError("a conditional delete needs search criteria in the URL", field="url")
    service.conditional_delete(db, actor, resource_type, condition, now=utcnow(), if_match=if_match)
    return PlainResponse(status_code=204)


@router.get("/{resource_type}/{resource_id}", response_class=FhirResponse, responses=ERRORS)
@direct
def read(
    request: Request, db: DbSession, actor: Reader, resource_type: str, resource_id: str
) -> Response:
    autocommit(db)  # reads write one statement: their audit row
    item = service.read(db, actor, resource_type, resource_id, now=utcnow())
    return render.resource_response(item, request)


@router.put("/{resource_type}/{resource_id}", response_class=FhirResponse, responses=ERRORS)
@direct
def update(
    request: Request,
    db: DbSession,
    actor: Writer,
    resource_type: str,
    resource_id: str,
    body: Body,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    item = service.update(
        db, actor, resource_type, resource_id, body, now=utcnow(), if_match=if_match
    )
    return render.resource_response(item, request, status=201 if item.created else 200)


@router.patch("/{resource_type}/{resource_id}", response_class=FhirResponse, responses=ERRORS)
@direct
def patch(
    request: Request,
    db: DbSession,
    actor: Writer,
    resource_type: str,
    resource_id: str,
    body: Body,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    require_json_patch(request.headers.get("content-type"))
    item = service.patch(
        db, actor, resource_type, resource_id, body, now=utcnow(), if_match=if_match
    )
    return render.resource_response(item, request)


@router.delete("/{resource_type}/{resource_id}", response_class=FhirResponse, responses=ERRORS)
@direct
def delete(
    db: DbSession,
    actor: Writer,
    resource_type: str,
    resource_id: str,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    service.delete(db, actor, resource_type, resource_id, now=utcnow(), if_match=if_match)
    return PlainResponse(status_code=204)


@router.get(
    "/{resource_type}/{resource_id}/_history", response_class=FhirResponse, responses=ERRORS
)
def instance_history(
    request: Request,
    db: DbSession,
    actor: Reader,
    resource_type: str,
    resource_id: str,
    prefer: Annotated[str | None, Header()] = None,
) -> FhirResponse:
    strict = strict_handling(prefer)
    return _history(request, db, actor, resource_type, resource_id, strict=strict)


@router.get(
    "/{resource_type}/{resource_id}/_history/{version}",
    response_class=FhirResponse,
    responses=ERRORS,
)
@direct
def vread(
    request: Request,
    db: DbSession,
    actor: Reader,
    resource_type: str,
    resource_id: str,
    version: int,
) -> Response:
    if version > MAX_INTEGER:
        # No resource gets that far, and PostgreSQL refuses such a number as an integer.
        raise NotFound(f"{resource_type}/{resource_id} has no version {version}")
    autocommit(db)
    item = service.vread(db, actor, resource_type, resource_id, version, now=utcnow())
    return render.resource_response(item, request)
