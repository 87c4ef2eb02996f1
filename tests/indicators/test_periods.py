"""A reporting period whose months could not be told apart (year 9999 rolls into a
five-digit year) is refused, rather than computing forever or showing year -1."""

from __future__ import annotations

from datetime import date

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from helpers import bearer
from indicators.factories import TOWN_A, encounter
from medalliance.indicators import facts, service
from medalliance.indicators.models import MeasureAggregate
from medalliance.indicators.periods import month_range


def test_a_period_outside_the_years_served_is_a_422_naming_period(client: TestClient) -> None:
    headers = bearer(client, "admin")
    for period in ("9999-12", "9999", "0000-01"):
        response = client.get(f"/api/indicators?period={period}", headers=headers)
        assert response.status_code == 422, period
        assert response.json()["field"] == "period"
        assert period in response.json()["detail"]


def test_the_last_year_served_still_has_its_trend(client: TestClient) -> None:
    response = client.get("/api/indicators?period=9998-12", headers=bearer(client, "admin"))
    assert response.status_code == 200
    trend = response.json()["indicators"][0]["trend"]
    assert [month for month, _ in trend][-2:] == ["9998-11", "9998-12"]


def test_month_range_counts_months_not_text() -> None:
    assert month_range("9999-11", "10000-01") == ["9999-11", "9999-12", "10000-01"]
    assert month_range("2026-03", "2026-02") == []


class TestDefaultPeriod:
    """The dashboard opens on the latest month with data that is over: the month under way
    has a few days of it (its growth against a whole month a year before reads as a fall)."""

    TODAY = date(2026, 11, 27)

    def test_the_month_under_way_gives_way_to_the_last_complete_one(self, db: Session) -> None:
        days = (date(2026, 10, 5), date(2026, 11, 26), date(2026, 12, 2))  # a clock set wrong
        facts.ingest_encounters(db, [encounter("county-hospital", TOWN_A, d) for d in days])
        assert str(service.default_period(db, self.TODAY)) == "2026-10"

    def test_a_first_month_of_data_is_shown_while_under_way(self, db: Session) -> None:
        facts.ingest_encounters(db, [encounter("county-hospital", TOWN_A, date(2026, 11, 3))])
        assert str(service.default_period(db, self.TODAY)) == "2026-11"

    def test_without_data_the_current_month(self, db: Session) -> None:
        assert db.scalar(select(func.count()).select_from(MeasureAggregate)) == 0
        assert str(service.default_period(db, self.TODAY)) == "2026-11"
