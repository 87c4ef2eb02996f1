"""A batch or transaction's GET entries, answered by the route the same GET under /fhir
reaches: read, search, vread, history or operation of any type the server serves, with
that route's role policy and its endpoint (so the same access checks and audit), in the
bundle's session (a transaction's reads see what it wrote) and for the bundle's actor.

FastAPI's own dispatch is not used: it would open a session of its own and authenticate
the request again. Routes are matched in the app's order, as Starlette matches them.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from http import HTTPStatus
from typing import Any, get_args
from urllib.parse import quote, unquote, urlsplit

from fastapi import Request, Response
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session

from medalliance.auth.policy import POLICY_ATTR, Policy
from medalliance.auth.principal import Actor
from medalliance.errors import DomainError, Forbidden, NotFound
from medalliance.kit import fhirjson
from medalliance.kit.fhir import negotiate
from medalliance.kit.http import DbSession

_DB = get_args(DbSession)[1].dependency
# What a URL may hold as it is (RFC 3986 reserved and unreserved): the rest (spaces,
# non-ASCII text as entries often carry it) is percent-encoded, as a client sends it.
_URL_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))


@dataclass(frozen=True)
class Answer:
    """The entry's ``resource`` and ``response`` (R4 Bundle.entry)."""

    resource: dict[str, Any] | None
    response: dict[str, Any]


@dataclass(frozen=True)
class _Route:
    regex: re.Pattern[str]
    endpoint: Callable[..., Any]
    policies: tuple[Policy, ...]
    arguments: tuple[tuple[str, str], ...]  # (parameter, what it is given)
    integers: frozenset[str]  # path parameters declared int


def answer(
    db: Session,
    actor: Actor,
    url: str,
    *,
    base: str | None,
    if_none_match: str | None = None,
    if_modified_since: str | None = None,
) -> Answer:
    """``GET [base]/url`` for ``actor`` in ``db``; a refusal or failure raises, as the
    route would (the bundle turns it into the entry's outcome, or fails the transaction).
    The entry's ``ifNoneMatch`` and ``ifModifiedSince`` are the request's headers: a read
    the client's copy answers is a 304, as directly."""
    raw_path, _, query = url.partition("?")
    path = "/fhir/" + unquote(raw_path)
    given = {"if-none-match": if_none_match, "if-modified-since": if_modified_since}
    conditions = {name: value for name, value in given.items() if value is not None}
    for route in _routes():
        match = route.regex.match(path)
        if match is not None:
            request = _request(db, actor, path, quote(query, safe=_URL_SAFE), base, conditions)
            response = route.endpoint(**_arguments(route, match.groupdict(), request, db, actor))
            return _answer(response)
    raise NotFound(f"GET {url} is not an interaction this server serves")


@cache
def _routes() -> tuple[_Route, ...]:
    # Imported here: the app's routers import every domain, this module among them.
    from medalliance.routes import FHIR_ROUTERS

    return tuple(
        _route(route)
        for router in FHIR_ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute) and "GET" in (route.methods or ())
    )


def _route(route: APIRoute) -> _Route:
    dependant = route.dependant
    arguments = [(p.name, "path") for p in dependant.path_params]
    arguments += [(h.name, "none") for h in dependant.header_params]  # entries send none
    if dependant.request_param_name:
        arguments.append((dependant.request_param_name, "request"))
    policies: list[Policy] = []
    for sub in dependant.dependencies:
        policy = getattr(sub.call, POLICY_ATTR, None)
        if policy is not None:
            policies.append(policy)
            arguments += [(sub.name, "actor")] if sub.name else []
        elif sub.call is _DB and sub.name:
            arguments.append((sub.name, "db"))
        elif sub.call is not negotiate:  # the bundle's own request negotiated JSON
            raise TypeError(f"GET {route.path}: a bundle cannot resolve {sub.call!r}")
    if dependant.query_params or dependant.body_params or dependant.cookie_params:
        raise TypeError(f"GET {route.path}: a bundle resolves path and header parameters only")
    return _Route(
        regex=route.path_regex,
        # The plain function: TransactionalRoute's wrapper would commit the bundle's session.
        endpoint=inspect.unwrap(route.endpoint),
        policies=tuple(policies),
        arguments=tuple(arguments),
        integers=frozenset(p.name for p in dependant.path_params if p.field_info.annotation is int),
    )


def _request(
    db: Session,
    actor: Actor,
    path: str,
    query: str,
    base: str | None,
    conditions: dict[str, str],
) -> Request:
    """The GET as it would have reached the route: same host, same paths, so that the
    links and fullUrls it answers are those of the direct request, and the same
    conditional-read headers."""
    parts = urlsplit(base or "")
    root = parts.path.rstrip("/").removesuffix("/fhir")
    headers = [(b"host", parts.netloc.encode())] if parts.netloc else []
    headers += [(name.encode(), value.encode()) for name, value in conditions.items()]
    scope = {
        "type": "http",
        "method": "GET",
        "scheme": parts.scheme or "http",
        "server": None,
        "root_path": root,
        "path": root + path,
        "query_string": query.encode(),
        "headers": headers,
        "state": {"db": db, "actor": actor},
    }
    return Request(scope)


def _arguments(
    route: _Route, path: dict[str, str], request: Request, db: Session, actor: Actor
) -> dict[str, Any]:
    for policy in route.policies:
        if not policy.permits(actor.role):
            raise Forbidden(f"role {actor.role.value} may not use this function")
    # Reads begin the transaction they audit in, whatever the entry's place in the bundle:
    # a read alone on an idle session would otherwise make it commit statement by
    # statement (``kit.http.autocommit``).
    db.connection()
    given: dict[str, Any] = {"request": request, "db": db, "actor": actor, "none": None}
    kwargs: dict[str, Any] = {}
    for name, what in route.arguments:
        kwargs[name] = _path_value(route, name, path[name]) if what == "path" else given[what]
    return kwargs


def _path_value(route: _Route, name: str, value: str) -> str | int:
    if name not in route.integers:
        return value
    if not (value.isascii() and value.isdigit()):
        raise DomainError(f"{name} must be an integer", field=name)
    return int(value)


def _answer(response: Response) -> Answer:
    resource = fhirjson.loads(bytes(response.body)) if response.body else None
    status = response.status_code
    said: dict[str, Any] = {"status": f"{status} {HTTPStatus(status).phrase}"}
    if etag := response.headers.get("etag"):
        said["etag"] = etag
    meta = resource.get("meta") if isinstance(resource, dict) else None
    if isinstance(meta, dict) and isinstance(meta.get("lastUpdated"), str):
        said["lastModified"] = meta["lastUpdated"]
    return Answer(resource, said)
