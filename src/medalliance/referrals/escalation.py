"""Acceptance deadlines and their escalation (the worker's job).

Level 1 goes to the receiving institution's referral office when the deadline passes;
level 2 to the consortium's lead institution one deadline span later. Each (referral,
level) is one row under a unique key, inserted with ON CONFLICT DO NOTHING, and its outbox
event is written in the same transaction: a crash before commit loses nothing (the next run
redoes it), a crash after commit duplicates nothing (the row exists)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session

from medalliance.audit import service as audit
from medalliance.care_levels import adapters as registry
from medalliance.events import service as events
from medalliance.kit.clock import utcnow
from medalliance.referrals import repository
from medalliance.referrals.models import Referral
from medalliance.registry import service as registry_service

BATCH = 500


def escalate_overdue(
    db: Session,
    *,
    now: datetime | None = None,
    limit: int = BATCH,
    after_each: Callable[[int], None] | None = None,
) -> int:
    """Escalate every overdue referral once per level; returns how many escalations were
    created. ``after_each`` lets the crash tests kill the job mid-batch."""
    now = now or utcnow()
    created = 0
    leads = _consortium_leads(db)
    for index, referral in enumerate(repository.overdue(db, now, limit)):
        for level, institution_id in _due_levels(db, referral, now, leads):
            if repository.insert_escalation(db, referral.id, level, institution_id, now):
                _announce(db, referral, level, institution_id)
                created += 1
        if after_each is not None:
            after_each(index)
    db.flush()
    return created


def _due_levels(
    db: Session, referral: Referral, now: datetime, leads: dict[str, str]
) -> list[tuple[int, str]]:
    due: list[tuple[int, str]] = []
    if referral.deadline_at is not None and referral.deadline_at < now:
        due.append((1, referral.to_institution_id))
    if referral.escalation_deadline_at is not None and referral.escalation_deadline_at < now:
        target = registry.institution(db, referral.to_institution_id)
        lead = leads.get(target.consortium_id or "") if target else None
        due.append((2, lead or referral.to_institution_id))
    return due


def _consortium_leads(db: Session) -> dict[str, str]:
    return {
        c.id: c.lead_institution_id for c in registry_service.consortia(db) if c.lead_institution_id
    }


def _announce(db: Session, referral: Referral, level: int, institution_id: str) -> None:
    events.publish(
        db,
        "referral.overdue",
        {
            "referral": referral.id,
            "status": referral.status,
            "urgency": referral.urgency,
            "level": level,
            "deadline": referral.deadline_at.isoformat() if referral.deadline_at else None,
            "from": referral.from_institution_id,
            "to": referral.to_institution_id,
        },
        institution_ids=[referral.to_institution_id, referral.from_institution_id, institution_id],
        patient_id=referral.patient_id,
    )
    audit.record(
        db,
        None,
        "referral.escalate",
        resource_type="Task",
        resource_id=referral.id,
        patient_id=referral.patient_id,
        username="worker",
        detail={"level": level, "to": institution_id},
    )
