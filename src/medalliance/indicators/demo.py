"""Synthetic indicator facts for the demo consortium: two years of visits, admissions,
referrals and out-of-county settlements of the demo residents, so that a fresh demo has a
dashboard to look at. Deterministic for a seed; written straight into the fact tables
(bulk), then the aggregates are rebuilt."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, insert
from sqlalchemy.orm import Session

from medalliance.care_levels import service as care_levels
from medalliance.config import get_settings
from medalliance.errors import DomainError
from medalliance.indicators import facts, icd
from medalliance.indicators.enums import age_band, age_on
from medalliance.indicators.models import (
    EncounterFact,
    Population,
    ReferralFact,
    SettlementFact,
)
from medalliance.indicators.periods import add_months, month_of
from medalliance.patients import service as patients
from medalliance.registry import service as registry
from medalliance.registry.repository import InstitutionFilter

COMMON_CODES = (
    "J06.9",
    "J18.9",
    "K29.7",
    "M54.5",
    "I10",
    "E11.9",
    "I63.9",
    "N39.0",
    "Z00.0",
    "R51",
)


@dataclass
class DemoReport:
    encounters: int
    referrals: int
    settlements: int
    aggregates: int


def _residents(db: Session, limit: int) -> list[Any]:
    found = []
    for n in range(1, limit + 1):
        try:
            found.append(patients.get_person(db, f"p{n:08d}"))
        except DomainError:
            break
    return found


def _codes(db: Session) -> list[str]:
    catalogue = care_levels.current(db)
    return sorted({d.code for d in catalogue.diseases} | set(COMMON_CODES))


class _Generator:
    def __init__(self, db: Session, seed: int, first_month: str, months: int) -> None:
        self.rng = random.Random(seed)
        found, _ = registry.find_institutions(db, InstitutionFilter(), limit=5000, offset=0)
        self.by_level: dict[str, list[Any]] = {}
        for i in found:
            self.by_level.setdefault(i.level, []).append(i)
        self.townships = {i.division_code: i for i in self.by_level.get("primary", [])}
        self.county = get_settings().indicators_county_code
        self.codes = _codes(db)
        self.first_month, self.months = first_month, months
        self.encounters: list[dict[str, Any]] = []
        self.referrals: list[dict[str, Any]] = []
        self.settlements: list[dict[str, Any]] = []

    def day_in(self, month: str) -> date:
        return date(int(month[:4]), int(month[5:7]), self.rng.randint(1, 28))

    def place(self, person: Any, inpatient: bool) -> Any:
        roll = self.rng.random()
        home = self.townships.get(person.division_code)
        if not inpatient and home is not None and roll < 0.62:
            villages = [v for v in self.by_level.get("village", []) if v.parent_id == home.id]
            return self.rng.choice(villages) if villages and roll < 0.2 else home
        if roll < 0.93:
            return self.rng.choice(self.by_level["secondary"])
        return self.rng.choice(self.by_level["tertiary"])

    def person_month(self, person: Any, month: str, growth: float) -> None:
        for _ in range(self.rng.choice((0, 0, 0, 1, 1, 2))):
            inpatient = self.rng.random() < 0.04
            cls = (
                "inpatient"
                if inpatient
                else ("emergency" if self.rng.random() < 0.05 else "ambulatory")
            )
            day = self.day_in(month)
            if self.rng.random() < 0.09 * (1 - growth / 2):
                self.settle(person, day, cls)
                continue
            where = self.place(person, inpatient)
            self.encounter(person, where, day, cls)
            if where.level == "primary" and self.rng.random() < 0.03:
                self.refer(person, where, self.by_level["secondary"][0], "up", day)
            elif (
                where.level == "secondary"
                and home_of(self, person)
                and self.rng.random() < 0.02 + 0.01 * growth
            ):
                self.refer(person, where, home_of(self, person), "down", day)

    def encounter(self, person: Any, where: Any, day: date, cls: str) -> None:
        code = self.rng.choice(self.codes)
        self.encounters.append(
            {
                "source_id": f"demo/Encounter/{len(self.encounters) + 1}",
                "patient_id": person.id,
                "institution_id": where.id,
                "institution_level": where.level,
                "township_code": person.division_code,
                "encounter_class": cls,
                "day": day,
                "month": month_of(day),
                "in_county": where.division_code.startswith(self.county),
                "resident": person.division_code.startswith(self.county),
                "icd10": code,
                "icd_chapter": icd.chapter(code),
                "age_band": age_band(age_on(person.birth_date, day)),
                "sex": person.sex,
            }
        )

    def settle(self, person: Any, day: date, cls: str) -> None:
        self.settlements.append(
            {
                "settlement_id": f"demo-S{len(self.settlements) + 1}",
                "patient_id": person.id,
                "township_code": person.division_code,
                "institution_id": self.by_level["tertiary"][0].id,
                "encounter_class": cls,
                "day": day,
                "month": month_of(day),
                "in_county": False,
                "resident": person.division_code.startswith(self.county),
                "amount": Decimal(self.rng.randint(80, 20000)),
                "import_id": "demo",
            }
        )

    def refer(self, person: Any, frm: Any, to: Any, direction: str, day: date) -> None:
        rng = self.rng
        green = direction == "up" and rng.random() < 0.1
        requested = datetime(
            day.year, day.month, day.day, rng.randint(0, 9), rng.randint(0, 59), tzinfo=UTC
        )
        deadline = requested + timedelta(minutes=10 if green else 24 * 60)
        accepted = requested + timedelta(minutes=rng.expovariate(1 / (6 if green else 300)))
        booked = rng.random() < 0.8
        appointment = accepted + timedelta(hours=rng.uniform(2, 120)) if booked else None
        completed = (appointment or accepted) + timedelta(days=rng.randint(1, 6))
        self.referrals.append(
            {
                "referral_id": f"demo-R{len(self.referrals) + 1}",
                "patient_id": person.id,
                "township_code": person.division_code,
                "direction": direction,
                "urgency": "emergency" if green else "routine",
                "green_channel": green,
                "status": "completed",
                "from_institution_id": frm.id,
                "to_institution_id": to.id,
                "month": month_of(day),
                "requested_at": requested,
                "accepted_at": accepted,
                "scheduled_at": accepted if booked else None,
                "appointment_at": appointment,
                "completed_at": completed,
                "deadline_at": deadline,
                "accepted_in_time": accepted <= deadline,
                "outcome_returned": rng.random() < 0.85,
                "follow_up_within_14_days": direction == "down" and rng.random() < 0.8,
                "reserved_slot_used": booked and rng.random() < 0.7,
                "minutes_to_acceptance": (accepted - requested).total_seconds() / 60,
                "hours_to_appointment": None
                if appointment is None
                else (appointment - requested).total_seconds() / 3600,
            }
        )


def home_of(gen: _Generator, person: Any) -> Any:
    return gen.townships.get(person.division_code)


def load(db: Session, *, seed: int, months: int, last_month: str, residents: int) -> DemoReport:
    """Replace the demo facts (and only them) with a fresh synthetic history."""
    people = _residents(db, residents)
    first = add_months(last_month, -(months - 1))
    gen = _Generator(db, seed, first, months)
    for index in range(months):
        month = add_months(first, index)
        growth = index / max(months - 1, 1)  # the consortium gets better over time
        for person in people:
            gen.person_month(person, month, growth)
    db.execute(delete(EncounterFact).where(EncounterFact.source_id.startswith("demo/")))
    db.execute(delete(ReferralFact).where(ReferralFact.referral_id.startswith("demo-")))
    db.execute(delete(SettlementFact).where(SettlementFact.import_id == "demo"))
    facts.lock_aggregates(db)
    facts.assign_cells(db, gen.encounters)
    for model, rows in (
        (EncounterFact, gen.encounters),
        (ReferralFact, gen.referrals),
        (SettlementFact, gen.settlements),
    ):
        for start in range(0, len(rows), 5000):
            db.execute(insert(model), rows[start : start + 5000])
    _population(db, people)
    aggregates = facts.rebuild_aggregates(db)
    return DemoReport(len(gen.encounters), len(gen.referrals), len(gen.settlements), aggregates)


def _population(db: Session, people: list[Any]) -> None:
    counts: dict[str, int] = {}
    for person in people:
        counts[person.division_code] = counts.get(person.division_code, 0) + 1
    now = datetime.now(UTC)
    db.execute(delete(Population))
    db.execute(
        insert(Population),
        [{"township_code": k, "residents": v, "updated_at": now} for k, v in counts.items()],
    )
