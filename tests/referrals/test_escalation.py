"""Deadlines and escalation: once per referral and level, never lost or duplicated, even
when the worker dies in the middle of a batch."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from conftest import fresh_engine
from medalliance.demo.loader import Scale, load
from medalliance.events import service as events
from medalliance.events.models import OutboxEvent
from medalliance.kit.clock import utcnow
from medalliance.referrals import escalation, service
from medalliance.referrals.enums import Box, ReferralStatus
from medalliance.referrals.models import ReferralEscalation
from medalliance.referrals.repository import QueueFilter
from referrals.factories import actor, referral

DAY = timedelta(hours=24)


def _overdue(db: Session, n: int, *, age: timedelta = DAY + timedelta(minutes=5)) -> list[str]:
    return [referral(db, now=utcnow() - age).id for _ in range(n)]


def _escalations(db: Session, ids: list[str]) -> list[tuple[str, int]]:
    stmt = select(ReferralEscalation.referral_id, ReferralEscalation.level).where(
        ReferralEscalation.referral_id.in_(ids)
    )
    return sorted((r, int(level)) for r, level in db.execute(stmt).all())


class TestDeadlines:
    @pytest.mark.parametrize(
        ("urgency", "minutes"), [("emergency", 10), ("urgent", 120), ("routine", 24 * 60)]
    )
    def test_deadline_follows_the_urgency(self, db: Session, urgency: str, minutes: int) -> None:
        now = utcnow()
        r = referral(db, now=now, urgency=urgency, status=ReferralStatus.DRAFT)
        service.transition(
            db, actor(db, "doctor"), r.id, service.E.SUBMIT, service.TransitionRequest(), now=now
        )
        assert r.deadline_at == now + timedelta(minutes=minutes)

    def test_overdue_referral_escalates_once_to_the_referral_office(self, db: Session) -> None:
        ids = _overdue(db, 1)
        assert escalation.escalate_overdue(db) == 1
        assert escalation.escalate_overdue(db) == 0
        assert _escalations(db, ids) == [(ids[0], 1)]
        overdue = [
            e
            for e in events.events_of_type(db, "referral.overdue")
            if e.payload["referral"] == ids[0]
        ]
        assert len(overdue) == 1
        assert "county-hospital" in overdue[0].institution_ids

    def test_a_second_deadline_span_later_it_goes_to_the_lead(self, db: Session) -> None:
        ids = _overdue(db, 1, age=2 * DAY + timedelta(minutes=5))
        assert escalation.escalate_overdue(db) == 2
        assert _escalations(db, ids) == [(ids[0], 1), (ids[0], 2)]

    def test_accepted_in_time_is_never_escalated(self, db: Session) -> None:
        r = referral(db, status=ReferralStatus.ACCEPTED, now=utcnow() - 2 * DAY)
        escalation.escalate_overdue(db)
        assert _escalations(db, [r.id]) == []

    def test_overdue_is_marked_in_every_queue(self, db: Session) -> None:
        ids = _overdue(db, 1)
        escalation.escalate_overdue(db)
        incoming = service.queue(db, actor(db, "coordinator"), QueueFilter(), now=utcnow())
        outgoing = service.queue(
            db, actor(db, "doctor"), QueueFilter(box=Box.OUTGOING), now=utcnow()
        )
        for page in (incoming, outgoing):
            item = next(i for i in page.items if i.referral.id == ids[0])
            assert item.overdue
            assert item.escalation_level == 1


class TestCrash:
    def test_failure_mid_batch_loses_nothing_and_rerun_duplicates_nothing(
        self, db: Session
    ) -> None:
        ids = _overdue(db, 5)

        def boom(index: int) -> None:
            if index == 2:
                raise RuntimeError("worker died")

        savepoint = db.begin_nested()  # the job's own transaction
        with pytest.raises(RuntimeError):
            escalation.escalate_overdue(db, after_each=boom)
        savepoint.rollback()
        assert _escalations(db, ids) == []
        assert escalation.escalate_overdue(db) == 5
        assert escalation.escalate_overdue(db) == 0
        assert _escalations(db, ids) == [(i, 1) for i in sorted(ids)]
        count = db.scalar(
            select(func.count())
            .select_from(OutboxEvent)
            .where(OutboxEvent.event_type == "referral.overdue")
        )
        assert count == 5


@pytest.fixture(scope="module")
def file_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = fresh_engine("sqlite", tmp_path_factory.mktemp("escalation"))
    with Session(engine) as session:
        load(session, scale=Scale.SMALL, seed=1)
        session.commit()
    yield engine
    engine.dispose()


_KILLED_WORKER = textwrap.dedent(
    """
    import os, signal, sys
    from sqlalchemy.orm import Session
    from medalliance.db import make_engine
    from medalliance.referrals import escalation

    engine = make_engine(sys.argv[1])

    def die(index):
        if index == 3:
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no rollback, no commit

    with Session(engine) as db:
        escalation.escalate_overdue(db, after_each=die)
        db.commit()
    """
)


class TestKilledWorker:
    def test_worker_killed_mid_batch_resumes_exactly_once(self, file_engine: Engine) -> None:
        with Session(file_engine) as db:
            ids = _overdue(db, 8)
            db.commit()
        url = str(file_engine.url)
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
        killed = subprocess.run(
            [sys.executable, "-c", _KILLED_WORKER, url], env=env, capture_output=True, timeout=120
        )
        assert killed.returncode == -9, killed.stderr.decode()
        with Session(file_engine) as db:
            assert _escalations(db, ids) == []
            assert escalation.escalate_overdue(db) == 8
            db.commit()
        with Session(file_engine) as db:
            assert escalation.escalate_overdue(db) == 0
            db.commit()
            assert _escalations(db, ids) == [(i, 1) for i in sorted(ids)]
            events_count = db.scalar(
                select(func.count())
                .select_from(OutboxEvent)
                .where(OutboxEvent.event_type == "referral.overdue")
            )
            assert events_count == 8
