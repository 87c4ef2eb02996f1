"""Every query of the referral domain. Lists are scoped in SQL to the actor's institution
(sender or receiver side); drafts are never visible to the receiver."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    exists,
    func,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from medalliance.kit.hot import HotStatement
from medalliance.referrals.enums import AWAITING_DECISION, OPEN_STATUSES, Box, ReferralStatus
from medalliance.referrals.models import (
    Referral,
    ReferralEscalation,
    ReferralFollowUp,
    ReferralHistory,
)


def referral(db: Session, referral_id: str) -> Referral | None:
    return db.get(Referral, referral_id)


def history(db: Session, referral_id: str) -> Sequence[ReferralHistory]:
    stmt = (
        select(ReferralHistory)
        .where(ReferralHistory.referral_id == referral_id)
        .order_by(ReferralHistory.at, ReferralHistory.id)
    )
    return db.scalars(stmt).all()


def escalations(db: Session, referral_id: str) -> Sequence[ReferralEscalation]:
    stmt = (
        select(ReferralEscalation)
        .where(ReferralEscalation.referral_id == referral_id)
        .order_by(ReferralEscalation.level)
    )
    return db.scalars(stmt).all()


def follow_up(db: Session, referral_id: str) -> ReferralFollowUp | None:
    stmt = select(ReferralFollowUp).where(ReferralFollowUp.referral_id == referral_id)
    return db.scalars(stmt).first()


def visible_to(institution_id: str) -> ColumnElement[bool]:
    return or_(
        Referral.from_institution_id == institution_id,
        and_(
            Referral.to_institution_id == institution_id,
            Referral.status != ReferralStatus.DRAFT.value,
        ),
    )


@dataclass
class QueueFilter:
    box: Box = Box.INCOMING
    statuses: Sequence[str] = field(default_factory=lambda: sorted(OPEN_STATUSES))
    urgency: str | None = None
    direction: str | None = None
    patient_id: str | None = None
    requester_user_id: str | None = None
    practitioner_id: str | None = None


def _escalation_level() -> Any:
    return (
        select(func.max(ReferralEscalation.level))
        .where(ReferralEscalation.referral_id == Referral.id)
        .correlate(Referral)
        .scalar_subquery()
    )


def queue(
    db: Session, institution_id: str, criteria: QueueFilter, *, offset: int, limit: int
) -> list[tuple[Referral, int | None]]:
    """One page of a queue with each referral's escalation level (one indexed query)."""
    stmt: Select[Any] = select(Referral, _escalation_level())
    if criteria.box == Box.INCOMING:
        stmt = stmt.where(
            Referral.to_institution_id == institution_id,
            Referral.status != ReferralStatus.DRAFT.value,
        )
    else:
        stmt = stmt.where(Referral.from_institution_id == institution_id)
    if criteria.statuses:
        stmt = stmt.where(Referral.status.in_(list(criteria.statuses)))
    if criteria.urgency:
        stmt = stmt.where(Referral.urgency == criteria.urgency)
    if criteria.direction:
        stmt = stmt.where(Referral.direction == criteria.direction)
    if criteria.patient_id:
        stmt = stmt.where(Referral.patient_id == criteria.patient_id)
    mine = []
    if criteria.requester_user_id:
        mine.append(Referral.requester_user_id == criteria.requester_user_id)
    if criteria.practitioner_id:
        mine.append(Referral.to_practitioner_id == criteria.practitioner_id)
        mine.append(Referral.from_practitioner_id == criteria.practitioner_id)
    if mine:
        stmt = stmt.where(or_(*mine))
    awaiting = set(criteria.statuses) and set(criteria.statuses) <= set(OPEN_STATUSES)
    # Open work is read by deadline (most urgent first); history by last change.
    order = (
        (Referral.deadline_at.is_(None), Referral.deadline_at, Referral.id)
        if awaiting and criteria.box == Box.INCOMING
        else (Referral.updated_at.desc(), Referral.id)
    )
    rows = db.execute(stmt.order_by(*order).offset(offset).limit(limit)).all()
    return [(row[0], row[1]) for row in rows]


@dataclass(frozen=True)
class ReferralSearch:
    """A FHIR ServiceRequest or Task search's criteria: the values each allows (None: any;
    empty: none)."""

    statuses: frozenset[str] | None = None
    owners: frozenset[str] | None = None
    requesters: frozenset[str] | None = None
    patient_ids: frozenset[str] | None = None
    updated_from: datetime | None = None
    updated_to: datetime | None = None


def _matching(institution_id: str, criteria: ReferralSearch) -> Select[Referral]:
    stmt = select(Referral).where(visible_to(institution_id))
    if criteria.statuses is not None:
        stmt = stmt.where(Referral.status.in_(sorted(criteria.statuses)))
    if criteria.owners is not None:
        stmt = stmt.where(Referral.to_institution_id.in_(sorted(criteria.owners)))
    if criteria.requesters is not None:
        stmt = stmt.where(Referral.from_institution_id.in_(sorted(criteria.requesters)))
    if criteria.patient_ids is not None:
        stmt = stmt.where(Referral.patient_id.in_(sorted(criteria.patient_ids)))
    if criteria.updated_from:
        stmt = stmt.where(Referral.updated_at >= criteria.updated_from)
    if criteria.updated_to:
        stmt = stmt.where(Referral.updated_at < criteria.updated_to)
    return stmt


def search(
    db: Session, institution_id: str, criteria: ReferralSearch, *, offset: int, limit: int
) -> Sequence[Referral]:
    stmt = _matching(institution_id, criteria)
    stmt = stmt.order_by(Referral.updated_at.desc(), Referral.id).offset(offset).limit(limit)
    return db.scalars(stmt).all()


def search_count(db: Session, institution_id: str, criteria: ReferralSearch) -> int:
    stmt = select(func.count()).select_from(_matching(institution_id, criteria).subquery())
    return int(db.scalar(stmt) or 0)


def _escalated(level: int) -> ColumnElement[bool]:
    return exists().where(
        ReferralEscalation.referral_id == Referral.id, ReferralEscalation.level == level
    )


def overdue(db: Session, now: datetime, limit: int) -> Sequence[Referral]:
    """Awaiting a decision past a deadline whose escalation row does not exist yet, so a
    backlog of already-escalated referrals never starves new ones."""
    stmt = (
        select(Referral)
        .where(
            Referral.status.in_([s.value for s in AWAITING_DECISION]),
            or_(
                and_(Referral.deadline_at < now, ~_escalated(1)),
                and_(Referral.escalation_deadline_at < now, ~_escalated(2)),
            ),
        )
        .order_by(Referral.deadline_at, Referral.id)
        .limit(limit)
    )
    return db.scalars(stmt).all()


def escalated_levels(db: Session, referral_ids: Sequence[str]) -> set[tuple[str, int]]:
    if not referral_ids:
        return set()
    stmt = select(ReferralEscalation.referral_id, ReferralEscalation.level).where(
        ReferralEscalation.referral_id.in_(referral_ids)
    )
    return {(rid, int(level)) for rid, level in db.execute(stmt).all()}


def insert_escalation(
    db: Session, referral_id: str, level: int, institution_id: str, now: datetime
) -> bool:
    """INSERT … ON CONFLICT DO NOTHING: True only for the one writer that created the row."""
    values = {
        "referral_id": referral_id,
        "level": level,
        "institution_id": institution_id,
        "created_at": now,
    }
    dialect = db.get_bind().dialect.name
    insert_fn = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        insert_fn(ReferralEscalation)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["referral_id", "level"])
        .returning(ReferralEscalation.id)
    )
    # RETURNING, not rowcount: an ORM-enabled INSERT does not report rowcount everywhere.
    return db.execute(stmt).scalar_one_or_none() is not None


def chain(db: Session, episode_id: str) -> Sequence[Referral]:
    stmt = select(Referral).where(Referral.episode_id == episode_id).order_by(Referral.created_at)
    return db.scalars(stmt).all()


def follow_ups_due(
    db: Session, institution_id: str, *, limit: int = 50
) -> Sequence[ReferralFollowUp]:
    stmt = (
        select(ReferralFollowUp)
        .where(ReferralFollowUp.institution_id == institution_id, ReferralFollowUp.status == "open")
        .order_by(ReferralFollowUp.due_at)
        .limit(limit)
    )
    return db.scalars(stmt).all()


def changed_since(
    db: Session, after: tuple[datetime, str] | None, until: datetime, limit: int
) -> Sequence[Referral]:
    """Referrals changed after ``after`` (updated_at, id), oldest first (derived-data feed)."""
    stmt = select(Referral).where(Referral.updated_at <= until)
    if after is not None:
        stmt = stmt.where(tuple_(Referral.updated_at, Referral.id) > tuple_(*after))
    return db.scalars(stmt.order_by(Referral.updated_at, Referral.id).limit(limit)).all()


def histories(db: Session, referral_ids: Sequence[str]) -> Sequence[ReferralHistory]:
    if not referral_ids:
        return []
    stmt = (
        select(ReferralHistory)
        .where(ReferralHistory.referral_id.in_(referral_ids))
        .order_by(ReferralHistory.id)
    )
    return db.scalars(stmt).all()


# Asked by every DELETE of the shared record: prepared, one round trip.
_referral: Any = Referral.__table__  # Core: a hot statement runs plain columns
_NAMING = HotStatement(
    select(_referral.c.attachments, _referral.c.outcome_reference).where(
        _referral.c.patient_id == bindparam("patient_id")
    )
)


def count_naming(db: Session, patient_id: str | None, reference: str) -> int:
    """Referrals of the patient that attach a resource of the shared record, or give it as
    their outcome (the discharge summary sent down): its deletion would leave them
    pointing at nothing. A patient has a handful of referrals: read, not indexed. Every
    referral counts, whoever asks: a caller tells only whether there is one."""
    if patient_id is None:
        return 0
    rows = _NAMING.rows(db, {"patient_id": patient_id})
    return sum(
        1
        for row in rows
        if reference in (row.attachments or []) or row.outcome_reference == reference
    )
