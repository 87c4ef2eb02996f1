"""The demo's year of referrals: consistent with the consortium and the workflow."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from medalliance.demo import referrals as demo
from medalliance.referrals import escalation
from medalliance.referrals.models import Referral, ReferralEscalation


class TestDemoReferrals:
    def test_a_year_of_up_and_down_referrals_in_every_outcome(self, db: Session) -> None:
        rows = db.execute(
            select(Referral.direction, Referral.status, func.count()).group_by(
                Referral.direction, Referral.status
            )
        ).all()
        seen = {(d, s) for d, s, _ in rows}
        assert {("up", "completed"), ("up", "rejected"), ("down", "completed")} <= seen
        assert sum(n for *_, n in rows) >= 300

    def test_down_referrals_continue_the_up_episode(self, db: Session) -> None:
        down = db.scalars(
            select(Referral).where(Referral.previous_referral_id.is_not(None)).limit(20)
        ).all()
        assert down
        for r in down:
            previous = db.get(Referral, r.previous_referral_id)
            assert previous is not None
            assert (previous.episode_id, previous.patient_id) == (r.episode_id, r.patient_id)
            assert previous.to_institution_id == r.from_institution_id

    def test_overdue_ones_are_already_escalated_so_the_worker_has_nothing_to_redo(
        self, db: Session
    ) -> None:
        assert db.scalar(select(func.count()).select_from(ReferralEscalation)) > 0
        assert escalation.escalate_overdue(db) == 0

    def test_same_seed_same_history(self) -> None:
        ids = [f"p{n:08d}" for n in range(1000, 1100)]
        names = dict.fromkeys(ids, "张三")
        end = datetime(2026, 11, 1, tzinfo=UTC)
        first = [r["id"] for r, _, _ in demo._generate(random.Random(3), ids, names, 200, end)]
        second = [r["id"] for r, _, _ in demo._generate(random.Random(3), ids, names, 200, end)]
        assert first == second
