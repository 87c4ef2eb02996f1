"""The measures indicators are built from: each one a filter over one fact table, the
institution it is attributed to, and what it counts, sums or takes percentiles of.

A measure is data, not code: the same filter is evaluated in Python (incremental
aggregates, one fact at a time) and compiled to SQL (full rebuild), and a property test
keeps the two equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from sqlalchemy import ColumnElement, Table, and_, true

from medalliance.indicators.enums import MeasureKind
from medalliance.indicators.models import EncounterFact, ReferralFact, SettlementFact

FactTable = Literal["encounter", "referral", "settlement"]
NOT_NULL: Final = "*"  # filter value: the column has any value

TABLES: Final[dict[str, Table]] = {
    "encounter": EncounterFact.__table__,  # type: ignore[dict-item]
    "referral": ReferralFact.__table__,  # type: ignore[dict-item]
    "settlement": SettlementFact.__table__,  # type: ignore[dict-item]
}
VISIT = ("ambulatory", "emergency")
GRASSROOTS = ("primary", "village")
ACCEPTED = ("accepted", "scheduled", "in-progress", "completed")


@dataclass(frozen=True)
class Measure:
    name: str
    kind: MeasureKind
    description: str  # msgid shown beside definitions
    table: FactTable | None = None
    where: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    institution: str = "institution_id"  # column the measure is attributed to
    value: str | None = None  # column summed or taken percentiles of

    @property
    def aggregated(self) -> bool:
        return self.kind in (MeasureKind.COUNT, MeasureKind.SUM)

    def matches(self, fact: Mapping[str, Any]) -> bool:
        for column, allowed in self.where:
            found = fact.get(column)
            if allowed == (NOT_NULL,):
                if found is None:
                    return False
            elif found not in allowed:
                return False
        return not (self.value is not None and fact.get(self.value) is None)

    def condition(
        self, columns: Any = None, flags: frozenset[str] = frozenset()
    ) -> ColumnElement[bool]:
        """The filter in SQL, over the fact table or over a pre-grouped copy of it in which
        the ``flags`` columns already hold ``column IS NOT NULL``."""
        assert self.table is not None
        columns = TABLES[self.table].c if columns is None else columns
        parts: list[ColumnElement[bool]] = []
        for column, allowed in self.where:
            if allowed == (NOT_NULL,):
                found = columns[column]
                parts.append(found.is_(True) if column in flags else found.is_not(None))
            else:
                parts.append(columns[column].in_(allowed))
        if self.value is not None:
            parts.append(columns[self.value].is_not(None))
        return and_(true(), *parts)


def _m(name: str, kind: MeasureKind, description: str, **rest: Any) -> Measure:
    return Measure(name, kind, description, **rest)


C, S, P = MeasureKind.COUNT, MeasureKind.SUM, MeasureKind.PERCENTILE
_ENC: dict[str, Any] = {"table": "encounter"}
_SET: dict[str, Any] = {"table": "settlement"}
_TO: dict[str, Any] = {"table": "referral", "institution": "to_institution_id"}
_FROM: dict[str, Any] = {"table": "referral", "institution": "from_institution_id"}

CATALOGUE: Final[tuple[Measure, ...]] = (
    _m("visits", C, "Outpatient and emergency visits", where=(("encounter_class", VISIT),), **_ENC),
    _m(
        "visits_grassroots",
        C,
        "Visits at township health centres and village clinics",
        where=(("encounter_class", VISIT), ("institution_level", GRASSROOTS)),
        **_ENC,
    ),
    _m(
        "visits_in_county",
        C,
        "Visits of county residents at institutions in the county",
        where=(("encounter_class", VISIT), ("in_county", (True,)), ("resident", (True,))),
        **_ENC,
    ),
    _m(
        "visits_in_county_grassroots",
        C,
        "Visits of county residents at grassroots institutions in the county",
        where=(
            ("encounter_class", VISIT),
            ("in_county", (True,)),
            ("resident", (True,)),
            ("institution_level", GRASSROOTS),
        ),
        **_ENC,
    ),
    _m("admissions", C, "Admissions", where=(("encounter_class", ("inpatient",)),), **_ENC),
    _m(
        "admissions_in_county",
        C,
        "Admissions of county residents at institutions in the county",
        where=(("encounter_class", ("inpatient",)), ("in_county", (True,)), ("resident", (True,))),
        **_ENC,
    ),
    _m(
        "visits_out_of_county",
        C,
        "Visits of county residents settled outside the county (insurance file)",
        where=(("encounter_class", VISIT), ("in_county", (False,)), ("resident", (True,))),
        **_SET,
    ),
    _m(
        "admissions_out_of_county",
        C,
        "Admissions of county residents settled outside the county (insurance file)",
        where=(("encounter_class", ("inpatient",)), ("in_county", (False,)), ("resident", (True,))),
        **_SET,
    ),
    _m(
        "spending_out_of_county",
        S,
        "Insurance spending outside the county, yuan",
        where=(("in_county", (False,)), ("resident", (True,))),
        value="amount",
        **_SET,
    ),
    _m("referrals_up", C, "Upward referrals sent", where=(("direction", ("up",)),), **_FROM),
    _m("referrals_down", C, "Downward referrals sent", where=(("direction", ("down",)),), **_FROM),
    _m("referrals_received", C, "Referrals received", **_TO),
    _m(
        "referrals_accepted_in_time",
        C,
        "Referrals accepted before their deadline",
        where=(("accepted_in_time", (True,)),),
        **_TO,
    ),
    _m(
        "referrals_up_completed",
        C,
        "Upward referrals completed",
        where=(("direction", ("up",)), ("status", ("completed",))),
        **_TO,
    ),
    _m(
        "referrals_up_closed_loop",
        C,
        "Upward referrals completed with the outcome returned to the sender",
        where=(("direction", ("up",)), ("status", ("completed",)), ("outcome_returned", (True,))),
        **_TO,
    ),
    _m(
        "referrals_down_completed",
        C,
        "Downward referrals completed",
        where=(("direction", ("down",)), ("status", ("completed",))),
        **_TO,
    ),
    _m(
        "referrals_down_followed_up",
        C,
        "Downward referrals followed up within 14 days",
        where=(
            ("direction", ("down",)),
            ("status", ("completed",)),
            ("follow_up_within_14_days", (True,)),
        ),
        **_TO,
    ),
    _m(
        "referrals_scheduled",
        C,
        "Referrals with an appointment",
        where=(("appointment_at", (NOT_NULL,)),),
        **_TO,
    ),
    _m(
        "referrals_on_reserved_slot",
        C,
        "Referrals booked on a slot reserved for referrals",
        where=(("appointment_at", (NOT_NULL,)), ("reserved_slot_used", (True,))),
        **_TO,
    ),
    _m(
        "time_to_acceptance",
        P,
        "Minutes from request to acceptance",
        value="minutes_to_acceptance",
        **_TO,
    ),
    _m(
        "time_to_appointment",
        P,
        "Hours from request to appointment",
        value="hours_to_appointment",
        **_TO,
    ),
    _m(
        "green_time_to_acceptance",
        P,
        "Minutes from request to acceptance, green channel",
        where=(("green_channel", (True,)),),
        value="minutes_to_acceptance",
        **_TO,
    ),
    Measure("residents", MeasureKind.POPULATION, "Residents registered in the area"),
    Measure("months", MeasureKind.CONSTANT, "Months in the period"),
)
MEASURES: Final[dict[str, Measure]] = {m.name: m for m in CATALOGUE}


def of_table(table: FactTable) -> list[Measure]:
    return [m for m in CATALOGUE if m.table == table and m.aggregated]
