"""Dashboard pages under /indicators: the overview, the drill-down from the consortium to
an institution and its months, the disease spectrum, each with CSV/XLSX export; and, for
admins, definition editing (versioned) and the settlement file import.

Commission users reach only aggregates here; nothing lists a patient.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData, UploadFile

from medalliance.auth.enums import Role
from medalliance.auth.policy import Scope, allow
from medalliance.auth.principal import Actor
from medalliance.config import get_settings
from medalliance.errors import ValidationFailed
from medalliance.indicators import exports, pages, service, settlements
from medalliance.indicators.definitions import DIMENSIONS
from medalliance.indicators.enums import AGE_BANDS, Better, IndicatorKind, Level, PeriodKind, Sex
from medalliance.indicators.measures import CATALOGUE
from medalliance.kit.clock import utcnow
from medalliance.kit.http import DbSession, TransactionalRoute
from medalliance.web.i18n import get_locale
from medalliance.web.templating import render

router = APIRouter(prefix="/indicators", route_class=TransactionalRoute, include_in_schema=False)

Viewer = Annotated[Actor, allow(Role.COMMISSION, Role.ADMIN, scope=Scope.AGGREGATE)]
Admin = Annotated[Actor, allow(Role.ADMIN, scope=Scope.CONSORTIUM)]
Format = Literal["html", "csv", "xlsx"]


async def _form(request: Request) -> FormData:
    return await request.form()  # already parsed (and cached) by the CSRF check


Form = Annotated[FormData, Depends(_form)]


def _today() -> date:
    return utcnow().astimezone(ZoneInfo(get_settings().timezone)).date()


def _respond(
    request: Request,
    actor: Actor,
    template: str,
    context: dict[str, Any],
    tables: list[exports.Table],
    fmt: Format,
    filename: str,
) -> Response:
    if fmt == "html":
        return render(
            request, template, {**context, "tables": tables, "locale": get_locale()}, actor=actor
        )
    body = exports.render(tables, fmt)
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in filename)
    return Response(
        body,
        media_type=exports.MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{safe}.{fmt}"'},
    )


@router.get("", response_class=HTMLResponse)
def overview(
    request: Request,
    db: DbSession,
    actor: Viewer,
    period: str | None = None,
    level: Level = Level.CONSORTIUM,
    key: str | None = None,
    format: Format = "html",
) -> Response:
    page = pages.overview_page(db, period, level, key, _today())
    filename = f"indicators-{page.overview.period}-{level.value}"
    return _respond(
        request,
        actor,
        "indicators/overview.html",
        {"page": page, "levels": list(Level)},
        page.tables,
        format,
        filename,
    )


@router.get("/spectrum", response_class=HTMLResponse)
def disease_spectrum(
    request: Request,
    db: DbSession,
    actor: Viewer,
    period: str | None = None,
    by: Literal["township", "age_band", "sex"] = "township",
    age_band: str | None = None,
    sex: str | None = None,
    format: Format = "html",
) -> Response:
    page = pages.spectrum_page(db, period, by, age_band, sex, _today())
    context = {"page": page, "age_bands": [b for b, _lo, _hi in AGE_BANDS], "sexes": list(Sex)}
    return _respond(
        request,
        actor,
        "indicators/spectrum.html",
        context,
        page.tables,
        format,
        f"spectrum-{page.spectrum.period}",
    )


# --- definitions (admin) ------------------------------------------------------------------


@router.get("/definitions", response_class=HTMLResponse)
def definitions(request: Request, db: DbSession, actor: Admin) -> HTMLResponse:
    return render(
        request,
        "indicators/definitions.html",
        {"definitions": service.current_definitions(db), "locale": get_locale()},
        actor=actor,
    )


def _edit_context(db: DbSession, indicator_id: str) -> dict[str, Any]:
    return {
        "versions": service.definition_versions(db, indicator_id),
        "measures": CATALOGUE,
        "dimensions": DIMENSIONS,
        "kinds": list(IndicatorKind),
        "betters": list(Better),
        "all_levels": list(Level),
        "all_periods": list(PeriodKind),
    }


@router.get("/definitions/{indicator_id}", response_class=HTMLResponse)
def edit_definition(
    request: Request, db: DbSession, actor: Admin, indicator_id: str
) -> HTMLResponse:
    context = _edit_context(db, indicator_id)
    context["definition"] = context["versions"][0].definition.model_dump(mode="json")
    return render(request, "indicators/definition_edit.html", context, actor=actor)


_NUMBERS = ("percentile", "factor", "decimals", "target")


def _definition_body(form: FormData, indicator_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {"id": indicator_id}
    for name in (
        "name_zh",
        "name_en",
        "explanation_zh",
        "explanation_en",
        "dimension",
        "kind",
        "numerator",
        "denominator",
        "unit",
        "better",
        *_NUMBERS,
    ):
        value = form.get(name)
        text = value.strip() if isinstance(value, str) else ""
        body[name] = (text or None) if name in _NUMBERS or name == "denominator" else text
    body["levels"] = [v for v in form.getlist("levels") if isinstance(v, str)]
    body["periods"] = [v for v in form.getlist("periods") if isinstance(v, str)]
    return body


@router.post("/definitions/{indicator_id}", response_class=HTMLResponse)
def save_definition(
    request: Request, db: DbSession, actor: Admin, indicator_id: str, form: Form
) -> Response:
    body = _definition_body(form, indicator_id)
    note = form.get("note")
    try:
        service.save_definition(
            db, actor, indicator_id, body, note=note if isinstance(note, str) else "", now=utcnow()
        )
    except ValidationFailed as exc:
        context = {
            **_edit_context(db, indicator_id),
            "definition": body,
            "error": exc.message,
            "error_field": exc.field,
        }
        return render(
            request, "indicators/definition_edit.html", context, actor=actor, status_code=422
        )
    return RedirectResponse(f"/indicators/definitions/{indicator_id}?saved=1", status_code=303)


# --- settlement import (admin) ------------------------------------------------------------


@router.get("/settlements", response_class=HTMLResponse)
def settlement_imports(request: Request, db: DbSession, actor: Admin) -> HTMLResponse:
    context = {"imports": settlements.recent(db), "columns": settlements.COLUMNS}
    return render(request, "indicators/settlements.html", context, actor=actor)


@router.post("/settlements", response_class=HTMLResponse)
def upload_settlements(request: Request, db: DbSession, actor: Admin, form: Form) -> Response:
    upload = form.get("file")
    try:
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise ValidationFailed("file: choose a CSV or XLSX file", field="file")
        record = settlements.upload(db, actor, upload.filename, upload.file.read(), now=utcnow())
    except ValidationFailed as exc:
        context = {
            "imports": settlements.recent(db),
            "columns": settlements.COLUMNS,
            "error": exc.message,
        }
        return render(request, "indicators/settlements.html", context, actor=actor, status_code=422)
    return RedirectResponse(f"/indicators/settlements/{record.id}", status_code=303)


@router.get("/settlements/{import_id}", response_class=HTMLResponse)
def settlement_report(
    request: Request, db: DbSession, actor: Admin, import_id: str
) -> HTMLResponse:
    return render(
        request,
        "indicators/settlement_report.html",
        {"record": settlements.get(db, import_id)},
        actor=actor,
    )


@router.post("/settlements/{import_id}/accept")
def accept_settlements(db: DbSession, actor: Admin, import_id: str) -> RedirectResponse:
    settlements.accept(db, actor, import_id, now=utcnow())
    return RedirectResponse(f"/indicators/settlements/{import_id}", status_code=303)


@router.post("/settlements/{import_id}/discard")
def discard_settlements(db: DbSession, actor: Admin, import_id: str) -> RedirectResponse:
    settlements.discard(db, actor, import_id, now=utcnow())
    return RedirectResponse(f"/indicators/settlements/{import_id}", status_code=303)


# --- drill-down ---------------------------------------------------------------------------


@router.get("/{indicator_id}", response_class=HTMLResponse)
def indicator(
    request: Request,
    db: DbSession,
    actor: Viewer,
    indicator_id: str,
    period: str | None = None,
    by: Literal["institution", "township"] = "institution",
    format: Format = "html",
) -> Response:
    page = pages.breakdown_page(db, indicator_id, period, Level(by), _today())
    filename = f"{indicator_id}-{page.breakdown.period}-{by}"
    return _respond(
        request,
        actor,
        "indicators/breakdown.html",
        {"page": page, "by": by},
        page.tables,
        format,
        filename,
    )


@router.get("/{indicator_id}/{level}/{key}", response_class=HTMLResponse)
def indicator_months(
    request: Request,
    db: DbSession,
    actor: Viewer,
    indicator_id: str,
    level: Literal["institution", "township"],
    key: str,
    period: str | None = None,
    format: Format = "html",
) -> Response:
    page = pages.monthly_page(db, indicator_id, Level(level), key, period, _today())
    filename = f"{indicator_id}-{key}-{page.period}"
    return _respond(
        request, actor, "indicators/monthly.html", {"page": page}, page.tables, format, filename
    )
