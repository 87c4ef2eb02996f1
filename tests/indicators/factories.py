"""Hand-built facts for indicator tests: explicit values, no other domain involved."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from medalliance.indicators import facts
from medalliance.indicators.facts import EncounterInput, ReferralInput
from medalliance.indicators.models import Population
from medalliance.indicators.periods import month_of

TOWN_A = "510799101000"
TOWN_B = "510799102000"
LEVELS = {
    "township-01": "primary",
    "township-02": "primary",
    "township-01-village-1": "village",
    "county-hospital": "secondary",
    "city-hospital": "tertiary",
}
_counter = iter(range(1, 10**9))


def encounter(
    institution: str,
    township: str,
    day: date,
    encounter_class: str = "ambulatory",
    *,
    icd10: str = "I10",
    age_band: str = "45-59",
    sex: str = "male",
    source_id: str | None = None,
) -> EncounterInput:
    return EncounterInput(
        source_id=source_id or f"Encounter/e{next(_counter)}",
        patient_id="p00000001",
        institution_id=institution,
        institution_level=LEVELS[institution],
        township_code=township,
        encounter_class=encounter_class,
        day=day,
        in_county=institution != "city-hospital",
        resident=township.startswith("510799"),
        age_band=age_band,
        sex=sex,
        icd10=icd10,
    )


def settlement(township: str, day: date, encounter_class: str = "ambulatory") -> dict[str, Any]:
    return {
        "settlement_id": f"S{next(_counter)}",
        "patient_id": "p00000002",
        "township_code": township,
        "institution_id": "city-hospital",
        "encounter_class": encounter_class,
        "day": day,
        "month": month_of(day),
        "in_county": False,
        "resident": True,
        "amount": Decimal("120.50"),
        "import_id": "test",
    }


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def referral(
    direction: str,
    frm: str,
    to: str,
    requested: str,
    *,
    status: str = "completed",
    accepted_after: float | None = None,
    deadline_after: float | None = 24 * 60,
    appointment_after_hours: float | None = None,
    reserved: bool = False,
    outcome: bool = False,
    completed: str | None = None,
    follow_up: str | None = None,
    green: bool = False,
    township: str = TOWN_A,
    referral_id: str | None = None,
) -> ReferralInput:
    start = at(requested)
    minutes = timedelta(minutes=1)
    return ReferralInput(
        referral_id=referral_id or f"r{next(_counter)}",
        patient_id="p00000003",
        township_code=township,
        direction=direction,
        urgency="emergency" if green else "routine",
        status=status,
        from_institution_id=frm,
        to_institution_id=to,
        requested_at=start,
        green_channel=green,
        accepted_at=None if accepted_after is None else start + accepted_after * minutes,
        appointment_at=None
        if appointment_after_hours is None
        else start + appointment_after_hours * 60 * minutes,
        completed_at=at(completed) if completed else None,
        deadline_at=None if deadline_after is None else start + deadline_after * minutes,
        outcome_returned=outcome,
        follow_up_at=at(follow_up) if follow_up else None,
        reserved_slot_used=reserved,
    )


def population(db: Session, township: str, residents: int) -> None:
    db.add(
        Population(
            township_code=township, residents=residents, updated_at=at("2026-01-01T00:00:00")
        )
    )
    db.flush()


def load_small_county(db: Session) -> None:
    """The data set the engine tests work out by hand (see test_engine.py)."""
    d = date
    facts.ingest_encounters(
        db,
        [
            *(encounter("township-01", TOWN_A, d(2026, 7, 3 + i)) for i in range(3)),
            encounter("county-hospital", TOWN_A, d(2026, 7, 20), icd10="J18.9"),
            encounter("county-hospital", TOWN_B, d(2026, 8, 2)),
            encounter("county-hospital", TOWN_B, d(2026, 8, 9), sex="female"),
            encounter("county-hospital", TOWN_B, d(2026, 8, 12), "inpatient", icd10="I63.9"),
            encounter("city-hospital", TOWN_B, d(2026, 9, 1)),
        ],
    )
    facts.add_settlements(
        db,
        [
            settlement(TOWN_A, d(2026, 7, 5)),
            settlement(TOWN_A, d(2026, 7, 6)),
            settlement(TOWN_B, d(2026, 8, 20), "inpatient"),
        ],
    )
    population(db, TOWN_A, 100)
    population(db, TOWN_B, 50)
    facts.ingest_referrals(
        db,
        [
            referral(
                "up",
                "township-01",
                "county-hospital",
                "2026-07-01T00:00:00",
                accepted_after=30,
                appointment_after_hours=48,
                reserved=True,
                outcome=True,
                completed="2026-07-05T00:00:00",
            ),
            referral(
                "up",
                "township-01",
                "county-hospital",
                "2026-07-10T00:00:00",
                accepted_after=90,
                deadline_after=60,
                appointment_after_hours=24,
                completed="2026-07-15T00:00:00",
            ),
            referral(
                "up",
                "township-02",
                "county-hospital",
                "2026-08-05T00:00:00",
                status="accepted",
                accepted_after=5,
                deadline_after=10,
                green=True,
                township=TOWN_B,
            ),
            referral(
                "down",
                "county-hospital",
                "township-01",
                "2026-08-10T00:00:00",
                accepted_after=60,
                completed="2026-08-12T00:00:00",
                follow_up="2026-08-20T00:00:00",
            ),
            referral(
                "down",
                "county-hospital",
                "township-02",
                "2026-09-01T00:00:00",
                status="requested",
                township=TOWN_B,
            ),
            referral(
                "down",
                "county-hospital",
                "township-01",
                "2025-08-15T00:00:00",
                accepted_after=100,
                completed="2025-08-20T00:00:00",
            ),
        ],
    )
