"""Domain JSON API of the registry under ``/api/registry``: list, get, create, update and
(de)activate consortia, institutions, departments, practitioners and their roles."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from medalliance.auth.enums import Role
from medalliance.auth.policy import Scope, allow
from medalliance.auth.principal import Actor
from medalliance.kit.http import DbSession, Offset, TransactionalRoute
from medalliance.registry import service, staff
from medalliance.registry.enums import InstitutionKind, InstitutionLevel
from medalliance.registry.repository import (
    DepartmentFilter,
    InstitutionFilter,
    PractitionerFilter,
    RoleFilter,
)
from medalliance.registry.schemas import (
    ConsortiumCreate,
    ConsortiumRead,
    ConsortiumUpdate,
    DepartmentCreate,
    DepartmentRead,
    DepartmentUpdate,
    InstitutionCreate,
    InstitutionRead,
    InstitutionSummary,
    InstitutionUpdate,
    ListPage,
    PractitionerCreate,
    PractitionerRead,
    PractitionerUpdate,
    RoleCreate,
    RoleRead,
    RoleUpdate,
)

router = APIRouter(prefix="/api/registry", tags=["registry"], route_class=TransactionalRoute)

Reader = Annotated[Actor, allow(scope=Scope.CONSORTIUM)]
Admin = Annotated[Actor, allow(Role.ADMIN, scope=Scope.CONSORTIUM)]
Limit = Annotated[int, Query(ge=1, le=200)]
Action = Literal["activate", "deactivate"]

READ_ERRORS: dict[int | str, dict[str, Any]] = {404: {"description": "Not found"}}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "Not an admin of this institution or consortium"},
    404: {"description": "Not found"},
    409: {"description": "Duplicate code or licence number, or inactive parent row"},
    422: {"description": "Invalid field (named in the problem's field)"},
}


# --- consortia --------------------------------------------------------------------------


@router.get("/consortia", response_model=list[ConsortiumRead])
def list_consortia(db: DbSession, actor: Reader) -> list[ConsortiumRead]:
    return [ConsortiumRead.model_validate(c) for c in service.consortia(db)]


@router.get("/consortia/{consortium_id}", response_model=ConsortiumRead, responses=READ_ERRORS)
def get_consortium(db: DbSession, actor: Reader, consortium_id: str) -> ConsortiumRead:
    return ConsortiumRead.model_validate(service.get_consortium(db, consortium_id))


@router.post("/consortia", status_code=201, response_model=ConsortiumRead, responses=WRITE_ERRORS)
def create_consortium(db: DbSession, actor: Admin, body: ConsortiumCreate) -> ConsortiumRead:
    return ConsortiumRead.model_validate(service.create_consortium(db, actor, body))


@router.patch("/consortia/{consortium_id}", response_model=ConsortiumRead, responses=WRITE_ERRORS)
def update_consortium(
    db: DbSession, actor: Admin, consortium_id: str, body: ConsortiumUpdate
) -> ConsortiumRead:
    return ConsortiumRead.model_validate(service.update_consortium(db, actor, consortium_id, body))


@router.post(
    "/consortia/{consortium_id}/{action}", response_model=ConsortiumRead, responses=WRITE_ERRORS
)
def set_consortium_active(
    db: DbSession, actor: Admin, consortium_id: str, action: Action
) -> ConsortiumRead:
    row = service.set_consortium_active(db, actor, consortium_id, action == "activate")
    return ConsortiumRead.model_validate(row)


# --- institutions -----------------------------------------------------------------------


@router.get("/institutions", response_model=ListPage[InstitutionSummary])
def list_institutions(
    db: DbSession,
    actor: Reader,
    q: Annotated[str, Query(max_length=100, description="name, English name or code")] = "",
    level: InstitutionLevel | None = None,
    kind: InstitutionKind | None = None,
    consortium_id: str | None = None,
    parent_id: str | None = None,
    active: bool | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> ListPage[InstitutionSummary]:
    criteria = InstitutionFilter(
        text=q.strip(),
        levels=(level.value,) if level else (),
        kinds=(kind.value,) if kind else (),
        consortium_id=consortium_id,
        parent_ids=(parent_id,) if parent_id else (),
        active=active,
    )
    found = service.search_institutions(db, criteria, limit=limit, offset=offset)
    items = [
        InstitutionSummary(
            **InstitutionRead.model_validate(r.institution).model_dump(),
            departments=r.departments,
            practitioners=r.practitioners,
            children=r.children,
        )
        for r in found.rows
    ]
    return ListPage(items=items, total=found.total, limit=limit, offset=offset)


@router.get("/institutions/{institution_id}", response_model=InstitutionRead, responses=READ_ERRORS)
def get_institution(db: DbSession, actor: Reader, institution_id: str) -> InstitutionRead:
    return InstitutionRead.model_validate(service.get_institution(db, institution_id))


@router.post(
    "/institutions", status_code=201, response_model=InstitutionRead, responses=WRITE_ERRORS
)
def create_institution(db: DbSession, actor: Admin, body: InstitutionCreate) -> InstitutionRead:
    return InstitutionRead.model_validate(service.create_institution(db, actor, body))


@router.patch(
    "/institutions/{institution_id}", response_model=InstitutionRead, responses=WRITE_ERRORS
)
def update_institution(
    db: DbSession, actor: Admin, institution_id: str, body: InstitutionUpdate
) -> InstitutionRead:
    row = service.update_institution(db, actor, institution_id, body)
    return InstitutionRead.model_validate(row)


@router.post(
    "/institutions/{institution_id}/{action}",
    response_model=InstitutionRead,
    responses=WRITE_ERRORS,
)
def set_institution_active(
    db: DbSession, actor: Admin, institution_id: str, action: Action
) -> InstitutionRead:
    row = service.set_institution_active(db, actor, institution_id, action == "activate")
    return InstitutionRead.model_validate(row)


# --- departments ------------------------------------------------------------------------


@router.get("/departments", response_model=ListPage[DepartmentRead])
def list_departments(
    db: DbSession,
    actor: Reader,
    institution_id: str | None = None,
    code: str | None = None,
    active: bool | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> ListPage[DepartmentRead]:
    criteria = DepartmentFilter(
        institution_ids=(institution_id,) if institution_id else (),
        codes=(code,) if code else (),
        active=active,
    )
    rows, total = service.search_departments(db, criteria, limit=limit, offset=offset)
    items = [DepartmentRead.model_validate(d) for d in rows]
    return ListPage(items=items, total=total, limit=limit, offset=offset)


@router.get("/departments/{department_id}", response_model=DepartmentRead, responses=READ_ERRORS)
def get_department(db: DbSession, actor: Reader, department_id: str) -> DepartmentRead:
    return DepartmentRead.model_validate(service.get_department(db, department_id))


@router.post("/departments", status_code=201, response_model=DepartmentRead, responses=WRITE_ERRORS)
def create_department(db: DbSession, actor: Admin, body: DepartmentCreate) -> DepartmentRead:
    return DepartmentRead.model_validate(service.create_department(db, actor, body))


@router.patch("/departments/{department_id}", response_model=DepartmentRead, responses=WRITE_ERRORS)
def update_department(
    db: DbSession, actor: Admin, department_id: str, body: DepartmentUpdate
) -> DepartmentRead:
    return DepartmentRead.model_validate(service.update_department(db, actor, department_id, body))


@router.post(
    "/departments/{department_id}/{action}", response_model=DepartmentRead, responses=WRITE_ERRORS
)
def set_department_active(
    db: DbSession, actor: Admin, department_id: str, action: Action
) -> DepartmentRead:
    row = service.set_department_active(db, actor, department_id, action == "activate")
    return DepartmentRead.model_validate(row)


# --- practitioners and their roles ------------------------------------------------------


@router.get("/practitioners", response_model=ListPage[PractitionerRead])
def list_practitioners(
    db: DbSession,
    actor: Reader,
    name: Annotated[str, Query(max_length=100)] = "",
    licence_number: str | None = None,
    institution_id: str | None = None,
    active: bool | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> ListPage[PractitionerRead]:
    criteria = PractitionerFilter(
        name=name.strip(),
        licences=(licence_number,) if licence_number else (),
        institution_id=institution_id,
        active=active,
    )
    rows, total = staff.search_practitioners(db, criteria, limit=limit, offset=offset)
    items = [PractitionerRead.model_validate(p) for p in rows]
    return ListPage(items=items, total=total, limit=limit, offset=offset)


@router.get(
    "/practitioners/{practitioner_id}", response_model=PractitionerRead, responses=READ_ERRORS
)
def get_practitioner(db: DbSession, actor: Reader, practitioner_id: str) -> PractitionerRead:
    detail = staff.practitioner_detail(db, actor, practitioner_id)
    return _practitioner_read(detail.practitioner, detail.roles)


@router.post(
    "/practitioners", status_code=201, response_model=PractitionerRead, responses=WRITE_ERRORS
)
def create_practitioner(db: DbSession, actor: Admin, body: PractitionerCreate) -> PractitionerRead:
    return PractitionerRead.model_validate(staff.create_practitioner(db, actor, body))


@router.patch(
    "/practitioners/{practitioner_id}", response_model=PractitionerRead, responses=WRITE_ERRORS
)
def update_practitioner(
    db: DbSession, actor: Admin, practitioner_id: str, body: PractitionerUpdate
) -> PractitionerRead:
    row = staff.update_practitioner(db, actor, practitioner_id, body)
    return PractitionerRead.model_validate(row)


@router.post(
    "/practitioners/{practitioner_id}/{action}",
    response_model=PractitionerRead,
    responses=WRITE_ERRORS,
)
def set_practitioner_active(
    db: DbSession, actor: Admin, practitioner_id: str, action: Action
) -> PractitionerRead:
    row = staff.set_practitioner_active(db, actor, practitioner_id, action == "activate")
    return PractitionerRead.model_validate(row)


@router.get("/practitioner-roles", response_model=ListPage[RoleRead])
def list_roles(
    db: DbSession,
    actor: Reader,
    practitioner_id: str | None = None,
    institution_id: str | None = None,
    active: bool | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> ListPage[RoleRead]:
    criteria = RoleFilter(
        practitioner_ids=(practitioner_id,) if practitioner_id else (),
        institution_ids=(institution_id,) if institution_id else (),
        active=active,
    )
    rows, total = staff.search_roles(db, criteria, limit=limit, offset=offset)
    items = [RoleRead.model_validate(r) for r in rows]
    return ListPage(items=items, total=total, limit=limit, offset=offset)


@router.get("/practitioner-roles/{role_id}", response_model=RoleRead, responses=READ_ERRORS)
def get_role(db: DbSession, actor: Reader, role_id: str) -> RoleRead:
    return RoleRead.model_validate(staff.get_role(db, role_id))


@router.post(
    "/practitioner-roles", status_code=201, response_model=RoleRead, responses=WRITE_ERRORS
)
def create_role(db: DbSession, actor: Admin, body: RoleCreate) -> RoleRead:
    return RoleRead.model_validate(staff.create_role(db, actor, body))


@router.patch("/practitioner-roles/{role_id}", response_model=RoleRead, responses=WRITE_ERRORS)
def update_role(db: DbSession, actor: Admin, role_id: str, body: RoleUpdate) -> RoleRead:
    return RoleRead.model_validate(staff.update_role(db, actor, role_id, body))


@router.post(
    "/practitioner-roles/{role_id}/{action}", response_model=RoleRead, responses=WRITE_ERRORS
)
def set_role_active(db: DbSession, actor: Admin, role_id: str, action: Action) -> RoleRead:
    return RoleRead.model_validate(staff.set_role_active(db, actor, role_id, action == "activate"))


def _practitioner_read(practitioner: Any, roles: list[Any]) -> PractitionerRead:
    read = PractitionerRead.model_validate(practitioner)
    read.roles = [RoleRead.model_validate(r) for r in roles]
    return read
