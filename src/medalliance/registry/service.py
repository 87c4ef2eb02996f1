"""Registry rules and read models used by other domains."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from medalliance.errors import NotFound
from medalliance.registry import repository
from medalliance.registry.enums import InstitutionLevel
from medalliance.registry.models import Consortium, Institution


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
