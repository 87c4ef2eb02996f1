"""Outbox: events survive with their change, reach member systems, and retry when a
member is down."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from sqlalchemy.orm import Session

from medalliance.events import service
from medalliance.events.enums import DeliveryStatus
from medalliance.events.models import Delivery, Subscription
from medalliance.kit.clock import utcnow


class _Receiver:
    """A member system's webhook endpoint on loopback that fails its first N calls."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.bodies: list[bytes] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.failures > 0:
                    receiver.failures -= 1
                    self.send_response(503)
                else:
                    receiver.bodies.append(body)
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[_Receiver]:
    r = _Receiver(failures=getattr(request, "param", 0))
    thread = threading.Thread(target=r.server.serve_forever, daemon=True)
    thread.start()
    yield r
    r.server.shutdown()


def _subscribe(db: Session, url: str, institution: str = "township-01") -> Subscription:
    sub = Subscription(
        institution_id=institution,
        endpoint=url,
        event_types=["referral.accepted"],
        secret="s3cret",
        active=True,
    )
    db.add(sub)
    db.flush()
    return sub


class TestDelivery:
    def test_published_event_reaches_the_subscribed_member(
        self, db: Session, receiver: _Receiver
    ) -> None:
        _subscribe(db, receiver.url)
        service.publish(
            db, "referral.accepted", {"referral": "r1"}, institution_ids=["township-01"]
        )
        assert service.route_pending(db) == 1
        assert service.deliver_due(db) == 1
        assert len(receiver.bodies) == 1
        assert b'"referral.accepted"' in receiver.bodies[0]

    def test_other_institutions_and_event_types_are_not_sent(
        self, db: Session, receiver: _Receiver
    ) -> None:
        _subscribe(db, receiver.url)
        service.publish(db, "referral.accepted", {}, institution_ids=["township-02"])
        service.publish(db, "report.signed", {}, institution_ids=["township-01"])
        service.route_pending(db)
        assert service.deliver_due(db) == 0
        assert receiver.bodies == []

    @pytest.mark.parametrize("receiver", [2], indirect=True)
    def test_member_down_is_retried_with_backoff_until_it_answers(
        self, db: Session, receiver: _Receiver
    ) -> None:
        _subscribe(db, receiver.url)
        service.publish(db, "referral.accepted", {"n": 1}, institution_ids=["township-01"])
        service.route_pending(db)
        now = utcnow()
        service.deliver_due(db, now=now)
        delivery = db.query(Delivery).one()
        assert delivery.status == DeliveryStatus.PENDING
        assert delivery.next_attempt_at > now
        assert service.deliver_due(db, now=now) == 0  # not due yet
        service.deliver_due(db, now=now + timedelta(hours=1))
        service.deliver_due(db, now=now + timedelta(hours=2))
        assert delivery.status == DeliveryStatus.DELIVERED
        assert delivery.attempts == 3
        assert len(receiver.bodies) == 1

    def test_unreachable_member_is_given_up_after_the_retry_budget(self, db: Session) -> None:
        _subscribe(db, "http://127.0.0.1:9/nowhere")
        service.publish(db, "referral.accepted", {}, institution_ids=["township-01"])
        service.route_pending(db)
        when = utcnow()
        for _ in range(service.MAX_ATTEMPTS):
            when += timedelta(hours=2)
            service.deliver_due(db, now=when)
        delivery = db.query(Delivery).one()
        assert delivery.status == DeliveryStatus.DEAD
        assert "ConnectError" in delivery.last_error


class TestTransactionalOutbox:
    def test_event_of_a_rolled_back_change_is_never_sent(self, db: Session) -> None:
        savepoint = db.begin_nested()
        service.publish(db, "referral.accepted", {}, institution_ids=["township-01"])
        savepoint.rollback()
        assert service.events_of_type(db, "referral.accepted") == []
