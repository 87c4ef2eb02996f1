"""Registry pages: the institution list with search-as-you-type, institution detail with
its departments, staff and centres, and the forms that create, edit and (de)activate
consortia, institutions, departments, practitioners and practice sites.

A refused form (bad field, duplicate code) is shown again in place with a 4xx status and
nothing written; a 403 goes to the central handler so that it is audited.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from medalliance.auth.enums import Role
from medalliance.auth.policy import Scope, allow
from medalliance.auth.principal import Actor
from medalliance.errors import Conflict, ValidationFailed
from medalliance.kit.http import DbSession, PageOffset, TransactionalRoute
from medalliance.registry import service, staff
from medalliance.registry.enums import (
    ConsortiumKind,
    ConsortiumType,
    EmergencyCentre,
    InstitutionKind,
    InstitutionLevel,
    ProfessionalTitle,
    RegionalCentre,
    Sex,
)
from medalliance.registry.repository import InstitutionFilter
from medalliance.registry.schemas import (
    ConsortiumCreate,
    ConsortiumUpdate,
    DepartmentCreate,
    DepartmentUpdate,
    InstitutionCreate,
    InstitutionUpdate,
    PractitionerCreate,
    PractitionerUpdate,
    RoleCreate,
)
from medalliance.web.i18n import gettext as _
from medalliance.web.templating import render

router = APIRouter(prefix="/registry", route_class=TransactionalRoute, include_in_schema=False)

Reader = Annotated[Actor, allow(scope=Scope.CONSORTIUM)]
Admin = Annotated[Actor, allow(Role.ADMIN, scope=Scope.CONSORTIUM)]
Action = Literal["activate", "deactivate"]
PAGE_SIZE = 50
T = TypeVar("T")

# Fields whose empty form value means "none" rather than "empty text".
NULLABLE = frozenset({"parent_id", "latitude", "longitude", "department_id"})
LISTS = frozenset({"emergency_centres", "regional_centres"})
FLAGS = frozenset({"legal_person", "brand", "primary_site"})
ENUMS: dict[str, Any] = {
    "levels": list(InstitutionLevel),
    "kinds": list(InstitutionKind),
    "emergency": list(EmergencyCentre),
    "regional": list(RegionalCentre),
    "titles": list(ProfessionalTitle),
    "sexes": list(Sex),
    "consortium_types": list(ConsortiumType),
    "consortium_kinds": list(ConsortiumKind),
}


async def _form(request: Request) -> FormData:
    return await request.form()  # already parsed (and cached) by the CSRF check


Form = Annotated[FormData, Depends(_form)]


def _payload(form: FormData, schema: type[BaseModel]) -> dict[str, Any]:
    """Form fields as the schema wants them: lists, checkboxes, empty = none."""
    data: dict[str, Any] = {}
    for name in schema.model_fields:
        if name in LISTS:
            data[name] = [v for v in form.getlist(name) if isinstance(v, str) and v]
        elif name in FLAGS:
            data[name] = form.get(name) in ("on", "true", "1")
        elif name == "specialties":
            raw = str(form.get(name) or "")
            data[name] = [s.strip() for s in raw.replace("，", ",").split(",") if s.strip()]
        elif name in form:
            value = str(form.get(name) or "").strip()
            data[name] = None if value == "" and name in NULLABLE else value
    return data


def _describe(exc: ValidationError) -> tuple[str, str | None]:
    first = exc.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else None
    parts = [
        f"{_('field:' + str(e['loc'][0])) if e['loc'] else ''}: {e['msg']}" for e in exc.errors()
    ]
    return "; ".join(parts), field


def _attempt(db: Session, action: Callable[[], T]) -> tuple[T | None, str | None, int]:
    """Run a write; on a refused field roll back everything and say what was wrong."""
    try:
        return action(), None, 200
    except ValidationError as exc:
        db.rollback()
        return None, _describe(exc)[0], 422
    except (ValidationFailed, Conflict) as exc:
        db.rollback()
        label = f"{_('field:' + exc.field)}: " if exc.field else ""
        return None, label + exc.message, exc.status


def _back(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _values(form: FormData) -> dict[str, Any]:
    return {k: form.getlist(k) if k in LISTS else form.get(k) for k in form}


# --- institutions list ------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def index(
    request: Request,
    db: DbSession,
    actor: Reader,
    q: str = "",
    level: str = "",
    status: str = "",
    consortium: str = "",
    offset: PageOffset = 0,
) -> HTMLResponse:
    criteria = InstitutionFilter(
        text=q.strip()[:100],
        consortium_id=consortium or None,
        levels=(level,) if level in set(InstitutionLevel) else (),
        active={"active": True, "inactive": False}.get(status),
    )
    found = service.search_institutions(db, criteria, limit=PAGE_SIZE, offset=max(offset, 0))
    context = {
        "found": found,
        "q": q,
        "level": level,
        "status": status,
        "consortium": consortium,
        "offset": max(offset, 0),
        "page_size": PAGE_SIZE,
        **ENUMS,
    }
    # HTMX search-as-you-type swaps only the table.
    template = "registry/_rows.html" if request.headers.get("hx-request") else "registry/index.html"
    return render(request, template, context, actor=actor)


# --- institutions -----------------------------------------------------------------------


@router.get("/institutions/new", response_class=HTMLResponse)
def new_institution(request: Request, db: DbSession, actor: Admin) -> HTMLResponse:
    choices = service.form_choices(db, actor)
    return render(
        request, "registry/institution_new.html", {"choices": choices, **ENUMS}, actor=actor
    )


@router.post("/institutions", response_class=HTMLResponse)
def create_institution(request: Request, db: DbSession, actor: Admin, form: Form) -> Response:
    row, error, status = _attempt(
        db,
        lambda: service.create_institution(
            db, actor, InstitutionCreate.model_validate(_payload(form, InstitutionCreate))
        ),
    )
    if row is not None:
        return _back(f"/registry/institutions/{row.id}")
    context = {
        "choices": service.form_choices(db, actor),
        "error": error,
        "values": _values(form),
        **ENUMS,
    }
    return render(
        request, "registry/institution_new.html", context, actor=actor, status_code=status
    )


def _detail_page(
    request: Request,
    db: Session,
    actor: Actor,
    institution_id: str,
    *,
    error: str | None = None,
    form: FormData | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    context = {
        "d": service.institution_detail(db, actor, institution_id),
        "error": error,
        "values": _values(form) if form is not None else {},
        **ENUMS,
    }
    return render(
        request, "registry/institution.html", context, actor=actor, status_code=status_code
    )


@router.get("/institutions/{institution_id}", response_class=HTMLResponse)
def institution(request: Request, db: DbSession, actor: Reader, institution_id: str) -> Response:
    return _detail_page(request, db, actor, institution_id)


@router.post("/institutions/{institution_id}", response_class=HTMLResponse)
def update_institution(
    request: Request, db: DbSession, actor: Admin, institution_id: str, form: Form
) -> Response:
    row, error, status = _attempt(
        db,
        lambda: service.update_institution(
            db,
            actor,
            institution_id,
            InstitutionUpdate.model_validate(_payload(form, InstitutionUpdate)),
        ),
    )
    if row is not None:
        return _back(f"/registry/institutions/{institution_id}")
    return _detail_page(
        request, db, actor, institution_id, error=error, form=form, status_code=status
    )


@router.post("/institutions/{institution_id}/departments", response_class=HTMLResponse)
def create_department(
    request: Request, db: DbSession, actor: Admin, institution_id: str, form: Form
) -> Response:
    payload = {**_payload(form, DepartmentCreate), "institution_id": institution_id}
    row, error, status = _attempt(
        db,
        lambda: service.create_department(db, actor, DepartmentCreate.model_validate(payload)),
    )
    if row is not None:
        return _back(f"/registry/institutions/{institution_id}#departments")
    return _detail_page(
        request, db, actor, institution_id, error=error, form=form, status_code=status
    )


@router.post("/institutions/{institution_id}/practitioners", response_class=HTMLResponse)
def create_practitioner(
    request: Request, db: DbSession, actor: Admin, institution_id: str, form: Form
) -> Response:
    payload = {**_payload(form, PractitionerCreate), "institution_id": institution_id}
    row, error, status = _attempt(
        db,
        lambda: staff.create_practitioner(db, actor, PractitionerCreate.model_validate(payload)),
    )
    if row is not None:
        return _back(f"/registry/practitioners/{row.id}")
    return _detail_page(
        request, db, actor, institution_id, error=error, form=form, status_code=status
    )


@router.post("/institutions/{institution_id}/{action}")
def set_institution_active(
    db: DbSession, actor: Admin, institution_id: str, action: Action
) -> Response:
    service.set_institution_active(db, actor, institution_id, action == "activate")
    return _back(f"/registry/institutions/{institution_id}")


# --- departments ------------------------------------------------------------------------


@router.get("/departments/{department_id}", response_class=HTMLResponse)
def department(request: Request, db: DbSession, actor: Reader, department_id: str) -> Response:
    row = service.get_department(db, department_id)
    return render(request, "registry/department.html", {"dept": row}, actor=actor)


@router.post("/departments/{department_id}", response_class=HTMLResponse)
def update_department(
    request: Request, db: DbSession, actor: Admin, department_id: str, form: Form
) -> Response:
    row, error, status = _attempt(
        db,
        lambda: service.update_department(
            db,
            actor,
            department_id,
            DepartmentUpdate.model_validate(_payload(form, DepartmentUpdate)),
        ),
    )
    if row is not None:
        return _back(f"/registry/institutions/{row.institution_id}#departments")
    context = {
        "dept": service.get_department(db, department_id),
        "error": error,
        "values": _values(form),
    }
    return render(request, "registry/department.html", context, actor=actor, status_code=status)


@router.post("/departments/{department_id}/{action}")
def set_department_active(
    db: DbSession, actor: Admin, department_id: str, action: Action
) -> Response:
    row = service.set_department_active(db, actor, department_id, action == "activate")
    return _back(f"/registry/institutions/{row.institution_id}#departments")


# --- practitioners and practice sites ---------------------------------------------------


def _practitioner_page(
    request: Request,
    db: Session,
    actor: Actor,
    practitioner_id: str,
    *,
    error: str | None = None,
    form: FormData | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    context = {
        "d": staff.practitioner_detail(db, actor, practitioner_id),
        "error": error,
        "values": _values(form) if form is not None else {},
        **ENUMS,
    }
    return render(
        request, "registry/practitioner.html", context, actor=actor, status_code=status_code
    )


@router.get("/practitioners/{practitioner_id}", response_class=HTMLResponse)
def practitioner(request: Request, db: DbSession, actor: Reader, practitioner_id: str) -> Response:
    return _practitioner_page(request, db, actor, practitioner_id)


@router.post("/practitioners/{practitioner_id}", response_class=HTMLResponse)
def update_practitioner(
    request: Request, db: DbSession, actor: Admin, practitioner_id: str, form: Form
) -> Response:
    row, error, status = _attempt(
        db,
        lambda: staff.update_practitioner(
            db,
            actor,
            practitioner_id,
            PractitionerUpdate.model_validate(_payload(form, PractitionerUpdate)),
        ),
    )
    if row is not None:
        return _back(f"/registry/practitioners/{practitioner_id}")
    return _practitioner_page(
        request, db, actor, practitioner_id, error=error, form=form, status_code=status
    )


@router.post("/practitioners/{practitioner_id}/roles", response_class=HTMLResponse)
def create_role(
    request: Request, db: DbSession, actor: Admin, practitioner_id: str, form: Form
) -> Response:
    payload = {**_payload(form, RoleCreate), "practitioner_id": practitioner_id}
    row, error, status = _attempt(
        db, lambda: staff.create_role(db, actor, RoleCreate.model_validate(payload))
    )
    if row is not None:
        return _back(f"/registry/practitioners/{practitioner_id}")
    return _practitioner_page(
        request, db, actor, practitioner_id, error=error, form=form, status_code=status
    )


@router.post("/practitioners/{practitioner_id}/{action}")
def set_practitioner_active(
    db: DbSession, actor: Admin, practitioner_id: str, action: Action
) -> Response:
    staff.set_practitioner_active(db, actor, practitioner_id, action == "activate")
    return _back(f"/registry/practitioners/{practitioner_id}")


@router.post("/roles/{role_id}/{action}")
def set_role_active(db: DbSession, actor: Admin, role_id: str, action: Action) -> Response:
    row = staff.set_role_active(db, actor, role_id, action == "activate")
    return _back(f"/registry/practitioners/{row.practitioner_id}")


# --- consortia --------------------------------------------------------------------------


def _consortia_page(
    request: Request,
    db: Session,
    actor: Actor,
    *,
    error: str | None = None,
    form: FormData | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    context = {
        "rows": service.consortia_overview(db, actor),
        "managed": service.managed_institutions(db, actor),
        "error": error,
        "values": _values(form) if form is not None else {},
        **ENUMS,
    }
    return render(request, "registry/consortia.html", context, actor=actor, status_code=status_code)


@router.get("/consortia", response_class=HTMLResponse)
def consortia(request: Request, db: DbSession, actor: Reader) -> Response:
    return _consortia_page(request, db, actor)


@router.post("/consortia", response_class=HTMLResponse)
def create_consortium(request: Request, db: DbSession, actor: Admin, form: Form) -> Response:
    row, error, status = _attempt(
        db,
        lambda: service.create_consortium(
            db, actor, ConsortiumCreate.model_validate(_payload(form, ConsortiumCreate))
        ),
    )
    if row is not None:
        return _back("/registry/consortia")
    return _consortia_page(request, db, actor, error=error, form=form, status_code=status)


@router.post("/consortia/{consortium_id}", response_class=HTMLResponse)
def update_consortium(
    request: Request, db: DbSession, actor: Admin, consortium_id: str, form: Form
) -> Response:
    row, error, status = _attempt(
        db,
        lambda: service.update_consortium(
            db,
            actor,
            consortium_id,
            ConsortiumUpdate.model_validate(_payload(form, ConsortiumUpdate)),
        ),
    )
    if row is not None:
        return _back("/registry/consortia")
    return _consortia_page(request, db, actor, error=error, form=form, status_code=status)


@router.post("/consortia/{consortium_id}/{action}")
def set_consortium_active(
    db: DbSession, actor: Admin, consortium_id: str, action: Action
) -> Response:
    service.set_consortium_active(db, actor, consortium_id, action == "activate")
    return _back("/registry/consortia")
