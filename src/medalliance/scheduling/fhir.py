"""FHIR Slot and Appointment (read and search)."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import Request
from sqlalchemy.orm import Session
from starlette.datastructures import QueryParams

from medalliance.auth.enums import Role
from medalliance.auth.policy import Scope, allow
from medalliance.auth.principal import Actor
from medalliance.kit.clock import utcnow
from medalliance.kit.fhir import (
    FhirResponse,
    fhir_router,
    search_bundle,
    search_routes,
    strict_handling,
)
from medalliance.kit.http import DbSession
from medalliance.scheduling import service

router = fhir_router()
STAFF = (Role.COORDINATOR, Role.DOCTOR, Role.SPECIALIST, Role.FAMILY_DOCTOR, Role.SYSTEM)
SlotReader = Annotated[Actor, allow(*STAFF, scope=Scope.CONSORTIUM)]
AppointmentReader = Annotated[Actor, allow(*STAFF, scope=Scope.CARE_RELATIONSHIP)]


def _search(
    resource_type: str, request: Request, db: Session, actor: Actor, params: QueryParams
) -> FhirResponse:
    strict = strict_handling(request.headers.get("prefer"))
    found = service.fhir_search(db, actor, resource_type, params.multi_items(), strict=strict)
    return FhirResponse(search_bundle(request, found))


search_routes(router, "Slot", SlotReader, partial(_search, "Slot"))


@router.get("/Slot/{slot_id}")
def read_slot(slot_id: str, db: DbSession, actor: SlotReader) -> FhirResponse:
    return FhirResponse(service.fhir_read(db, actor, "Slot", slot_id, now=utcnow()))


search_routes(router, "Appointment", AppointmentReader, partial(_search, "Appointment"))


@router.get("/Appointment/{appointment_id}")
def read_appointment(appointment_id: str, db: DbSession, actor: AppointmentReader) -> FhirResponse:
    return FhirResponse(service.fhir_read(db, actor, "Appointment", appointment_id, now=utcnow()))
