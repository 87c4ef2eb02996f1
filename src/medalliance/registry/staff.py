"""Registry rules for practitioners and their roles at member institutions.

A practitioner may practise at several members (多点执业): each site is a role, and the
admin of each site manages that role. Nothing is ever deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from medalliance.auth.principal import Actor
from medalliance.errors import Conflict, Forbidden, NotFound, ValidationFailed
from medalliance.kit.ids import new_id
from medalliance.registry import repository, rights
from medalliance.registry.models import Department, Institution, Practitioner, PractitionerRole
from medalliance.registry.repository import PractitionerFilter, RoleFilter
from medalliance.registry.schemas import (
    PractitionerCreate,
    PractitionerUpdate,
    RoleCreate,
    RoleUpdate,
)

PRACTITIONER_FIELDS = [*PractitionerUpdate.model_fields, "active"]
ROLE_FIELDS = [*RoleCreate.model_fields, "active"]


def get_practitioner(db: Session, practitioner_id: str) -> Practitioner:
    found = repository.practitioner(db, practitioner_id)
    if found is None:
        raise NotFound(f"practitioner {practitioner_id} not found")
    return found


def get_role(db: Session, role_id: str) -> PractitionerRole:
    found = repository.role(db, role_id)
    if found is None:
        raise NotFound(f"practitioner role {role_id} not found")
    return found


def search_practitioners(
    db: Session, criteria: PractitionerFilter, *, limit: int, offset: int
) -> tuple[Sequence[Practitioner], int]:
    return repository.search_practitioners(db, criteria, limit=limit, offset=offset)


def search_roles(
    db: Session, criteria: RoleFilter, *, limit: int, offset: int
) -> tuple[Sequence[PractitionerRole], int]:
    return repository.search_roles(db, criteria, limit=limit, offset=offset)


def search_roles_with_departments(
    db: Session, criteria: RoleFilter, *, limit: int, offset: int
) -> tuple[list[tuple[PractitionerRole, Department | None]], int]:
    """Roles with their department, whose national code is the role's specialty (FHIR)."""
    rows, total = repository.search_roles(db, criteria, limit=limit, offset=offset)
    departments = departments_by_ids(db, {r.department_id for r in rows if r.department_id})
    return [(r, departments.get(r.department_id or "")) for r in rows], total


def roles_of(db: Session, practitioner_ids: Sequence[str]) -> Sequence[PractitionerRole]:
    return repository.roles_of(db, practitioner_ids)


def departments_by_ids(db: Session, ids: set[str]) -> dict[str, Department]:
    rows = repository.departments_of_ids(db, ids) if ids else []
    return {d.id: d for d in rows}


@dataclass(frozen=True)
class PractitionerDetail:
    practitioner: Practitioner
    roles: list[PractitionerRole]
    institutions: dict[str, Institution]
    departments: dict[str, Department]
    editable: bool
    managed: set[str]  # institutions where the actor may add or change this person's roles
    managed_departments: list[Department]


def practitioner_detail(db: Session, actor: Actor, practitioner_id: str) -> PractitionerDetail:
    row = get_practitioner(db, practitioner_id)
    roles = list(repository.roles_of(db, [row.id]))
    managed = rights.managed_institutions(db, actor)
    sites = {r.institution_id for r in roles}
    institutions = {i.id: i for i in repository.institutions_by_ids(db, list(sites | managed))}
    departments = departments_by_ids(db, {r.department_id for r in roles if r.department_id})
    return PractitionerDetail(
        practitioner=row,
        roles=roles,
        institutions=institutions,
        departments=departments,
        editable=bool(sites & managed) or (not sites and bool(managed)),
        managed=managed,
        managed_departments=[d for d in repository.departments_of(db, managed) if d.active],
    )


def create_practitioner(db: Session, actor: Actor, data: PractitionerCreate) -> Practitioner:
    """Registers a practitioner with their first practice site (the primary one)."""
    rights.require_manages(db, actor, data.institution_id)
    _active_institution(db, data.institution_id)
    _department_at(db, data.department_id, data.institution_id)
    _licence_free(db, data.licence_number, None)
    row = Practitioner(
        id=new_id(),
        active=True,
        **data.model_dump(mode="json", exclude={"institution_id", "department_id"}),
    )
    db.add(row)
    db.flush()
    rights.record(
        db,
        actor,
        "practitioner.create",
        "Practitioner",
        row.id,
        after=rights.snapshot(row, PRACTITIONER_FIELDS),
    )
    _add_role(db, actor, row.id, data.institution_id, data.department_id, primary_site=True)
    return row


def update_practitioner(
    db: Session, actor: Actor, practitioner_id: str, data: PractitionerUpdate
) -> Practitioner:
    row = get_practitioner(db, practitioner_id)
    _require_manages_someone_of(db, actor, row)
    changes = data.changes()
    if "licence_number" in changes:
        _licence_free(db, changes["licence_number"], row.id)
    rights.change(
        db, actor, row, changes, action="practitioner.update", resource_type="Practitioner"
    )
    return row


def set_practitioner_active(
    db: Session, actor: Actor, practitioner_id: str, active: bool
) -> Practitioner:
    """Deactivating a practitioner ends all their active roles, so it takes every site's admin."""
    row = get_practitioner(db, practitioner_id)
    _require_manages_someone_of(db, actor, row)
    roles = repository.roles_of(db, [row.id])
    cascaded: list[str] = []
    if not active:
        managed = rights.managed_institutions(db, actor)
        foreign = sorted({r.institution_id for r in roles if r.active} - managed)
        if foreign:
            raise Forbidden(
                "the practitioner still practises at institutions you do not manage: "
                + ", ".join(foreign)
            )
        for role in roles:
            if role.active:
                role.active = False
                cascaded.append(role.id)
    rights.change(
        db,
        actor,
        row,
        {"active": active},
        action=rights.activation("practitioner", active),
        resource_type="Practitioner",
        cascaded={"practitioner_roles": cascaded},
    )
    return row


def create_role(db: Session, actor: Actor, data: RoleCreate) -> PractitionerRole:
    """Another practice site (multi-site practice) or department for a practitioner."""
    rights.require_manages(db, actor, data.institution_id)
    practitioner = get_practitioner(db, data.practitioner_id)
    if not practitioner.active:
        raise Conflict("the practitioner is inactive", field="practitioner_id")
    _active_institution(db, data.institution_id)
    _department_at(db, data.department_id, data.institution_id)
    return _add_role(
        db,
        actor,
        practitioner.id,
        data.institution_id,
        data.department_id,
        primary_site=data.primary_site,
    )


def update_role(db: Session, actor: Actor, role_id: str, data: RoleUpdate) -> PractitionerRole:
    row = get_role(db, role_id)
    rights.require_manages(db, actor, row.institution_id)
    changes = data.changes()
    if changes.get("department_id") is not None:
        _department_at(db, changes["department_id"], row.institution_id)
    if "department_id" in changes and changes["department_id"] != row.department_id:
        _role_free(db, row.practitioner_id, row.institution_id, changes["department_id"])
    rights.change(
        db, actor, row, changes, action="practitioner_role.update", resource_type="PractitionerRole"
    )
    return row


def set_role_active(db: Session, actor: Actor, role_id: str, active: bool) -> PractitionerRole:
    row = get_role(db, role_id)
    rights.require_manages(db, actor, row.institution_id)
    if active:
        if not get_practitioner(db, row.practitioner_id).active:
            raise Conflict("reactivate the practitioner first", field="practitioner_id")
        _active_institution(db, row.institution_id)
    rights.change(
        db,
        actor,
        row,
        {"active": active},
        action=rights.activation("practitioner_role", active),
        resource_type="PractitionerRole",
    )
    return row


def _add_role(
    db: Session,
    actor: Actor,
    practitioner_id: str,
    institution_id: str,
    department_id: str | None,
    *,
    primary_site: bool,
) -> PractitionerRole:
    _role_free(db, practitioner_id, institution_id, department_id)
    row = PractitionerRole(
        id=new_id(),
        practitioner_id=practitioner_id,
        institution_id=institution_id,
        department_id=department_id,
        primary_site=primary_site,
        active=True,
    )
    db.add(row)
    db.flush()
    rights.record(
        db,
        actor,
        "practitioner_role.create",
        "PractitionerRole",
        row.id,
        after=rights.snapshot(row, ROLE_FIELDS),
    )
    return row


def _require_manages_someone_of(db: Session, actor: Actor, row: Practitioner) -> None:
    """Personal data is edited by an admin of one of the practitioner's sites."""
    managed = rights.managed_institutions(db, actor)
    sites = {r.institution_id for r in repository.roles_of(db, [row.id])}
    if not managed or (sites and not sites & managed):
        raise Forbidden("only an admin of one of the practitioner's institutions may change them")


def _active_institution(db: Session, institution_id: str) -> Institution:
    found = repository.institution(db, institution_id)
    if found is None:
        raise ValidationFailed(
            f"institution {institution_id} does not exist", field="institution_id"
        )
    if not found.active:
        raise Conflict("the institution is inactive", field="institution_id")
    return found


def _department_at(db: Session, department_id: str | None, institution_id: str) -> None:
    if department_id is None:
        return
    found = repository.department(db, department_id)
    if found is None or found.institution_id != institution_id:
        raise ValidationFailed(
            f"department {department_id} is not a department of institution {institution_id}",
            field="department_id",
        )


def _licence_free(db: Session, licence_number: str, own_id: str | None) -> None:
    holder = repository.practitioner_by_licence(db, licence_number)
    if holder is not None and holder.id != own_id:
        raise Conflict(
            f"licence number {licence_number} is already registered", field="licence_number"
        )


def _role_free(
    db: Session, practitioner_id: str, institution_id: str, department_id: str | None
) -> None:
    if repository.role_for(db, practitioner_id, institution_id, department_id) is not None:
        raise Conflict(
            "the practitioner already has this role at this institution and department",
            field="department_id",
        )
