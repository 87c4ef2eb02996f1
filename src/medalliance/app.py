"""The ASGI application: routers, middleware, error rendering, static assets, metrics."""

from __future__ import annotations

import gc
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import sqlalchemy.exc
import structlog
from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from medalliance import __version__
from medalliance.audit import service as audit_service
from medalliance.auth.policy import api_routes, public
from medalliance.config import Settings, get_settings
from medalliance.db import get_sessionmaker, rolled_back_by_contention, unit_of_work
from medalliance.errors import Conflict, DomainError, PayloadTooLarge
from medalliance.kit.direct import DirectRoutes
from medalliance.kit.fhir import JSON_TYPES, is_fhir_path, media_type, outcome_response
from medalliance.kit.problems import problem_response
from medalliance.routes import ROUTERS
from medalliance.web import i18n
from medalliance.web.templating import render

log = structlog.get_logger(__name__)

REQUESTS = Counter(
    "medalliance_http_requests_total", "HTTP requests", ["method", "route", "status"]
)
LATENCY = Histogram("medalliance_http_request_seconds", "HTTP latency", ["method", "route"])
STATIC_DIR = Path(__file__).parent / "web" / "static"
VENDOR_ASSETS = {"htmx": "htmx.org/dist", "echarts": "echarts/dist", "pico": "@picocss/pico/css"}


def _is_api(request: Request) -> bool:
    return request.url.path.startswith(("/api", "/fhir", "/metrics", "/health"))


def _refusal(
    path: str, status: int, code: str, message: str, *, field: str | None = None
) -> Response:
    """A refusal made before any route ran, in the format of the part of the app asked:
    an OperationOutcome under /fhir, problem+json elsewhere."""
    if is_fhir_path(path):
        return outcome_response(status, message)
    return problem_response(status, code, message, field=field)


class BodySizeLimit:
    """Refuses bodies over the limit before they are buffered (413)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            message = f"request body exceeds {self.max_bytes} bytes"
            response = _refusal(scope["path"], 413, "payload-too-large", message)
            await response(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise PayloadTooLarge(f"request body exceeds {self.max_bytes} bytes")
            return message

        await self.app(scope, counted, send)


# A NUL as a JSON body writes it: ``\u0000`` not itself escaped (``\\u0000`` is text).
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_FORM_NUL = re.compile(rb"%00|\x00")


def _nul_pattern(media: str) -> re.Pattern[bytes] | None:
    # FastAPI reads a body without a type, or of any JSON type, as JSON.
    if media == "application/x-www-form-urlencoded":
        return _FORM_NUL
    if not media or media in JSON_TYPES or media.endswith("+json"):
        return _JSON_NUL
    return None


def _carried(text: bytes) -> bytes:
    """What a body chunk leaves for the next one to be scanned with: a mark may straddle
    the two (its last 5 bytes), and whether it is escaped depends on the parity of the
    backslashes before it, kept as one backslash or none (a run may be any length)."""
    window = max(len(text) - 5, 0)
    run = window - len(text[:window].rstrip(b"\\"))
    return b"\\" * (run % 2) + text[window:]


class RejectNul:
    """Refuses text holding a NUL character (400): PostgreSQL cannot store one in a text
    column, so it otherwise failed deep in a statement as a server error. Checked in the
    URL (path and query) and, as they stream in, in JSON and form bodies. Other bodies
    (HL7 v2, uploads) are left to their readers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        where = None
        if "\x00" in scope["path"]:
            where = "path"
        elif b"%00" in scope["query_string"]:
            where = "query string"
        if where is not None:
            message = f"the request {where} contains a NUL character"
            response = _refusal(scope["path"], 400, "invalid-request", message, field=where)
            await response(scope, receive, send)
            return
        pattern = _nul_pattern(media_type(Headers(scope=scope).get("content-type", "")))
        if pattern is None:
            await self.app(scope, receive, send)
            return
        tail = b""

        async def checked() -> Message:
            nonlocal tail
            message = await receive()
            text = tail + message.get("body", b"")
            # Raised while the endpoint reads its body: the app's handlers render it (an
            # HTTPException, which FastAPI's body parsing passes on rather than hiding).
            if pattern.search(text):
                raise StarletteHTTPException(400, "the request body contains a NUL character")
            tail = _carried(text)
            return message

        await self.app(scope, checked, send)


def _audit_refusal(request: Request, exc: DomainError) -> None:
    """A refused request rolled back its own transaction: record the refusal separately."""
    actor = getattr(request.state, "actor", None)
    try:
        with unit_of_work(request.app.state.sessionmaker) as db:
            audit_service.record_refusal(
                db,
                actor,
                exc.message,
                method=request.method,
                path=request.url.path,
                ip=request.client.host if request.client else None,
            )
    except Exception:
        log.exception("audit_refusal_failed")


async def domain_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    if exc.status == 403:
        # In the thread pool: a database write must not stall the event loop.
        await run_in_threadpool(_audit_refusal, request, exc)
    if is_fhir_path(request.url.path):
        headers = {"Allow": _allowed_methods(request)} if exc.status == 405 else None
        return outcome_response(
            exc.status, exc.message, expression=exc.field, headers=headers, code=exc.issue
        )
    if _is_api(request):
        return problem_response(exc.status, exc.code, exc.message, field=exc.field)
    if exc.status == 401:
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
    actor = getattr(request.state, "actor", None)
    return render(
        request,
        "error.html",
        {"status": exc.status, "message": exc.message},
        actor=actor,
        status_code=exc.status,
    )


def _allowed_methods(request: Request) -> str:
    """What a 405 SHALL list (RFC 9110 15.5.6): the methods of the routes for this path
    that serve its type. The generic store's routes (their type a path parameter) matched
    too, then refused the type: they are not among them."""
    path = request.url.path
    methods = {
        method
        for route in api_routes(list(request.app.routes))
        if not route.path.startswith("/fhir/{") and route.path_regex.match(path)
        for method in route.methods or ()
    }
    return ", ".join(sorted(methods))


async def nul_error_handler(request: Request, exc: Exception) -> Response:
    """A NUL character that reached the database past ``RejectNul`` (a multipart form, a
    raw byte): PostgreSQL text cannot hold one, and the request's transaction is already
    rolled back. Any other data error is a server error."""
    text = str(exc)
    if "NUL (0x00)" not in text and "unsupported Unicode escape sequence" not in text:
        raise exc
    error = DomainError("the request contains a NUL character, which no text field may hold")
    return await domain_error_handler(request, error)


async def contention_error_handler(request: Request, exc: Exception) -> Response:
    """A deadlock or serialization failure: PostgreSQL chose this request's transaction
    and rolled it back whole, so nothing of it was stored and sending it again is safe (a
    409, not a server error). Any other operational error is a server error."""
    sqlstate = rolled_back_by_contention(exc)
    if sqlstate is None:
        raise exc
    log.warning("transaction_rolled_back", path=request.url.path, sqlstate=sqlstate)
    error = Conflict(
        "another request was changing the same resources at the same time; nothing of "
        "this one was stored: send it again"
    )
    return await domain_error_handler(request, error)


async def validation_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "loc": [str(p) for p in err.get("loc", ())],
            "msg": err.get("msg", ""),
            "type": err.get("type", ""),
        }
        for err in exc.errors()
    ]
    detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors) or "invalid request"
    if is_fhir_path(request.url.path):
        return outcome_response(400, detail)
    if _is_api(request):
        return problem_response(422, "validation-failed", detail, errors=errors)
    return render(request, "error.html", {"status": 400, "message": detail}, status_code=400)


async def http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    message = str(exc.detail)
    response: Response
    if is_fhir_path(request.url.path):
        response = outcome_response(exc.status_code, message)
    elif _is_api(request):
        response = problem_response(exc.status_code, "http-error", message)
    else:
        response = render(
            request,
            "error.html",
            {"status": exc.status_code, "message": message},
            status_code=exc.status_code,
        )
    response.headers.update(exc.headers or {})  # a 405's Allow
    return response


_LOGGED = "_medalliance_logged"


async def server_error_handler(request: Request, exc: Exception) -> Response:
    """Anything unexpected (Starlette's outer ServerErrorMiddleware calls this, for the
    direct FHIR routes too). The traceback goes to the log, once (``AnsweredErrors``), and
    only there: a client learns nothing of the code or data from it. A FHIR client gets an
    OperationOutcome, an API client a problem+json (RFC 9457), as their other errors; pages
    keep Starlette's plain answer."""
    log.error("unhandled_exception", method=request.method, path=request.url.path, exc_info=exc)
    # An exception type that takes no attribute is raised on, and logged again by the server.
    with suppress(AttributeError):
        setattr(exc, _LOGGED, True)
    if is_fhir_path(request.url.path):
        return outcome_response(500, "the server failed to process the request")
    if _is_api(request):
        return problem_response(500, "server-error", "the server failed to process the request")
    return PlainTextResponse("Internal Server Error", status_code=500)


class AnsweredErrors:
    """Outermost: an exception ``server_error_handler`` logged and answered stops here.
    ServerErrorMiddleware raises it on after the 500 (for servers and test clients to see),
    and uvicorn would log its traceback a second time."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            if not getattr(exc, _LOGGED, False):
                raise


class MedAllianceApp(FastAPI):
    def build_middleware_stack(self) -> ASGIApp:
        return AnsweredErrors(super().build_middleware_stack())


def _mount_static(app: FastAPI, settings: Settings) -> None:
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for name, sub in VENDOR_ASSETS.items():
        directory = settings.static_vendor_dir / sub
        if directory.is_dir():
            app.mount(f"/vendor/{name}", StaticFiles(directory=directory), name=f"vendor-{name}")
        else:
            log.warning("vendor_assets_missing", asset=name, directory=str(directory))


def create_app(
    settings: Settings | None = None,
    *,
    run_worker: bool = False,
    sessionmaker: sessionmaker[Session] | None = None,
) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        from medalliance import worker
        from medalliance.records import searchparams, validation

        # The FHIR definitions and models load in seconds: before the first request, not
        # during it.
        await run_in_threadpool(searchparams.warm)
        await run_in_threadpool(validation.warm)
        # With those definitions ~600,000 objects live as long as the process: frozen, the
        # collector no longer walks them on every full collection.
        _freeze_once()
        stop = None
        if run_worker:
            stop = worker.start_in_process(settings.worker_interval_seconds)[1]
        yield
        if stop is not None:
            stop.set()

    app = MedAllianceApp(
        title="MedAlliance",
        version=__version__,
        description="Integrated information platform of a medical consortium (医联体).",
        lifespan=lifespan,
    )
    for router in ROUTERS:
        app.include_router(router)
    app.state.sessionmaker = sessionmaker or get_sessionmaker()
    _add_operational_routes(app)
    app.add_exception_handler(DomainError, domain_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(psycopg.DataError, nul_error_handler)
    app.add_exception_handler(sqlalchemy.exc.DataError, nul_error_handler)
    app.add_exception_handler(psycopg.OperationalError, contention_error_handler)
    app.add_exception_handler(sqlalchemy.exc.OperationalError, contention_error_handler)
    app.add_exception_handler(Exception, server_error_handler)
    _add_middleware(app, settings)
    _mount_static(app, settings)
    return app


_FROZEN: list[bool] = []


def _freeze_once() -> None:
    # Once per process: tests start many apps, and a later freeze would also pin whatever
    # the previous one left live.
    if not _FROZEN:
        gc.collect()
        gc.freeze()
        _FROZEN.append(True)


def _add_operational_routes(app: FastAPI) -> None:
    @app.get("/health", tags=["ops"], dependencies=[public()])
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.get("/metrics", tags=["ops"], dependencies=[public()], include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


class LocaleAndMetrics:
    """Picks the locale (session, else Accept-Language), times the request by route
    template and sets Content-Language. Plain ASGI: ``@app.middleware("http")`` ran every
    request through an extra task and memory streams, a visible share of an API call."""

    def __init__(self, app: ASGIApp, default_locale: str) -> None:
        self.app, self.default_locale = app, default_locale

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        session = scope.get("session") or {}
        chosen = session.get("lang") or i18n.negotiate(
            Headers(scope=scope).get("accept-language"), self.default_locale
        )
        i18n.set_locale(chosen)
        language = "zh-CN" if chosen == "zh_CN" else "en"
        started, status = time.perf_counter(), 500

        async def send_with_language(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                if "content-language" not in headers:
                    headers["Content-Language"] = language
            await send(message)

        try:
            await self.app(scope, receive, send_with_language)
        finally:
            template = getattr(scope.get("route"), "path", "unmatched")
            _latency(scope["method"], template).observe(time.perf_counter() - started)
            _requests(scope["method"], template, status).inc()


# The labelled series, kept: ``labels()`` locks and builds its key on every call (~2 % of an
# API request's server time). Methods, route templates and statuses are few; bounded anyway.
@lru_cache(maxsize=4096)
def _latency(method: str, route: str) -> Any:
    return LATENCY.labels(method, route)


@lru_cache(maxsize=4096)
def _requests(method: str, route: str, status: int) -> Any:
    return REQUESTS.labels(method, route, str(status))


def _add_middleware(app: FastAPI, settings: Settings) -> None:
    # Innermost: FHIR reads and writes marked @direct skip FastAPI's routing and dependency
    # solving; every middleware below still wraps them. Built once all routes are in.
    app.add_middleware(
        DirectRoutes,
        routes=api_routes(list(app.routes)),
        prefix="/fhir/",
        threads=settings.direct_threads,
    )
    app.add_middleware(LocaleAndMetrics, default_locale=settings.default_locale)
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie="medalliance_session",
        max_age=settings.session_max_age_seconds,
        same_site="lax",
        https_only=settings.environment == "production",
    )
    app.add_middleware(RejectNul)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
