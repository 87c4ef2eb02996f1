"""Registry rules for consortia, institutions and departments, and the read models that
other domains and the registry's own pages use. Practitioners live in ``staff.py``.

Nothing is ever deleted: rows are deactivated and stay visible as inactive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from medalliance.auth.principal import Actor
from medalliance.errors import Conflict, NotFound, ValidationFailed
from medalliance.kit.ids import new_id
from medalliance.registry import repository, rights
from medalliance.registry.enums import InstitutionLevel
from medalliance.registry.models import (
    Consortium,
    Department,
    Institution,
    Practitioner,
    PractitionerRole,
)
from medalliance.registry.repository import DepartmentFilter, InstitutionFilter
from medalliance.registry.schemas import (
    ConsortiumCreate,
    ConsortiumUpdate,
    DepartmentCreate,
    DepartmentUpdate,
    InstitutionCreate,
    InstitutionUpdate,
)

CONSORTIUM_FIELDS = [*ConsortiumCreate.model_fields, "active"]
INSTITUTION_FIELDS = [*InstitutionCreate.model_fields, "active"]
DEPARTMENT_FIELDS = [*DepartmentCreate.model_fields, "active"]
_MAX_CHOICES = 2000


# --- read models used by other domains -------------------------------------------------


def get_institution(db: Session, institution_id: str) -> Institution:
    found = repository.institution(db, institution_id)
    if found is None:
        raise NotFound(f"institution {institution_id} not found")
    return found


def institutions_by_ids(db: Session, ids: Sequence[str]) -> dict[str, Institution]:
    return {i.id: i for i in repository.institutions_by_ids(db, ids)}


def members_by_level(db: Session) -> dict[InstitutionLevel, int]:
    counts = repository.count_by_level(db)
    return {level: counts.get(level.value, 0) for level in InstitutionLevel}


def consortia(db: Session) -> Sequence[Consortium]:
    return repository.consortia(db)


def managed_institutions(db: Session, actor: Actor) -> set[str]:
    return rights.managed_institutions(db, actor)


# --- consortia --------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsortiumRow:
    consortium: Consortium
    lead: Institution | None
    members: int
    editable: bool


def consortia_overview(db: Session, actor: Actor) -> list[ConsortiumRow]:
    rows = repository.consortia(db)
    leads = institutions_by_ids(db, [c.lead_institution_id for c in rows if c.lead_institution_id])
    return [
        ConsortiumRow(
            consortium=c,
            lead=leads.get(c.lead_institution_id or ""),
            members=len(repository.member_ids(db, [c.id])),
            editable=rights.leads(db, actor, c.id),
        )
        for c in rows
    ]


def get_consortium(db: Session, consortium_id: str) -> Consortium:
    found = repository.consortium(db, consortium_id)
    if found is None:
        raise NotFound(f"consortium {consortium_id} not found", field="consortium_id")
    return found


def create_consortium(db: Session, actor: Actor, data: ConsortiumCreate) -> Consortium:
    """An admin founds a consortium (e.g. a specialist alliance) led by a member they manage."""
    _existing_institution(db, data.lead_institution_id, "lead_institution_id")
    rights.require_manages(db, actor, data.lead_institution_id)
    row = Consortium(id=new_id(), active=True, **data.model_dump(mode="json"))
    db.add(row)
    db.flush()
    rights.record(
        db,
        actor,
        "consortium.create",
        "Consortium",
        row.id,
        after=rights.snapshot(row, CONSORTIUM_FIELDS),
    )
    return row


def update_consortium(
    db: Session, actor: Actor, consortium_id: str, data: ConsortiumUpdate
) -> Consortium:
    row = get_consortium(db, consortium_id)
    rights.require_leads(db, actor, consortium_id)
    changes = data.changes()
    if "lead_institution_id" in changes:
        _existing_institution(db, changes["lead_institution_id"], "lead_institution_id")
    rights.change(db, actor, row, changes, action="consortium.update", resource_type="Consortium")
    return row


def set_consortium_active(
    db: Session, actor: Actor, consortium_id: str, active: bool
) -> Consortium:
    """Members keep their link: a dissolved consortium is history, not a deletion."""
    row = get_consortium(db, consortium_id)
    rights.require_leads(db, actor, consortium_id)
    rights.change(
        db,
        actor,
        row,
        {"active": active},
        action=rights.activation("consortium", active),
        resource_type="Consortium",
    )
    return row


# --- institutions -----------------------------------------------------------------------


@dataclass(frozen=True)
class InstitutionRow:
    institution: Institution
    departments: int
    practitioners: int
    children: int


@dataclass(frozen=True)
class InstitutionList:
    rows: list[InstitutionRow]
    total: int


def search_institutions(
    db: Session, criteria: InstitutionFilter, *, limit: int, offset: int
) -> InstitutionList:
    found, total = repository.search_institutions(db, criteria, limit=limit, offset=offset)
    counts = repository.member_counts(db, [i.id for i in found])
    rows = [InstitutionRow(i, **counts[i.id]) for i in found]
    return InstitutionList(rows, total)


def find_institutions(
    db: Session, criteria: InstitutionFilter, *, limit: int, offset: int
) -> tuple[Sequence[Institution], int]:
    """Plain search without counts (FHIR Organization and Location)."""
    return repository.search_institutions(db, criteria, limit=limit, offset=offset)


@dataclass(frozen=True)
class StaffEntry:
    role: PractitionerRole
    practitioner: Practitioner
    department: Department | None
    other_sites: list[Institution]  # multi-site practice (多点执业), shown beside the name


@dataclass(frozen=True)
class InstitutionDetail:
    institution: Institution
    consortium: Consortium | None
    parent: Institution | None
    children: list[Institution]
    departments: list[Department]
    staff: list[StaffEntry]
    editable: bool
    consortia: Sequence[Consortium] = field(default_factory=list)
    peers: Sequence[Institution] = field(default_factory=list)  # parent choices


def institution_detail(db: Session, actor: Actor, institution_id: str) -> InstitutionDetail:
    row = get_institution(db, institution_id)
    children, _ = repository.search_institutions(
        db, InstitutionFilter(parent_ids=(row.id,)), limit=500, offset=0
    )
    departments = list(repository.departments_of(db, [row.id]))
    return InstitutionDetail(
        institution=row,
        consortium=repository.consortium(db, row.consortium_id) if row.consortium_id else None,
        parent=repository.institution(db, row.parent_id) if row.parent_id else None,
        children=list(children),
        departments=departments,
        staff=_staff_of(db, row.id, departments),
        editable=row.id in rights.managed_institutions(db, actor),
        consortia=repository.consortia(db),
        peers=_peers(db, row.consortium_id),
    )


def _peers(db: Session, consortium_id: str | None) -> Sequence[Institution]:
    criteria = InstitutionFilter(consortium_id=consortium_id, active=True)
    return repository.search_institutions(db, criteria, limit=_MAX_CHOICES, offset=0)[0]


@dataclass(frozen=True)
class FormChoices:
    """What the create form offers: consortia the actor leads and their active members."""

    consortia: list[Consortium]
    institutions: list[Institution]


def form_choices(db: Session, actor: Actor) -> FormChoices:
    led = [c for c in repository.consortia(db) if c.active and rights.leads(db, actor, c.id)]
    members: list[Institution] = []
    for c in led:
        members += _peers(db, c.id)
    return FormChoices(led, members)


def _staff_of(db: Session, institution_id: str, departments: list[Department]) -> list[StaffEntry]:
    roles = repository.roles_at(db, institution_id)
    practitioner_ids = {r.practitioner_id for r in roles}
    people = {p.id: p for p in repository.practitioners_by_ids(db, practitioner_ids)}
    all_roles = repository.roles_of(db, practitioner_ids)
    site_ids = {r.institution_id for r in all_roles if r.institution_id != institution_id}
    sites = institutions_by_ids(db, list(site_ids))
    by_department = {d.id: d for d in departments}
    return [
        StaffEntry(
            role=r,
            practitioner=people[r.practitioner_id],
            department=by_department.get(r.department_id or ""),
            other_sites=[
                sites[o.institution_id]
                for o in all_roles
                if o.practitioner_id == r.practitioner_id
                and o.institution_id != institution_id
                and o.active
            ],
        )
        for r in roles
    ]


def create_institution(db: Session, actor: Actor, data: InstitutionCreate) -> Institution:
    """Only the consortium's lead admin adds members to it."""
    get_consortium(db, data.consortium_id)
    rights.require_leads(db, actor, data.consortium_id)
    _code_free(db, data.code, None)
    if data.parent_id is not None:
        _existing_institution(db, data.parent_id, "parent_id")
    row = Institution(id=new_id(), active=True, **data.model_dump(mode="json"))
    db.add(row)
    db.flush()
    rights.record(
        db,
        actor,
        "institution.create",
        "Institution",
        row.id,
        after=rights.snapshot(row, INSTITUTION_FIELDS),
    )
    return row


def update_institution(
    db: Session, actor: Actor, institution_id: str, data: InstitutionUpdate
) -> Institution:
    row = get_institution(db, institution_id)
    rights.require_manages(db, actor, row.id)
    changes = data.changes()
    _check_institution_changes(db, actor, row, changes)
    rights.change(db, actor, row, changes, action="institution.update", resource_type="Institution")
    return row


def _check_institution_changes(
    db: Session, actor: Actor, row: Institution, changes: dict[str, Any]
) -> None:
    if "code" in changes:
        _code_free(db, changes["code"], row.id)
    if changes.get("consortium_id", row.consortium_id) != row.consortium_id:
        # Moving a member takes the lead admin of the consortium it joins.
        get_consortium(db, changes["consortium_id"])
        rights.require_leads(db, actor, changes["consortium_id"])
    if changes.get("parent_id") is not None:
        _check_parent(db, row.id, changes["parent_id"])
    latitude = changes.get("latitude", row.latitude)
    longitude = changes.get("longitude", row.longitude)
    if (latitude is None) != (longitude is None):
        raise ValidationFailed(
            "latitude and longitude are given together or not at all", field="latitude"
        )


def _check_parent(db: Session, institution_id: str, parent_id: str) -> None:
    _existing_institution(db, parent_id, "parent_id")
    if parent_id == institution_id or institution_id in repository.ancestors(db, parent_id):
        raise ValidationFailed(
            "an institution cannot be its own parent or ancestor", field="parent_id"
        )


def set_institution_active(
    db: Session, actor: Actor, institution_id: str, active: bool
) -> Institution:
    """Deactivation also deactivates its departments and practitioner roles (kept, visible)."""
    row = get_institution(db, institution_id)
    rights.require_manages(db, actor, row.id)
    cascaded: dict[str, list[str]] = {"departments": [], "practitioner_roles": []}
    if not active:
        for department in repository.departments_of(db, [row.id]):
            if department.active:
                department.active = False
                cascaded["departments"].append(department.id)
        for role in repository.roles_at(db, row.id):
            if role.active:
                role.active = False
                cascaded["practitioner_roles"].append(role.id)
    rights.change(
        db,
        actor,
        row,
        {"active": active},
        action=rights.activation("institution", active),
        resource_type="Institution",
        cascaded=cascaded,
    )
    return row


def _existing_institution(db: Session, institution_id: str, field_name: str) -> Institution:
    found = repository.institution(db, institution_id)
    if found is None:
        raise ValidationFailed(f"institution {institution_id} does not exist", field=field_name)
    return found


def _code_free(db: Session, code: str, own_id: str | None) -> None:
    holder = repository.institution_by_code(db, code)
    if holder is not None and holder.id != own_id:
        raise Conflict(f"institution code {code} is already used by {holder.name}", field="code")


# --- departments ------------------------------------------------------------------------


def get_department(db: Session, department_id: str) -> Department:
    found = repository.department(db, department_id)
    if found is None:
        raise NotFound(f"department {department_id} not found")
    return found


def search_departments(
    db: Session, criteria: DepartmentFilter, *, limit: int, offset: int
) -> tuple[Sequence[Department], int]:
    return repository.search_departments(db, criteria, limit=limit, offset=offset)


def create_department(db: Session, actor: Actor, data: DepartmentCreate) -> Department:
    institution = _existing_institution(db, data.institution_id, "institution_id")
    rights.require_manages(db, actor, institution.id)
    if not institution.active:
        raise Conflict("the institution is inactive", field="institution_id")
    _department_code_free(db, institution.id, data.code, None)
    row = Department(id=new_id(), active=True, **data.model_dump(mode="json"))
    db.add(row)
    db.flush()
    rights.record(
        db,
        actor,
        "department.create",
        "Department",
        row.id,
        after=rights.snapshot(row, DEPARTMENT_FIELDS),
    )
    return row


def update_department(
    db: Session, actor: Actor, department_id: str, data: DepartmentUpdate
) -> Department:
    row = get_department(db, department_id)
    rights.require_manages(db, actor, row.institution_id)
    changes = data.changes()
    if "code" in changes:
        _department_code_free(db, row.institution_id, changes["code"], row.id)
    rights.change(db, actor, row, changes, action="department.update", resource_type="Department")
    return row


def set_department_active(
    db: Session, actor: Actor, department_id: str, active: bool
) -> Department:
    row = get_department(db, department_id)
    rights.require_manages(db, actor, row.institution_id)
    if active and not get_institution(db, row.institution_id).active:
        raise Conflict("reactivate the institution first", field="institution_id")
    rights.change(
        db,
        actor,
        row,
        {"active": active},
        action=rights.activation("department", active),
        resource_type="Department",
    )
    return row


def _department_code_free(db: Session, institution_id: str, code: str, own_id: str | None) -> None:
    holder = repository.department_by_code(db, institution_id, code)
    if holder is not None and holder.id != own_id:
        raise Conflict(
            f"department code {code} already exists at this institution ({holder.name})",
            field="code",
        )
