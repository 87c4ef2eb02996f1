"""Real concurrency on PostgreSQL: 20 coordinators race to accept one referral, and 20 to
book the same last slot; exactly one wins each race, the others get 409."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from conftest import PG_URL, side_database
from medalliance.auth.enums import Role
from medalliance.demo.loader import Scale, load
from medalliance.errors import Conflict
from medalliance.kit.clock import utcnow
from medalliance.referrals import service
from medalliance.referrals.enums import ReferralEvent, ReferralStatus
from medalliance.referrals.schemas import TransitionRequest
from referrals.factories import actor, open_slots, referral, staff

pytestmark = pytest.mark.postgres
THREADS = 20


@pytest.fixture(scope="module")
def pg_engine() -> Iterator[Engine]:
    if not PG_URL:
        pytest.skip("needs MEDALLIANCE_TEST_DATABASE_URL (PostgreSQL)")
    # Our own database, so the shared test database is never reset under other tests.
    engine = side_database("conc")
    with Session(engine) as db:
        load(db, scale=Scale.SMALL, seed=1)
        for n in range(THREADS):
            staff(db, f"racer{n}", Role.COORDINATOR, "county-hospital")
        db.commit()
    yield engine
    engine.dispose()


def _race(engine: Engine, attempt: Callable[[Session, int], None]) -> tuple[int, int]:
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    barrier = threading.Barrier(THREADS)
    wins, conflicts, errors = [], [], []

    def run(n: int) -> None:
        with factory() as db:
            try:
                barrier.wait()
                attempt(db, n)
                db.commit()
                wins.append(n)
            except Conflict:
                db.rollback()
                conflicts.append(n)
            except Exception as exc:  # pragma: no cover - reported below
                db.rollback()
                errors.append(repr(exc))

    threads = [threading.Thread(target=run, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return len(wins), len(conflicts)


class TestRaces:
    def test_twenty_coordinators_accepting_one_referral_one_wins(self, pg_engine: Engine) -> None:
        with Session(pg_engine) as db:
            referral_id = referral(db).id
            db.commit()

        def accept(db: Session, n: int) -> None:
            service.transition(
                db,
                actor(db, f"racer{n}"),
                referral_id,
                ReferralEvent.ACCEPT,
                TransitionRequest(),
                now=utcnow(),
            )

        assert _race(pg_engine, accept) == (1, THREADS - 1)
        with Session(pg_engine) as db:
            found = service.get(db, actor(db, "coordinator"), referral_id, now=utcnow())
            assert found.referral.status == ReferralStatus.ACCEPTED
            assert [h.event for h in found.history].count("accept") == 1

    def test_twenty_coordinators_booking_the_last_slot_one_wins(self, pg_engine: Engine) -> None:
        with Session(pg_engine) as db:
            ids = [referral(db, status=ReferralStatus.ACCEPTED).id for _ in range(THREADS)]
            slot_id = open_slots(db, count=1)[0].id
            db.commit()

        def book(db: Session, n: int) -> None:
            service.transition(
                db,
                actor(db, f"racer{n}"),
                ids[n],
                ReferralEvent.SCHEDULE,
                TransitionRequest(slot_id=slot_id),
                now=utcnow(),
            )

        assert _race(pg_engine, book) == (1, THREADS - 1)
        with Session(pg_engine) as db:
            statuses = [
                service.get(db, actor(db, "coordinator"), i, now=utcnow()).referral.status
                for i in ids
            ]
            assert statuses.count(ReferralStatus.SCHEDULED) == 1
            assert statuses.count(ReferralStatus.ACCEPTED) == THREADS - 1
