"""FHIR Patient: read, search and $match (http://hl7.org/fhir/R4/patient-operation-match.html)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Body, Request
from sqlalchemy.orm import Session
from starlette.datastructures import QueryParams

from medalliance.auth.enums import Role
from medalliance.auth.policy import Scope, allow
from medalliance.auth.principal import Actor
from medalliance.errors import DomainError, ValidationFailed
from medalliance.kit.fhir import MAX_COUNT, FhirResponse, Page, fhir_router, page_from, searchset
from medalliance.kit.http import DbSession
from medalliance.patients import service
from medalliance.patients.enums import MATCH_GRADE_URL, RESIDENT_ID_SYSTEM
from medalliance.patients.matching import Demographics
from medalliance.patients.repository import PersonFilter
from medalliance.patients.service import IDENTIFYING_ROLES

router = fhir_router()

Staff = Annotated[Actor, allow(*IDENTIFYING_ROLES, scope=Scope.CARE_RELATIONSHIP)]
StaffOrResident = Annotated[
    Actor, allow(*IDENTIFYING_ROLES, Role.RESIDENT, scope=Scope.CARE_RELATIONSHIP)
]
_PREFIXES = ("eq", "ne", "gt", "ge", "lt", "le")
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Unreadable parameter (OperationOutcome)"},
    403: {"description": "Role may not use the patient index"},
    404: {"description": "Unknown patient"},
    422: {"description": "Invalid resident ID number or contradicting sex/birth date"},
}


@router.post("/Patient/$match", responses=_ERRORS)
def match(
    request: Request,
    db: DbSession,
    actor: Staff,
    parameters: Annotated[dict[str, Any], Body()],
) -> FhirResponse:
    d, count, only_certain = _match_input(parameters)
    candidates = service.match_patients(db, actor, d, count=count, only_certain=only_certain)
    resources = [service.patient_resource(db, c.person) for c in candidates]
    bundle = searchset(
        request, resources, total=len(resources), page=Page(count, 0), has_more=False
    )
    bundle["link"][0]["url"] = str(request.url)
    for entry, candidate in zip(bundle["entry"], candidates, strict=True):
        entry["search"] = {
            "extension": [{"url": MATCH_GRADE_URL, "valueCode": candidate.grade.value}],
            "mode": "match",
            "score": round(candidate.probability, 4),
        }
    return FhirResponse(bundle)


@router.get("/Patient/{person_id}", responses=_ERRORS)
def read(db: DbSession, actor: StaffOrResident, person_id: str) -> FhirResponse:
    person = service.read_patient(db, actor, person_id)
    return FhirResponse(service.patient_resource(db, person))


@router.get("/Patient", responses=_ERRORS)
def search(request: Request, db: DbSession, actor: StaffOrResident) -> FhirResponse:
    page = page_from(request.query_params)
    resources, total = search_resources(db, actor, request.query_params)
    return FhirResponse(
        searchset(
            request,
            resources,
            total=total,
            page=page,
            has_more=page.offset + len(resources) < total,
        )
    )


def search_resources(
    db: Session, actor: Actor, params: QueryParams
) -> tuple[list[dict[str, Any]], int]:
    """A page of Patient resources matching ``params`` and the number of all matches
    (for ``GET /fhir/Patient`` and a bundle's GET entries)."""
    persons, total = service.search_patients(db, actor, _criteria(db, params), page_from(params))
    return [service.patient_resource(db, p) for p in persons], total


def _criteria(db: Session, params: QueryParams) -> PersonFilter:
    criteria = PersonFilter()
    if "identifier" in params:
        system, _, value = params["identifier"].rpartition("|")
        criteria.ids = service.identifier_person_ids(db, system or None, value)
    if "_id" in params:
        wanted = params["_id"].split(",")
        criteria.ids = wanted if criteria.ids is None else [i for i in criteria.ids if i in wanted]
    name = params.get("name", "").strip()
    if name:
        if name.isascii():
            criteria.pinyin = name.lower()
        else:
            criteria.name = "".join(name.split())
    criteria.birth_date = [
        (op, _date(v, "birthdate")) for op, v in _prefixed(params.getlist("birthdate"))
    ]
    criteria.updated = [
        (op, _instant(v, "_lastUpdated")) for op, v in _prefixed(params.getlist("_lastUpdated"))
    ]
    if params.get("gender"):
        if params["gender"] not in ("male", "female", "other", "unknown"):
            raise DomainError("gender must be male, female, other or unknown", field="gender")
        criteria.sex = params["gender"]
    if params.get("phone"):
        criteria.phone = "".join(ch for ch in params["phone"] if ch.isdigit())
    if params.get("address"):
        criteria.address = params["address"].strip()
    return criteria


def _prefixed(values: list[str]) -> list[tuple[str, str]]:
    out = []
    for value in values:
        op = value[:2] if value[:2] in _PREFIXES else "eq"
        out.append((op, value[2:] if value[:2] in _PREFIXES else value))
    return out


def _date(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise DomainError(f"{field} must be a date like 1980-03-01", field=field) from None


def _instant(value: str, field: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise DomainError(
            f"{field} must be an instant like 2026-01-01T00:00:00Z", field=field
        ) from None
    if parsed.tzinfo is None:
        raise DomainError(f"{field} needs a time zone", field=field)
    return parsed


def _match_input(parameters: dict[str, Any]) -> tuple[Demographics, int, bool]:
    if parameters.get("resourceType") != "Parameters":
        raise DomainError("$match takes a Parameters resource", field="resourceType")
    by_name = {p.get("name"): p for p in parameters.get("parameter", []) if isinstance(p, dict)}
    patient = by_name.get("resource", {}).get("resource")
    if not isinstance(patient, dict) or patient.get("resourceType") != "Patient":
        raise DomainError("parameter 'resource' must hold a Patient", field="resource")
    count = by_name.get("count", {}).get("valueInteger", 10)
    if not isinstance(count, int) or count < 1:
        raise DomainError("count must be a positive integer", field="count")
    only_certain = bool(by_name.get("onlyCertainMatches", {}).get("valueBoolean", False))
    return _demographics(patient), min(count, MAX_COUNT), only_certain


def _demographics(patient: dict[str, Any]) -> Demographics:
    name = _name_text(patient.get("name") or [])
    if not name:
        raise ValidationFailed("Patient.name is required for matching", field="Patient.name")
    born: date | None = None
    if patient.get("birthDate"):
        born = _date(str(patient["birthDate"]), "Patient.birthDate")
    id_number = next(
        (
            str(i.get("value", ""))
            for i in patient.get("identifier") or []
            if isinstance(i, dict) and i.get("system") == RESIDENT_ID_SYSTEM
        ),
        None,
    )
    phone = next(
        (
            str(t.get("value", ""))
            for t in patient.get("telecom") or []
            if isinstance(t, dict) and t.get("system") == "phone"
        ),
        None,
    )
    addresses = [a for a in patient.get("address") or [] if isinstance(a, dict)]
    gender = patient.get("gender")
    return Demographics(
        name=name,
        sex=gender if gender in ("male", "female") else None,
        birth_date=born,
        phone=phone,
        address=str(addresses[0].get("text", "")) if addresses else "",
        id_number=id_number,
    )


def _name_text(names: list[Any]) -> str:
    for n in names:
        if not isinstance(n, dict):
            continue
        if n.get("text"):
            return str(n["text"])
        family, given = n.get("family") or "", "".join(n.get("given") or [])
        if family or given:
            return f"{family}{given}"
    return ""
