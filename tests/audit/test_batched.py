"""Several audit events inserted in one statement read back as the ORM writes them, and
seal and verify like any others (both databases)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from medalliance.audit import service
from medalliance.audit.enums import AccessBasis
from medalliance.audit.models import AuditEvent
from medalliance.auth.enums import Role
from medalliance.auth.principal import Actor

ACTOR = Actor(
    user_id="u7", username="医生", role=Role.DOCTOR, institution_id="township-01", ip="10.0.0.9"
)
COLUMNS = ("occurred_at", "user_id", "username", "role", "institution_id", "action",
           "resource_type", "patient_id", "basis", "ip", "outcome", "detail")  # fmt: skip


def _row(patient: str, basis: AccessBasis) -> dict[str, object]:
    return service.event_row(
        ACTOR, "read", resource_type="Observation", patient_id=patient, basis=basis,
        detail={"note": "检索"},
    )  # fmt: skip


def test_rows_read_back_as_worded(db: Session) -> None:
    rows = [
        _row("p00000001", AccessBasis.CARE_RELATIONSHIP),
        _row("p00000002", AccessBasis.CONSENT),
        _row("p00000003", AccessBasis.CARE_RELATIONSHIP),
    ]
    service.record_all_now(db, rows)
    stored = db.scalars(
        select(AuditEvent).where(AuditEvent.user_id == "u7").order_by(AuditEvent.id)
    ).all()
    assert [{c: getattr(e, c) for c in COLUMNS} for e in stored] == [
        {c: r[c] for c in COLUMNS} for r in rows
    ]


def test_batched_rows_seal_and_verify(db: Session) -> None:
    service.record(db, ACTOR, "read", resource_type="Encounter", patient_id="p00000004")
    service.record_all_now(
        db, [_row("p00000005", AccessBasis.CONSENT), _row("p00000006", AccessBasis.CONSENT)]
    )
    while service.seal_pending(db):
        pass
    report = service.verify(db)
    assert report.ok
    assert report.unsealed == 0


def test_nothing_to_record_is_no_statement(db: Session) -> None:
    before = db.scalars(select(AuditEvent.id)).all()
    service.record_all_now(db, [])
    assert db.scalars(select(AuditEvent.id)).all() == before
