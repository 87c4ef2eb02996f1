"""FHIR Slot and Appointment (read and search)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Request
from starlette.datastructures import QueryParams

from medalliance.auth.enums import Role
from medalliance.auth.policy import Scope, allow
from medalliance.auth.principal import Actor
from medalliance.kit.clock import utcnow
from medalliance.kit.fhir import (
    FhirResponse,
    SearchParams,
    fhir_router,
    search_bundle,
    strict_handling,
)
from medalliance.kit.http import DbSession
from medalliance.scheduling import service

router = fhir_router()
STAFF = (Role.COORDINATOR, Role.DOCTOR, Role.SPECIALIST, Role.FAMILY_DOCTOR, Role.SYSTEM)
SlotReader = Annotated[Actor, allow(*STAFF, scope=Scope.CONSORTIUM)]
AppointmentReader = Annotated[Actor, allow(*STAFF, scope=Scope.CARE_RELATIONSHIP)]


def _search(
    request: Request, db: DbSession, actor: Actor, resource_type: str, params: QueryParams
) -> FhirResponse:
    strict = strict_handling(request.headers.get("prefer"))
    found = service.fhir_search(db, actor, resource_type, params.multi_items(), strict=strict)
    return FhirResponse(search_bundle(request, found))


@router.get("/Slot")
def search_slots(request: Request, db: DbSession, actor: SlotReader) -> FhirResponse:
    return _search(request, db, actor, "Slot", request.query_params)


@router.post("/Slot/_search")
def search_slots_by_post(
    request: Request, db: DbSession, actor: SlotReader, params: SearchParams
) -> FhirResponse:
    return _search(request, db, actor, "Slot", params)


@router.get("/Slot/{slot_id}")
def read_slot(slot_id: str, db: DbSession, actor: SlotReader) -> FhirResponse:
    return FhirResponse(service.fhir_read(db, actor, "Slot", slot_id, now=utcnow()))


@router.get("/Appointment")
def search_appointments(request: Request, db: DbSession, actor: AppointmentReader) -> FhirResponse:
    return _search(request, db, actor, "Appointment", request.query_params)


@router.post("/Appointment/_search")
def search_appointments_by_post(
    request: Request, db: DbSession, actor: AppointmentReader, params: SearchParams
) -> FhirResponse:
    return _search(request, db, actor, "Appointment", params)


@router.get("/Appointment/{appointment_id}")
def read_appointment(appointment_id: str, db: DbSession, actor: AppointmentReader) -> FhirResponse:
    return FhirResponse(service.fhir_read(db, actor, "Appointment", appointment_id, now=utcnow()))
