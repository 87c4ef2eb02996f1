"""The audit log read as FHIR R4 AuditEvent resources (GET /fhir/AuditEvent).

Who may read: administrators everything; a resident the accesses to their own record;
clinicians the log of a patient they may read. Reading the log is itself audited.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from medalliance.access import service as access
from medalliance.audit import repository
from medalliance.audit.enums import AccessBasis, Outcome
from medalliance.audit.models import AuditEvent
from medalliance.audit.repository import EventCriteria
from medalliance.audit.service import REFUSED
from medalliance.auth.enums import Role
from medalliance.auth.principal import Actor
from medalliance.errors import DomainError, Forbidden
from medalliance.records.dates import parse_range

_ACTION = {"create": "C", "read": "R", "update": "U", "delete": "D"}
_OUTCOME = {Outcome.SUCCESS.value: "0", Outcome.FAILURE.value: "8", Outcome.DENIED.value: "4"}
_PREFIXES = ("ge", "le", "gt", "lt", "eq")
_SYSTEM_OBJECT = {
    "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
    "code": "2",
    "display": "System Object",
}
# Read by the route (paging, format), not criteria.
_RESULT_PARAMS = frozenset({"_count", "_cursor", "_format", "_pretty"})


@dataclass(frozen=True)
class EventPage:
    events: list[dict[str, Any]]
    total: int  # every match, not this page's
    next_cursor: str | None
    warnings: list[str]
    ignored: list[tuple[str, str]]  # parameters not applied: left out of the links


def search_events(
    db: Session,
    actor: Actor,
    params: Sequence[tuple[str, str]],
    *,
    count: int,
    cursor: int | None,
    now: datetime,
    strict: bool = False,
) -> EventPage:
    """Newest first, ``count`` a page, after the event ``cursor`` (an id) when given. As
    any search here, unknown parameters are warnings, or a 400 when ``strict``."""
    criteria, ignored = _criteria(params, strict=strict)
    warnings = [f"unknown search parameter {key} for AuditEvent; ignored" for key, _ in ignored]
    _check(db, actor, criteria.patient_id, now)
    total = repository.count_events(db, criteria)
    rows = repository.search_events(db, criteria, before_id=cursor, limit=count + 1)
    page = rows[:count]
    following = str(page[-1].id) if page and len(rows) > count else None
    if criteria.patient_id:
        _audit_reading(db, actor, criteria.patient_id, now)
    return EventPage([to_fhir(r) for r in page], total, following, warnings, ignored)


def _criteria(
    params: Sequence[tuple[str, str]], *, strict: bool
) -> tuple[EventCriteria, list[tuple[str, str]]]:
    """The criteria, and the parameters (key, value) ignored."""
    named: dict[str, str] = {}
    occurred = []
    ignored = []
    for key, value in params:
        if key in ("patient", "agent"):
            if key in named:
                # Both would be AND-ed (matching nothing), and the access rule checks one.
                raise DomainError(f"{key} may be given once", field=key)
            named[key] = value
        elif key == "date":
            occurred.append(_date_range(value))
        elif key not in _RESULT_PARAMS:
            if strict:
                message = f"unknown search parameter {key} for AuditEvent"
                raise DomainError(message, field=key)
            ignored.append((key, value))
    patient = named.get("patient")
    criteria = EventCriteria(
        patient_id=patient.split("/")[-1] if patient else None,
        username=named.get("agent") or None,
        occurred=tuple(occurred),
    )
    return criteria, ignored


def _audit_reading(db: Session, actor: Actor, patient_id: str, now: datetime) -> None:
    basis = (
        AccessBasis.ADMINISTRATION
        if actor.role == Role.ADMIN
        else (access.clinical_basis(db, actor, patient_id, now) or AccessBasis.OWN_RECORD)
    )
    access.audit_read(db, actor, patient_id=patient_id, basis=basis, resource_type="AuditEvent")


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


def _date_range(raw: str) -> tuple[str, datetime, datetime]:
    prefix, text = (raw[:2], raw[2:]) if raw[:2] in _PREFIXES else ("eq", raw)
    parsed = parse_range(text)
    if parsed is None:
        raise DomainError(f"date {raw!r} is not a FHIR date", field="date")
    return prefix, *parsed


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
    if event.action == REFUSED:
        if event.detail.get("reason"):
            resource["outcomeDesc"] = event.detail["reason"]
        entities += _refused_request(event.detail)
    if entities:
        resource["entity"] = entities
    return resource


def _refused_request(detail: dict[str, Any]) -> list[dict[str, Any]]:
    """What a refusal was asked, the same fields wherever it was refused (``record_refusal``
    words them alike; ``entry`` only for a bundle's entry). Nothing for a refusal recorded
    before it did (a timeline refusal then named no request)."""
    asked = {key: detail[key] for key in ("method", "path", "entry") if detail.get(key)}
    if not asked:
        return []
    return [
        {
            "type": _SYSTEM_OBJECT,
            "description": " ".join(asked[k] for k in ("method", "path") if k in asked),
            "detail": [{"type": key, "valueString": value} for key, value in asked.items()],
        }
    ]
