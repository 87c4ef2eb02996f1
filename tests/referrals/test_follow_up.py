"""The closed loop's last step: after a down referral the grassroots records that it saw the
patient, once, and the indicator "followed up within 14 days" counts it."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpers import bearer, csrf_from, page_login
from medalliance.errors import Conflict, Forbidden, NotFound, ValidationFailed
from medalliance.indicators import sources
from medalliance.indicators.models import ReferralFact
from medalliance.kit.clock import utcnow
from medalliance.referrals import repository, service
from medalliance.referrals.enums import FollowUpStatus, ReferralEvent, ReferralStatus
from medalliance.referrals.models import Referral
from medalliance.referrals.schemas import TransitionRequest
from referrals.factories import actor, down_form, referral

E = ReferralEvent


def completed_down_referral(db: Session, now: datetime) -> Referral:
    """County hospital refers the patient back down to township-01, which completes it."""
    up = referral(db, status=ReferralStatus.COMPLETED, now=now)
    specialist = actor(db, "specialist", "county-hospital")
    down = service.create(db, specialist, down_form(previous_referral_id=up.id), now=now)
    township = actor(db, "doctor")
    for event in (E.ACCEPT, E.ARRIVE, E.COMPLETE):
        service.transition(db, township, down.id, event, TransitionRequest(), now=now)
    return down


class TestRecordFollowUp:
    def test_township_records_it_once(self, db: Session) -> None:
        now = utcnow()
        down = completed_down_referral(db, now)
        doctor = actor(db, "doctor")
        assert down.id in {t.referral_id for t in service.follow_ups_due(db, doctor)}
        later = now + timedelta(days=9)
        task = service.record_follow_up(db, doctor, down.id, " BP 132/84, stable ", now=later)
        assert (task.status, task.done_at, task.done_by, task.result) == (
            FollowUpStatus.DONE,
            later,
            "doctor",
            "BP 132/84, stable",
        )
        assert down.id not in {t.referral_id for t in service.follow_ups_due(db, doctor)}
        with pytest.raises(Conflict):
            service.record_follow_up(db, doctor, down.id, "again", now=later)

    def test_only_the_assigned_institution_records_it(self, db: Session) -> None:
        down = completed_down_referral(db, utcnow())
        specialist = actor(db, "specialist", "county-hospital")
        with pytest.raises(Forbidden):
            service.record_follow_up(db, specialist, down.id, "seen", now=utcnow())
        assert repository.follow_up(db, down.id).status == FollowUpStatus.OPEN  # type: ignore[union-attr]

    def test_empty_result_and_missing_follow_up_are_refused(self, db: Session) -> None:
        down = completed_down_referral(db, utcnow())
        doctor = actor(db, "doctor")
        with pytest.raises(ValidationFailed) as caught:
            service.record_follow_up(db, doctor, down.id, "   ", now=utcnow())
        assert caught.value.field == "result"
        up = referral(db, status=ReferralStatus.COMPLETED)
        with pytest.raises(NotFound):
            service.record_follow_up(db, doctor, up.id, "seen", now=utcnow())

    @pytest.mark.parametrize(("days", "counted"), [(13, True), (20, False)])
    def test_indicator_fact_counts_follow_ups_within_14_days(
        self, db: Session, days: int, counted: bool
    ) -> None:
        # In the past, so the feed (which reads only settled rows) sees the completion.
        start = utcnow() - timedelta(days=30)
        down = completed_down_referral(db, start)
        doctor = actor(db, "doctor")
        service.record_follow_up(db, doctor, down.id, "seen", now=start + timedelta(days=days))
        db.flush()
        sources.refresh_referrals(db, sources.Context.of(db), 5000, utcnow())
        fact = db.scalars(select(ReferralFact).where(ReferralFact.referral_id == down.id)).one()
        assert fact.follow_up_within_14_days is counted


class TestFollowUpHttp:
    def test_api_lists_and_records(self, client: TestClient, db: Session) -> None:
        down = completed_down_referral(db, utcnow())
        doctor = bearer(client, "doctor")
        due = client.get("/api/referrals/follow-ups", headers=doctor)
        assert due.status_code == 200
        assert down.id in [t["referral_id"] for t in due.json()]
        empty = client.post(
            f"/api/referrals/{down.id}/follow-up", json={"result": ""}, headers=doctor
        )
        assert empty.status_code == 422
        done = client.post(
            f"/api/referrals/{down.id}/follow-up", json={"result": "wound healed"}, headers=doctor
        )
        assert done.status_code == 200, done.text
        assert (done.json()["status"], done.json()["done_by"]) == ("done", "doctor")
        again = client.post(
            f"/api/referrals/{down.id}/follow-up", json={"result": "again"}, headers=doctor
        )
        assert again.status_code == 409
        assert again.headers["content-type"].startswith("application/problem+json")

    def test_page_shows_due_list_and_records_from_the_detail(
        self, client: TestClient, db: Session
    ) -> None:
        down = completed_down_referral(db, utcnow())
        page_login(client, "doctor")
        queue = client.get("/referrals").text
        assert 'data-testid="follow-ups-due"' in queue
        assert f"/referrals/{down.id}" in queue
        detail = client.get(f"/referrals/{down.id}")
        assert 'data-testid="record-follow-up"' in detail.text
        posted = client.post(
            f"/referrals/{down.id}/follow-up",
            data={"csrf_token": csrf_from(detail.text), "result": "walking without pain"},
            follow_redirects=True,
        )
        assert posted.status_code == 200
        assert 'data-testid="follow-up-done"' in posted.text
        assert "walking without pain" in posted.text
        assert 'data-testid="record-follow-up"' not in posted.text
