"""Every query of the registry domain: lookups, searches, member counts, FHIR filters."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.orm import Session

from medalliance.registry.models import (
    Consortium,
    Department,
    Institution,
    Practitioner,
    PractitionerRole,
)

RowT = TypeVar("RowT")


def institution(db: Session, institution_id: str) -> Institution | None:
    return db.get(Institution, institution_id)


def institutions_by_ids(db: Session, ids: Sequence[str]) -> Sequence[Institution]:
    return db.scalars(select(Institution).where(Institution.id.in_(ids))).all()


def count_by_level(db: Session) -> dict[str, int]:
    stmt = (
        select(Institution.level, func.count())
        .where(Institution.active.is_(True))
        .group_by(Institution.level)
    )
    return {level: int(n) for level, n in db.execute(stmt).all()}


def consortia(db: Session) -> Sequence[Consortium]:
    return db.scalars(select(Consortium).order_by(Consortium.name)).all()


def consortium(db: Session, consortium_id: str) -> Consortium | None:
    return db.get(Consortium, consortium_id)


def consortia_led_by(db: Session, institution_id: str) -> Sequence[str]:
    stmt = select(Consortium.id).where(
        Consortium.lead_institution_id == institution_id, Consortium.active.is_(True)
    )
    return db.scalars(stmt).all()


def member_ids(db: Session, consortium_ids: Collection[str]) -> set[str]:
    if not consortium_ids:
        return set()
    stmt = select(Institution.id).where(Institution.consortium_id.in_(consortium_ids))
    return set(db.scalars(stmt).all())


def institution_by_code(db: Session, code: str) -> Institution | None:
    return db.scalars(select(Institution).where(Institution.code == code)).first()


def ancestors(db: Session, institution_id: str, limit: int = 16) -> list[str]:
    """Parent chain upwards (bounded: the chain is a handful of levels deep)."""
    chain: list[str] = []
    current = db.get(Institution, institution_id)
    while current is not None and current.parent_id and len(chain) < limit:
        chain.append(current.parent_id)
        current = db.get(Institution, current.parent_id)
    return chain


@dataclass(frozen=True)
class InstitutionFilter:
    """Search criteria shared by the pages, the domain API and FHIR Organization/Location."""

    text: str = ""  # name, English name or code, contains
    ids: tuple[str, ...] = ()
    name: str = ""
    name_mode: str = "starts"  # starts | contains | exact
    levels: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    consortium_id: str | None = None
    parent_ids: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    active: bool | None = None
    impossible: bool = False  # a criterion that can match nothing (e.g. unknown system)


def _name_clause(name: str, mode: str) -> ColumnElement[bool]:
    if mode == "exact":
        return or_(Institution.name == name, Institution.name_en == name)
    pattern = f"%{_escape(name.lower())}%" if mode == "contains" else f"{_escape(name.lower())}%"
    return or_(
        func.lower(Institution.name).like(pattern, escape="\\"),
        func.lower(Institution.name_en).like(pattern, escape="\\"),
    )


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _institution_conditions(f: InstitutionFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if f.impossible:
        conditions.append(Institution.id.is_(None))
    if f.text:
        pattern = f"%{_escape(f.text.lower())}%"
        conditions.append(
            or_(
                func.lower(Institution.name).like(pattern, escape="\\"),
                func.lower(Institution.name_en).like(pattern, escape="\\"),
                func.lower(Institution.code).like(pattern, escape="\\"),
            )
        )
    if f.name:
        conditions.append(_name_clause(f.name, f.name_mode))
    for column, values in (
        (Institution.id, f.ids),
        (Institution.level, f.levels),
        (Institution.kind, f.kinds),
        (Institution.parent_id, f.parent_ids),
        (Institution.code, f.codes),
    ):
        if values:
            conditions.append(column.in_(values))
    if f.consortium_id:
        conditions.append(Institution.consortium_id == f.consortium_id)
    if f.active is not None:
        conditions.append(Institution.active.is_(f.active))
    return conditions


def search_institutions(
    db: Session, f: InstitutionFilter, *, limit: int, offset: int
) -> tuple[Sequence[Institution], int]:
    stmt = select(Institution).where(*_institution_conditions(f))
    return _paged(db, stmt.order_by(Institution.code, Institution.id), limit, offset)


def _paged(db: Session, stmt: Select[RowT], limit: int, offset: int) -> tuple[Sequence[RowT], int]:
    total = db.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    rows = db.scalars(stmt.limit(limit).offset(offset)).all() if limit else []
    return rows, int(total)


def member_counts(db: Session, institution_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    """Active departments, practitioner roles and child members per institution."""
    counts: dict[str, dict[str, int]] = {
        i: {"departments": 0, "practitioners": 0, "children": 0} for i in institution_ids
    }
    queries: list[tuple[str, Any, Any]] = [
        ("departments", Department.institution_id, Department.active),
        ("practitioners", PractitionerRole.institution_id, PractitionerRole.active),
        ("children", Institution.parent_id, Institution.active),
    ]
    for key, column, active in queries:
        stmt = (
            select(column, func.count())
            .where(column.in_(institution_ids), active.is_(True))
            .group_by(column)
        )
        for owner, n in db.execute(stmt).all():
            counts[owner][key] = int(n)
    return counts


def department(db: Session, department_id: str) -> Department | None:
    return db.get(Department, department_id)


def department_by_code(db: Session, institution_id: str, code: str) -> Department | None:
    stmt = select(Department).where(
        Department.institution_id == institution_id, Department.code == code
    )
    return db.scalars(stmt).first()


def departments_of(db: Session, institution_ids: Collection[str]) -> Sequence[Department]:
    stmt = (
        select(Department)
        .where(Department.institution_id.in_(institution_ids))
        .order_by(Department.institution_id, Department.code)
    )
    return db.scalars(stmt).all()


def departments_of_ids(db: Session, ids: Collection[str]) -> Sequence[Department]:
    return db.scalars(select(Department).where(Department.id.in_(ids))).all()


@dataclass(frozen=True)
class DepartmentFilter:
    institution_ids: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    active: bool | None = None


def search_departments(
    db: Session, f: DepartmentFilter, *, limit: int, offset: int
) -> tuple[Sequence[Department], int]:
    stmt = select(Department)
    if f.institution_ids:
        stmt = stmt.where(Department.institution_id.in_(f.institution_ids))
    if f.codes:
        stmt = stmt.where(Department.code.in_(f.codes))
    if f.active is not None:
        stmt = stmt.where(Department.active.is_(f.active))
    return _paged(db, stmt.order_by(Department.institution_id, Department.code), limit, offset)


def practitioner(db: Session, practitioner_id: str) -> Practitioner | None:
    return db.get(Practitioner, practitioner_id)


def practitioner_by_licence(db: Session, licence_number: str) -> Practitioner | None:
    stmt = select(Practitioner).where(Practitioner.licence_number == licence_number)
    return db.scalars(stmt).first()


@dataclass(frozen=True)
class PractitionerFilter:
    ids: tuple[str, ...] = ()
    name: str = ""
    name_mode: str = "contains"
    licences: tuple[str, ...] = ()
    institution_id: str | None = None
    active: bool | None = None
    impossible: bool = False


def search_practitioners(
    db: Session, f: PractitionerFilter, *, limit: int, offset: int
) -> tuple[Sequence[Practitioner], int]:
    stmt = select(Practitioner)
    if f.impossible:
        stmt = stmt.where(Practitioner.id.is_(None))
    if f.ids:
        stmt = stmt.where(Practitioner.id.in_(f.ids))
    if f.name:
        if f.name_mode == "exact":
            stmt = stmt.where(Practitioner.name == f.name)
        else:
            escaped = _escape(f.name.lower())
            pattern = f"%{escaped}%" if f.name_mode == "contains" else f"{escaped}%"
            stmt = stmt.where(func.lower(Practitioner.name).like(pattern, escape="\\"))
    if f.licences:
        stmt = stmt.where(Practitioner.licence_number.in_(f.licences))
    if f.institution_id:
        at = select(PractitionerRole.practitioner_id).where(
            PractitionerRole.institution_id == f.institution_id
        )
        stmt = stmt.where(Practitioner.id.in_(at))
    if f.active is not None:
        stmt = stmt.where(Practitioner.active.is_(f.active))
    return _paged(db, stmt.order_by(Practitioner.id), limit, offset)


def practitioners_by_ids(db: Session, ids: Collection[str]) -> Sequence[Practitioner]:
    return db.scalars(select(Practitioner).where(Practitioner.id.in_(ids))).all()


def role(db: Session, role_id: str) -> PractitionerRole | None:
    return db.get(PractitionerRole, role_id)


def role_for(
    db: Session, practitioner_id: str, institution_id: str, department_id: str | None
) -> PractitionerRole | None:
    stmt = select(PractitionerRole).where(
        PractitionerRole.practitioner_id == practitioner_id,
        PractitionerRole.institution_id == institution_id,
        PractitionerRole.department_id.is_(None)
        if department_id is None
        else PractitionerRole.department_id == department_id,
    )
    return db.scalars(stmt).first()


def roles_of(db: Session, practitioner_ids: Collection[str]) -> Sequence[PractitionerRole]:
    stmt = (
        select(PractitionerRole)
        .where(PractitionerRole.practitioner_id.in_(practitioner_ids))
        .order_by(PractitionerRole.practitioner_id, PractitionerRole.id)
    )
    return db.scalars(stmt).all()


def roles_at(db: Session, institution_id: str) -> Sequence[PractitionerRole]:
    stmt = (
        select(PractitionerRole)
        .where(PractitionerRole.institution_id == institution_id)
        .order_by(PractitionerRole.department_id, PractitionerRole.id)
    )
    return db.scalars(stmt).all()


def roles_in_department(db: Session, department_id: str) -> Sequence[PractitionerRole]:
    stmt = select(PractitionerRole).where(PractitionerRole.department_id == department_id)
    return db.scalars(stmt).all()


@dataclass(frozen=True)
class RoleFilter:
    ids: tuple[str, ...] = ()
    practitioner_ids: tuple[str, ...] = ()
    institution_ids: tuple[str, ...] = ()
    specialty_codes: tuple[str, ...] = ()
    active: bool | None = None
    impossible: bool = False


def search_roles(
    db: Session, f: RoleFilter, *, limit: int, offset: int
) -> tuple[Sequence[PractitionerRole], int]:
    stmt = select(PractitionerRole)
    if f.impossible:
        stmt = stmt.where(PractitionerRole.id.is_(None))
    for column, values in (
        (PractitionerRole.id, f.ids),
        (PractitionerRole.practitioner_id, f.practitioner_ids),
        (PractitionerRole.institution_id, f.institution_ids),
    ):
        if values:
            stmt = stmt.where(column.in_(values))
    if f.specialty_codes:
        # The role's specialty is its department's national code (诊疗科目).
        in_departments = select(Department.id).where(Department.code.in_(f.specialty_codes))
        stmt = stmt.where(PractitionerRole.department_id.in_(in_departments))
    if f.active is not None:
        stmt = stmt.where(PractitionerRole.active.is_(f.active))
    return _paged(db, stmt.order_by(PractitionerRole.id), limit, offset)
