"""Every query of the audit domain."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from medalliance.audit.models import AuditEvent, AuditSeal


def last_seal(db: Session) -> AuditSeal | None:
    return db.scalars(select(AuditSeal).order_by(AuditSeal.seq.desc()).limit(1)).first()


def unsealed_events(db: Session, limit: int) -> Sequence[AuditEvent]:
    stmt = (
        select(AuditEvent)
        .outerjoin(AuditSeal, AuditSeal.event_id == AuditEvent.id)
        .where(AuditSeal.seq.is_(None))
        .order_by(AuditEvent.id)
        .limit(limit)
    )
    return db.scalars(stmt).all()


def count_unsealed(db: Session) -> int:
    stmt = (
        select(func.count())
        .select_from(AuditEvent)
        .outerjoin(AuditSeal, AuditSeal.event_id == AuditEvent.id)
        .where(AuditSeal.seq.is_(None))
    )
    return int(db.scalar(stmt) or 0)


def iter_chain(db: Session, batch: int = 5000) -> Iterator[tuple[AuditSeal, AuditEvent | None]]:
    """Seals in chain order with their events (None when the event row is gone)."""
    after = 0
    while True:
        stmt = (
            select(AuditSeal, AuditEvent)
            .outerjoin(AuditEvent, AuditEvent.id == AuditSeal.event_id)
            .where(AuditSeal.seq > after)
            .order_by(AuditSeal.seq)
            .limit(batch)
        )
        rows = db.execute(stmt).all()
        if not rows:
            return
        yield from ((seal, event) for seal, event in rows)
        after = rows[-1][0].seq


def recent_events(db: Session, limit: int = 100) -> Sequence[AuditEvent]:
    return db.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)).all()
