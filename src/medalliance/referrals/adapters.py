"""Narrow calls into domains that are still being built.

``records.service.create/read`` arrived while this was written; it is found at run time so
that referrals still work in a build without the records domain: there an attachment
reference is only checked for its shape and the outcome document is kept on the referral
(``outcome_document``). TODO(records): import ``records.service`` directly and drop the
fallback and the ``outcome_document`` column.
TODO(family_doctor): ``family_doctor_of`` answers None until contracts exist.
"""

from __future__ import annotations

import importlib
import re
from datetime import datetime
from types import ModuleType
from typing import Any

from sqlalchemy.orm import Session

from medalliance.auth.principal import Actor
from medalliance.errors import DomainError, Forbidden, NotFound

REFERENCE = re.compile(r"^[A-Z][A-Za-z]{1,63}/[A-Za-z0-9\-.]{1,64}$")


def _records() -> ModuleType | None:
    try:
        module = importlib.import_module("medalliance.records.service")
    except ModuleNotFoundError:
        return None
    return module if hasattr(module, "create") and hasattr(module, "read") else None


def records_available() -> bool:
    return _records() is not None


def record_exists(db: Session, actor: Actor, reference: str, now: datetime) -> bool:
    """The attachment names a resource of the shared record that the actor may read; held
    until the referral commits, so that it cannot be deleted meanwhile unseen (a DELETE
    refuses to remove what a referral carries)."""
    if not REFERENCE.match(reference):
        return False
    records = _records()
    if records is None:
        return True
    resource_type, resource_id = reference.split("/", 1)
    try:
        records.read(db, actor, resource_type, resource_id, now=now, hold=True)
    except (NotFound, Forbidden):
        return False
    except DomainError as exc:  # e.g. 410 Gone: a deleted record is no attachment
        if exc.status in (404, 410):
            return False
        raise
    return True


def store_document(
    db: Session, actor: Actor, resource: dict[str, Any], now: datetime
) -> tuple[str, bool]:
    """Put the outcome document into the shared record: (reference, stored there)."""
    records = _records()
    if records is None:
        return f"{resource['resourceType']}/{resource['id']}", False
    stored = records.create(db, actor, resource, now=now)
    return f"{stored.resource_type}/{stored.id}", True


def family_doctor_of(db: Session, patient_id: str) -> tuple[str | None, str | None]:
    """(institution, practitioner) of the patient's contracted family doctor, if any."""
    return None, None


ATTACHABLE_TYPES = ("DocumentReference", "DiagnosticReport", "ImagingStudy")


def patient_records(
    db: Session, actor: Actor, patient_id: str, now: datetime, per_type: int = 10
) -> list[dict[str, str]]:
    """The newest results, images and documents of the patient that the actor may read,
    to choose attachments from (reference, type, title, date)."""
    records = _records()
    if records is None:
        return []
    found: list[dict[str, str]] = []
    for resource_type in ATTACHABLE_TYPES:
        params = [("patient", patient_id), ("_sort", "-date"), ("_count", str(per_type))]
        for stored in records.search(db, actor, resource_type, params, now=now).matches:
            found.append(_choice(stored.resource_type, stored.id, stored.content))
    return found


def _choice(resource_type: str, resource_id: str, content: dict[str, Any]) -> dict[str, str]:
    concept = content.get("type") or content.get("code") or {}
    title = (
        concept.get("text")
        or next((c.get("display") or c.get("code") for c in concept.get("coding", [])), "")
        if isinstance(concept, dict)
        else ""
    )
    when = str(
        content.get("date")
        or content.get("effectiveDateTime")
        or content.get("started")
        or content.get("issued")
        or ""
    )[:10]
    return {
        "reference": f"{resource_type}/{resource_id}",
        "type": resource_type,
        "title": str(title or content.get("description") or ""),
        "date": when,
    }
