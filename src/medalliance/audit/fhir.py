"""The audit log read as FHIR R4 AuditEvent resources (GET /fhir/AuditEvent).

Who may read: administrators everything; a resident the accesses to their own record;
clinicians the log of a patient they may read. Reading the log is itself audited.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from medalliance.access import service as access
from medalliance.audit.enums import AccessBasis, Outcome
from medalliance.audit.models import AuditEvent
from medalliance.auth.enums import Role
from medalliance.auth.principal import Actor
from medalliance.errors import DomainError, Forbidden

_ACTION = {"create": "C", "read": "R", "update": "U", "delete": "D"}
_OUTCOME = {Outcome.SUCCESS.value: "0", Outcome.FAILURE.value: "8", Outcome.DENIED.value: "4"}
_PREFIXES = ("ge", "le", "gt", "lt", "eq")


def search_events(
    db: Session,
    actor: Actor,
    *,
    patient: str | None,
    agent: str | None,
    dates: list[str],
    count: int,
    now: datetime,
) -> list[dict[str, Any]]:
    patient_id = patient.split("/")[-1] if patient else None
    _check(db, actor, patient_id, now)
    stmt = select(AuditEvent)
    if patient_id:
        stmt = stmt.where(AuditEvent.patient_id == patient_id)
    if agent:
        stmt = stmt.where(AuditEvent.username == agent)
    for raw in dates:
        stmt = stmt.where(_date_condition(raw))
    rows = db.scalars(stmt.order_by(AuditEvent.id.desc()).limit(count)).all()
    if patient_id:
        basis = (
            AccessBasis.ADMINISTRATION
            if actor.role == Role.ADMIN
            else (access.clinical_basis(db, actor, patient_id, now) or AccessBasis.OWN_RECORD)
        )
        access.audit_read(db, actor, patient_id=patient_id, basis=basis, resource_type="AuditEvent")
    return [to_fhir(r) for r in rows]


def _check(db: Session, actor: Actor, patient_id: str | None, now: datetime) -> None:
    if actor.role == Role.ADMIN:
        return
    if patient_id is None:
        raise Forbidden("name the patient (patient=) whose access log you want to read")
    if actor.role == Role.RESIDENT:
        if actor.person_id != patient_id:
            raise Forbidden("residents may read the access log of their own record only")
        return
    access.require_clinical_access(db, actor, patient_id, now)


def _date_condition(raw: str) -> Any:
    from medalliance.records.dates import parse_range

    prefix, text = (raw[:2], raw[2:]) if raw[:2] in _PREFIXES else ("eq", raw)
    parsed = parse_range(text)
    if parsed is None:
        raise DomainError(f"date {raw!r} is not a FHIR date", field="date")
    low, high = parsed
    column = AuditEvent.occurred_at
    return {
        "ge": column >= low,
        "gt": column > high,
        "le": column <= high,
        "lt": column < low,
        "eq": column.between(low, high),
    }[prefix]


def to_fhir(event: AuditEvent) -> dict[str, Any]:
    verb = event.action.split(".")[-1]
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(event.id),
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
            "code": "rest",
        },
        "subtype": [
            {
                "system": "https://medalliance.example/fhir/CodeSystem/audit-action",
                "code": event.action,
            }
        ],
        "action": _ACTION.get(verb, "E"),
        "recorded": event.occurred_at.isoformat(),
        "outcome": _OUTCOME.get(event.outcome, "8"),
        "agent": [
            {
                "who": {
                    "identifier": {"value": event.client_id or event.username},
                    "display": event.username,
                },
                "requestor": True,
                **({"role": [{"text": event.role}]} if event.role else {}),
                **({"network": {"address": event.ip, "type": "2"}} if event.ip else {}),
            }
        ],
        "source": {"observer": {"display": f"MedAlliance {event.institution_id or ''}".strip()}},
    }
    if event.basis:
        resource["purposeOfEvent"] = [{"text": event.basis}]
    entities = []
    if event.resource_type:
        what = (
            f"{event.resource_type}/{event.resource_id}"
            if event.resource_id
            else event.resource_type
        )
        entities.append({"what": {"reference": what} if event.resource_id else {"display": what}})
    if event.patient_id:
        entities.append(
            {
                "what": {"reference": f"Patient/{event.patient_id}"},
                "role": {"code": "1", "display": "Patient"},
            }
        )
    if entities:
        resource["entity"] = entities
    return resource
