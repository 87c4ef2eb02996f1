"""A reporting period whose months could not be told apart (year 9999 rolls into a
five-digit year) is refused, rather than computing forever or showing year -1."""

from __future__ import annotations

from fastapi.testclient import TestClient

from helpers import bearer
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
