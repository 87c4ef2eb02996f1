"""Each shipped indicator computed on a small hand-built county whose answers are worked
out below, at each level and period.

The data set (tests/indicators/factories.py, ``load_small_county``), 2026-Q3:
- encounters: 3 visits of township A residents at township-01 (July), 1 at county-hospital
  (July); 2 visits of township B residents at county-hospital (August) and 1 admission
  there (August); 1 visit of a township B resident at city-hospital, outside the county
  (September).
- insurance settlements outside the county: 2 visits of township A residents (July), 1
  admission of a township B resident (August). Residents: A 100, B 50.
- referrals: r1 up (accepted after 30 min, deadline 24 h, appointment after 48 h on a
  reserved slot, completed, outcome returned); r2 up (accepted after 90 min with a 60 min
  deadline, appointment after 24 h, completed without outcome); r3 up green channel from
  township-02 (accepted after 5 min, deadline 10 min); r4 down (accepted after 60 min,
  completed 12 Aug, followed up 20 Aug: 8 days); r5 down, still requested; and r6 down in
  August 2025 (the year before).
"""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from indicators.factories import TOWN_A, TOWN_B, load_small_county
from medalliance.indicators import service
from medalliance.indicators.enums import Level, Status
from medalliance.indicators.periods import Period
from medalliance.indicators.repository import Scope

Q3 = Period.parse("2026-Q3")
CONSORTIUM = Scope(Level.CONSORTIUM)


@pytest.fixture
def county(db: Session) -> Session:
    load_small_county(db)
    return db


def value(db: Session, indicator: str, scope: Scope = CONSORTIUM, period: Period = Q3) -> tuple:
    rows = {r.definition.id: r for r in service.overview(db, period, scope).rows}
    result = rows[indicator].result
    assert result is not None, f"{indicator} not computed at {scope}"
    return (
        None if result.value is None else round(result.value, 2),
        result.numerator,
        result.denominator,
    )


class TestHierarchicalCare:
    def test_county_visit_rate_counts_settled_out_of_county_visits_in_the_denominator(
        self, county: Session
    ) -> None:
        # in-county visits of residents 3 + 1 + 2 = 6; out of county (settlements) 2.
        assert value(county, "county_visit_rate") == (75.0, 6, 8)

    def test_county_visit_rate_of_one_township_in_one_month(self, county: Session) -> None:
        july = Period.parse("2026-07")
        assert value(county, "county_visit_rate", Scope(Level.TOWNSHIP, TOWN_A), july) == (
            66.67,
            4,
            6,
        )
        assert value(county, "county_visit_rate", Scope(Level.TOWNSHIP, TOWN_B)) == (100.0, 2, 2)

    def test_county_level_is_the_residents_of_the_county(self, county: Session) -> None:
        assert value(county, "county_visit_rate", Scope(Level.COUNTY, "510799")) == (75.0, 6, 8)

    def test_grassroots_share_of_in_county_visits(self, county: Session) -> None:
        assert value(county, "grassroots_visit_share") == (50.0, 3, 6)

    def test_in_county_share_of_admissions(self, county: Session) -> None:
        assert value(county, "in_county_admission_share") == (50.0, 1, 2)

    def test_visits_per_thousand_residents_per_month(self, county: Session) -> None:
        # township A: 4 visits ÷ (100 residents × 3 months) × 1000.
        scope = Scope(Level.TOWNSHIP, TOWN_A)
        assert value(county, "visits_per_1000_residents_month", scope) == (13.33, 4, 300)
        # the whole platform: 7 visits (city-hospital included) ÷ (150 × 3) × 1000.
        assert value(county, "visits_per_1000_residents_month") == (15.56, 7, 450)

    def test_a_year_holds_the_same_visits_as_its_only_busy_quarter(self, county: Session) -> None:
        assert value(county, "county_visit_rate", period=Period.parse("2026")) == (75.0, 6, 8)

    def test_an_indicator_not_defined_at_a_level_is_not_computed(self, county: Session) -> None:
        rows = {
            r.definition.id: r
            for r in service.overview(county, Q3, Scope(Level.INSTITUTION, "township-01")).rows
        }
        assert rows["county_visit_rate"].result is None


class TestReferrals:
    def test_upward_and_downward_counts(self, county: Session) -> None:
        assert value(county, "up_referrals")[0] == 3
        assert value(county, "down_referrals")[0] == 2

    def test_counts_are_attributed_to_the_sending_institution(self, county: Session) -> None:
        assert value(county, "up_referrals", Scope(Level.INSTITUTION, "township-01"))[0] == 2
        assert value(county, "up_referrals", Scope(Level.INSTITUTION, "township-02"))[0] == 1

    def test_downward_growth_against_the_same_quarter_last_year(self, county: Session) -> None:
        # 2 this quarter against 1 in 2025-Q3: +100 %.
        assert value(county, "down_referral_growth") == (100.0, 2, 1)

    def test_share_accepted_in_time(self, county: Session) -> None:
        # r1, r3, r4 in time; r2 late; r5 never accepted.
        assert value(county, "accepted_in_time_share") == (60.0, 3, 5)
        scope = Scope(Level.INSTITUTION, "county-hospital")
        assert value(county, "accepted_in_time_share", scope) == (66.67, 2, 3)

    def test_median_and_90th_percentile_time_to_acceptance(self, county: Session) -> None:
        # minutes [5, 30, 60, 90]: median 45; P90 at rank 2.7 → 60 + 0.7 × 30 = 81.
        assert value(county, "acceptance_time_median") == (45.0, None, 4)
        assert value(county, "acceptance_time_p90") == (81.0, None, 4)

    def test_median_time_to_appointment(self, county: Session) -> None:
        assert value(county, "appointment_time_median") == (36.0, None, 2)

    def test_closed_loop_rate(self, county: Session) -> None:
        assert value(county, "closed_loop_rate") == (50.0, 1, 2)

    def test_green_channel_median_meets_its_target(self, county: Session) -> None:
        rows = {r.definition.id: r for r in service.overview(county, Q3, CONSORTIUM).rows}
        green = rows["green_channel_acceptance_median"].result
        assert green is not None
        assert green.value == 5
        assert green.status == Status.GREEN

    def test_reserved_slot_use(self, county: Session) -> None:
        assert value(county, "reserved_slot_use") == (50.0, 1, 2)

    def test_follow_up_within_14_days_after_a_down_referral(self, county: Session) -> None:
        assert value(county, "down_follow_up_rate") == (100.0, 1, 1)

    def test_a_referral_that_changes_moves_between_measures(self, county: Session) -> None:
        from indicators.factories import referral
        from medalliance.indicators import facts

        facts.ingest_referral(
            county,
            referral(
                "down",
                "county-hospital",
                "township-02",
                "2026-09-01T00:00:00",
                referral_id="r-late",
                status="requested",
                township=TOWN_B,
            ),
        )
        assert value(county, "down_referrals")[0] == 3
        facts.ingest_referral(
            county,
            referral(
                "down",
                "county-hospital",
                "township-02",
                "2026-09-01T00:00:00",
                referral_id="r-late",
                accepted_after=10,
                completed="2026-09-02T00:00:00",
                follow_up="2026-09-30T00:00:00",
                township=TOWN_B,
            ),
        )
        assert value(county, "down_referrals")[0] == 3
        assert value(county, "down_follow_up_rate") == (50.0, 1, 2)


class TestOverview:
    def test_trend_has_twelve_months_ending_with_the_period(self, county: Session) -> None:
        rows = {r.definition.id: r for r in service.overview(county, Q3, CONSORTIUM).rows}
        trend = rows["up_referrals"].trend
        assert next(m for m, _ in trend) == "2025-10"
        assert trend[-1][0] == "2026-09"
        assert dict(trend)["2026-07"] == 2
        assert dict(trend)["2026-08"] == 1

    def test_status_follows_target_and_direction(self, county: Session) -> None:
        rows = {r.definition.id: r for r in service.overview(county, Q3, CONSORTIUM).rows}
        assert rows["county_visit_rate"].result.status == Status.RED  # 75 < 90 - 9
        assert rows["grassroots_visit_share"].result.status == Status.RED
        assert rows["down_referral_growth"].result.status == Status.GREEN
        assert rows["up_referrals"].result.status == Status.NONE  # no target

    def test_breakdown_by_institution_adds_up_to_the_total(self, county: Session) -> None:
        parts = service.breakdown(county, "up_referrals", Q3, Level.INSTITUTION)
        assert parts.total.value == 3
        assert {r.key: r.result.value for r in parts.rows} == {"township-01": 2, "township-02": 1}

    def test_monthly_series_of_one_institution(self, county: Session) -> None:
        _, series = service.monthly(
            county, "accepted_in_time_share", Scope(Level.INSTITUTION, "county-hospital"), Q3
        )
        by_month = dict(series)
        assert (by_month["2026-07"].numerator, by_month["2026-07"].denominator) == (1, 2)
        assert by_month["2026-06"].value is None
