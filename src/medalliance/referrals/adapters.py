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
    """The attachment names a resource of the shared record that the actor may read."""
    if not REFERENCE.match(reference):
        return False
    records = _records()
    if records is None:
        return True
    resource_type, resource_id = reference.split("/", 1)
    try:
        records.read(db, actor, resource_type, resource_id, now=now)
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
