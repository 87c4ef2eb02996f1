"""Every query of the registry domain."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from medalliance.registry.models import Consortium, Institution


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
