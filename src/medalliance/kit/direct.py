"""Direct dispatch of the busiest API routes, past FastAPI's router and dependency solver.

A member system's FHIR read or write is small; FastAPI spent about a third of its server
time on routing (the winning router matched twice), solving dependencies and wrapping the
call, not on the request. A route marked ``@direct`` stays declared as usual (OpenAPI,
the access matrix, ``api_routes``) and keeps its endpoint, dependencies, policy and
transaction; only the way it is reached changes. ``DirectRoutes`` sits innermost of the
app's middleware (sessions, locale and metrics, body limit all still apply), finds the
route Starlette would pick, resolves its plain dependencies in declared order, runs the
endpoint and the commit in one trip to the thread pool, and renders errors with the app's
own exception handlers. Anything it does not fully understand goes to the app unchanged.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from inspect import iscoroutinefunction
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.params import Header, Path
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from medalliance.kit.http import TransactionalRoute, rollback_and_close

DIRECT_ATTR = "__medalliance_direct__"
F = TypeVar("F", bound=Callable[..., Any])


def direct(endpoint: F) -> F:
    """Marks a ``def`` endpoint (returning a ``Response``) for direct dispatch."""
    setattr(endpoint, DIRECT_ATTR, True)
    return endpoint


class NotDirect(TypeError):
    """A marked route uses something direct dispatch does not resolve (fails at startup)."""


@dataclass(frozen=True)
class _Dependency:
    name: str | None
    call: Callable[[Request], Awaitable[Any]]


@dataclass(frozen=True)
class _Plan:
    """How to call one route's endpoint: everything FastAPI would solve, decided once."""

    route: APIRoute
    endpoint: Callable[..., Any]
    dependencies: tuple[_Dependency, ...]
    path_params: tuple[tuple[str, type], ...]  # (name, str | int)
    headers: tuple[tuple[str, str], ...]  # (argument, header name)
    request_param: str | None

    def arguments(self, request: Request, path: dict[str, str]) -> dict[str, Any] | None:
        """Path and header arguments; None when a path value needs FastAPI's validation
        (and its error): then the app handles the request."""
        kwargs: dict[str, Any] = {}
        for name, kind in self.path_params:
            value = path[name]
            if kind is int:
                if not (value.isascii() and value.isdigit()):
                    return None
                kwargs[name] = int(value)
            else:
                kwargs[name] = value
        headers = request.headers
        for name, header in self.headers:
            kwargs[name] = headers.get(header)
        if self.request_param:
            kwargs[self.request_param] = request
        return kwargs


def plan_for(route: APIRoute) -> _Plan:
    """The plan of a marked route; ``NotDirect`` names what it cannot resolve."""
    dependant = route.dependant
    where = f"{sorted(route.methods or ())} {route.path}"
    unsupported = (
        dependant.query_params,
        dependant.cookie_params,
        dependant.body_params,
        dependant.response_param_name,
        dependant.background_tasks_param_name,
        dependant.security_scopes_param_name,
        dependant.websocket_param_name,
        dependant.http_connection_param_name,
    )
    if any(unsupported):
        raise NotDirect(f"{where}: only path, header, request and Depends(...) parameters")
    if iscoroutinefunction(route.endpoint) or not isinstance(route, TransactionalRoute):
        raise NotDirect(f"{where}: direct dispatch runs plain def endpoints of a transaction")
    return _Plan(
        route=route,
        endpoint=_original(route.endpoint),
        dependencies=tuple(_dependency(sub, where) for sub in dependant.dependencies),
        path_params=tuple(_path_param(field, where) for field in dependant.path_params),
        headers=tuple(_header_param(field, where) for field in dependant.header_params),
        request_param=dependant.request_param_name,
    )


def _original(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    # TransactionalRoute wraps sync endpoints to commit in their thread; the direct path
    # commits itself, after the endpoint, in the same thread.
    return getattr(endpoint, "__wrapped__", endpoint)


def _dependency(sub: Any, where: str) -> _Dependency:
    # Only ``async def f(request)`` with nothing below it: calling it with the request is
    # then exactly what FastAPI does (no cache, scopes or yield to honour).
    simple = (
        sub.call is not None
        and iscoroutinefunction(sub.call)
        and sub.request_param_name is not None
        and not (sub.path_params or sub.query_params or sub.header_params)
        and not (sub.cookie_params or sub.body_params or sub.dependencies)
    )
    if not simple:
        raise NotDirect(f"{where}: dependency {sub.call!r} is not `async def f(request)`")
    return _Dependency(sub.name, sub.call)


def _path_param(field: Any, where: str) -> tuple[str, type]:
    kind = field.field_info.annotation
    if not isinstance(field.field_info, Path) or kind not in (str, int):
        raise NotDirect(f"{where}: path parameter {field.name} must be str or int")
    return field.name, kind


def _header_param(field: Any, where: str) -> tuple[str, str]:
    info = field.field_info
    dashed = field.name.replace("_", "-")
    plain = (
        isinstance(info, Header)
        and info.annotation == (str | None)
        and info.default is None
        and info.convert_underscores
        and field.alias in (field.name, dashed)
        and info.validation_alias is None
    )
    if not plain:
        raise NotDirect(f"{where}: header {field.name} must be `str | None = None`, unaliased")
    return field.name, dashed


@dataclass(frozen=True)
class _Candidate:
    regex: re.Pattern[str]
    plan: _Plan | None  # None: an ordinary route that wins over later direct ones


class DirectRoutes:
    """ASGI middleware: requests whose winning route is marked ``@direct`` are served here.

    ``routes`` are the app's API routes in matching order. The candidates are the routes
    that can match a path under the marked routes' common prefix, so the first full
    match among them is the route Starlette would dispatch to. They are kept per method:
    a route of another method never wins (Starlette picks the first full match, path
    and method), so a request tries only its own method's paths."""

    def __init__(self, app: ASGIApp, routes: list[APIRoute], prefix: str, threads: int) -> None:
        self.app, self.prefix = app, prefix
        # A plain executor, not anyio's pool: anyio's hand-off (a Python Queue and its
        # Condition, a capacity limiter, a cancel scope) was ~10 % of the server's time per
        # FHIR request; the executor's is a C SimpleQueue.
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="direct")
        candidates: dict[str, list[_Candidate]] = {}
        for route in routes:
            if not (route.path.startswith(prefix) or route.path.startswith("/{")):
                continue
            plan = plan_for(route) if getattr(route.endpoint, DIRECT_ATTR, False) else None
            for method in route.methods or ():
                candidates.setdefault(method, []).append(_Candidate(route.path_regex, plan))
        self.candidates = {method: tuple(found) for method, found in candidates.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(self.prefix) or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        for candidate in self.candidates.get(scope["method"], ()):
            match = candidate.regex.match(path)
            if match is not None:
                if candidate.plan is None:
                    break
                request = Request(scope, receive)
                kwargs = candidate.plan.arguments(request, match.groupdict())
                if kwargs is None:
                    break
                scope["route"], scope["path_params"] = candidate.plan.route, match.groupdict()
                response = await self._respond(candidate.plan, request, kwargs)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _respond(self, plan: _Plan, request: Request, kwargs: dict[str, Any]) -> Response:
        session: Session = request.app.state.sessionmaker()
        request.state.db = session
        try:
            for dependency in plan.dependencies:
                value = await dependency.call(request)
                if dependency.name is not None:
                    kwargs[dependency.name] = value
            call = partial(_run_and_commit, plan.endpoint, kwargs, session)
            # Shielded: a cancelled request's call still runs to its end in the thread
            # (commit or rollback, then close), as under anyio's run_sync.
            future = asyncio.get_running_loop().run_in_executor(self.pool, call)
            response: Response = await asyncio.shield(future)
            return response
        except Exception as exc:
            if session.in_transaction():  # a dependency used it; the endpoint's is closed
                await run_in_threadpool(rollback_and_close, session)
            handler = _handler(request.app.exception_handlers, exc)
            if handler is None:
                raise
            if iscoroutinefunction(handler):
                handled: Response = await handler(request, exc)
            else:
                handled = await run_in_threadpool(handler, request, exc)
            return handled


def _run_and_commit(
    endpoint: Callable[..., Any], kwargs: dict[str, Any], session: Session
) -> Response:
    """Endpoint, commit and close in one thread: each trip to the pool is a GIL hand-off.
    Nothing is kept when the endpoint raises (as ``TransactionalRoute``)."""
    try:
        response = endpoint(**kwargs)
        if not isinstance(response, Response):
            raise NotDirect(f"{endpoint.__name__} returned {type(response).__name__}")
        session.commit()
        return response
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _handler(handlers: dict[Any, Callable[..., Any]], exc: Exception) -> Any:
    """The handler Starlette's ExceptionMiddleware would pick (500 and ``Exception`` are
    the outer ServerErrorMiddleware's: such errors propagate)."""
    if isinstance(exc, HTTPException) and exc.status_code in handlers:
        return handlers[exc.status_code]
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        if cls in handlers:
            return handlers[cls]
    return None
