"""Every query of the care-level domain."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from medalliance.care_levels.models import CareLevelCatalogue


def latest(db: Session) -> CareLevelCatalogue | None:
    stmt = select(CareLevelCatalogue).order_by(CareLevelCatalogue.version.desc()).limit(1)
    return db.scalars(stmt).first()


def by_version(db: Session, version: int) -> CareLevelCatalogue | None:
    return db.get(CareLevelCatalogue, version)


def versions(db: Session, limit: int = 20) -> list[CareLevelCatalogue]:
    stmt = select(CareLevelCatalogue).order_by(CareLevelCatalogue.version.desc()).limit(limit)
    return list(db.scalars(stmt))
