"""Publishing events in the caller's transaction, routing them to subscriptions, and
delivering webhooks with exponential back-off (the worker calls route and deliver)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.orm import Session

from medalliance.events import repository
from medalliance.events.enums import DeliveryStatus
from medalliance.events.models import Delivery, OutboxEvent
from medalliance.kit.clock import utcnow

MAX_ATTEMPTS = 12
BASE_BACKOFF_SECONDS = 5
Sender = Callable[[str, bytes, dict[str, str]], int]


def publish(
    db: Session,
    event_type: str,
    payload: dict[str, Any],
    *,
    institution_ids: Sequence[str],
    patient_id: str | None = None,
) -> OutboxEvent:
    """Record an event atomically with the change it reports: it is delivered only if the
    change commits, and it is never lost once it has."""
    row = OutboxEvent(
        event_type=event_type,
        payload=payload,
        patient_id=patient_id,
        institution_ids=sorted(set(institution_ids)),
        routed=False,
    )
    db.add(row)
    db.flush()
    return row


def route_pending(db: Session, limit: int = 500) -> int:
    """One delivery per active subscription of each event's institutions."""
    events = repository.unrouted_events(db, limit)
    for event in events:
        for sub in repository.subscriptions_for(db, event.institution_ids):
            if not sub.event_types or event.event_type in sub.event_types:
                db.add(
                    Delivery(
                        event_id=event.id,
                        subscription_id=sub.id,
                        status=DeliveryStatus.PENDING.value,
                        attempts=0,
                        next_attempt_at=event.created_at,
                        last_error="",
                    )
                )
        event.routed = True
    db.flush()
    return len(events)


def deliver_due(
    db: Session, *, now: datetime | None = None, send: Sender | None = None, limit: int = 100
) -> int:
    """Attempt every due delivery once; failures are rescheduled with back-off."""
    now = now or utcnow()
    sender = send or _http_send
    attempted = 0
    for delivery in repository.due_deliveries(db, now, limit):
        event = repository.event(db, delivery.event_id)
        sub = repository.subscription(db, delivery.subscription_id)
        if event is None or sub is None or not sub.active:
            delivery.status = DeliveryStatus.DEAD.value
            delivery.last_error = "subscription removed"
            continue
        body = json.dumps(
            {
                "id": event.id,
                "type": event.event_type,
                "occurredAt": event.created_at.isoformat(),
                "data": event.payload,
            },
            ensure_ascii=False,
        ).encode()
        _attempt(delivery, sender, sub.endpoint, body, _signature(sub.secret, body), now)
        attempted += 1
    db.flush()
    return attempted


def _attempt(
    delivery: Delivery, send: Sender, url: str, body: bytes, signature: str, now: datetime
) -> None:
    delivery.attempts += 1
    try:
        status = send(
            url,
            body,
            {
                "Content-Type": "application/json",
                "X-MedAlliance-Signature": signature,
                "X-MedAlliance-Delivery": str(delivery.id),
            },
        )
        ok, error = 200 <= status < 300, f"HTTP {status}"
    except httpx.HTTPError as exc:
        ok, error = False, f"{type(exc).__name__}: {exc}"
    if ok:
        delivery.status = DeliveryStatus.DELIVERED.value
        delivery.delivered_at = now
        delivery.last_error = ""
        return
    delivery.last_error = error[:1000]
    if delivery.attempts >= MAX_ATTEMPTS:
        delivery.status = DeliveryStatus.DEAD.value
        return
    delay = BASE_BACKOFF_SECONDS * 2 ** (delivery.attempts - 1)
    delivery.next_attempt_at = now + timedelta(seconds=min(delay, 3600))


def _signature(secret: str, body: bytes) -> str:
    # Receivers verify the HMAC so a forged webhook cannot inject events.
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _http_send(url: str, body: bytes, headers: dict[str, str]) -> int:
    with httpx.Client(timeout=5.0) as client:
        return client.post(url, content=body, headers=headers).status_code


def events_of_type(db: Session, event_type: str) -> list[OutboxEvent]:
    return list(repository.events_of_type(db, event_type))
