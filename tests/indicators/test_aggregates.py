"""Aggregates maintained one fact at a time equal a full rebuild from the facts, whatever
was inserted, re-ingested (changed) or imported, in whatever order."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from indicators.factories import LEVELS, TOWN_A, TOWN_B, encounter, referral, settlement
from medalliance.indicators import facts, repository

INSTITUTIONS = sorted(LEVELS)
TOWNS = [TOWN_A, TOWN_B, "510700101000"]  # the last one lives outside the county

encounters = st.builds(
    lambda inst, town, offset, cls, key: encounter(
        inst, town, date(2026, 1, 1) + timedelta(days=offset), cls, source_id=f"E{key}"
    ),
    st.sampled_from(INSTITUTIONS),
    st.sampled_from(TOWNS),
    st.integers(0, 400),
    st.sampled_from(["ambulatory", "inpatient", "emergency"]),
    st.integers(0, 15),  # few keys: re-ingesting an existing source id is an update
)
referrals = st.builds(
    lambda direction, frm, to, day, status, accepted, appointment, reserved, outcome, green, key: (
        referral(
            direction,
            frm,
            to,
            f"2026-{1 + day % 12:02d}-{1 + day % 28:02d}T03:00:00",
            status=status,
            accepted_after=accepted,
            appointment_after_hours=appointment,
            reserved=reserved,
            outcome=outcome,
            green=green,
            completed="2026-12-31T00:00:00" if status == "completed" else None,
            follow_up="2027-01-05T00:00:00" if outcome else None,
            referral_id=f"R{key}",
        )
    ),
    st.sampled_from(["up", "down"]),
    st.sampled_from(INSTITUTIONS),
    st.sampled_from(INSTITUTIONS),
    st.integers(0, 400),
    st.sampled_from(["requested", "accepted", "completed", "rejected"]),
    st.none() | st.floats(0, 5000),
    st.none() | st.floats(0, 500),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.integers(0, 10),
)
settlements = st.builds(
    lambda town, offset, cls: settlement(town, date(2026, 1, 1) + timedelta(days=offset), cls),
    st.sampled_from(TOWNS),
    st.integers(0, 400),
    st.sampled_from(["ambulatory", "inpatient"]),
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("encounter"), encounters),
        st.tuples(st.just("referral"), referrals),
        st.tuples(st.just("settlement"), settlements),
    ),
    max_size=30,
)


def snapshot(db: Session) -> dict[tuple[str, str, str, str], tuple[int, float]]:
    return {
        (a.measure, a.institution_id, a.township_code, a.month): (a.n, round(a.total, 6))
        for a in repository.all_aggregates(db)
    }


class TestIncrementalEqualsRebuild:
    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(steps=steps)
    def test_random_inserts_and_updates_give_the_rebuilt_aggregates(
        self, db: Session, steps: list[tuple[str, object]]
    ) -> None:
        savepoint = db.begin_nested()
        try:
            for kind, fact in steps:
                if kind == "encounter":
                    facts.ingest_encounter(db, fact)  # type: ignore[arg-type]
                elif kind == "referral":
                    facts.ingest_referral(db, fact)  # type: ignore[arg-type]
                else:
                    facts.add_settlements(db, [fact])  # type: ignore[list-item]
            incremental = snapshot(db)
            facts.rebuild_aggregates(db)
            assert snapshot(db) == incremental
        finally:
            savepoint.rollback()


class TestCells:
    def test_every_encounter_measure_is_rebuilt_from_cells(self) -> None:
        """The rebuild groups encounter facts by cell id only while every column an encounter
        measure filters on is a cell column; a measure on another column would fall back to
        the seven-column scan, twice as slow at county scale."""
        from medalliance.indicators.measures import TABLES, of_table

        measures = of_table("encounter")
        names = {c for m in measures for c, _ in m.where} | {m.institution for m in measures}
        values = {m.value for m in measures if m.value}
        assert repository.uses_cells(
            TABLES["encounter"], sorted(names | {"township_code", "month"}), frozenset(), values
        )

    def test_a_changed_fact_moves_to_its_new_cell(self, db: Session) -> None:
        from medalliance.indicators.models import EncounterCell, EncounterFact

        facts.ingest_encounter(
            db, encounter("township-01", TOWN_A, date(2026, 7, 3), source_id="E1")
        )
        facts.ingest_encounter(
            db, encounter("county-hospital", TOWN_A, date(2026, 8, 3), source_id="E1")
        )
        fact = db.scalars(select(EncounterFact).where(EncounterFact.source_id == "E1")).one()
        cell = db.get(EncounterCell, fact.cell_id)
        assert cell is not None
        assert (cell.institution_id, cell.month) == ("county-hospital", "2026-08")
        incremental = snapshot(db)
        facts.rebuild_aggregates(db)
        assert snapshot(db) == incremental
