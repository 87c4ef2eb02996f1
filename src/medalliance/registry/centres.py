"""The services each member offers, as one list: clinical departments, designated
emergency centres and regional diagnostic centres (FHIR HealthcareService).

Reference data is small (a consortium has hundreds of departments, not millions), so the
list is assembled and filtered in memory after one query per table.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from medalliance.errors import NotFound
from medalliance.registry import repository
from medalliance.registry.fhir_map import (
    CENTRE_NAMES,
    DEPARTMENT,
    EMERGENCY,
    REGIONAL,
    parse_service_id,
)
from medalliance.registry.models import Department, Institution
from medalliance.registry.repository import InstitutionFilter

_ALL_INSTITUTIONS = 100_000


@dataclass(frozen=True)
class ServiceEntry:
    institution: Institution
    category: str
    code: str
    department: Department | None = None


@dataclass(frozen=True)
class ServiceFilter:
    ids: tuple[str, ...] = ()
    institution_ids: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    name: str = ""
    active: bool | None = None


def search_services(db: Session, criteria: ServiceFilter) -> list[ServiceEntry]:
    wanted_ids = {parsed for parsed in map(parse_service_id, criteria.ids) if parsed}
    if criteria.ids and not wanted_ids:
        return []
    institution_ids = set(criteria.institution_ids)
    if wanted_ids:
        from_ids = {i for i, _, _ in wanted_ids}
        institution_ids = institution_ids & from_ids if institution_ids else from_ids
    institutions, _ = repository.search_institutions(
        db,
        InstitutionFilter(ids=tuple(sorted(institution_ids))),
        limit=_ALL_INSTITUTIONS,
        offset=0,
    )
    entries = _entries(db, list(institutions))
    return [e for e in entries if _matches(e, criteria, wanted_ids)]


def get_service(db: Session, service_id: str) -> ServiceEntry:
    found = search_services(db, ServiceFilter(ids=(service_id,)))
    if not found:
        raise NotFound(f"HealthcareService {service_id} not found")
    return found[0]


def _entries(db: Session, institutions: list[Institution]) -> list[ServiceEntry]:
    departments: dict[str, list[Department]] = {}
    for d in repository.departments_of(db, [i.id for i in institutions]):
        departments.setdefault(d.institution_id, []).append(d)
    entries: list[ServiceEntry] = []
    for i in institutions:
        entries += [ServiceEntry(i, DEPARTMENT, d.code, d) for d in departments.get(i.id, [])]
        entries += [ServiceEntry(i, EMERGENCY, code) for code in i.emergency_centres]
        entries += [ServiceEntry(i, REGIONAL, code) for code in i.regional_centres]
    return entries


def _matches(
    e: ServiceEntry, criteria: ServiceFilter, wanted_ids: set[tuple[str, str, str]]
) -> bool:
    active = e.institution.active and (e.department is None or e.department.active)
    return (
        (not wanted_ids or (e.institution.id, e.category, e.code) in wanted_ids)
        and (not criteria.categories or e.category in criteria.categories)
        and (not criteria.codes or e.code in criteria.codes)
        and (not criteria.name or criteria.name.lower() in entry_name(e).lower())
        and (criteria.active is None or active == criteria.active)
    )


def entry_name(e: ServiceEntry) -> str:
    if e.department is not None:
        return e.department.name
    return f"{e.institution.name}{CENTRE_NAMES.get(e.code, e.code)}"
