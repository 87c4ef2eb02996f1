"""FHIR R4 plumbing shared by every domain that exposes resources under ``/fhir``:
responses, OperationOutcome errors, searchset bundles with paging."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import QueryParams

from medalliance.errors import DomainError, NotAcceptable, UnsupportedMediaType
from medalliance.kit import fhirjson
from medalliance.kit.http import MAX_OFFSET, DbSession, TransactionalRoute

FHIR_JSON = "application/fhir+json"
FHIR_VERSION = "4.0.1"
DEFAULT_COUNT = 20
MAX_COUNT = 200
COMPARISON_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")

# Issue types from the R4 value set "IssueType", by HTTP status.
_ISSUE_CODE = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    409: "conflict",
    410: "deleted",
    412: "conflict",
    405: "not-supported",
    406: "not-supported",
    413: "too-costly",
    415: "not-supported",
    422: "processing",
}


class FhirResponse(Response):
    # R4 http.html "Content Types and encodings": the charset SHALL be stated, UTF-8.
    media_type = f"{FHIR_JSON}; charset=utf-8"

    def render(self, content: Any) -> bytes:
        if isinstance(content, bytes):
            return content  # stored JSON goes out as stored, without re-parsing
        return fhirjson.dumps(content)


def operation_outcome(
    status: int,
    message: str,
    *,
    expression: str | None = None,
    severity: str = "error",
    code: str | None = None,
) -> dict[str, Any]:
    """``code``: the IssueType, when the status's usual one does not say it."""
    issue: dict[str, Any] = {
        "severity": severity,
        "code": code or _ISSUE_CODE.get(status, "exception" if status >= 500 else "processing"),
        "diagnostics": message,
    }
    if expression:
        issue["expression"] = [expression]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def outcome_response(
    status: int,
    message: str,
    *,
    expression: str | None = None,
    headers: Mapping[str, str] | None = None,
    code: str | None = None,
) -> FhirResponse:
    """``headers``: those the error carries (a 405's ``Allow``)."""
    sent = dict(headers or {})
    if status == 401:
        sent["WWW-Authenticate"] = "Bearer"
    return FhirResponse(
        operation_outcome(status, message, expression=expression, code=code),
        status_code=status,
        headers=sent,
    )


def http_date(moment: datetime) -> str:
    """``Last-Modified`` and its kin take an HTTP-date (RFC 9110 5.6.7), not ISO 8601."""
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def not_modified(headers: Mapping[str, str], etag: str, last_modified: datetime) -> bool:
    """A conditional read the client's copy answers (304, RFC 9110 13.2.2): ``If-None-Match``
    naming the ETag (weak comparison: ``W/"3"`` and ``"3"`` are one version; ``*``: any),
    else ``If-Modified-Since`` no earlier than the last change, to the second as
    ``Last-Modified`` gives it. An unreadable date is ignored, as RFC 9110 says."""
    tags = headers.get("if-none-match")
    if tags is not None:
        wanted = {_opaque(tag) for tag in tags.split(",")}
        return "*" in wanted or _opaque(etag) in wanted
    since = headers.get("if-modified-since")
    if since is None:
        return False
    try:
        when = parsedate_to_datetime(since)
    except (TypeError, ValueError, IndexError):
        return False
    return when.tzinfo is not None and last_modified.replace(microsecond=0) <= when


def _opaque(tag: str) -> str:
    return tag.strip().removeprefix("W/")


def resource_headers(resource: Mapping[str, Any]) -> dict[str, str]:
    """A read's ETag and Last-Modified (R4 http.html read: SHOULD) for a resource a domain
    renders, from its meta: the version and time it has, if any."""
    meta = resource.get("meta") or {}
    headers = {}
    if "versionId" in meta:
        headers["ETag"] = f'W/"{meta["versionId"]}"'
    if "lastUpdated" in meta:
        headers["Last-Modified"] = http_date(datetime.fromisoformat(meta["lastUpdated"]))
    return headers


def read_response(request: Request, resource: dict[str, Any]) -> Response:
    """The read of a resource a domain renders from one versioned row (every change of
    it is a new meta.versionId, at meta.lastUpdated): a client's current copy is a 304."""
    headers = resource_headers(resource)
    changed = datetime.fromisoformat(resource["meta"]["lastUpdated"])
    if not_modified(request.headers, headers["ETag"], changed):
        return Response(status_code=304, headers=headers)
    return FhirResponse(resource, headers=headers)


@dataclass(frozen=True)
class Page:
    count: int
    offset: int


def page_from(params: Mapping[str, str]) -> Page:
    """``_count`` (capped) and our ``_offset`` paging cursor; bad values are a 400."""

    def as_int(name: str, default: int) -> int:
        raw = params.get(name)
        if raw is None or raw == "":
            return default
        if not (raw.isascii() and raw.isdigit()):  # "²".isdigit(), yet int("²") fails
            raise DomainError(f"{name} must be a non-negative integer", field=name)
        return int(raw)

    offset = as_int("_offset", 0)
    if offset > MAX_OFFSET:
        raise DomainError(f"_offset must be at most {MAX_OFFSET}", field="_offset")
    return Page(count=min(as_int("_count", DEFAULT_COUNT), MAX_COUNT), offset=offset)


def strict_handling(prefer: str | None) -> bool:
    """``Prefer: handling=strict``: a search parameter that cannot be applied is a 400
    instead of a warning."""
    return "handling=strict" in (prefer or "")


def unread_parameters(
    params: Sequence[tuple[str, str]], read: Collection[str], where: str, *, strict: bool
) -> list[tuple[str, str]]:
    """The (key, value) pairs ``where`` (an interaction: history, an operation) does not
    read, which its links leave out; under strict handling the first is a 400 instead."""
    unread = [(key, value) for key, value in params if key not in read]
    if unread and strict:
        key = unread[0][0]
        raise DomainError(unknown_parameter(key, where), field=key)
    return unread


def unknown_parameter(key: str, where: str) -> str:
    return f"unknown parameter {key} for {where}"


# What a domain's search reads besides its criteria: paging, the total, the format.
_SEARCH_CONTROLS = frozenset({"_count", "_offset", "_summary", "_total", "_format", "_pretty"})


@dataclass(frozen=True)
class ParsedSearch:
    """A search of resources a domain renders from its own tables (Task, Slot...): its
    page, whether it counts every match, the parameters it applies (which its links
    repeat) and a warning for each it ignores."""

    page: Page
    counted: bool
    applied: list[tuple[str, str]]
    warnings: list[str]


def parse_search(
    params: Sequence[tuple[str, str]],
    resource_type: str,
    criteria: Collection[str],
    *,
    strict: bool,
    includes: Collection[str] = (),
) -> ParsedSearch:
    """``criteria``: the parameters the domain reads; ``includes``: the ``_include``
    values it follows. Anything else is a warning, or under strict handling a 400, as in
    the record's searches. The total is counted when asked for (``_total=accurate``,
    ``_summary=count``) or when it is all a ``_count=0`` answers."""
    page = page_from(dict(params))
    counted, applied, warnings = False, [], []
    for key, value in params:
        problem = _unread_search_parameter(key, value, resource_type, criteria, includes)
        if problem is not None:
            if strict:
                raise DomainError(problem, field=key)
            warnings.append(f"{problem}; ignored")
            continue
        applied.append((key, value))
        if (key, value) == ("_summary", "count"):
            page = Page(count=0, offset=page.offset)
        counted = counted or (key, value) in (("_summary", "count"), ("_total", "accurate"))
    return ParsedSearch(page, counted or page.count == 0, applied, warnings)


def _unread_search_parameter(
    key: str, value: str, resource_type: str, criteria: Collection[str], includes: Collection[str]
) -> str | None:
    """What the search cannot do with ``key=value``, or None when it reads it."""
    if key in criteria:
        return None if search_values(value) else f"parameter {key} has no value"
    if key == "_include":
        return None if value in includes else f"_include={value} is not supported"
    if key == "_summary" and value not in ("count", "false"):
        return f"_summary={value} is not supported (only count)"
    if key in _SEARCH_CONTROLS:
        return None
    return f"unknown search parameter {key} for {resource_type}"


@dataclass(frozen=True)
class SearchPage:
    """A page of a ``ParsedSearch``: ``total`` is None unless it was counted."""

    resources: list[dict[str, Any]]
    search: ParsedSearch
    has_more: bool
    total: int | None
    included: list[dict[str, Any]] = field(default_factory=list)


def search_bundle(request: Request, found: SearchPage) -> dict[str, Any]:
    return searchset(
        request,
        found.resources,
        total=found.total,
        page=found.search.page,
        has_more=found.has_more,
        included=found.included,
        params=found.search.applied,
        warnings=found.search.warnings,
    )


def split_values(raw: str) -> list[str]:
    """A search parameter's comma-separated (OR-ed) values; ``\\,`` is a literal comma."""
    values, current, escaped = [], [], False
    for char in raw:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            values.append("".join(current))
            current = []
        else:
            current.append(char)
    values.append("".join(current))
    return [v.strip() for v in values]


def search_values(raw: str) -> list[str]:
    """The values of one occurrence of a domain search's parameter, OR-ed (none empty)."""
    return [v for v in split_values(raw) if v]


def narrowed(allowed: frozenset[str] | None, values: Iterable[str]) -> frozenset[str]:
    """What a criterion allows once one more occurrence of its parameter, of ``values``, is
    read: a repeated parameter ANDs (R4), so each occurrence narrows what the earlier ones
    allowed (None: no occurrence yet)."""
    return frozenset(values) if allowed is None else allowed & frozenset(values)


# A date search's [from, to) (None: open on that side).
DateRange = tuple[datetime | None, datetime | None]


def overlap(one: DateRange, other: DateRange) -> DateRange:
    """What both ranges cover: a repeated date parameter ANDs (``ge2024&lt2025``)."""
    lows = [b for b in (one[0], other[0]) if b is not None]
    highs = [b for b in (one[1], other[1]) if b is not None]
    return max(lows, default=None), min(highs, default=None)


def split_prefix(value: str) -> tuple[str, str]:
    """A date or number value's comparison prefix (``ge1980`` -> ``ge``, ``1980``)."""
    if len(value) > 2 and value[:2] in COMPARISON_PREFIXES and not value[2].isalpha():
        return value[:2], value[2:]
    return "eq", value


def searchset(
    request: Request,
    resources: Sequence[dict[str, Any]],
    *,
    total: int | None,
    page: Page,
    has_more: bool,
    included: Sequence[dict[str, Any]] = (),
    params: Sequence[tuple[str, str]] | None = None,
    warnings: Sequence[str] = (),
) -> dict[str, Any]:
    """``params``: the search parameters that were applied, which the links repeat
    (default: the request's own query; a POST ``_search`` passes its ``SearchParams``);
    a page of ``_count=0`` has no neighbours to link to. ``warnings``: of the parameters
    ignored, in an OperationOutcome entry."""
    if params is None:
        params = request.query_params.multi_items()
    base = str(request.base_url).rstrip("/")
    entries = [
        {
            "fullUrl": f"{base}/fhir/{r['resourceType']}/{r['id']}",
            "resource": r,
            "search": {"mode": "match"},
        }
        for r in resources
    ] + [
        {
            "fullUrl": f"{base}/fhir/{r['resourceType']}/{r['id']}",
            "resource": r,
            "search": {"mode": "include"},
        }
        for r in included
    ]
    if warnings:
        entries.append({"resource": warning_outcome(warnings), "search": {"mode": "outcome"}})
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": [{"relation": "self", "url": _page_url(request, params, page.offset, page.count)}],
        "entry": entries,
    }
    if total is not None:
        bundle["total"] = total
    if page.count == 0:
        return bundle  # "next" would be this same empty page: a client would never stop
    if has_more:
        following = page.offset + page.count
        bundle["link"].append(
            {"relation": "next", "url": _page_url(request, params, following, page.count)}
        )
    if page.offset > 0:
        previous = max(page.offset - page.count, 0)
        bundle["link"].append(
            {"relation": "previous", "url": _page_url(request, params, previous, page.count)}
        )
    return bundle


def warning_outcome(warnings: Sequence[str]) -> dict[str, Any]:
    issues = [{"severity": "warning", "code": "not-supported", "diagnostics": w} for w in warnings]
    return {"resourceType": "OperationOutcome", "issue": issues}


def _page_url(request: Request, params: Sequence[tuple[str, str]], offset: int, count: int) -> str:
    """A page as a GET of the type: a POST ``_search``'s links repeat its criteria there."""
    kept = [(k, v) for k, v in params if k not in ("_offset", "_count")]
    kept += [("_count", str(count)), ("_offset", str(offset))]
    return f"{str(request.url).split('?')[0].removesuffix('/_search')}?{urlencode(kept)}"


def is_fhir_path(path: str) -> bool:
    return path == "/fhir" or path.startswith("/fhir/")


# --- format negotiation: JSON is all /fhir reads and writes ---------------------------


JSON_TYPES = frozenset(
    {"application/fhir+json", "application/json", "application/json+fhir", "text/json"}
)
_FORMATS = JSON_TYPES | {"json"}
_ANY = frozenset({"*/*", "application/*"})
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
_BODIES = JSON_TYPES | FORM_TYPES | {"application/json-patch+json"}


def media_type(value: str) -> str:
    return value.split(";")[0].strip().lower()


def _accepts_json(accept: str | None) -> bool:
    if not accept:
        return True
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        weight = next((p[2:] for p in params if p.replace(" ", "").startswith("q=")), "1")
        try:
            refused = float(weight.strip("= ")) <= 0
        except ValueError:
            refused = False
        if not refused and (media.lower() in JSON_TYPES or media in _ANY):
            return True
    return False


async def negotiate(request: Request) -> None:
    """JSON is all this server reads and writes: asking for XML (``_format``, which wins
    over ``Accept``) is a 406, sending it a 415, rather than JSON the client cannot read
    or a body misread as JSON. It runs before the route's policy (a router dependency),
    so a caller without valid credentials is first told 401 (the role is checked after:
    a 406 stays a 406 for whoever is authenticated)."""
    refusal = _format_refusal(request)
    if refusal is not None:
        # Imported here: the kit sits below the domains, auth's dependencies among them.
        from medalliance.auth.deps import refuse_unauthenticated

        await refuse_unauthenticated(request)
        raise refusal


def _format_refusal(request: Request) -> DomainError | None:
    fmt = request.query_params.get("_format")
    if fmt is not None:
        # An unescaped "+" (application/fhir+xml) arrives as a space.
        if media_type(fmt.replace(" ", "+")) not in _FORMATS:
            return NotAcceptable(f"_format={fmt} is not served; only JSON", field="_format")
    elif not _accepts_json(request.headers.get("accept")):
        return NotAcceptable("this server answers application/fhir+json only", field="Accept")
    media = media_type(request.headers.get("content-type", ""))
    if media and media not in _BODIES and request.method in ("POST", "PUT", "PATCH"):
        return UnsupportedMediaType(
            f"a {media} body is not read here; send application/fhir+json", field="Content-Type"
        )
    return None


def require_json_patch(content_type: str | None) -> None:
    """A PATCH is read as JSON Patch alone: another format (FHIRPath Patch in a
    Parameters, XML Patch) is a 415 rather than a body misread as one."""
    if media_type(content_type or "") != "application/json-patch+json":
        raise UnsupportedMediaType("PATCH takes application/json-patch+json", field="Content-Type")


async def search_parameters(request: Request) -> QueryParams:
    """A POST ``[type]/_search``'s parameters: the query's, then its form's (R4 http.html
    search: a server SHALL support POST; the two may be combined)."""
    form_type = media_type(request.headers.get("content-type", "")) in FORM_TYPES
    if not form_type and await request.body():
        # Criteria in any other body would be ignored: the search would run without them.
        raise UnsupportedMediaType(
            "POST _search takes its criteria as application/x-www-form-urlencoded",
            field="Content-Type",
        )
    form = await request.form()
    posted = [(key, str(value)) for key, value in form.multi_items()]
    return QueryParams([*request.query_params.multi_items(), *posted])


# A POST _search route's parameters: declared after the actor, so the policy refuses
# first. GET search routes read ``request.query_params`` themselves: a bundle's GET
# entries call their endpoints with the request, the session and the actor alone.
SearchParams = Annotated[QueryParams, Depends(search_parameters)]


# What a type's search answers, for its GET and its POST _search alike: (request, session,
# actor, parameters).
Search = Callable[[Request, Session, Any, QueryParams], Response]


def search_routes(
    router: APIRouter,
    resource_type: str,
    reader: Any,
    search: Search,
    *,
    responses: dict[int | str, dict[str, Any]] | None = None,
) -> None:
    """``GET [type]`` and ``POST [type]/_search`` on ``router``, both answered by ``search``
    for an actor ``reader`` allows (an ``Annotated[Actor, allow(...)]``). The GET reads its
    query itself, so that a bundle's GET entries can call it; ``search`` reads headers
    (``Prefer``) from the request. ``responses``: the errors OpenAPI documents."""

    def by_get(request: Request, db: DbSession, actor: Any) -> Response:
        return search(request, db, actor, request.query_params)

    def by_post(request: Request, db: DbSession, actor: Any, params: SearchParams) -> Response:
        return search(request, db, actor, params)

    # Set after the definitions: an annotation that is a variable is no type to mypy.
    by_get.__annotations__["actor"] = by_post.__annotations__["actor"] = reader
    name = f"search_{resource_type}"
    router.add_api_route(
        f"/{resource_type}",
        by_get,
        methods=["GET"],
        name=name,
        response_class=FhirResponse,
        responses=responses,
    )
    router.add_api_route(
        f"/{resource_type}/_search",
        by_post,
        methods=["POST"],
        name=f"{name}_by_post",
        response_class=FhirResponse,
        responses=responses,
    )


def fhir_router() -> APIRouter:
    """A domain's ``/fhir`` router: transactional, and negotiating JSON on every route."""
    return APIRouter(
        prefix="/fhir",
        tags=["fhir"],
        route_class=TransactionalRoute,
        dependencies=[Depends(negotiate)],
    )
