"""Narrow read-only lookups of registry reference data that ``registry.service`` does not
offer yet.

TODO(registry): move these into ``registry.service`` (active members, departments,
practitioner roles) and call them from there; they only read replicated reference data.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from medalliance.registry.models import Department, Institution, PractitionerRole


def active_institutions(db: Session) -> list[Institution]:
    stmt = select(Institution).where(Institution.active.is_(True)).order_by(Institution.id)
    return list(db.scalars(stmt))


def institution(db: Session, institution_id: str) -> Institution | None:
    return db.get(Institution, institution_id)


def department(db: Session, department_id: str) -> Department | None:
    return db.get(Department, department_id)


def active_departments(db: Session, institution_ids: Sequence[str]) -> list[Department]:
    stmt = (
        select(Department)
        .where(Department.institution_id.in_(institution_ids), Department.active.is_(True))
        .order_by(Department.id)
    )
    return list(db.scalars(stmt))


def practitioner_works_at(
    db: Session, practitioner_id: str, institution_id: str, department_id: str | None
) -> bool:
    stmt = select(PractitionerRole.id).where(
        PractitionerRole.practitioner_id == practitioner_id,
        PractitionerRole.institution_id == institution_id,
        PractitionerRole.active.is_(True),
    )
    if department_id:
        stmt = stmt.where(PractitionerRole.department_id == department_id)
    return db.scalars(stmt.limit(1)).first() is not None
