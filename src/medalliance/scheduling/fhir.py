"""FHIR Slot and Appointment (read and search)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Request

from medalliance.auth.enums import Role
from medalliance.auth.policy import Scope, allow
from medalliance.auth.principal import Actor
from medalliance.kit.clock import utcnow
from medalliance.kit.fhir import FhirResponse, fhir_router, page_from, searchset
from medalliance.kit.http import DbSession
from medalliance.scheduling import service

router = fhir_router()
STAFF = (Role.COORDINATOR, Role.DOCTOR, Role.SPECIALIST, Role.FAMILY_DOCTOR, Role.SYSTEM)
SlotReader = Annotated[Actor, allow(*STAFF, scope=Scope.CONSORTIUM)]
AppointmentReader = Annotated[Actor, allow(*STAFF, scope=Scope.CARE_RELATIONSHIP)]


def _search(request: Request, db: DbSession, actor: Actor, resource_type: str) -> FhirResponse:
    page = page_from(request.query_params)
    found, has_more = service.fhir_search(
        db, actor, resource_type, request.query_params.multi_items(), page
    )
    return FhirResponse(searchset(request, found, total=None, page=page, has_more=has_more))


@router.get("/Slot")
def search_slots(request: Request, db: DbSession, actor: SlotReader) -> FhirResponse:
    return _search(request, db, actor, "Slot")


@router.get("/Slot/{slot_id}")
def read_slot(slot_id: str, db: DbSession, actor: SlotReader) -> FhirResponse:
    return FhirResponse(service.fhir_read(db, actor, "Slot", slot_id, now=utcnow()))


@router.get("/Appointment")
def search_appointments(request: Request, db: DbSession, actor: AppointmentReader) -> FhirResponse:
    return _search(request, db, actor, "Appointment")


@router.get("/Appointment/{appointment_id}")
def read_appointment(appointment_id: str, db: DbSession, actor: AppointmentReader) -> FhirResponse:
    return FhirResponse(service.fhir_read(db, actor, "Appointment", appointment_id, now=utcnow()))
