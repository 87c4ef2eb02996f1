"""Every query of the events domain."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from medalliance.events.enums import DeliveryStatus
from medalliance.events.models import Delivery, OutboxEvent, Subscription

S = TypeVar("S", bound=Select[Any])


def _locked(db: Session, stmt: S) -> S:
    # Several workers may run on PostgreSQL: each takes rows nobody else holds.
    if db.get_bind().dialect.name == "postgresql":
        return stmt.with_for_update(skip_locked=True)
    return stmt


def unrouted_events(db: Session, limit: int) -> Sequence[OutboxEvent]:
    stmt = select(OutboxEvent).where(OutboxEvent.routed.is_(False)).order_by(OutboxEvent.id)
    return db.scalars(_locked(db, stmt.limit(limit))).all()


def subscriptions_for(db: Session, institution_ids: list[str]) -> Sequence[Subscription]:
    stmt = select(Subscription).where(
        Subscription.active.is_(True), Subscription.institution_id.in_(institution_ids)
    )
    return db.scalars(stmt).all()


def due_deliveries(db: Session, now: datetime, limit: int) -> Sequence[Delivery]:
    stmt = (
        select(Delivery)
        .where(Delivery.status == DeliveryStatus.PENDING.value, Delivery.next_attempt_at <= now)
        .order_by(Delivery.id)
        .limit(limit)
    )
    return db.scalars(_locked(db, stmt)).all()


def event(db: Session, event_id: int) -> OutboxEvent | None:
    return db.get(OutboxEvent, event_id)


def subscription(db: Session, subscription_id: int) -> Subscription | None:
    return db.get(Subscription, subscription_id)


def events_of_type(db: Session, event_type: str) -> Sequence[OutboxEvent]:
    stmt = select(OutboxEvent).where(OutboxEvent.event_type == event_type).order_by(OutboxEvent.id)
    return db.scalars(stmt).all()
