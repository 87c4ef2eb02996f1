"""FHIR R4 read and search of registry data under ``/fhir``: Organization, Location,
HealthcareService, Practitioner and PractitionerRole (mapping in ``fhir_map.py``).

Search is lenient: unknown parameters are ignored; a bad ``_count`` is a 400 and an unknown
id a 404, both as OperationOutcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Request
from sqlalchemy.orm import Session
from starlette.datastructures import QueryParams

from medalliance.auth.policy import Scope, allow
from medalliance.auth.principal import Actor
from medalliance.errors import DomainError, NotFound
from medalliance.kit.fhir import (
    FhirResponse,
    Page,
    fhir_router,
    page_from,
    search_routes,
    searchset,
)
from medalliance.kit.http import DbSession
from medalliance.registry import centres, fhir_map, service, staff
from medalliance.registry.enums import InstitutionKind, InstitutionLevel
from medalliance.registry.fhir_map import SYSTEMS
from medalliance.registry.repository import InstitutionFilter, PractitionerFilter, RoleFilter

router = fhir_router()
Reader = Annotated[Actor, allow(scope=Scope.CONSORTIUM)]
LEVELS = frozenset(InstitutionLevel)
KINDS = frozenset(InstitutionKind)
NAME_MODES = {"": "starts", "contains": "contains", "exact": "exact"}


# --- parameter parsing (edge work: turn query strings into filters) --------------------


def _values(params: QueryParams, name: str) -> list[str]:
    """Every value of a parameter; repeats are AND in FHIR but OR is enough for our keys."""
    return [v.strip() for raw in params.getlist(name) for v in raw.split(",") if v.strip()]


def _tokens(
    params: QueryParams, name: str, vocabularies: dict[str, frozenset[str] | None]
) -> tuple[dict[str, list[str]], bool]:
    """Codes per system key; a bare code goes to every vocabulary that knows it (None: any).

    The flag is True when the parameter was given but no value can match anything (a
    foreign system or an unknown code), so the search answers an empty bundle.
    """
    known = {SYSTEMS[key]: key for key in vocabularies}
    found: dict[str, list[str]] = {key: [] for key in vocabularies}
    values = _values(params, name)
    for value in values:
        system, _, code = value.rpartition("|")
        keys = [known[system]] if system in known else [] if system else list(vocabularies)
        for key in keys:
            allowed = vocabularies[key]
            if allowed is None or code in allowed:
                found[key].append(code)
    return found, bool(values) and not any(found.values())


def _refs(params: QueryParams, name: str) -> tuple[str, ...]:
    return tuple(v.rstrip("/").rsplit("/", 1)[-1] for v in _values(params, name))


def _active(params: QueryParams) -> bool | None:
    raw = params.get("active")
    if raw is None or raw == "":
        return None
    if raw not in ("true", "false"):
        raise DomainError("active must be true or false", field="active")
    return raw == "true"


def _name(params: QueryParams) -> tuple[str, str]:
    for modifier, mode in NAME_MODES.items():
        value = params.get(f"name:{modifier}" if modifier else "name")
        if value:
            return value.strip(), mode
    return "", "starts"


def _bundle(
    request: Request,
    params: QueryParams,
    resources: Sequence[dict[str, Any]],
    total: int,
    page: Page,
) -> FhirResponse:
    has_more = page.count > 0 and page.offset + len(resources) < total
    bundle = searchset(
        request, resources, total=total, page=page, has_more=has_more, params=params.multi_items()
    )
    return FhirResponse(bundle)


# --- Organization and Location (one per institution) ------------------------------------


def _institution_filter(params: QueryParams, *, org_param: str | None) -> InstitutionFilter:
    """Comma lists are OR within a parameter; levels and kinds together narrow (AND)."""
    name, mode = _name(params)
    types, no_type = _tokens(params, "type", {"level": LEVELS, "kind": KINDS})
    codes, no_code = _tokens(params, "identifier", {"institution-code": None})
    ids = set(_values(params, "_id"))
    if org_param and _refs(params, org_param):
        own = set(_refs(params, org_param))
        ids = ids & own if ids else own
    return InstitutionFilter(
        ids=tuple(sorted(ids)),
        name=name,
        name_mode=mode,
        levels=tuple(types["level"]),
        kinds=tuple(types["kind"]),
        parent_ids=_refs(params, "partof"),
        codes=tuple(codes["institution-code"]),
        active=_active(params),
        impossible=no_type or no_code or (bool(_values(params, "_id")) and not ids),
    )


def _organizations(
    request: Request, db: Session, actor: Actor, params: QueryParams
) -> FhirResponse:
    page = page_from(params)
    criteria = _institution_filter(params, org_param=None)
    rows, total = service.find_institutions(db, criteria, limit=page.count, offset=page.offset)
    return _bundle(request, params, [fhir_map.organization(r) for r in rows], total, page)


search_routes(router, "Organization", Reader, _organizations)


@router.get("/Organization/{resource_id}", response_class=FhirResponse)
def read_organization(db: DbSession, actor: Reader, resource_id: str) -> Any:
    return FhirResponse(fhir_map.organization(service.get_institution(db, resource_id)))


def _locations(request: Request, db: Session, actor: Actor, params: QueryParams) -> FhirResponse:
    page = page_from(params)
    criteria = _institution_filter(params, org_param="organization")
    rows, total = service.find_institutions(db, criteria, limit=page.count, offset=page.offset)
    return _bundle(request, params, [fhir_map.location(r) for r in rows], total, page)


search_routes(router, "Location", Reader, _locations)


@router.get("/Location/{resource_id}", response_class=FhirResponse)
def read_location(db: DbSession, actor: Reader, resource_id: str) -> Any:
    return FhirResponse(fhir_map.location(service.get_institution(db, resource_id)))


# --- HealthcareService (departments, emergency centres, regional centres) --------------


def _service_resource(entry: centres.ServiceEntry) -> dict[str, Any]:
    if entry.department is not None:
        return fhir_map.department_service(entry.department, entry.institution)
    return fhir_map.centre_service(
        entry.institution, entry.category, entry.code, centres.entry_name(entry)
    )


def _service_filter(params: QueryParams) -> centres.ServiceFilter | None:
    """None when a token can match nothing."""
    categories, no_category = _tokens(
        params, "service-category", {"service-category": frozenset(fhir_map.SERVICE_CATEGORIES)}
    )
    types, no_type = _tokens(params, "service-type", {"department": None, "centre": None})
    if no_category or no_type:
        return None
    centre_codes = [c.replace("-", "_") for c in types["centre"]]
    return centres.ServiceFilter(
        ids=tuple(_values(params, "_id")),
        institution_ids=_refs(params, "organization"),
        categories=tuple(categories["service-category"]),
        codes=tuple(dict.fromkeys(types["department"] + centre_codes)),
        name=(params.get("name") or params.get("name:contains") or "").strip(),
        active=_active(params),
    )


def _healthcare_services(
    request: Request, db: Session, actor: Actor, params: QueryParams
) -> FhirResponse:
    page = page_from(params)
    criteria = _service_filter(params)
    entries = centres.search_services(db, criteria) if criteria else []
    window = entries[page.offset : page.offset + page.count]
    return _bundle(request, params, [_service_resource(e) for e in window], len(entries), page)


search_routes(router, "HealthcareService", Reader, _healthcare_services)


@router.get("/HealthcareService/{resource_id}", response_class=FhirResponse)
def read_healthcare_service(db: DbSession, actor: Reader, resource_id: str) -> Any:
    return FhirResponse(_service_resource(centres.get_service(db, resource_id)))


# --- Practitioner and PractitionerRole --------------------------------------------------


def _practitioners(
    request: Request, db: Session, actor: Actor, params: QueryParams
) -> FhirResponse:
    page = page_from(params)
    name, mode = _name(params)
    licences, no_licence = _tokens(params, "identifier", {"licence": None})
    criteria = PractitionerFilter(
        ids=tuple(_values(params, "_id")),
        name=name,
        name_mode=mode,
        licences=tuple(licences["licence"]),
        active=_active(params),
        impossible=no_licence,
    )
    rows, total = staff.search_practitioners(db, criteria, limit=page.count, offset=page.offset)
    return _bundle(request, params, [fhir_map.practitioner(p) for p in rows], total, page)


search_routes(router, "Practitioner", Reader, _practitioners)


@router.get("/Practitioner/{resource_id}", response_class=FhirResponse)
def read_practitioner(db: DbSession, actor: Reader, resource_id: str) -> Any:
    return FhirResponse(fhir_map.practitioner(staff.get_practitioner(db, resource_id)))


def _practitioner_roles(
    request: Request, db: Session, actor: Actor, params: QueryParams
) -> FhirResponse:
    page = page_from(params)
    specialties, no_specialty = _tokens(params, "specialty", {"department": None})
    criteria = RoleFilter(
        ids=tuple(_values(params, "_id")),
        practitioner_ids=_refs(params, "practitioner"),
        institution_ids=_refs(params, "organization"),
        specialty_codes=tuple(specialties["department"]),
        active=_active(params),
        impossible=no_specialty,
    )
    rows, total = staff.search_roles_with_departments(
        db, criteria, limit=page.count, offset=page.offset
    )
    resources = [fhir_map.practitioner_role(r, d) for r, d in rows]
    return _bundle(request, params, resources, total, page)


search_routes(router, "PractitionerRole", Reader, _practitioner_roles)


@router.get("/PractitionerRole/{resource_id}", response_class=FhirResponse)
def read_practitioner_role(db: DbSession, actor: Reader, resource_id: str) -> Any:
    rows, _ = staff.search_roles_with_departments(
        db, RoleFilter(ids=(resource_id,)), limit=1, offset=0
    )
    if not rows:
        raise NotFound(f"PractitionerRole {resource_id} not found")
    return FhirResponse(fhir_map.practitioner_role(*rows[0]))
